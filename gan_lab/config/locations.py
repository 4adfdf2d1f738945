"""Where the configs are: conf/ and sweeps/ (shipped with gan_lab) and a user's own. Paths only,
so that code that names a config folder (overrides.py, the Hydra search-path plugin) needs no
Hydra."""

from __future__ import annotations

import os
from pathlib import Path


def _shipped(folder: str) -> Path:
    """conf/ or sweeps/: inside the package in an installed wheel (pyproject.toml maps them
    there), at the top of the repository in a clone."""
    package = Path(__file__).resolve().parents[1]
    inside = package / folder
    return inside if inside.is_dir() else package.parent / folder


CONF_DIR = _shipped("conf")
SWEEPS_DIR = _shipped("sweeps")  # on the search path through hydra_plugins/gan_lab_plugins


def user_conf_dir() -> Path:
    """A user's own configs (local/default.yaml: data locations, tracking URI), outside any clone
    or installed package: $GAN_LAB_CONFIG_DIR, else ~/.config/gan_lab."""
    return Path(os.environ.get("GAN_LAB_CONFIG_DIR") or "~/.config/gan_lab").expanduser()
