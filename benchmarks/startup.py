"""Start-up: seconds from the command to gan_lab's first training step, and what they go to.

Runs `python -m gan_lab train.max_steps=1` as a whole process, with warm caches (the data and the
reference statistics are built once before timing), for tracking and metrics off and on, and
prints when its log says "training from step". Then times the imports a run pays for, each in a
fresh interpreter, and the command line's help.

    python benchmarks/startup.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_STEP = "training from step"
SETTINGS = {
    "tracking=none metrics=none": ["tracking=none", "metrics=none"],
    "tracking=mlflow metrics=none": ["metrics=none"],
    "tracking=mlflow metrics=standard (the defaults)": [],
}
IMPORTS = ["torch", "torchvision", "mlflow", "torch_fidelity", "optuna", "hydra", "matplotlib"]


def to_first_step(args: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    command = [sys.executable, "-m", "gan_lab", "train.max_steps=1", "train.progress=false", *args]
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        first = None
        for line in process.stdout:
            if first is None and FIRST_STEP in line:
                first = time.perf_counter() - start
        if process.wait() or first is None:
            raise SystemExit(f"{' '.join(command)} failed")
    return first


def seconds(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "GAN_LAB_CACHE": str(Path(tmp) / "cache")}
        env.pop("MLFLOW_TRACKING_URI", None)
        to_first_step([], Path(tmp), env)  # warms the data cache, the reference, the store
        print("command to first training step (warm caches), median of", args.repeats)
        for name, overrides in SETTINGS.items():
            times = [to_first_step(overrides, Path(tmp), env) for _ in range(args.repeats)]
            print(f"  {name:48} {statistics.median(times):5.1f} s")
    print("imports, each in a fresh interpreter (python -c 'import x' minus bare python)")
    bare = seconds([sys.executable, "-c", "pass"], os.environ)
    for module in IMPORTS:
        took = seconds([sys.executable, "-c", f"import {module}"], os.environ) - bare
        print(f"  {module:48} {took:5.1f} s")
    help_s = seconds([sys.executable, "-m", "gan_lab", "--help"], os.environ)
    print(f"  {'gan-lab --help (whole process)':48} {help_s:5.1f} s")


if __name__ == "__main__":
    main()
