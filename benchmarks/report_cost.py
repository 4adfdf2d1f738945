"""Report cost: `gan-lab report` on sweeps of 10, 100 and 1,000 runs, in seconds per run.

Each sweep is made directly through MLflow's client, as gan_lab's tracker would leave it: a
parent run and N finished children, each with short fake loss and FID histories (30 logged
steps, 3 epochs), the params a sweep varies, its run-name tag and a small final sample grid
(64x64). The same sweep is made in a sqlite store and behind a local `mlflow server` on
127.0.0.1 (over sqlite of its own, with `mlflow server`'s default of 4 worker processes, or
--workers); the report (the function `gan-lab report` calls) is built
cold (a new folder) and warm (again, the grids already fetched). The target is under 60 s for
1,000 runs against a local server.

    python benchmarks/report_cost.py --runs 10 100 [1000] [--workers 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_lab import tags  # noqa: E402
from gan_lab.report import report  # noqa: E402
from tests.helpers.servers import free_port, mlflow_server  # noqa: E402

LOSSES = ("g_loss", "d_loss_real", "d_loss_fake")


def make_sweep(client: MlflowClient, name: str, runs: int, grid: Path) -> None:
    """A sweep of `runs` jobs over optim.lr and train.batch_size in the experiment `name`."""
    experiment = client.create_experiment(name)
    parent = client.create_run(
        experiment,
        run_name="sweep lr, batch_size",
        tags={
            tags.KIND: "sweep",
            tags.SWEPT: "optim.lr,train.batch_size",
            tags.SWEEP_OVERRIDES: "data.num_images=256 optim.lr=1e-4,2e-4 train.batch_size=16,32",
        },
    ).info.run_id

    def job(number: int) -> None:
        rng = np.random.default_rng(number)
        values = {"optim.lr": f"{(number % 10 + 1) * 1e-4:.4g}", "train.batch_size": "16"}
        run_id = client.create_run(
            experiment,
            run_name=f"job {number}",
            tags={
                tags.PARENT_RUN_ID: parent,
                tags.JOB: str(number),
                tags.SWEPT_VALUES: json.dumps(values),
            },
        ).info.run_id
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(rng.normal(1, 0.3)), now, step)
            for step in range(0, 300, 10)
            for key in LOSSES
        ]
        fids = rng.uniform(50, 300, 3)
        metrics += [Metric("fid", float(f), now, epoch) for epoch, f in enumerate(fids, 1)]
        metrics += [Metric("best_fid", float(fids.min()), now, 3), Metric("kid", 0.1, now, 3)]
        params = [Param(k, v) for k, v in {**values, "model.name": "dcgan32"}.items()]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.log_artifact(run_id, str(grid))
        client.set_terminated(run_id)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(job, range(runs)))
    client.set_terminated(parent)


def measure(store: str, runs: int, folder: Path, grid: Path) -> tuple[float, float, float]:
    """Seconds to make the sweep, and to report it cold and warm."""
    client = MlflowClient(store)
    name = f"cost{runs}"
    start = time.perf_counter()
    make_sweep(client, name, runs, grid)
    made = time.perf_counter() - start
    out = folder / f"report{runs}"
    timings = []
    for _ in range(2):  # cold, then warm
        start = time.perf_counter()
        with contextlib.redirect_stdout(None):
            report(name, str(out), store)
        timings.append(time.perf_counter() - start)
    return made, *timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--workers", type=int, default=4, help="the server's worker processes")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # a "View run" line per run ended
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        grid = folder / "final.png"
        noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(grid)
        stores = {"sqlite": f"sqlite:///{folder / 'direct.db'}"}
        backend, port = f"sqlite:///{folder / 'server.db'}", free_port()
        with mlflow_server(backend, folder / "art", port, args.workers) as url:
            stores[f"mlflow server, {args.workers} workers"] = url
            print(
                "| store | runs | make (s) | report cold (s) | per run (s) | warm (s) | per run |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|")
            for runs in args.runs:
                for kind, store in stores.items():
                    made, cold, warm = measure(store, runs, folder / kind.replace(" ", "_"), grid)
                    print(
                        f"| {kind} | {runs} | {made:.1f} | {cold:.1f} | {cold / runs:.3f} | "
                        f"{warm:.1f} | {warm / runs:.3f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
