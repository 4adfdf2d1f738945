"""Wall time of a sweep of 8 short runs: one after another (Hydra's basic launcher) against the
Ray launcher on the same hardware, as a ratio. With GPUs it also compares one job per GPU with
four jobs packed on each GPU (hydra.launcher.ray.remote.num_gpus=0.25).

Each run trains the small dcgan32 on the synthetic data (`--epochs`, `--images`, no metrics, no
tracking), so the figures measure how the launchers place jobs, start-up included.

    python benchmarks/sweep_throughput.py                 # CPU, or the GPUs when there are some
    python benchmarks/sweep_throughput.py --epochs 3 --runs 8
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import torch


def timed_sweep(overrides: list[str], folder: str, env: dict | None = None) -> float:
    """Seconds of `python -m gan_lab -m <overrides>` as a whole process, run in `folder`; its
    error ends the benchmark. (benchmarks/job_cost.py times its sweeps with it too.)"""
    command = [sys.executable, "-m", "gan_lab", "-m", "train.progress=false", *overrides]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=folder, env=env)
    if result.returncode:
        sys.exit(result.stderr[-2000:])
    return time.perf_counter() - start


def sweep_seconds(extra: list[str], runs: int, epochs: int, images: int, folder: str) -> float:
    lrs = ",".join(f"{(i + 1) * 5e-5:.6g}" for i in range(runs))
    overrides = [f"optim.lr={lrs}", f"train.epochs={epochs}", f"data.num_images={images}"]
    overrides += ["metrics=none", "tracking=none"]
    return timed_sweep([*overrides, f"hydra.sweep.dir={folder}", *extra], folder)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=4096, help="synthetic images a run trains on")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when there is a GPU)")
    parser.add_argument("--pack", type=float, default=0.25, help="GPUs a packed job asks Ray for")
    args = parser.parse_args()
    gpus = torch.cuda.device_count() if args.device != "cpu" else 0
    device = [f"train.device={'cuda' if gpus else 'cpu'}"]
    settings = [("sequential (basic launcher)", device)]
    if gpus:
        settings.append((f"Ray, 1 job per GPU ({gpus} GPUs)", [*device, "hydra/launcher=ray"]))
        settings.append(
            (
                f"Ray, {round(1 / args.pack)} jobs per GPU",
                [*device, "hydra/launcher=ray", f"hydra.launcher.ray.remote.num_gpus={args.pack}"],
            )
        )
    else:
        cores = torch.get_num_threads()
        settings.append(
            (f"Ray, {cores} jobs at once on {cores} cores", [*device, "hydra/launcher=ray"])
        )
    where = torch.cuda.get_device_name() if gpus else f"{torch.get_num_threads()} CPU threads"
    print(
        f"{args.runs} runs of dcgan32, {args.epochs} epochs each on {args.images:,} synthetic "
        f"images, {where}"
    )
    baseline = None
    for name, extra in settings:
        with tempfile.TemporaryDirectory() as folder:
            seconds = sweep_seconds(extra, args.runs, args.epochs, args.images, folder)
        baseline = baseline or seconds
        print(
            f"{name:42} {seconds:7.1f} s   {args.runs / seconds * 60:6.1f} runs/min   "
            f"speed-up {baseline / seconds:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
