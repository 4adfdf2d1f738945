"""The README and the documentation site a new user reads: the site builds with --strict, every
link and every repository path they name exists, and every command they show is one gan_lab
takes: its Hydra overrides compose, its subcommand and flags parse."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from markdown.extensions.toc import slugify

from gan_lab.__main__ import describe_config_error
from gan_lab.cli import COMMANDS, parser
from gan_lab.config.compose import compose
from tests.helpers.configs import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
# `conf/model/dcgan32.yaml`, `benchmarks/fid.py`: paths in the repository (no placeholders)
NAMED_PATH = re.compile(
    r"`((?:conf|gan_lab|sweeps|tests|benchmarks|docker|hydra_plugins|docs|\.ci)/[^`<>*\s]*)`"
)
# The images the site serves from the repository (docs/hooks.py) rather than from docs/.
SERVED_FROM_REPO = ROOT / "benchmarks" / "results"
FENCE = re.compile(r"^\s*```")
SHELL = {"bash", "sh", "shell", "console"}
# Hydra's command-line flags that docs show, with how many values each takes.
HYDRA_FLAGS = {"-m": 0, "--multirun": 0, "--help": 0, "--hydra-help": 0, "--cfg": 1, "-c": 1}
PLACEHOLDER = "PLACEHOLDER"  # what a <placeholder> of a command becomes


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _split(text: str) -> tuple[str, list[tuple[str, list[tuple[int, str]]]]]:
    """The prose outside fenced code blocks, and each block: its info string, its numbered lines."""
    prose, blocks, block = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            if block is None:
                block = (line.strip()[3:].strip().lower(), [])
            else:
                blocks.append(block)
                block = None
            prose.append("")
        elif block is None:
            prose.append(line)
        else:
            block[1].append((number, line))
    assert block is None, "a code block is never closed"
    return "\n".join(prose), blocks


def _headings(page: Path) -> list[str]:
    prose, _ = _split(page.read_text())
    return re.findall(r"^#{1,6} (.+?)\s*#*$", prose, re.MULTILINE)


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    """The anchors a link may name: those both GitHub and the site (Markdown's toc) give."""
    headings = _headings(page)
    return {_github_anchor(h) for h in headings} & {slugify(h, "-") for h in headings}


def _links(page: Path) -> list[str]:
    prose, _ = _split(page.read_text())
    prose = re.sub(r"`[^`\n]*`", "", prose)  # code spans: `[...]` is no link
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose)


@dataclass
class Command:
    where: str  # page:line
    args: list[str]  # after `python -m gan_lab` or `gan-lab`
    shown_error: str | None  # the error line shown under it, if any


def _invocation(line: str) -> list[str] | None:
    """The arguments of the gan_lab invocation in a shell line, else None."""
    tokens = shlex.split(line, comments=True)
    for i, token in enumerate(tokens):
        if token.endswith("python") and tokens[i + 1 : i + 3] == ["-m", "gan_lab"]:
            return tokens[i + 3 :]
        if token == "gan-lab":
            return tokens[i + 1 :]
        if "gan_lab" in token and " " in token:  # a snippet for another shell: sh -c '...'
            for part in token.split(";"):
                if (found := _invocation(part)) is not None:
                    return found
    return None


def _commands(page: Path) -> list[Command]:
    """Every gan_lab command in the page's shell blocks, and in `$ `-prompted lines of plain
    blocks (a diagram's `gan-lab ...` is no command)."""
    found = []
    for info, lines in _split(page.read_text())[1]:
        if info not in SHELL and info != "":
            continue
        joined: list[tuple[int, str]] = []
        for number, line in lines:
            if joined and joined[-1][1].endswith("\\"):
                joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + line.strip())
            else:
                joined.append((number, line.strip()))
        for k, (number, line) in enumerate(joined):
            prompted = line.startswith("$ ")
            if info == "" and not prompted:
                continue
            line = re.sub(r"<[^<>]*>", PLACEHOLDER, line.removeprefix("$ "))
            args = _invocation(line)
            if args is None:
                continue
            after = joined[k + 1][1] if k + 1 < len(joined) else ""
            shown = after if after.startswith("gan-lab: ") else None
            found.append(Command(f"{_name(page)}:{number}", args, shown))
    return found


ALL_COMMANDS = [c for page in PAGES for c in _commands(page)]
HYDRA_COMMANDS = [c for c in ALL_COMMANDS if not c.args or c.args[0] not in COMMANDS]
CLI_COMMANDS = [c for c in ALL_COMMANDS if c.args and c.args[0] in COMMANDS]


def _overrides(args: list[str]) -> list[str]:
    """The overrides of a command line that compose into its config: without Hydra's flags, the
    hydra.* keys and hydra/ groups (the launcher, the sweeper), and values that are placeholders
    or paths in a home folder (`data.path=~/anime`)."""
    kept, rest = [], list(args)
    while rest:
        arg = rest.pop(0)
        if arg.startswith("-"):
            assert arg in HYDRA_FLAGS, f"not a flag of gan_lab's: {arg}"
            del rest[: HYDRA_FLAGS[arg]]
            continue
        key, equals, value = arg.partition("=")
        assert equals, f"neither a flag nor an override: {arg}"
        if key.lstrip("+~").startswith(("hydra.", "hydra/")):
            continue
        if PLACEHOLDER in value or value.startswith("~"):
            continue
        kept.append(arg)
    return kept


def _compositions(overrides: list[str]) -> list[list[str]]:
    """A sweep's overrides as plain ones: every value of each sweep at least once. A search
    space (`interval(...)`) is the sweeper's, not a value: it is left out."""
    choices = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices.append([override.input_line])
        elif override.is_discrete_sweep():
            choices.append([f"{key}={v}" for v in override.sweep_string_iterator()])
    # the i-th value of every sweep (its last where it has fewer), beside the plain overrides
    width = max((len(c) for c in choices), default=1)
    return [[c[min(i, len(c) - 1)] for c in choices] for i in range(width)]


def test_every_file_the_docs_name_is_in_a_clone():
    named = {(page, p) for page in PAGES for p in NAMED_PATH.findall(page.read_text())}
    assert len(named) > 10
    missing = sorted(f"{_name(page)}: {p}" for page, p in named if not (ROOT / p).exists())
    assert missing == []


def test_every_link_leads_to_a_page_and_heading():
    broken, checked = [], 0
    for page in PAGES:
        for link in _links(page):
            if re.match(r"[a-z]+:", link):  # https:, mailto:
                continue
            checked += 1
            target, _, anchor = link.partition("#")
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{_name(page)}: {link}: no such file")
            elif page.is_relative_to(DOCS) and not path.is_relative_to(DOCS):
                # MkDocs serves docs/, and the images of benchmarks/results/ (docs/hooks.py)
                if not path.is_relative_to(SERVED_FROM_REPO):
                    broken.append(f"{_name(page)}: {link}: outside docs/, not in the site")
            elif anchor and (path.suffix != ".md" or anchor not in _anchors(path)):
                broken.append(f"{_name(page)}: {link}: no such heading")
    assert checked > 50
    assert broken == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in _links(README)}
    pages = {p.resolve() for p in DOCS.rglob("*.md")}
    assert pages - linked == set()


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250
    blocks = _split(README.read_text())[1]
    shown = [line.split("#")[0].strip() for _, block in blocks for _, line in block]
    assert "make run" in shown and "make test" in shown


def test_every_make_target_shown_is_in_the_makefile():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    shown = {
        target
        for page in PAGES
        for info, lines in _split(page.read_text())[1]
        if info in SHELL
        for _, line in lines
        for target in re.findall(r"^make ([\w-]+)", line.strip())
    }
    assert {"run", "test"} <= shown
    assert shown - targets == set()


def test_the_docs_show_runs_sweeps_searches_and_commands():
    """What the command tests below check is there to check."""
    hydra = [" ".join(c.args) for c in HYDRA_COMMANDS]
    assert len(hydra) > 40 and len(CLI_COMMANDS) > 10
    assert any("sweep=" in c for c in hydra) and any("search=" in c for c in hydra)
    assert {c.args[0] for c in CLI_COMMANDS} == set(COMMANDS)


_COMPOSED: dict[tuple[str, ...], Exception | None] = {}


def _composed(overrides: list[str]) -> Exception | None:
    """compose(*overrides)'s error, or None: each set of overrides composed once (pages repeat
    commands, and a composition takes a Hydra quarter of a second)."""
    key = tuple(overrides)
    if key not in _COMPOSED:
        try:
            compose(*overrides)
            _COMPOSED[key] = None
        except Exception as error:
            _COMPOSED[key] = error
    return _COMPOSED[key]


@pytest.mark.parametrize("command", HYDRA_COMMANDS, ids=lambda c: c.where)
def test_every_training_command_shown_composes(command):
    for overrides in _compositions(_overrides(command.args)):
        error = _composed(overrides)
        if command.shown_error is None:
            if error is not None:
                raise error
            continue
        # the error line the page shows under the command is the one gan-lab prints
        assert error is not None, f"{overrides} composes, though the page shows an error"
        kind, _, message = command.shown_error.removeprefix("gan-lab: ").partition(": ")
        assert message == (describe_config_error(error) if kind == "config error" else str(error))


@pytest.mark.parametrize("command", CLI_COMMANDS, ids=lambda c: c.where)
def test_every_gan_lab_command_shown_parses(command):
    try:
        parser().parse_args(command.args)
    except SystemExit as exit_:
        pytest.fail(f"gan-lab {' '.join(command.args)}: argparse exited {exit_.code}")


@pytest.mark.integration
def test_the_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    pages = sorted(site.rglob("index.html"))
    assert len(pages) == len(list(DOCS.rglob("*.md")))
    # the images the pages show are in the site, those served from benchmarks/results/ too
    images = [
        (page.parent / src).resolve()
        for page in pages
        for src in re.findall(r'<img[^>]* src="([^"]+)"', page.read_text())
        if not re.match(r"[a-z]+:", src)
    ]
    assert len(images) >= 10
    assert [i for i in images if not i.is_file()] == []
