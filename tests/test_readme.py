"""The README a new user reads: every file it names exists, and its table of contents works."""

from __future__ import annotations

import re

from tests.helpers.configs import ROOT

README = (ROOT / "README.md").read_text()
# `conf/model/dcgan32.yaml`, `benchmarks/fid.py`: paths in the repository (no placeholders)
NAMED_PATH = re.compile(
    r"`((?:conf|gan_lab|sweeps|tests|benchmarks|docker|hydra_plugins|\.ci)/[^`<>*\s]*)`"
)


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_file_the_readme_names_is_in_a_clone():
    named = set(NAMED_PATH.findall(README))
    assert len(named) > 10
    missing = sorted(p for p in named if not (ROOT / p.rstrip("/")).exists())
    assert missing == []


def test_every_link_inside_the_readme_leads_to_a_heading():
    anchors = {_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", README, re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and links <= anchors


def test_the_table_of_contents_lists_every_section():
    sections = re.findall(r"^## (.+)$", README, re.MULTILINE)
    contents = README.split("## Contents", 1)[1].split("\n## ", 1)[0]
    for section in sections:
        if section != "Contents":
            assert f"](#{_anchor(section)})" in contents, section
