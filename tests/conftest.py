from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from gan_lab.config import Config, register_schema, to_config

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))

# A model small enough that a test trains it for a few epochs in seconds, with dropout so the
# global RNG matters for exact resumption.
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
NO_TRACKING = "tracking=none"


def compose_config(*overrides: str) -> Config:
    register_schema()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_config(compose("config", overrides=list(overrides)))


@pytest.fixture
def tiny_config():
    """The tiny model's config; tracking=none unless the overrides choose a tracking option."""

    def make(*overrides: str) -> Config:
        tracking = [] if any(o.startswith("tracking=") for o in overrides) else [NO_TRACKING]
        return compose_config(*TINY, *tracking, *overrides)

    return make


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A fresh MLflow sqlite store in tmp_path; the test runs there, so artifacts land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
