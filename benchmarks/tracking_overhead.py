"""Logging overhead: training images/s with tracking=mlflow against tracking=none.

The same model, data and steps run twice in this process, once logging to a fresh MLflow sqlite
store (asynchronous metric logging every `log_every` steps) and once to the run folder's CSV.
Only the training loop is timed; the end-of-run uploads (checkpoint, model) are not.

    python benchmarks/tracking_overhead.py --model dcgan32 --steps 300 --log-every 10

With `--rates 10 100 1000` it measures instead what logging costs at that many logged steps per
second: a stand-in step of matrix products calibrated to 1/rate seconds, then the loop's seven
values logged through tracking=none and tracking=mlflow, against the same steps logging nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gan_lab.config.compose import compose
from gan_lab.data import image_shape, load_images
from gan_lab.data.batches import BatchSource
from gan_lab.devices import resolve_device
from gan_lab.models.gan import build_gan
from gan_lab.outcome import Outcome, Status
from gan_lab.sampling import Latents
from gan_lab.tracking import RunInfo, open_tracker
from gan_lab.training.checkpoint import Progress
from gan_lab.training.loop import LoopSettings, Training, TrainStep, fit


def timed_run(overrides: list[str], folder: Path, steps: int) -> tuple[float, float]:
    """Images/s of the training loop, and the seconds that ending the run takes."""
    config = compose(*overrides)
    device = resolve_device(config.train.device)
    torch.manual_seed(0)
    gan = build_gan(config, device)
    images = load_images(config.data, image_shape(config.data, gan.generator.output_shape)).images
    batches = BatchSource(images, config.train.batch_size, device, gan.generator.output_range, 0)
    latents = Latents(config.model.latent_dim, "normal", device, 0)
    tracker = open_tracker(config.tracking, folder, RunInfo(name="benchmark"))
    settings = LoopSettings(10**6, steps, config.tracking.log_every, progress=False)
    start = time.perf_counter()
    step = TrainStep.of(config, "fp32", None)
    fit(Training(gan, batches, latents, step, settings), Progress(), tracker)
    loop = time.perf_counter() - start
    tracker.finish(Outcome(Status.FINISHED))  # MLflow writes out its asynchronous queue here
    return steps * config.train.batch_size / loop, time.perf_counter() - start - loop


def calibrated_work(seconds: float):
    """A function of matrix products that takes about `seconds` on this machine."""
    a = torch.randn(192, 192)
    for _ in range(50):  # warm-up: the thread pool, the caches
        a @ a
    start, reps = time.perf_counter(), 500
    for _ in range(reps):
        a @ a
    one = (time.perf_counter() - start) / reps
    count = max(1, round(seconds / one))

    def work() -> None:
        for _ in range(count):
            a @ a

    return work


def logged_steps_seconds(tracker, work, steps: int) -> float:
    values = dict.fromkeys(("g_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake"), 0.5)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        work()
        if tracker is not None:
            tracker.log_metrics({**values, "lr_g": 2e-4, "lr_d": 2e-4}, step)
    return time.perf_counter() - start


def rate_overhead(rates: list[int], seconds: float, repeats: int) -> None:
    from gan_lab.config import TrackingConfig

    print(f"logging at N steps/s: {seconds:.0f} s of stand-in steps each, median of {repeats}")
    print(
        "| logged steps/s | no logging, s | tracking=none, s | tracking=mlflow, s | mlflow/none |"
    )
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(folder)
        store = f"sqlite:///{folder / 'mlflow.db'}"
        for rate in rates:
            work, steps = calibrated_work(1 / rate), round(rate * seconds)
            times: dict[str, list[float]] = {"nothing": [], "none": [], "mlflow": []}
            for repeat in range(repeats):  # alternating, so drifts of the machine hit all three
                times["nothing"].append(logged_steps_seconds(None, work, steps))
                for name, uri in (("none", None), ("mlflow", store)):
                    cfg = TrackingConfig(name=name, uri=uri, experiment="rates")
                    run_dir = folder / f"{name}-{rate}-{repeat}"
                    tracker = open_tracker(cfg, run_dir, RunInfo(name=f"{rate} steps/s"))
                    times[name].append(logged_steps_seconds(tracker, work, steps))
                    tracker.finish(Outcome(Status.FINISHED))
            med = {k: statistics.median(v) for k, v in times.items()}
            overhead = med["mlflow"] / med["none"] - 1
            print(
                f"| {rate} | {med['nothing']:.2f} | {med['none']:.2f} | {med['mlflow']:.2f} "
                f"| {overhead:+.1%} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=int, nargs="*", help="logged steps per second")
    parser.add_argument("--seconds", type=float, default=5, help="per rate and tracker (--rates)")
    parser.add_argument("--model", default="dcgan32")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.rates:
        rate_overhead(args.rates, args.seconds, args.repeats)
        return
    base = [
        f"model={args.model}",
        f"train.batch_size={args.batch_size}",
        f"tracking.log_every={args.log_every}",
    ]
    none, tracked, ends = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(folder)  # a new sqlite store keeps its artifacts in ./mlruns
        store = f"sqlite:///{folder / 'mlflow.db'}"
        timed_run([*base, "tracking=none"], folder / "warmup", 20)
        for repeat in range(args.repeats):  # alternate, so drifts of the machine hit both
            none.append(
                timed_run([*base, "tracking=none"], folder / f"none{repeat}", args.steps)[0]
            )
            speed, end = timed_run(
                [*base, "tracking=mlflow", f"tracking.uri={store}"], folder, args.steps
            )
            tracked.append(speed)
            ends.append(end)
    none_speed, tracked_speed = statistics.median(none), statistics.median(tracked)
    ratio = tracked_speed / none_speed
    print(
        f"{args.model}, batch {args.batch_size}, {args.steps} steps, metrics every "
        f"{args.log_every} steps; median of {args.repeats}"
    )
    for name, speed, runs in (("none", none_speed, none), ("mlflow", tracked_speed, tracked)):
        shown = ", ".join(f"{v:.0f}" for v in runs)
        print(f"tracking={name + ':':8}{speed:8.1f} images/s  (runs: {shown})")
    print(
        f"ratio mlflow/none: {ratio:.3f} (overhead {100 * (1 - ratio):.1f}%); "
        f"ending an MLflow run: {statistics.median(ends):.2f} s"
    )


if __name__ == "__main__":
    main()
