"""Sweeps past one process: the Ray and submitit launchers, GPU placement, the Docker stack."""

from __future__ import annotations

import importlib.util
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml
from mlflow import MlflowClient

from gan_lab import tags
from gan_lab.config.compose import compose
from tests.helpers.configs import ROOT
from tests.helpers.tracking import tracked_sweep

# one worker of `make test` runs these (one Ray instance at a time on the machine)
pytestmark = pytest.mark.xdist_group("clusters")

HAS_RAY = importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None
HAS_SUBMITIT = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
DOCKER = ROOT / "docker"


def _sweep(tmp_path: Path, *args: str) -> list:
    """A tracked multirun of the tiny model; returns the sweep's child runs."""
    _, parent, children = tracked_sweep(tmp_path, "tracking.log_model=false", *args)
    assert parent.info.status == "FINISHED"
    return children


def _most_at_once(runs: list) -> int:
    events = sorted([(r.info.start_time, 1) for r in runs] + [(r.info.end_time, -1) for r in runs])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="the ray extra is not installed")
def test_ray_runs_four_cpu_jobs_two_at_a_time_under_one_parent(tmp_path):
    children = _sweep(
        tmp_path,
        "hydra/launcher=ray",
        "hydra.launcher.ray.init.num_cpus=2",
        "optim.lr=1e-4,2e-4,3e-4,4e-4",
        "data.num_images=480",  # jobs long enough that the two slots surely overlap
    )
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    assert sorted(r.data.params["optim.lr"] for r in children) == [
        "0.0001",
        "0.0002",
        "0.0003",
        "0.0004",
    ]
    assert _most_at_once(children) == 2


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SUBMITIT, reason="the slurm extra is not installed")
def test_submitit_local_multirun_logs_children_of_one_parent(tmp_path):
    children = _sweep(tmp_path, "hydra/launcher=submitit_local", "optim.lr=1e-4,2e-4")
    assert sorted(r.data.params["optim.lr"] for r in children) == ["0.0001", "0.0002"]
    assert all(r.info.status == "FINISHED" for r in children)


def test_the_slurm_launcher_asks_for_one_gpu_per_task():
    from hydra import compose, initialize_config_dir

    from gan_lab.config import CONF_DIR
    from gan_lab.config.compose import register_schema

    if not HAS_SUBMITIT:
        pytest.skip("the slurm extra is not installed")
    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.gpus_per_task, launcher.partition, launcher.timeout_min) == (1, "gpu", 240)


def test_the_servers_the_project_starts_itself_listen_on_loopback():
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.count("--host 127.0.0.1") == 2  # make ui, make dashboard
    config = yaml.safe_load((ROOT / "conf" / "hydra" / "launcher" / "ray.yaml").read_text())
    init = config["ray"]["init"]
    assert init["include_dashboard"] is False


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="the ray extra is not installed")
def test_a_local_ray_instance_wants_a_token_and_has_no_dashboard():
    """What the launcher's init settings start: token authentication on and no dashboard (its
    gRPC servers listen on every interface in Ray 2.60: see README, Scaling out)."""
    launcher = ROOT / "conf" / "hydra" / "launcher" / "ray.yaml"
    code = (
        "import ray, yaml\n"
        f"init = yaml.safe_load(open({str(launcher)!r}))['ray']['init']\n"
        "context = ray.init(num_cpus=1, include_dashboard=init['include_dashboard'])\n"
        "from ray._private.authentication.authentication_utils import is_token_auth_enabled\n"
        "print(context.dashboard_url or 'none', is_token_auth_enabled())\n"
        "ray.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["none", "True"]


def test_the_ray_launcher_asks_for_a_gpu_per_job_only_where_there_are_gpus():
    from gan_lab.devices import gpus_per_job

    expected = 1 if torch.cuda.is_available() else 0
    assert gpus_per_job(1) == expected and gpus_per_job(0.25) == (0.25 if expected else 0)
    config = yaml.safe_load((ROOT / "conf" / "hydra" / "launcher" / "ray.yaml").read_text())
    assert config["ray"]["remote"]["num_gpus"] == "${gan_lab_gpus:1}"
    compose()  # the resolver is registered with the schema


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
@pytest.mark.skipif(not HAS_RAY, reason="the ray extra is not installed")
def test_every_ray_job_gets_a_gpu_of_its_own(tmp_path):
    count = torch.cuda.device_count()
    lrs = ",".join(f"{(i + 1) * 1e-4:g}" for i in range(count))
    children = _sweep(
        tmp_path,
        "hydra/launcher=ray",
        f"optim.lr={lrs}",
        "train.device=cuda",
        "data.num_images=4800",
    )
    devices = [r.data.tags[tags.CUDA_VISIBLE_DEVICES] for r in children]
    assert len(set(devices)) == count, devices


def test_the_compose_file_parses_and_names_files_that_exist():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "mlflow", "trainer"}
    for service in services.values():
        if "build" in service:
            context = (DOCKER / service["build"]["context"]).resolve()
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file()
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in compose["volumes"] or source.startswith(".."), volume
    assert services["mlflow"]["ports"] == ["127.0.0.1:5000:5000"]  # published on loopback only
    gpus = services["trainer"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpus["capabilities"] == ["gpu"]
    assert services["trainer"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    dockerfile = (DOCKER / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), line
    assert "USER gan" in dockerfile and "nvidia/cuda" in dockerfile


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_compose_server_command_serves_runs_and_artifacts(tmp_path, new_store):
    """The mlflow service's command, with a sqlite store in place of PostgreSQL, a free port and
    one worker process (not uvicorn's four, which take a busy machine a minute to start): a run
    logged through it keeps its metrics, and its artifacts land in the served folder."""
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    script = compose["services"]["mlflow"]["command"][-1].replace("$$", "$")
    port = _free_port()
    script = script.replace("--port 5000", f"--port {port}").replace(
        "--host 0.0.0.0", "--host 127.0.0.1"
    )
    script = script.replace("/mlartifacts", str(tmp_path / "mlartifacts")).replace(
        "5000", str(port)
    )
    script += " --workers 1"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MLFLOW_BACKEND_STORE_URI": new_store(tmp_path / "backend"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    server = subprocess.Popen(
        ["sh", "-c", script],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        client = MlflowClient(url)
        run = client.create_run(client.create_experiment("compose-check"))
        client.log_metric(run.info.run_id, "fid", 12.5, step=3)
        (tmp_path / "note.txt").write_text("artifact through the server")
        client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
        client.set_terminated(run.info.run_id)
        assert client.get_metric_history(run.info.run_id, "fid")[0].value == 12.5
        stored = list((tmp_path / "mlartifacts").rglob("note.txt"))
        assert len(stored) == 1 and stored[0].read_text() == "artifact through the server"
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert shlex.split(script)[0] == "mlflow"
