from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gan_lab.config import CONF_DIR, Config, compose

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))

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
# Groups the tests switch off unless a test chooses an option of its own.
OFF = {"tracking": "tracking=none", "metrics": "metrics=none"}


def with_defaults(*overrides: str) -> list[str]:
    """TINY, the OFF groups that `overrides` do not choose, then `overrides`."""
    chosen = {o.split("=")[0] for o in overrides}
    return [*TINY, *(v for k, v in OFF.items() if k not in chosen), *overrides]


def compose_config(*overrides: str) -> Config:
    return compose(*overrides)


@pytest.fixture
def tiny_config():
    """The tiny model's config, with tracking and metrics off unless the overrides choose them."""

    def make(*overrides: str) -> Config:
        return compose_config(*with_defaults(*overrides))

    return make


def gan_lab_cli(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m gan_lab <args>` in a process of its own, run in `cwd`."""
    command = [sys.executable, "-m", "gan_lab", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def tracked_sweep(tmp_path: Path, *args: str):
    """`python -m gan_lab -m <args>` on the tiny model with metrics off, tracked in a new sqlite
    store in tmp_path. Returns the MLflow client, the sweep's parent run and its children."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [
        sys.executable,
        "-m",
        "gan_lab",
        "-m",
        *TINY[1:],
        "metrics=none",
        "train.epochs=1",
        f"tracking.uri={store}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *args,
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store)
    runs = client.search_runs(
        [client.get_experiment_by_name("gan_lab").experiment_id], max_results=1000
    )
    parents = [r for r in runs if r.data.tags.get("gan_lab.kind") == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return client, parent, children


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A fresh MLflow sqlite store in tmp_path; the test runs there, so artifacts land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
