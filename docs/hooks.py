"""MkDocs hook: the images of benchmarks/results/ in the site, without a copy in docs/.

A page links such an image by its path in the repository, relative to the page, as GitHub shows
it (`../../benchmarks/results/fast/anime_fast/grid.png` from `docs/results/fast.md`). MkDocs serves
only docs/, so the images join the site under `benchmarks/results/` and those links lose one `../`
to reach them there.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
SHARED = "benchmarks/results"
IMAGES = {".png", ".jpg", ".jpeg", ".svg", ".gif"}


def on_files(files, config):
    for path in sorted((ROOT / SHARED).rglob("*")):
        if path.suffix.lower() in IMAGES:
            files.append(
                File(
                    path.relative_to(ROOT).as_posix(),
                    src_dir=str(ROOT),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    return files


def on_page_markdown(markdown, page, config, files):
    up = "../" * page.file.src_uri.count("/")
    return markdown.replace(f"]({up}../{SHARED}/", f"]({up}{SHARED}/")
