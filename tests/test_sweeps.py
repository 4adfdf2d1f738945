"""The seed sweeps of sweeps/, run for real on tiny settings, and the report built from MLflow."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from gan_lab.config import SWEEPS_DIR, compose
from gan_lab.report import as_override, report, varying_params
from gan_lab.tracking import tags
from tests.helpers.cli import run_cli
from tests.helpers.metrics import stand_in_metrics

SWEEPS = sorted(p.stem for p in (SWEEPS_DIR / "sweep").glob("*.yaml"))


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_sweep_composes_with_its_seed_settings(sweep):
    config = compose(f"+sweep={sweep}")
    assert config.tracking.experiment == sweep
    assert config.model.name in {
        "animal_faces28",
        "anime_s1",
        "anime_s2",
        "cifar_dcgan32",
        "celeba64",
        "cat_faces64",
    }


def test_the_sweeps_carry_the_write_ups_settings():
    s1 = compose("+sweep=anime_scenario1")
    assert (s1.optim.betas[0], s1.train.batch_size, s1.train.epochs) == (0.5, 256, 100)
    fig1 = compose("+sweep=anime_scenario2", "+anime_s2_figure=fig1")
    assert (fig1.train.batch_size, fig1.model.generator.norm_momentum) == (10, 0.2)
    fig5 = compose("+sweep=anime_scenario2", "+anime_s2_figure=fig5")
    assert fig5.model.generator.filters == [128, 128, 64] and fig5.train.epochs == 200
    assert fig5.model.discriminator.filters == [32, 64, 64, 128]
    pets = compose("+sweep=cifar_pets", "data.classes=[cat,dog]")
    assert pets.model.name == "cifar_dcgan32" and pets.data.classes == ["cat", "dog"]
    celeba = compose("+sweep=celeba")
    assert (celeba.data.crop, celeba.data.limit, celeba.train.batch_size) == (
        [30, 55, 150, 175],
        2000,
        32,
    )


TINY_RUN = [
    "data=synthetic",
    "data.num_images=64",
    "train.batch_size=16",
    "train.epochs=1",
    "train.progress=false",
    "metrics.num_samples=32",
    "metrics.kid_subset_size=16",
    "metrics.every=1",
]


def test_a_seed_sweep_runs_and_its_report_has_a_row_per_run(tmp_path, monkeypatch):
    """anime_scenario1's three learning rates on tiny synthetic data: three children of one
    parent run, then the scenario table with their images."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    stand_in_metrics(monkeypatch)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_cli(
        monkeypatch,
        "-m",
        "+sweep=anime_scenario1",
        *TINY_RUN,
        f"tracking.uri={store}",
        "tracking.log_model=false",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("anime_scenario1")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get(tags.KIND) == "sweep")
    children = [r for r in runs if r.data.tags.get(tags.PARENT_RUN_ID) == parent.info.run_id]
    assert sorted(r.data.params["optim.lr"] for r in children) == ["0.0001", "0.0002", "0.0003"]
    assert all(r.info.status == "FINISHED" and "fid" in r.data.metrics for r in children)

    path = report("anime_scenario1", str(tmp_path / "report"), store)
    markdown = path.read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| job ")]
    assert len(rows) == 3
    by_lr = {c.data.params["optim.lr"]: c.data.metrics["fid"] for c in children}
    fids = [by_lr[line.split(": lr=")[1].split()[0]] for line in rows]  # "| job 1: lr=0.0001 |"
    assert fids == sorted(fids)  # sorted by FID
    assert all(line.split(" | ")[-5] == "too few samples (32)" for line in rows)
    for child in children:
        for name in ("loss_curves.png", "final.png"):
            assert (tmp_path / "report" / "images" / f"{child.info.run_id}-{name}").exists()
            assert f"{child.info.run_id}-{name}" in markdown
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 * 2 + 1  # two per row, FID over epochs
    assert "Parameters that mattered most for FID" in markdown and "`optim.lr`" in markdown
    assert "python -m gan_lab sweep=anime_scenario1" in markdown
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert logged == {"report/report.md", "report/report.html", "report/fid_over_epochs.png"}


def test_varying_params_leave_out_derived_and_unchanging_ones():
    from types import SimpleNamespace

    def run(**params):
        return SimpleNamespace(data=SimpleNamespace(params=params))

    runs = [
        run(**{"optim.lr": "0.1", "optim.lr_g": "0.1", "train.epochs": "3", "tracking.uri": "a"}),
        run(**{"optim.lr": "0.2", "optim.lr_g": "0.2", "train.epochs": "3", "tracking.uri": "b"}),
    ]
    assert varying_params(runs) == ["optim.lr"]
    assert as_override("[128, 64, 32]") == "[128,64,32]" and as_override("None") == "null"


def closed_port() -> int:
    """A local port where nothing listens (bound for a moment by the OS, then freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


TINY_SWEEP = ["data=synthetic", "data.num_images=32", "train.batch_size=16", "metrics=none"]


def test_a_sweep_against_a_store_that_does_not_answer_stops_before_any_job_in_one_line(tmp_path):
    uri = f"http://127.0.0.1:{closed_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "gan_lab", "-m", "optim.lr=1e-4,2e-4", *TINY_SWEEP]
        + ["train.max_steps=1", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()  # one line, no warning, no traceback
    assert line.startswith(f"gan-lab: error: cannot open the MLflow store {uri}")
    assert not list((tmp_path / "sweep").glob("*/.hydra"))  # no job was launched
