"""Tiny configs: a model small enough to train for a few epochs in seconds."""

from __future__ import annotations

from pathlib import Path

from gan_lab.config import CONF_DIR, Config
from gan_lab.config.compose import compose

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))

# Dropout in D, so that the global RNG matters for exact resumption.
TINY = [
    "model=dcgan32",
    "model.generator.projection.channels=16",
    "model.generator.filters=[8,8]",
    "model.discriminator.filters=[8,8,16]",
    "model.discriminator.dropout=0.2",
    "data.num_images=96",
    "train.batch_size=16",
    "train.progress=false",
    "tracking.log_every=2",
]
STEPS_PER_EPOCH = 96 // 16
# Groups the tests switch off unless a test chooses an option of its own.
OFF = {"tracking": "tracking=none", "metrics": "metrics=none"}


def with_defaults(*overrides: str) -> list[str]:
    """TINY, the OFF groups that `overrides` do not choose, then `overrides`."""
    chosen = {o.split("=")[0] for o in overrides}
    return [*TINY, *(v for k, v in OFF.items() if k not in chosen), *overrides]


def tiny(*overrides: str) -> Config:
    """The tiny model's config, tracking and metrics off unless the overrides choose them."""
    return compose(*with_defaults(*overrides))
