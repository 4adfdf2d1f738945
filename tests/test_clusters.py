"""Sweeps past one machine, through real daemons on 127.0.0.1: a one-node SLURM cluster (munged,
slurmctld, slurmd) and a two-node Ray cluster, logging to an MLflow server on PostgreSQL. A job
cancelled, a job past its time limit, a node lost: each ends recorded, and nothing hangs."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from gan_lab import tags
from gan_lab.outcome import outcome_of
from tests.helpers.checkpoints import assert_same_checkpoint
from tests.helpers.configs import with_defaults
from tests.helpers.ray_cluster import two_node_ray
from tests.helpers.servers import free_port, mlflow_server, postgres, postgres_bin
from tests.helpers.slurm import SLURM_CPU, slurm_cluster, slurm_missing

# one worker of `make test` runs these: one SLURM cluster a session, one Ray cluster at a time
pytestmark = pytest.mark.xdist_group("clusters")

HAS_SUBMITIT = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
HAS_RAY = importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None
NO_SLURM = slurm_missing() or (None if HAS_SUBMITIT else "the slurm extra is not installed")


@pytest.fixture(scope="session")
def mlflow_on_postgres(tmp_path_factory):
    """An MLflow server on a PostgreSQL database, both on 127.0.0.1, for the session, and the
    URL of a second database on that server for Optuna."""
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL server programs (pg_config)")
    artifacts = tmp_path_factory.mktemp("cluster_artifacts")
    with postgres() as database, mlflow_server(database, artifacts, free_port()) as url:
        # Optuna's studies in a database of their own: its tables and MLflow's both keep their
        # schema version in a table named alembic_version
        host, port = database.split("@")[1].split("/")[0].split(":")
        createdb = [str(postgres_bin() / "createdb"), "-h", host, "-p", port, "-U", "gan_lab"]
        subprocess.run([*createdb, "optuna"], check=True, capture_output=True)
        yield url, database.rsplit("/", 1)[0] + "/optuna"


@pytest.fixture(scope="session")
def slurm():
    """A one-node SLURM cluster (2 CPUs, partition debug) for the session: the environment that
    points SLURM's commands at it."""
    if NO_SLURM:
        pytest.skip(NO_SLURM)
    with slurm_cluster(cpus=2) as env:
        yield env


def _sweep_command(tmp_path: Path, url: str, experiment: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gan_lab",
        "-m",
        *with_defaults(
            "tracking=mlflow", "tracking.log_model=false", "train.keep_checkpoints=false"
        ),
        f"tracking.uri={url}",
        f"tracking.experiment={experiment}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *args,
    ]


def _runs(url: str, experiment: str) -> tuple:
    """The sweep's parent run and its children by job number."""
    client = MlflowClient(url)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=100)
    (parent,) = [r for r in runs if r.data.tags.get(tags.KIND) == "sweep"]
    children = {
        int(r.data.tags[tags.JOB]): r
        for r in runs
        if r.data.tags.get(tags.PARENT_RUN_ID) == parent.info.run_id
    }
    assert len(children) == len(runs) - 1  # one run per job: none started twice
    return parent, children


def _squeue(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        ["squeue", "--noheader", "--format=%i"], env=env, capture_output=True, text=True
    )
    return out.stdout.split()


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"waited {seconds:.0f} s for {what}"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_slurm_job_cancelled_mid_sweep_ends_killed_and_the_sweep_resumes(
    tmp_path, slurm, mlflow_on_postgres
):
    """scancel of one job of three, with no SLURM accounting (no sacct): the sweep does not
    hang; that child is KILLED with the reason, the others FINISHED, the parent counts them and
    the exit status is 1; the same command with train.resume=auto continues the same parent and
    finishes the cancelled job in its own run."""
    url, _ = mlflow_on_postgres
    command = _sweep_command(
        tmp_path, url, "slurm_cancel", *SLURM_CPU, "optim.lr=1e-4,2e-4,3e-4",
        "data.num_images=480", "train.epochs=3",
    )  # fmt: skip
    sweep = subprocess.Popen(
        command, cwd=tmp_path, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: (tmp_path / "sweep/1/checkpoints/last.pt").exists(), 300, "job 1's epoch")
    (cancelled,) = [job for job in _squeue(slurm) if job.endswith("_1")]
    subprocess.run(["scancel", cancelled], env=slurm, check=True)
    _, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 1, stderr[-3000:]
    assert "1 of 3 jobs of the sweep did not finish (2 finished, 1 killed)" in stderr

    parent, children = _runs(url, "slurm_cancel")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[tags.SUMMARY] == "2 finished, 1 killed"
    assert (parent.data.metrics["jobs_finished"], parent.data.metrics["jobs_killed"]) == (2, 1)
    killed = outcome_of(children[1])
    assert (children[1].info.status, killed.status) == ("KILLED", "KILLED")
    assert f"SIGTERM from SLURM (job {cancelled}: scancel" in killed.error
    assert children[1].data.tags[tags.SLURM_JOB] == cancelled
    assert all(children[j].info.status == "FINISHED" for j in (0, 2))

    resumed = subprocess.run(
        [*command, "train.resume=auto"], cwd=tmp_path, env=slurm, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    parent_again, children_again = _runs(url, "slurm_cancel")
    assert parent_again.info.run_id == parent.info.run_id
    assert parent_again.data.tags[tags.SUMMARY] == "3 finished"
    assert {j: r.info.run_id for j, r in children_again.items()} == {
        j: r.info.run_id for j, r in children.items()
    }
    assert all(r.info.status == "FINISHED" for r in children_again.values())
    steps = MlflowClient(url).get_metric_history(children[1].info.run_id, "epoch_g_loss")
    assert sorted(m.step for m in steps) == [1, 2, 3]  # each epoch once


@pytest.mark.slow
def test_a_slurm_job_past_its_time_limit_is_requeued_and_resumes_bit_exact(
    tmp_path, slurm, mlflow_on_postgres
):
    """A one-minute time limit and SLURM's warning (SIGUSR2) 10 s before it (sent by the test
    if SLURM has not sent it by the time the job trains): the job saves last.pt at the step it
    reached, submitit requeues it, and it resumes by itself into the same MLflow run, which
    counts the requeue; its weights at the end are those of an uninterrupted run. (Once
    requeued, the test gives the job 10 minutes, so that the rest of its training ends on a
    machine of any speed.)"""
    url, _ = mlflow_on_postgres
    training = ["data.num_images=960", "train.epochs=24", "tracking.log_every=60", "optim.lr=2e-4"]
    command = _sweep_command(
        tmp_path, url, "slurm_time_limit", *SLURM_CPU, *training,
        "hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=10",
    )  # fmt: skip
    reference_dir = tmp_path / "uninterrupted"
    reference = subprocess.Popen(  # meanwhile, the same training without a scheduler
        [
            sys.executable, "-m", "gan_lab",
            *with_defaults(*training, "train.keep_checkpoints=false"),
            f"hydra.run.dir={reference_dir}",
        ],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sweep = subprocess.Popen(
        command, cwd=tmp_path, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    submitted = tmp_path / "sweep/.submitit"  # a folder per SLURM job, named by its id

    def job_ids() -> list[str]:  # beside them, submitit's pickled submissions (<uuid>.pkl)
        found = submitted.iterdir() if submitted.is_dir() else []
        return [p.name for p in found if re.fullmatch(r"\d+(_\d+)?", p.name)]

    _wait_for(job_ids, 120, "the job's submission")
    (job,) = job_ids()

    def job_log() -> str:
        return "".join(p.read_text() for p in submitted.rglob("*_log.out"))

    # SLURM sends its warning on its own schedule, up to a minute early by its event resolution
    # (sbatch --signal), so a fast machine may finish the training before it: once the job
    # trains, the test sends the same warning (SIGUSR2 to the job's steps), unless SLURM did
    _wait_for(lambda: "training from step 0" in job_log() or sweep.poll() is not None, 300,
              "the job's training")  # fmt: skip
    if "saved before exit" not in job_log():
        subprocess.run(["scancel", "--signal=USR2", job], env=slurm, check=True)

    def restarts() -> int:
        shown = subprocess.run(
            ["scontrol", "show", "job", job], env=slurm, capture_output=True, text=True
        )
        found = re.search(r"Restarts=(\d+)", shown.stdout)
        return int(found.group(1)) if found else 0

    _wait_for(lambda: restarts() >= 1 or sweep.poll() is not None, 300, "the requeue")
    # where it still runs (a fast machine may already have finished it): what the asserts below
    # check is the same either way
    subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=10"], env=slurm)
    _, stderr = sweep.communicate(timeout=900)
    assert sweep.returncode == 0, stderr[-3000:]
    assert reference.wait(timeout=600) == 0, reference.stderr.read()[-2000:]

    log = job_log()
    saved = re.search(r"checkpoint of step (\d+) saved before exit", log)
    assert saved and int(saved.group(1)) > 0, log[-3000:]
    assert f"resumed at step {saved.group(1)}" in log
    _, children = _runs(url, "slurm_time_limit")
    (run,) = children.values()
    assert run.info.status == "FINISHED" and outcome_of(run).step == 24 * 960 // 16
    assert run.data.tags[tags.REQUEUES] == "1"
    resumed = torch.load(tmp_path / "sweep/0/checkpoints/last.pt", weights_only=True)
    uninterrupted = torch.load(reference_dir / "checkpoints/last.pt", weights_only=True)
    for state in (resumed, uninterrupted):  # an MLflow run's id, and none without tracking
        state["progress"].pop("tracking_run_id")
    assert_same_checkpoint(resumed, uninterrupted)


@pytest.fixture
def ray_cluster():
    """A Ray cluster of two nodes on this machine (tests/helpers/ray_cluster.py): a head with one
    CPU and a second node with one CPU and the resource `node_b`, without a token (RAY_AUTH_MODE
    disabled while it runs)."""
    if not HAS_RAY:
        pytest.skip("the ray extra is not installed")
    with two_node_ray() as (cluster, node_b):
        yield cluster, node_b


def _ray_command(tmp_path: Path, url: str, experiment: str, address: str, *args: str) -> list:
    ray = ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}"]
    return _sweep_command(tmp_path, url, experiment, *ray, *args)


@pytest.mark.slow
def test_an_optuna_search_through_a_two_node_ray_cluster_uses_both_nodes(
    tmp_path, ray_cluster, mlflow_on_postgres
):
    """Two trials at once (hydra.sweeper.n_jobs=2), the study on PostgreSQL: one trial runs on
    each node, as each run's gan_lab.ray_node tag says."""
    cluster, node_b = ray_cluster
    url, studies = mlflow_on_postgres
    command = _ray_command(
        tmp_path, url, "ray_search", cluster.address,
        "hydra/sweeper=gan_lab_optuna", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.study_name=ray_search", f"hydra.sweeper.storage={studies}",
        "hydra.sweeper.objective=g_loss", "optim.lr=interval(1e-4,3e-4)", "data.num_images=480",
    )  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    parent, children = _runs(url, "ray_search")
    assert parent.data.tags[tags.SUMMARY] == "2 finished"
    nodes = {r.data.tags[tags.RAY_NODE] for r in children.values()}
    assert len(nodes) == 2 and node_b.node_id in nodes


@pytest.mark.slow
def test_a_ray_node_lost_mid_sweep_ends_its_job_killed_and_the_others_finish(
    tmp_path, ray_cluster, mlflow_on_postgres
):
    """The second node is killed (SIGKILL, as a machine that goes away) while its job trains:
    with no retry (max_retries 0), that job ends KILLED with the reason, the other FINISHED; the
    parent counts them, the exit status is 1, and no run is left RUNNING."""
    cluster, node_b = ray_cluster
    url, _ = mlflow_on_postgres
    command = _ray_command(
        tmp_path, url, "ray_lost_node", cluster.address,
        "optim.lr=1e-4,2e-4", "data.num_images=480", "train.epochs=4",
    )  # fmt: skip
    sweep = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    client = MlflowClient(url)

    def training_on_node_b() -> bool:
        found = client.get_experiment_by_name("ray_lost_node")
        runs = client.search_runs([found.experiment_id]) if found else []
        return any(
            r.data.tags.get(tags.RAY_NODE) == node_b.node_id and "g_loss" in r.data.metrics
            for r in runs
        )

    _wait_for(training_on_node_b, 300, "a job training on node_b")
    cluster.remove_node(node_b, allow_graceful=False)
    _, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 1, stderr[-3000:]
    assert "1 of 2 jobs of the sweep did not finish (1 finished, 1 killed)" in stderr
    parent, children = _runs(url, "ray_lost_node")
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_killed"] == 1
    (lost,) = [r for r in children.values() if r.data.tags[tags.RAY_NODE] == node_b.node_id]
    assert lost.info.status == "KILLED"
    assert "its Ray worker or node was lost" in outcome_of(lost).error
    assert sorted(r.info.status for r in children.values()) == ["FINISHED", "KILLED"]
