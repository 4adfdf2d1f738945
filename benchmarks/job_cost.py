"""What a sweep job costs beyond its training: the fixed cost per job of the basic and joblib
launchers, so a user knows what a 1-minute job really costs.

Each setting runs a sweep of 1 job and a sweep of `--jobs` jobs, every job a 1-step training of
dcgan32 on 256 synthetic images logged to a fresh MLflow sqlite store (`--tracking none` skips
MLflow), as whole processes. The difference between the two, per extra job, is the warm fixed
cost of one job (config, data, model, tracking opened and closed, checkpoints, the sweep's own
records); the 1-job sweep minus that is the process' start and end (imports, Hydra, the parent
run).

    python benchmarks/job_cost.py --jobs 6
"""

from __future__ import annotations

import argparse
import os
import tempfile

from sweep_throughput import timed_sweep  # benchmarks/ is on the path of a benchmark script


def sweep_seconds(jobs: int, launcher: list[str], tracking: str, folder: str) -> float:
    seeds = ",".join(str(i) for i in range(jobs))
    overrides = [f"train.seed={seeds}", "data=synthetic", "data.num_images=256"]
    overrides += ["train.max_steps=1", "metrics=none", f"tracking={tracking}"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
    return timed_sweep([*overrides, f"hydra.sweep.dir={folder}/sweep", *launcher], folder, env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--tracking", default="mlflow", choices=["mlflow", "none"])
    args = parser.parse_args()
    settings = {
        "basic (jobs in the sweep's process)": [],
        "joblib, 1 worker (a job per worker process)": [
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=1",
        ],
    }
    print(f"fixed cost of a sweep job, tracking={args.tracking}, 1-step dcgan32 jobs")
    print("| launcher | sweep of 1 job, s | sweep of N jobs, s | per extra job, s | start+end, s |")
    print("|---|---|---|---|---|")
    for name, launcher in settings.items():
        with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
            single = sweep_seconds(1, launcher, args.tracking, one)
            several = sweep_seconds(args.jobs, launcher, args.tracking, many)
        per_job = (several - single) / (args.jobs - 1)
        print(
            f"| {name} | {single:.1f} | {several:.1f} (N={args.jobs}) | {per_job:.2f} "
            f"| {single - per_job:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
