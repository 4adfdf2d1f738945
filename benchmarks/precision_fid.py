"""Does bf16 training change what a run learns? FID after the same number of steps, fp32 against
bf16 autocast, three seeds each (the evidence behind train.precision=auto).

Each run trains `--steps` steps on the image folder or ZIP given, then scores its generator in
fp32 on `--num` samples against as many real images; the table shows each run's FID and wall
time, each precision's mean and standard deviation, and the gap between the means in units of
the run-to-run standard deviation.

    python benchmarks/precision_fid.py --data ../shared/data/cifar10-catdog-32.zip \\
        --classes dog --model dcgan32 --steps 3000 --num 1000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from gan_lab.config.compose import compose
from gan_lab.training.run import run


def one_run(args, precision: str, seed: int, folder: Path) -> tuple[float, float]:
    overrides = [
        f"model={args.model}",
        "data=folder",
        f"data.path={args.data}",
        f"data.size={args.size}",
        f"train.max_steps={args.steps}",
        "train.epochs=100000",
        f"train.seed={seed}",
        f"train.precision={precision}",
        "train.progress=false",
        "tracking=none",
        "metrics.every=0",
        f"metrics.num_samples={args.num}",
        "metrics.compute=[fid]",
        "train.keep_checkpoints=false",
    ]
    if args.classes:
        overrides.append(f"data.classes=[{args.classes}]")
    start = time.perf_counter()
    result = run(compose(*overrides), folder / f"{precision}-{seed}")
    if result.status != "FINISHED":
        raise SystemExit(f"{precision} seed {seed}: {result.describe()}")
    return result.metrics["fid"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--classes", default="")
    parser.add_argument("--model", default="dcgan32")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    fids: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            for seed in args.seeds:
                fid, seconds = one_run(args, precision, seed, Path(tmp))
                fids.setdefault(precision, []).append(fid)
                print(f"{precision} seed {seed}: FID {fid:7.2f} in {seconds:6.0f} s", flush=True)
    print(f"{args.model} on {args.data} {args.classes}, {args.steps} steps, FID on {args.num}")
    for precision, values in fids.items():
        mean, spread = statistics.mean(values), statistics.stdev(values)
        print(
            f"{precision}: FID {mean:.2f} +- {spread:.2f} ({', '.join(f'{v:.2f}' for v in values)})"
        )
    noise = statistics.mean(statistics.stdev(v) for v in fids.values())
    gap = statistics.mean(fids["bf16"]) - statistics.mean(fids["fp32"])
    print(f"bf16 - fp32: {gap:+.2f} FID, {abs(gap) / noise:.2f} run-to-run standard deviations")


if __name__ == "__main__":
    main()
