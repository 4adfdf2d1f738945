"""Tracked sweeps on the tiny model, read back from their MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from gan_lab import tags
from tests.helpers.cli import gan_lab_cli, run_cli
from tests.helpers.configs import TINY


def runs_of(store: str, experiment: str = "gan_lab"):
    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment} in {store}"
    return client, client.search_runs([found.experiment_id], max_results=1000)


def parent_and_children(runs: list) -> tuple:
    """The one sweep parent run among `runs`, and its children."""
    parents = [r for r in runs if r.data.tags.get(tags.KIND) == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get(tags.PARENT_RUN_ID) == parent.info.run_id]
    return parent, children


def tracked_sweep(tmp_path: Path, *args: str, status: int = 0, monkeypatch=None):
    """`gan-lab -m <args>` on the tiny model with metrics off, tracked in a new sqlite store in
    tmp_path (tmp_path/mlflow.db, the one the `store` fixture puts there), exiting with `status`:
    in this process where `monkeypatch` is given (Hydra's basic launcher runs the jobs here too),
    else in a process of its own (launchers whose jobs are processes). Returns the MLflow client,
    the sweep's parent run and its children."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = [
        "-m",
        *TINY[1:],
        "metrics=none",
        "train.epochs=1",
        f"tracking.uri={store}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *args,
    ]
    if monkeypatch is None:
        result = gan_lab_cli(tmp_path, *sweep)
        assert result.returncode == status, result.stderr[-3000:]
    elif status:
        with pytest.raises(SystemExit) as exited:
            run_cli(monkeypatch, *sweep)
        assert exited.value.code == status
    else:
        run_cli(monkeypatch, *sweep)
    client, runs = runs_of(store)
    return (client, *parent_and_children(runs))
