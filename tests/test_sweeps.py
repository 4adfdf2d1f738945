"""The seed sweeps of sweeps/, run for real on tiny settings, and the report built from MLflow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gan_lab import tags
from gan_lab.config import SWEEPS_DIR
from gan_lab.config.compose import compose
from gan_lab.outcome import outcome_of
from gan_lab.report import as_override, report, varying_params
from gan_lab.report.analysis import readable
from tests.helpers.cli import run_cli
from tests.helpers.metrics import stand_in_metrics

SWEEPS = sorted(p.stem for p in (SWEEPS_DIR / "sweep").glob("*.yaml"))
# The seeds' sweeps, and those asking a seed's questions of a fast base (sweep=*_fast)
SEED_SWEEPS = [s for s in SWEEPS if not s.endswith("_fast")]


@pytest.mark.integration
@pytest.mark.parametrize("sweep", SEED_SWEEPS)
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


@pytest.mark.integration
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


def test_the_fast_scenario_2_sweep_asks_the_write_ups_questions_of_the_fast_64x64_base():
    """Its four axes (batch, the generator's batch norm, init, filters), every option composed
    on experiment=anime64_fast at one minute budget per run."""
    import yaml

    sweep = yaml.safe_load((SWEEPS_DIR / "sweep" / "anime_scenario2_fast.yaml").read_text())
    axes = {key: values.split(",") for key, values in sweep["hydra"]["sweeper"]["params"].items()}
    assert axes == {
        "train.batch_size": ["10", "64"],
        "+anime_s2_fast_norm": ["figures1_2", "figure3"],
        "init": ["truncated_normal", "keras_default"],
        "+anime_s2_fast_filters": ["fast", "figure4", "figure5"],
    }
    base = compose("experiment=anime64_fast")
    configs = [
        compose("sweep=anime_scenario2_fast", *(f"{k}={v[i % len(v)]}" for k, v in axes.items()))
        for i in range(3)
    ]
    for config in configs:
        assert (
            config.model.name == "dcgan64_fast"
            and config.tracking.experiment == sweep["tracking"]["experiment"]
        )
        assert (config.train.max_minutes, config.data.holdout) == (5, base.data.holdout)
        assert (config.loss, config.optim, config.augment) == (base.loss, base.optim, base.augment)
    first, second, third = configs
    g = first.model.generator  # batch 10, Figures 1-2's batch norm, truncated normal, fast
    assert (first.train.batch_size, g.norm_momentum, g.norm_eps) == (10, 0.2, 1e-5)
    assert (first.init.name, g.filters) == ("truncated_normal", base.model.generator.filters)
    g = second.model.generator  # batch 64, Figure 3's batch norm, Keras' init, Figure 4
    assert (second.train.batch_size, g.norm_momentum, g.norm_eps) == (64, 0.01, 1e-3)
    assert (second.init.name, g.filters) == ("keras_default", [128, 64, 64])
    assert second.model.discriminator.filters == [32, 64, 64, 128]
    assert third.model.generator.filters == [128, 128, 64]  # Figure 5


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


@pytest.mark.integration
def test_a_seed_sweep_runs_and_its_report_has_a_row_per_run(tmp_path, monkeypatch, store):
    """anime_scenario1's three learning rates on tiny synthetic data: three children of one
    parent run, then the scenario table with their images."""
    stand_in_metrics(monkeypatch)
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
    by_lr = {readable(c.data.params["optim.lr"]): c.data.metrics["fid"] for c in children}
    # "| job 1: optim.lr=1e-4 | ...": the label's value, in three significant figures
    fids = [by_lr[line.split(": optim.lr=")[1].split()[0]] for line in rows]
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
        return SimpleNamespace(data=SimpleNamespace(params=params, tags={}))

    runs = [
        run(**{"optim.lr": "0.1", "optim.lr_g": "0.1", "train.epochs": "3", "tracking.uri": "a"}),
        run(**{"optim.lr": "0.2", "optim.lr_g": "0.2", "train.epochs": "3", "tracking.uri": "b"}),
    ]
    assert varying_params(runs) == ["optim.lr"]
    assert as_override("[128, 64, 32]") == "[128,64,32]" and as_override("None") == "null"


TINY_SWEEP = ["data=synthetic", "data.num_images=32", "train.batch_size=16", "metrics=none"]


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            children = [int(c) for c in task.read_text().split()]
            found += children
            todo += children
    return found


def _loky_worker(pid: int) -> int | None:
    for child in _descendants(pid):
        try:
            if b"LokyProcess" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            continue
    return None


@pytest.mark.slow
@pytest.mark.parametrize(
    "signal_number",
    [signal.SIGKILL, signal.SIGTERM],
)
def test_a_killed_joblib_worker_leaves_no_run_running_and_the_sweep_fails(
    tmp_path, signal_number, store
):
    """A worker that dies (the OOM killer's SIGKILL, a SIGTERM) stops joblib's pool: every
    job run that had started ends KILLED with the reason, the parent FAILED, the exit is 1."""
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gan_lab", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
        + ["optim.lr=1e-4,2e-4,3e-4", *TINY_SWEEP, "train.epochs=50", "tracking=mlflow"]
        + ["tracking.log_every=1"]
        + [f"tracking.uri={store}", "tracking.log_model=false", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not list(sweep.glob("*/checkpoints/last.pt")):  # a job has its first checkpoint
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.2)
    worker = _loky_worker(process.pid)
    assert worker is not None
    os.kill(worker, signal_number)
    _, stderr = process.communicate(timeout=300)
    if signal_number == signal.SIGKILL:
        assert process.returncode == 1, stderr
        assert "the launcher stopped: TerminatedWorkerError" in stderr
    else:  # the worker's job records its SIGTERM, and joblib raises it again in the sweep
        assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    client = MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and all(r.info.status != "RUNNING" for r in runs)
    parent = next(r for r in runs if r.data.tags.get(tags.KIND) == "sweep")
    assert parent.info.status == ("FAILED" if signal_number == signal.SIGKILL else "KILLED")
    assert "killed" in parent.data.tags[tags.SUMMARY]
    assert "failed" not in parent.data.tags[tags.SUMMARY]  # a started job is killed, not failed
    killed = [r for r in runs if r.info.status == "KILLED" and r is not parent]
    for record in killed:  # at the step it reached: its own count where it caught a SIGTERM,
        # else the last step its logged metrics show
        logged = max((m.step for m in client.get_metric_history(record.info.run_id, "g_loss")),
                     default=0)  # fmt: skip
        if signal_number == signal.SIGKILL:
            assert outcome_of(record).step == logged
        else:
            assert outcome_of(record).step >= logged
    assert any(outcome_of(record).step > 0 for record in killed)
