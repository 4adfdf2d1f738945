"""What a launcher adds to each job: the same sweep of 8 tiny jobs through the basic launcher,
joblib (2 workers), a real one-node SLURM cluster (2 CPUs, a job per CPU) and a real two-node Ray
cluster (a CPU per node, a job per CPU), all on this machine, logging to one MLflow server on
127.0.0.1 (over sqlite). Each job trains dcgan32 for `--steps` steps on 64 synthetic images
(batch 16, no metrics) and logs every step.

Per job, from the store's own timestamps: **submission to first step** (from the job's turn to
the timestamp of its step-1 metric, which includes that one step) and **last step to recorded
end** (from its last step's metric to its run's end_time: the checkpoint, the model and the run
closed). A job's turn is the sweep's start (its parent run's start_time, before the launcher
gets the jobs) for the first jobs, as many as run at once; each later job's turn comes when a
slot frees: the recorded end of the job before it in that order (so the time a launcher takes
to notice one job's end and start the next counts in the next job's start-up). Also, per
launcher: the median training time (first to last step), the time from the last job's recorded
end to the sweep's (its parent run's end_time), and the sweep's wall time as one process.

SLURM needs root and `slurm-wlm` and `munge` (tests/helpers/slurm.py starts its daemons); Ray
the ray extra (tests/helpers/ray_cluster.py). A launcher that cannot run here is reported
skipped, with the reason.

    python benchmarks/launcher_overhead.py                    # all four, 8 jobs of 4 steps
    python benchmarks/launcher_overhead.py --launchers basic joblib --steps 8
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from sweep_throughput import timed_sweep  # benchmarks/ is on the path of a benchmark script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_lab import tags  # noqa: E402
from tests.helpers.ray_cluster import two_node_ray  # noqa: E402
from tests.helpers.servers import free_port, mlflow_server  # noqa: E402
from tests.helpers.slurm import SLURM_CPU, slurm_cluster, slurm_missing  # noqa: E402

LAUNCHERS = ("basic", "joblib", "slurm", "ray")


@dataclass
class Job:
    """One job's moments, in seconds since the epoch, as its MLflow run recorded them."""

    first_step: float
    last_step: float
    end: float


@dataclass
class Sweep:
    start: float  # the parent run's start_time: the sweep callback, before the launcher
    end: float  # the parent run's end_time: every job answered, the summary recorded
    wall: float  # the sweep's process, start to exit
    jobs: list[Job]


@contextlib.contextmanager
def launcher(name: str) -> Iterator[tuple[list[str], dict[str, str] | None, int]]:
    """The overrides, the environment of the sweep's process and the jobs that run at once."""
    if name == "basic":
        yield [], None, 1
    elif name == "joblib":
        yield ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], None, 2
    elif name == "slurm":
        with slurm_cluster(cpus=2) as env:
            yield SLURM_CPU, env, 2
    else:
        with two_node_ray() as (cluster, _):
            ray = ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={cluster.address}"]
            yield ray, None, 2


def why_not(name: str) -> str | None:
    """Why `name` cannot run here, or None."""
    if name == "slurm":
        if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
            return "the slurm extra is not installed"
        return slurm_missing()
    if name == "ray" and importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
        return "the ray extra is not installed"
    return None


def recorded(client: MlflowClient, experiment: str, jobs: int, wall: float) -> Sweep:
    """The sweep of `experiment` as the store has it; every job must have FINISHED."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get(tags.KIND) == "sweep"]
    children = [r for r in runs if r.data.tags.get(tags.PARENT_RUN_ID) == parent.info.run_id]
    statuses = sorted(r.info.status for r in children)
    if statuses != ["FINISHED"] * jobs:
        sys.exit(f"{experiment}: expected {jobs} FINISHED runs, found {statuses}")
    timed = []
    for run in children:
        history = client.get_metric_history(run.info.run_id, "g_loss")
        steps = sorted(history, key=lambda m: m.step)
        timed.append(
            Job(steps[0].timestamp / 1000, steps[-1].timestamp / 1000, run.info.end_time / 1000)
        )
    return Sweep(parent.info.start_time / 1000, parent.info.end_time / 1000, wall, timed)


def startups(sweep: Sweep, at_once: int) -> list[float]:
    """Each job's turn to its first step (see the module's doc): with `at_once` slots, the
    i-th job to start took the slot that the (i - at_once)-th job to end freed."""
    ends = sorted(job.end for job in sweep.jobs)
    order = sorted(sweep.jobs, key=lambda job: job.first_step)
    turns = [sweep.start if i < at_once else ends[i - at_once] for i in range(len(order))]
    return [job.first_step - turn for job, turn in zip(order, turns, strict=True)]


def row(name: str, at_once: int, sweep: Sweep) -> str:
    start = startups(sweep, at_once)
    ending = [job.end - job.last_step for job in sweep.jobs]
    training = statistics.median(job.last_step - job.first_step for job in sweep.jobs)
    tail = sweep.end - max(job.end for job in sweep.jobs)
    return (
        f"| {name} | {at_once} | {statistics.median(start):.1f} / {max(start):.1f} "
        f"| {statistics.median(ending):.1f} / {max(ending):.1f} | {training:.1f} | {tail:.1f} "
        f"| {sweep.wall:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="training steps per job")
    parser.add_argument("--launchers", nargs="+", choices=LAUNCHERS, default=list(LAUNCHERS))
    args = parser.parse_args()
    lrs = ",".join(f"{(i + 1) * 5e-5:.6g}" for i in range(args.jobs))
    job = [f"optim.lr={lrs}", "data=synthetic", "data.num_images=64", "train.batch_size=16"]
    job += [f"train.max_steps={args.steps}", "metrics=none", "tracking=mlflow"]
    job += ["tracking.log_every=1"]
    # the server's own job runner (MLflow 3's background tasks, a dozen processes) is not needed
    os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    with (
        tempfile.TemporaryDirectory() as folder,
        mlflow_server(
            f"sqlite:///{folder}/mlflow.db", Path(folder, "artifacts"), free_port()
        ) as url,
    ):
        client = MlflowClient(url)
        print(
            f"{args.jobs} jobs, dcgan32 for {args.steps} steps each (64 synthetic images, "
            f"batch 16, metrics=none), logged to an MLflow server on 127.0.0.1; {os.cpu_count()} "
            "CPU cores; seconds, median / max over the jobs"
        )
        print(
            "| launcher | jobs at once | submission to first step | last step to recorded end "
            "| training (median) | last end to sweep end | sweep wall |"
        )
        print("|---|---|---|---|---|---|---|")
        for name in args.launchers:
            if reason := why_not(name):
                print(f"| {name} | skipped: {reason} | | | | | |", flush=True)
                continue
            with launcher(name) as (overrides, env, at_once), tempfile.TemporaryDirectory() as run:
                tracking = [f"tracking.uri={url}", f"tracking.experiment={name}"]
                sweep_dir = f"hydra.sweep.dir={run}/sweep"
                wall = timed_sweep([*job, *tracking, sweep_dir, *overrides], run, env)
            print(row(name, at_once, recorded(client, name, args.jobs, wall)), flush=True)


if __name__ == "__main__":
    main()
