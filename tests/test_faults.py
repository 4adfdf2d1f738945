"""Nothing lost under faults: a tracking server that dies and comes back, one that is not there,
a real PostgreSQL behind the server."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from gan_lab import tags
from gan_lab.outcome import outcome_of
from tests.helpers.cli import gan_lab_cli
from tests.helpers.configs import with_defaults
from tests.helpers.servers import free_port, mlflow_server, postgres, postgres_bin
from tests.helpers.tracking import parent_and_children


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


@pytest.mark.slow
def test_a_server_that_dies_mid_run_loses_nothing_once_it_is_back(tmp_path):
    """The server is killed after the first epoch: training goes on and ends (one warning, no
    minutes of retries); restarted, `train.resume=auto` replays the outage's metrics, sample
    grids and final files, logs the model once and ends the run FINISHED."""
    port, backend = free_port(), f"sqlite:///{tmp_path / 'server.db'}"
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
        resumed = gan_lab_cli(tmp_path, *args, "train.resume=auto", f"hydra.run.dir={run_dir}")
        assert resumed.returncode == 0, resumed.stderr[-2000:]
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
def test_a_sweep_through_a_server_backed_by_postgresql(tmp_path):
    """The Docker stack's pairing, for real: PostgreSQL 15 on 127.0.0.1, an MLflow server over it,
    a three-job sweep through the server."""
    with postgres() as database, mlflow_server(database, tmp_path / "a", free_port()) as url:
        result = gan_lab_cli(
            tmp_path,
            "-m",
            *with_defaults("tracking=mlflow", "train.epochs=1", "tracking.log_model=false"),
            "optim.lr=1e-4,2e-4,3e-4",
            f"tracking.uri={url}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        )
        assert result.returncode == 0, result.stderr[-2000:]
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


def test_a_real_full_disk_ends_the_mlflow_run_and_keeps_last_pt(tmp_path, small_disk):
    """The run folder fills up while the resumed run checkpoints: one line naming the file,
    exit 2, the MLflow run (its store on another disk) ends FAILED, last.pt is untouched."""
    from tests.helpers.tracking import runs_of

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dir = small_disk / "run"
    args = with_defaults(
        "tracking=mlflow",
        f"tracking.uri={store}",
        "tracking.log_model=false",
        f"hydra.run.dir={run_dir}",
    )
    assert gan_lab_cli(tmp_path, *args, "train.epochs=1").returncode == 0
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
