"""Crash points: a CPU run killed with SIGKILL at 20 places, each resumed with train.resume=auto,
each checked against one uninterrupted run.

    python benchmarks/crash_points.py [--out /tmp/crash_points] [--only NAME ...]

A point is a function of gan_lab, MLflow or torch and the call of it to die in: the harness
starts `python benchmarks/crash_points.py --child POINT -- <overrides>`, which wraps that function
so that its Nth call kills the process (before, inside or after the real work, as the point
says) and then runs gan_lab's own command line. gan_lab itself has no crash hooks. The killed run
is then resumed with the plain command line and `train.resume=auto` in the same run folder.

Each case passes when
- the kill happened where it was meant to (the child died by SIGKILL),
- every tensor and value of the final last.pt and of best.pt equals the uninterrupted run's,
- its MLflow experiment holds one run, FINISHED, whose every metric has the uninterrupted run's
  steps, once each, with the same values (timings aside), whose sample grids cover the same
  epochs, with the final files, and with one logged model, READY.

The model is tiny, on the synthetic data, scored by the real Inception network on 64 samples
every 2 of 4 epochs: 96 to 389 s a case (kill and resume), 74 minutes for all 20, measured on
2 CPU cores shared with other work.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN = [
    "model=dcgan32",
    "model.generator.projection.channels=16",
    "model.generator.filters=[8,8]",
    "model.discriminator.filters=[8,8,16]",
    "model.discriminator.dropout=0.2",  # the global RNG matters for exact resumption
    "data=synthetic",
    "data.num_images=96",
    "train.batch_size=16",  # 6 steps an epoch
    "train.epochs=4",
    "train.keep_checkpoints=true",
    "train.progress=false",
    "metrics=standard",
    "metrics.every=2",
    "metrics.num_samples=64",
    "metrics.kid_subset_size=32",
    "tracking=mlflow",
    "tracking.log_every=2",
    "tracking.log_model=true",
    "tracking.log_checkpoint=true",
]
TIMINGS = ("images_per_sec",)  # metrics that measure the clock, not the run


@dataclass(frozen=True)
class Point:
    name: str
    target: str  # module:attribute, a function or method to wrap
    call: int  # die in this call of it (1: the first)
    when: str  # "before" the real call, "after" it, or "inside": a half-written file (torch.save)
    where: str  # what the run was doing, for the table
    match: str = ""  # count only the calls whose arguments name this (a file name)


POINTS = [
    # start-up
    Point("data", "gan_lab.training.parts:load_images", 1, "before", "start-up: loading the data"),
    Point(
        "tracker",
        "gan_lab.training.run:Run.open_tracker",
        1,
        "after",
        "start-up: MLflow run opened",
    ),
    Point(
        "metrics",
        "gan_lab.training.run:prepare_metrics",
        1,
        "after",
        "start-up: reference scored",
    ),
    Point("grid0", "gan_lab.training.run:log_grid", 1, "before", "start-up: first sample grid"),
    # mid-epoch
    Point("step1", "gan_lab.training.loop:TrainStep.__call__", 1, "before", "epoch 1, step 1"),
    Point("step4", "gan_lab.training.loop:TrainStep.__call__", 4, "after", "epoch 1, step 4"),
    Point("step9", "gan_lab.training.loop:TrainStep.__call__", 9, "after", "epoch 2, step 3"),
    Point("step20", "gan_lab.training.loop:TrainStep.__call__", 20, "after", "epoch 4, step 2"),
    # checkpoint writes: last.pt (epoch 1), best.pt and last.pt (epoch 2), the rename
    Point("save1", "torch:save", 1, "inside", "writing last.pt, epoch 1", ".last.pt."),
    Point("save2", "torch:save", 1, "inside", "writing best.pt, epoch 2", ".best.pt."),
    Point("save3", "torch:save", 2, "inside", "writing last.pt, epoch 2", ".last.pt."),
    Point("rename", "os:replace", 2, "before", "renaming last.pt, epoch 2", "last.pt"),
    # evaluations
    Point("eval2", "gan_lab.metrics.evaluator:Evaluator.score", 1, "before", "scoring, epoch 2"),
    Point("eval4", "gan_lab.metrics.evaluator:Evaluator.evaluate", 2, "before", "scoring, ep. 4"),
    Point("scores", "gan_lab.training.run:Run.evaluate", 1, "after", "scores logged, epoch 2"),
    # the end of the run: files, the model, the outcome
    Point("final", "gan_lab.training.run:upload_final_files", 1, "before", "final uploads"),
    Point("curves", "gan_lab.training.run:upload_final_files", 1, "after", "after final uploads"),
    Point("model", "mlflow.pytorch:log_model", 1, "before", "logging the model"),
    Point("model_saved", "mlflow.pytorch:save_model", 1, "after", "model saved, not uploaded"),
    Point("outcome", "gan_lab.tracking.mlflow_tracker:MlflowTracker.finish", 1, "before", "end"),
]


# -- the child: a gan_lab run that dies at one point -------------------------------------------


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(point: Point) -> None:
    import importlib

    module_name, attribute = point.target.split(":")
    owner = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = 0

    def wrapped(*args, **kwargs):
        nonlocal calls
        if point.match not in repr(args):
            return original(*args, **kwargs)
        calls += 1
        if calls != point.call:
            return original(*args, **kwargs)
        if point.when == "before":
            _die()
        if point.when == "inside":  # torch.save(state, path): half the bytes, then death
            buffer = io.BytesIO()
            original(args[0], buffer)
            Path(args[1]).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            _die()
        result = original(*args, **kwargs)
        _die()
        return result

    setattr(owner, name, wrapped)  # a method too: a function on a class binds `self`


def child(point_name: str, overrides: list[str]) -> None:
    _wrap(next(p for p in POINTS if p.name == point_name))
    from gan_lab.__main__ import main

    sys.argv = ["gan_lab", *overrides]
    main()


# -- the harness --------------------------------------------------------------------------------


def gan_lab(args: list[str], cwd: Path, point: str | None = None) -> subprocess.CompletedProcess:
    if point:
        command = [sys.executable, __file__, "--child", point, "--", *args]
    else:
        command = [sys.executable, "-m", "gan_lab", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)


def record(store: str, experiment: str) -> dict:
    """What MLflow holds for the experiment's runs: statuses, metric steps and values, image
    steps, artifacts and logged models."""
    from mlflow import MlflowClient

    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    out = {"runs": [r.info.status for r in runs], "metrics": {}, "images": Counter()}
    if len(runs) != 1:
        return out
    run = runs[0]
    out["run_id"] = run.info.run_id
    for key in run.data.metrics:
        history = client.get_metric_history(run.info.run_id, key)
        out["metrics"][key] = sorted((m.step, m.value) for m in history)
    from gan_lab.tracking.stored_run import image_files

    names = [Path(item.path).name for item in client.list_artifacts(run.info.run_id, "images")]
    out["incomplete_images"] = []
    for image, endings in image_files(names).items():  # every image: its PNG and its thumbnail
        if endings == {".png", "+compressed.webp"}:
            out["images"][int(image.partition("+step+")[2].split("+")[0])] += 1
        else:
            out["incomplete_images"].append(image)
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    files |= {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    out["files"] = files
    models = client.search_logged_models([found.experiment_id])
    out["models"] = [m.status.name if hasattr(m.status, "name") else str(m.status) for m in models]
    return out


def compare_mlflow(got: dict, want: dict) -> list[str]:
    problems = []
    if got["runs"] != ["FINISHED"]:
        return [f"runs {got['runs']} (one FINISHED run wanted)"]
    for key, points in want["metrics"].items():
        steps = [s for s, _ in got["metrics"].get(key, [])]
        if steps != [s for s, _ in points]:
            problems.append(f"{key} steps {steps} != {[s for s, _ in points]}")
        elif key not in TIMINGS and got["metrics"][key] != points:
            problems.append(f"{key} values differ")
    if extra := set(got["metrics"]) - set(want["metrics"]):
        problems.append(f"metrics not in the uninterrupted run: {sorted(extra)}")
    if got.get("incomplete_images"):
        problems.append(f"images without all their files: {got['incomplete_images']}")
    if got["images"] != want["images"]:
        problems.append(f"grids at steps {dict(got['images'])} != {dict(want['images'])}")
    if missing := want["files"] - got["files"]:
        problems.append(f"files missing: {sorted(missing)}")
    if got["models"] != ["READY"]:
        problems.append(f"logged models {got['models']} (one READY wanted)")
    return problems


def compare_checkpoints(folder: Path, reference: Path) -> list[str]:
    import torch

    from tests.helpers.checkpoints import assert_same_checkpoint

    problems = []
    for name in ("last.pt", "best.pt", "epoch_0004.pt"):
        try:
            a = torch.load(reference / name, weights_only=True)
            b = torch.load(folder / name, weights_only=True)
            for state in (a, b):  # each run's own MLflow run: checked against the store below
                state["progress"]["tracking_run_id"] = None
            assert_same_checkpoint(a, b)
        except (AssertionError, FileNotFoundError, RuntimeError) as error:
            problems.append(f"{name}: {str(error).splitlines()[0] if str(error) else error}")
    if stale := list(folder.glob(".*.tmp")):
        problems.append(f"temporary files left: {[p.name for p in stale]}")
    return problems


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gan_lab_crash_points"))
    parser.add_argument("--only", nargs="*", help="point names (default: all 20)")
    args = parser.parse_args()
    points = [p for p in POINTS if not args.only or p.name in args.only]
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    store = f"sqlite:///{args.out / 'mlflow.db'}"
    env_args = [f"tracking.uri={store}", f"data.cache_dir={args.out / 'cache'}"]

    start = time.perf_counter()
    reference = args.out / "uninterrupted"
    done = gan_lab(
        [*RUN, *env_args, "tracking.experiment=uninterrupted", f"hydra.run.dir={reference}"],
        args.out,
    )
    if done.returncode:
        print(done.stderr[-3000:])
        return 1
    want = record(store, "uninterrupted")
    print(
        f"uninterrupted run: {time.perf_counter() - start:.0f} s, metrics {sorted(want['metrics'])}"
    )
    print(f"  grids at epochs {sorted(want['images'])}, models {want['models']}\n")
    print(f"{'point':<12} {'where':<30} {'killed':>6} {'resumed':>7}  result")
    failures = 0
    for point in points:
        folder = args.out / point.name
        case = [*RUN, *env_args, f"tracking.experiment={point.name}", f"hydra.run.dir={folder}"]
        started = time.perf_counter()
        killed = gan_lab(case, args.out, point.name)
        died = killed.returncode == -signal.SIGKILL
        resumed = gan_lab([*case, "train.resume=auto"], args.out)
        problems = [] if died else [f"not killed (exit {killed.returncode})"]
        if resumed.returncode:
            problems.append(f"resume exit {resumed.returncode}: {resumed.stderr[-300:]}")
        else:
            problems += compare_checkpoints(folder / "checkpoints", reference / "checkpoints")
            got = record(store, point.name)
            problems += compare_mlflow(got, want)
            last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
            if last["progress"]["tracking_run_id"] != got.get("run_id"):
                problems.append("last.pt names another MLflow run")
        failures += bool(problems)
        seconds = time.perf_counter() - started
        result = "ok: bit-identical, one run, one model" if not problems else "; ".join(problems)
        print(
            f"{point.name:<12} {point.where:<30} {'yes' if died else 'NO':>6} "
            f"{resumed.returncode:>7}  {result} ({seconds:.0f} s)",
            flush=True,
        )
    print(f"\n{len(points) - failures} of {len(points)} points resumed exactly")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[4:])
    else:
        sys.exit(main())
