"""Nothing lost under faults: a tracking server that dies and comes back, one that is not there,
a real PostgreSQL behind the server."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from gan_lab import tags
from gan_lab.outcome import outcome_of
from tests.helpers.cli import gan_lab_cli, run_cli
from tests.helpers.configs import with_defaults
from tests.helpers.servers import free_port, mlflow_server, postgres, postgres_bin
from tests.helpers.tracking import parent_and_children, runs_of


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


@pytest.mark.slow
def test_a_server_that_dies_mid_run_loses_nothing_once_it_is_back(tmp_path, new_store, monkeypatch):
    """The server is killed after the first epoch: training goes on and ends (one warning, no
    minutes of retries); restarted, `train.resume=auto` replays the outage's metrics, sample
    grids and final files, logs the model once and ends the run FINISHED."""
    port, backend = free_port(), new_store(tmp_path / "server")
    args = with_defaults(
        "data.num_images=960",
        "train.epochs=6",
        "tracking=mlflow",
        f"tracking.uri=http://127.0.0.1:{port}",
    )
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "gan_lab", *args, f"hydra.run.dir={run_dir}"]
    with mlflow_server(backend, tmp_path / "artifacts", port):
        training = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.time() + 300
        while not (run_dir / "checkpoints" / "epoch_0001.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
    started = time.time()
    output, _ = training.communicate(timeout=600)
    assert training.returncode == 0, output[-2000:]
    assert time.time() - started < 120  # no minutes of retries
    assert output.count("stopped answering") == 1 and "could not be finished" in output

    with mlflow_server(backend, tmp_path / "artifacts", port) as url:
        monkeypatch.chdir(tmp_path)  # the resumed run, here
        run_cli(monkeypatch, *args, "train.resume=auto", f"hydra.run.dir={run_dir}")
        client = MlflowClient(url)
        (record,) = client.search_runs([client.get_experiment_by_name("gan_lab").experiment_id])
        run_id = record.info.run_id
        assert record.info.status == "FINISHED" and outcome_of(record).status == "FINISHED"
        steps = 6 * 960 // 16
        assert _steps(client, run_id, "g_loss") == list(range(2, steps + 1, 2))  # none missing
        assert _steps(client, run_id, "epoch_g_loss") == [1, 2, 3, 4, 5, 6]
        images = [a.path for a in client.list_artifacts(run_id, "images")]
        logged = sorted(
            int(p.split("+step+")[1].split("+")[0]) for p in images if p.endswith(".png")
        )
        assert logged == [0, 1, 2, 3, 4, 5, 6]
        files = {a.path for a in client.list_artifacts(run_id)}
        assert {"final.png", "loss_curves.png", "config.yaml"} <= files
        assert tags.MODEL_URI in record.data.tags
        models = client.search_logged_models(
            [record.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        assert len(models) == 1  # logged once


@pytest.mark.integration
def test_a_tracking_uri_where_nothing_listens_is_one_line_within_seconds(tmp_path):
    started = time.time()
    result = gan_lab_cli(
        tmp_path, *with_defaults("tracking=mlflow", f"tracking.uri=http://127.0.0.1:{free_port()}")
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the tracking store at http://127.0.0.1" in lines[0]
    assert (result.stdout + result.stderr).count("cannot reach") == 1  # said once
    assert time.time() - started < 60


@pytest.mark.slow
@pytest.mark.skipif(postgres_bin() is None, reason="no PostgreSQL server programs (pg_config)")
def test_a_sweep_through_a_server_backed_by_postgresql(tmp_path, monkeypatch):
    """The Docker stack's pairing, for real: PostgreSQL 15 on 127.0.0.1, an MLflow server over it,
    a three-job sweep through the server (run here)."""
    monkeypatch.chdir(tmp_path)
    with postgres() as database, mlflow_server(database, tmp_path / "a", free_port()) as url:
        run_cli(
            monkeypatch,
            "-m",
            *with_defaults("tracking=mlflow", "train.epochs=1", "tracking.log_model=false"),
            "optim.lr=1e-4,2e-4,3e-4",
            f"tracking.uri={url}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        )
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("gan_lab")
        parent, children = parent_and_children(client.search_runs([experiment.experiment_id]))
        assert parent.info.status == "FINISHED" and len(children) == 3
        for child in children:
            assert child.info.status == "FINISHED"
            assert _steps(client, child.info.run_id, "epoch_g_loss") == [1]


@pytest.fixture
def small_disk(tmp_path):
    """A real 24 MB file system (tmpfs), where the machine lets this process mount one."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.integration
def test_a_real_full_disk_ends_the_mlflow_run_and_keeps_last_pt(
    tmp_path, small_disk, store, monkeypatch
):
    """The run folder fills up while the resumed run checkpoints: one line naming the file,
    exit 2, the MLflow run (its store on another disk) ends FAILED, last.pt is untouched."""
    run_dir = small_disk / "run"
    args = with_defaults(
        "tracking=mlflow",
        f"tracking.uri={store}",
        "tracking.log_model=false",
        f"hydra.run.dir={run_dir}",
    )
    run_cli(monkeypatch, *args, "train.epochs=1")  # the run the full disk then meets
    last = run_dir / "checkpoints" / "last.pt"
    before = last.read_bytes()
    disk = os.statvfs(small_disk)
    room = disk.f_bavail * disk.f_frsize - len(before) // 2  # not enough for the next one
    (small_disk / "filler").write_bytes(b"\0" * room)
    result = gan_lab_cli(tmp_path, *args, "train.epochs=3", "train.resume=auto")
    assert result.returncode == 2, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "no space left on device" in line.lower() and str(run_dir) in line, line
    assert "Traceback" not in result.stderr
    assert last.read_bytes() == before
    _, (record,) = runs_of(store)
    assert record.info.status == "FAILED"


def _wait_for(
    path_glob, root, process: subprocess.Popen, timeout: float = 300, count: int = 1
) -> None:
    """Until `count` files matching `path_glob` appear under `root`, while `process` runs."""
    deadline = time.monotonic() + timeout
    while len(list(root.glob(path_glob))) < count:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"no {path_glob} in {timeout} s"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_second_writer_of_a_run_folder_is_refused_and_a_killed_writer_leaves_no_lock(
    tmp_path, store, monkeypatch
):
    """Two `train.resume=auto` of one folder at once: the second is refused in one line naming
    the first's pid, and writes nothing; once the first is killed (kill -9: no chance to clean
    up), the folder resumes, into the same MLflow run, each step logged once."""
    run_dir = tmp_path / "run"
    args = [
        *with_defaults(
            "tracking=mlflow", f"tracking.uri={store}",
            "tracking.log_model=false", "train.resume=auto",
        ),
        f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, "-m", "gan_lab", *args, "train.epochs=50"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for("checkpoints/epoch_0001.pt", run_dir, first)
        second = gan_lab_cli(tmp_path, *args, "train.epochs=50")
    finally:
        first.kill()
        first.communicate()
    assert second.returncode == 2, second.stderr[-2000:]
    assert second.stderr.strip().splitlines() == [
        f"gan-lab: error: the run folder {run_dir} is being written by another process "
        f"(pid {first.pid}): wait for it to end, or give this run another hydra.run.dir"
    ]
    run_cli(monkeypatch, *args, "train.epochs=1")  # resumes and ends at once: past epoch 1
    _, (record,) = runs_of(store)  # one run: the second wrote none
    assert record.info.status == "FINISHED"
    steps = _steps(MlflowClient(store), record.info.run_id, "g_loss")
    assert steps and len(steps) == len(set(steps))


def _search(tmp_path, *extra: str) -> list[str]:
    return [
        "-m",
        "hydra/sweeper=gan_lab_optuna",
        "hydra.sweeper.study_name=s",
        "hydra.sweeper.objective=d_loss_real",
        "optim.lr=interval(1e-4,1e-3)",
        *with_defaults(*extra),
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]


@pytest.mark.slow
def test_a_search_killed_and_run_again_continues_its_parent_run_and_counts_its_study(
    tmp_path, store, monkeypatch
):
    """kill -9 of the search's process in the middle of trial 0, then the same command: the same
    parent run goes on, trial 0's run (left RUNNING) ends KILLED at the step it reached, and the
    summary counts the study's trials: the interrupted one failed, the other two finished."""
    args = _search(
        tmp_path, "hydra.sweeper.n_trials=2", "train.epochs=3",
        "tracking=mlflow", f"tracking.uri={store}", "tracking.log_model=false",
    )  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, "-m", "gan_lab", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for("0/checkpoints/epoch_0001.pt", tmp_path / "sweep", first)
    finally:
        first.kill()
        first.communicate()
    _, runs = runs_of(store)
    killed_parent, (killed_trial,) = parent_and_children(runs)
    assert killed_trial.info.status == "RUNNING"  # as kill -9 leaves it

    run_cli(monkeypatch, *args)  # again, here
    client, runs = runs_of(store)
    parent, children = parent_and_children(runs)
    assert parent.info.run_id == killed_parent.info.run_id
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[tags.SUMMARY] == "1 failed, 2 finished"
    by_trial = {int(c.data.tags[tags.TRIAL]): c for c in children}
    assert sorted(by_trial) == [0, 1, 2]
    assert by_trial[0].info.run_id == killed_trial.info.run_id
    assert by_trial[0].info.status == "KILLED"
    assert outcome_of(by_trial[0]).step == max(_steps(client, killed_trial.info.run_id, "g_loss"))
    assert outcome_of(by_trial[0]).step > 0
    assert [by_trial[n].info.status for n in (1, 2)] == ["FINISHED", "FINISHED"]


@pytest.mark.slow
def test_a_server_lost_mid_sweep_fails_the_sweep_in_one_line_and_its_resume_repairs_it(
    tmp_path, new_store
):
    """A four-job joblib sweep, its tracking server killed mid-run: the two running jobs train
    on, the two after them cannot reach it; each records locally (outcome.json), the sweep exits
    1 with one line that says so and gives the command that repairs it; with the server back,
    that command leaves one FINISHED parent and four FINISHED jobs."""
    port, backend = free_port(), new_store(tmp_path / "server")
    sweep = tmp_path / "sweep"
    args = [
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optim.lr=1e-4,2e-4,3e-4,4e-4",
        *with_defaults(
            "data.num_images=480", "train.epochs=3", "tracking=mlflow", "tracking.log_every=10",
            f"tracking.uri=http://127.0.0.1:{port}", "tracking.log_model=false",
        ),
        f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with mlflow_server(backend, tmp_path / "artifacts", port):
        process = subprocess.Popen(
            [sys.executable, "-m", "gan_lab", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # both running jobs past their first epoch: on a loaded machine the second may still be
        # starting when the first gets there, and would then fail with the two after it
        _wait_for("*/checkpoints/epoch_0001.pt", sweep, process, count=2)
    _, stderr = process.communicate(timeout=600)  # the server was killed as the block ended
    assert process.returncode == 1, stderr[-3000:]
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(f"gan-lab: the tracking store http://127.0.0.1:{port} stopped answer")
    assert "its jobs (2 failed, 2 finished) are recorded in their folders (outcome.json)" in line
    recorded = sorted(json.loads(f.read_text())["status"] for f in sweep.glob("*/outcome.json"))
    assert recorded == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    command = shlex.split(line.split("replay them into it with: ")[1])
    assert command[:4] == ["python", "-m", "gan_lab", "-m"] and "train.resume=auto" in command

    with mlflow_server(backend, tmp_path / "artifacts", port) as url:
        resumed = subprocess.run(
            [sys.executable, *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("gan_lab").experiment_id
        parent, children = parent_and_children(client.search_runs([experiment]))
    assert parent.info.status == "FINISHED" and parent.data.tags[tags.SUMMARY] == "4 finished"
    assert sorted(c.info.status for c in children) == ["FINISHED"] * 4
