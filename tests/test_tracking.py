"""MLflow tracking, read back with MlflowClient from a temporary store."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

import gan_lab.tracking.local
import gan_lab.training.loop
from gan_lab import tags
from gan_lab.outcome import Reason, Status, outcome_of
from gan_lab.tracking import RunInfo, flatten
from gan_lab.tracking.export import model_name
from gan_lab.tracking.local import LocalTracker
from gan_lab.tracking.stored_run import image_files
from gan_lab.training.run import run
from tests.helpers.cli import gan_lab_cli
from tests.helpers.configs import STEPS_PER_EPOCH, with_defaults
from tests.helpers.servers import free_port
from tests.helpers.tracking import runs_of as _runs
from tests.helpers.tracking import tracked_sweep


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    files = []
    for item in client.list_artifacts(run_id, path):
        files += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return files


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


@pytest.mark.integration
def test_a_run_is_recorded_completely(tiny_config, store, tmp_path):
    config = tiny_config("tracking=mlflow", f"tracking.uri={store}", "train.epochs=2")
    run(config, tmp_path / "run", RunInfo(name="optim.lr=0.0002", tags={tags.JOB: "0"}))
    client, runs = _runs(store)
    assert len(runs) == 1
    record = runs[0]
    run_id = record.info.run_id
    assert record.info.status == "FINISHED"
    assert record.info.run_name == "optim.lr=0.0002"
    assert record.data.params == {k: str(v) for k, v in flatten(asdict(config)).items()}
    assert record.data.params["optim.lr"] == "0.0002"
    recorded = record.data.tags
    assert recorded[tags.JOB] == "0" and recorded[tags.VERSION] and recorded[tags.DEVICE]

    logged = list(range(2, 2 * STEPS_PER_EPOCH + 1, 2))
    for key in ("g_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake", "lr_g", "lr_d"):
        assert _steps(client, run_id, key) == logged, key
    assert _steps(client, run_id, "epoch_g_loss") == [1, 2]

    files = _artifacts(client, run_id)
    images = [f for f in files if f.startswith("images/") and f.endswith(".png")]
    assert len(images) == 3 and all("samples" in f for f in images)  # before training, 2 epochs
    assert any("+step+0+" in f for f in images)
    for name in ("config.yaml", "loss_curves.png", "checkpoints/last.pt", "final.png"):
        assert name in files


@pytest.mark.integration
def test_the_logged_generator_loads_and_generates_images(tiny_config, store, tmp_path):
    import mlflow.pyfunc

    run(tiny_config("tracking=mlflow", f"tracking.uri={store}", "train.epochs=1"), tmp_path / "r")
    _, runs = _runs(store)
    recorded = runs[0]
    name = model_name(recorded.info.run_name)  # the logged model is named after its run
    assert name and ":" not in name and "." not in name
    model = mlflow.pyfunc.load_model(f"runs:/{recorded.info.run_id}/{name}")
    assert recorded.data.tags[tags.MODEL_URI].startswith("models:/m-")
    latents = np.random.default_rng(0).standard_normal((5, 100)).astype(np.float32)
    images = np.asarray(model.predict(latents))
    assert images.shape == (5, 3, 32, 32)
    assert images.min() >= 0.0 and images.max() <= 1.0
    inputs = model.metadata.get_input_schema().inputs[0]
    assert inputs.shape == (-1, 100)


@pytest.mark.integration
def test_a_diverging_run_ends_failed_with_the_error(tiny_config, store, tmp_path):
    config = tiny_config("tracking=mlflow", f"tracking.uri={store}", "init=normal", "init.std=1e30")
    assert run(config, tmp_path / "run").reason == Reason.DIVERGED
    _, runs = _runs(store)
    assert runs[0].info.status == "FAILED"
    recorded = outcome_of(runs[0])
    assert (recorded.status, recorded.reason) == (Status.FAILED, Reason.DIVERGED)
    assert "diverged" in recorded.error


@pytest.mark.integration
def test_ctrl_c_ends_the_run_killed(tiny_config, store, tmp_path, monkeypatch):
    real_step = gan_lab.training.loop.TrainStep.__call__
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(gan_lab.training.loop.TrainStep, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config("tracking=mlflow", f"tracking.uri={store}"), tmp_path / "run")
    _, runs = _runs(store)
    assert runs[0].info.status == "KILLED"
    assert outcome_of(runs[0]).reason == Reason.INTERRUPTED


@pytest.mark.integration
def test_resume_continues_the_same_run_without_repeated_steps(tiny_config, store, tmp_path):
    tracked = ("tracking=mlflow", f"tracking.uri={store}")
    run(tiny_config(*tracked, "train.epochs=2"), tmp_path / "run")
    # as if the process had died after logging epoch 2 but before its checkpoint was the latest
    first = tmp_path / "run" / "checkpoints" / "epoch_0001.pt"
    run(tiny_config(*tracked, "train.epochs=3", f"train.resume={first}"), tmp_path / "run2")
    client, runs = _runs(store)
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    assert runs[0].info.status == "FINISHED"
    assert _steps(client, run_id, "g_loss") == list(range(2, 3 * STEPS_PER_EPOCH + 1, 2))
    assert _steps(client, run_id, "epoch_g_loss") == [1, 2, 3]
    images = [
        f for f in _artifacts(client, run_id) if f.startswith("images/") and f.endswith(".png")
    ]
    assert sorted(f.split("+step+")[1].split("+")[0] for f in images) == ["0", "1", "2", "3"]


@pytest.mark.integration
def test_a_model_half_logged_by_a_killed_process_is_replaced_on_resume(
    tiny_config, store, tmp_path
):
    """The process died inside mlflow.pytorch.log_model: its model stayed PENDING. The resumed
    run deletes it and logs the generator again, so the run ends with one READY model."""
    tracked = ("tracking=mlflow", f"tracking.uri={store}", "tracking.log_model=false")
    run(tiny_config(*tracked, "train.epochs=1"), tmp_path / "run")
    client, runs = _runs(store)
    record = runs[0]
    client.create_logged_model(record.info.experiment_id, source_run_id=record.info.run_id)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    resumed = ("tracking=mlflow", f"tracking.uri={store}", f"train.resume={last}")
    run(tiny_config(*resumed, "train.epochs=1"), tmp_path / "run")
    models = client.search_logged_models([record.info.experiment_id])
    assert [m.status.name for m in models] == ["READY"]
    assert client.get_run(record.info.run_id).data.tags[tags.MODEL_URI] == models[0].model_uri


@pytest.mark.integration
def test_tracking_none_never_imports_mlflow(tmp_path):
    script = (
        "import sys\n"
        "from gan_lab.__main__ import main\n"
        f"sys.argv = ['gan-lab', *{with_defaults()!r}, 'train.max_steps=2']\n"
        "main()\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n"
        "print('no mlflow')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "no mlflow" in result.stdout
    assert not (tmp_path / "mlflow.db").exists()


def test_local_tracker_reads_its_own_history(tmp_path):
    tracker = LocalTracker(tmp_path)
    tracker.log_metrics({"g_loss": 1.5, "d_fake": 0.2}, 10)
    tracker.log_metrics({"g_loss": 1.25}, 20)
    assert tracker.metric_history(["g_loss"]) == {"g_loss": [(10, 1.5), (20, 1.25)]}


def test_a_sweep_has_one_parent_run_and_a_child_per_job(tmp_path, store, monkeypatch):
    client, parent, children = tracked_sweep(
        tmp_path, "optim.lr=1e-4,2e-4,3e-4", "recipe=ema", monkeypatch=monkeypatch
    )
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["jobs"] == 3 and parent.data.metrics["jobs_finished"] == 3
    assert sorted(c.data.params["optim.lr"] for c in children) == ["0.0001", "0.0002", "0.0003"]
    for child in children:
        assert child.info.status == "FINISHED"
        job, lr = child.data.tags[tags.JOB], child.data.params["optim.lr"]
        assert child.info.run_name == f"job {job}: lr={lr}"  # what the sweep varies, first
        assert child.data.tags[tags.SWEEP_ID] == parent.data.tags[tags.SWEEP_ID]
        assert (child.data.tags[tags.RECIPE], child.data.tags[tags.EXPERIMENT]) == ("ema", "none")


def test_a_failed_job_is_recorded_and_the_sweep_goes_on(tmp_path, store, monkeypatch):
    """The sweep finishes its other jobs, then exits 1; a job whose value is invalid (init.std
    -1: refused before any run exists) is recorded too, with its reason."""
    client, parent, children = tracked_sweep(
        tmp_path, "init=normal", "init.std=0.02,1e30,0.03,-1", status=1, monkeypatch=monkeypatch
    )
    status = {c.data.params["init.std"]: c.info.status for c in children}
    assert status == {"0.02": "FINISHED", "1e+30": "FAILED", "0.03": "FINISHED", "-1.0": "FAILED"}
    invalid = next(c for c in children if c.data.params["init.std"] == "-1.0")
    assert "init.std=-1" in outcome_of(invalid).error
    assert invalid.data.params["optim.lr_d"] == "0.0002"  # ${.lr} resolved, as a valid job's
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["jobs_failed"] == 2
    assert "2 failed" in parent.data.tags[tags.SUMMARY]


@pytest.mark.slow
def test_four_parallel_jobs_share_one_fresh_store(tmp_path, fresh_store):
    """Hydra's joblib launcher runs 4 processes at once against a store that did not exist."""
    client, parent, children = tracked_sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        "optim.lr=1e-4,2e-4,3e-4,4e-4",
        "train.epochs=2",
    )
    assert len(children) == 4
    for child in children:
        run_id = child.info.run_id
        assert child.info.status == "FINISHED"
        assert _steps(client, run_id, "g_loss") == list(range(2, 2 * STEPS_PER_EPOCH + 1, 2))
        files = _artifacts(client, run_id)
        assert "checkpoints/last.pt" in files and "loss_curves.png" in files
        images = [f for f in files if f.startswith("images/") and f.endswith(".png")]
        assert len(images) == 3  # before the first step and after each of 2 epochs


@pytest.mark.slow
def test_the_ui_serves_the_runs_of_the_store(tiny_config, store, tmp_path):
    """What `make ui` starts: `mlflow ui` on 127.0.0.1 against the runs' store (here with one
    worker process, not uvicorn's four, which take a busy machine a minute to start)."""
    import json
    import os
    import socket
    import time
    import urllib.request
    from pathlib import Path

    run(
        tiny_config("tracking=mlflow", f"tracking.uri={store}", "train.max_steps=2"), tmp_path / "r"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    command = [
        str(bin_dir / "mlflow"),
        "ui",
        "--backend-store-uri",
        store,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        request = urllib.request.Request(
            f"{url}/api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": ["1"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        runs = json.load(urllib.request.urlopen(request, timeout=10))["runs"]
        assert len(runs) == 1 and runs[0]["info"]["status"] == "FINISHED"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.integration
def test_a_run_that_fails_before_training_still_leaves_its_record(tiny_config, store, tmp_path):
    missing = tmp_path / "nowhere"
    config = tiny_config(
        "tracking=mlflow",
        f"tracking.uri={store}",
        "data=folder",
        f"data.path={missing}",
        "data.size=32",
    )
    result = run(config, tmp_path / "run")
    assert result.status == Status.FAILED and result.user_error
    _, runs = _runs(store)
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    assert runs[0].data.params["data.path"] == str(missing)
    assert "does not exist" in outcome_of(runs[0]).error


@pytest.mark.slow
def test_eight_runs_started_at_once_on_a_fresh_store_all_finish(tmp_path):
    """Plain runs, not a sweep: nothing creates the store first, so the runs race to create and
    migrate it; a lock beside the sqlite file lets one at a time."""
    store = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    args = with_defaults("train.max_steps=2", "tracking=mlflow", "tracking.log_model=false")
    command = [sys.executable, "-m", "gan_lab", *args, f"tracking.uri={store}"]
    processes = [
        subprocess.Popen(
            [*command, f"hydra.run.dir={tmp_path / str(n)}"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(8)
    ]
    outputs = [p.communicate(timeout=900)[1] for p in processes]  # reads as they write
    failures = [out[-500:] for p, out in zip(processes, outputs, strict=True) if p.returncode]
    assert failures == []
    client, runs = _runs(store)
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    client.create_experiment("still-healthy")  # the store works for the next run too


@pytest.mark.integration
def test_a_sweep_against_a_store_that_does_not_answer_stops_before_any_job(tmp_path):
    """Nothing listens on the port: one line, exit 2, within the short retries, no job run."""
    from tests.helpers.cli import gan_lab_cli
    from tests.helpers.servers import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    sweep = tmp_path / "sweep"
    result = gan_lab_cli(
        tmp_path,
        "-m",
        "optim.lr=1e-4,2e-4",
        "data.num_images=64",
        "train.max_steps=1",
        "metrics=none",
        f"tracking.uri={uri}",
        f"hydra.sweep.dir={sweep}",
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("gan-lab: error: cannot reach the tracking store at " + uri)
    assert "Traceback" not in result.stderr and "UserWarning" not in result.stderr
    assert not list(sweep.glob("*/outcome.json"))  # no job started


def test_a_resumed_sweep_continues_its_parent_run(tmp_path, store, monkeypatch):
    """The rerun of a sweep in the same folder with train.resume=auto adds no second parent."""
    sweep = ("optim.lr=1e-4,2e-4",)
    client, parent, children = tracked_sweep(tmp_path, *sweep, monkeypatch=monkeypatch)
    client, again, rerun = tracked_sweep(
        tmp_path, *sweep, "train.resume=auto", monkeypatch=monkeypatch
    )
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    assert {c.info.run_id for c in rerun} == {c.info.run_id for c in children}


def _image_files(client: MlflowClient, run_id: str) -> dict[str, set[str]]:
    return image_files([Path(a.path).name for a in client.list_artifacts(run_id, "images")])


@pytest.mark.integration
def test_a_grid_whose_upload_was_cut_is_logged_again_on_resume(tiny_config, store, tmp_path):
    """The process died between a grid's two files (the PNG and the UI's +compressed.webp): the
    resumed run replaces the incomplete grid with a whole one, from the run folder's copy."""
    tracked = ("tracking=mlflow", f"tracking.uri={store}", "tracking.log_model=false")
    run(tiny_config(*tracked, "train.epochs=1"), tmp_path / "run")
    client, (record,) = _runs(store)
    run_id = record.info.run_id
    artifacts = Path(record.info.artifact_uri.removeprefix("file://")) / "images"
    (thumbnail,) = artifacts.glob("samples+step+1+*+compressed.webp")
    thumbnail.unlink()  # as a kill between the two uploads leaves it
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    run(tiny_config(*tracked, "train.epochs=2", f"train.resume={last}"), tmp_path / "run")
    images = _image_files(client, run_id)
    assert sorted(int(i.split("+step+")[1].split("+")[0]) for i in images) == [0, 1, 2]
    assert all(endings == {".png", "+compressed.webp"} for endings in images.values())


@pytest.mark.integration
def test_a_full_disk_at_the_end_still_ends_the_mlflow_run(
    tiny_config, store, tmp_path, monkeypatch
):
    """outcome.json cannot be written (ENOSPC): the store was told first, so its run ends with
    its outcome instead of staying RUNNING."""

    def full_disk(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(gan_lab.tracking.local, "atomic_write", full_disk)
    config = tiny_config("tracking=mlflow", f"tracking.uri={store}", "tracking.log_model=false")
    with pytest.raises(OSError, match="No space left"):
        run(config, tmp_path / "run")
    _, (record,) = _runs(store)
    assert record.info.status == "FINISHED"
    assert outcome_of(record).status == Status.FINISHED
    assert not (tmp_path / "run" / "outcome.json").exists()


@pytest.mark.integration
@pytest.mark.parametrize(
    "command",
    [
        ["sample", "runs:/0123456789abcdef0123456789abcdef"],
        ["sample", "models:/anime@champion"],
        ["eval", "runs:/0123456789abcdef0123456789abcdef"],
        ["report", "anime_scenario1"],
    ],
)
def test_every_command_that_reads_the_store_fails_fast_where_nothing_listens(tmp_path, command):
    uri = f"http://127.0.0.1:{free_port()}"  # bound, then closed: nothing listens there
    started = time.monotonic()
    result = gan_lab_cli(tmp_path, *command, "--tracking-uri", uri, timeout=120)
    assert time.monotonic() - started < 20  # MLflow's own retries take minutes
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"gan-lab: error: cannot reach the tracking store at {uri} (")


def _deleted_experiment(store: str, name: str = "gone") -> str:
    client = MlflowClient(store)
    experiment = client.create_experiment(name)
    client.delete_experiment(experiment)
    return experiment


@pytest.mark.integration
@pytest.mark.parametrize("sweep", [[], ["-m", "optim.lr=1e-4,2e-4"]], ids=["run", "sweep"])
def test_a_deleted_experiment_is_one_line_with_both_ways_out_before_any_job(
    store, tmp_path, monkeypatch, capsys, sweep
):
    """MLflow keeps a deleted experiment's name and refuses runs in it: one line, exit 2, no run
    opened, and for a sweep no parent and no job."""
    from mlflow.entities import ViewType

    from tests.helpers.cli import run_cli

    experiment = _deleted_experiment(store)
    capsys.readouterr()  # MLflow's own lines as it created the store
    with pytest.raises(SystemExit) as stopped:
        run_cli(
            monkeypatch,
            *sweep,
            *with_defaults("tracking=mlflow", f"tracking.uri={store}", "tracking.experiment=gone"),
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert line.startswith("gan-lab: error: MLflow experiment 'gone' is deleted in sqlite:///")
    assert f"mlflow experiments restore --experiment-id {experiment})" in line
    assert line.endswith("or choose another tracking.experiment")
    assert MlflowClient(store).search_runs([experiment], run_view_type=ViewType.ALL) == []
    assert not (tmp_path / "sweep").exists()


@pytest.fixture
def read_only():
    """Makes a folder read-only for this process: by its mode, or where the tests run as root
    (whom modes do not stop) by the immutable attribute."""
    made: list = []

    def make(folder: Path) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555)
        elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("cannot make a folder read-only here (chattr +i)")
        made.append(folder)

    yield make
    for folder in made:
        if os.geteuid() != 0:
            folder.chmod(0o755)
        else:
            subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.integration
def test_a_read_only_sqlite_store_is_said_to_be_read_only(
    tiny_config, tmp_path, read_only, new_store
):
    folder = tmp_path / "store"
    store = new_store(folder)  # the store exists
    read_only(folder)
    outcome = run(tiny_config("tracking=mlflow", f"tracking.uri={store}"), tmp_path / "run")
    assert outcome.status == Status.FAILED and outcome.user_error
    assert outcome.error.startswith(f"the tracking store {store} is read-only")
    assert "start the tracking server" not in outcome.error


@pytest.mark.integration
def test_a_damaged_last_pt_under_resume_auto_opens_no_run(tiny_config, fresh_store, tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.pt").write_bytes(b"torn")
    config = tiny_config("tracking=mlflow", f"tracking.uri={fresh_store}", "train.resume=auto")
    outcome = run(config, tmp_path / "run")
    assert outcome.status == Status.FAILED and outcome.user_error
    assert "cannot be read" in outcome.error and outcome.error.endswith("train.resume=auto")
    assert not (tmp_path / "mlflow.db").exists()  # refused before the store was opened
