"""CIFAR-10 FID-10k against images seen, beside PyTorch-StudioGAN's DCGAN curve.

The field's protocol: FID of 10,000 generated images against 10,000 real ones (StudioGAN's logs
use the test split; gan_lab holds out 10,000 training images, a draw of the same distribution,
never trained on: experiment=cifar10_fast). A run of that experiment with per-epoch snapshots
(train.keep_checkpoints=true) is scored at the snapshot nearest each of StudioGAN's marks of
images seen (real images shown to D), at the snapshots nearest 20 and 60 minutes of training,
and at best.pt; the real-data floor (10,000 training images against the same held-out ones) is
printed beside every figure. Writes curve.json, curve.md and curve.png to --out.

    python -m gan_lab experiment=cifar10_fast data.path=../shared/data/cifar10-train-32.zip \\
        train.keep_checkpoints=true train.max_minutes=90 hydra.run.dir=runs/cifar10_fast
    python benchmarks/cifar10_curve.py runs/cifar10_fast --out benchmarks/results/cifar10_fast
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import NoReturn

import torch

from gan_lab.cli.evaluate import checkpoint_config
from gan_lab.data import cache_dir
from gan_lab.devices import native_bf16
from gan_lab.metrics.evaluator import Evaluator
from gan_lab.training import checkpoint
from gan_lab.training.parts import load_data

# PyTorch-StudioGAN, logs/CIFAR10/DCGAN-train-*.log: unconditional DCGAN, batch 64, no moving
# average, no augmentation, one GPU; FID of 10k samples against the 10k test images.
STUDIOGAN_DCGAN = {510_000: 92.6, 1_280_000: 65.3, 2_050_000: 59.9, 3_300_000: 50.6}
STUDIOGAN_BEST = (5_400_000, 49.0)
MINUTE_MARKS = (20, 60)


def snapshots(run: Path) -> list[tuple[Path, dict]]:
    """Each epoch snapshot of a run with its Progress, in training order."""
    found = []
    for path in sorted((run / "checkpoints").glob("epoch_*.pt")):
        progress = torch.load(path, map_location="cpu", weights_only=True)["progress"]
        found.append((path, progress))
    if not found:
        refuse(f"no epoch_*.pt in {run}/checkpoints: train with train.keep_checkpoints=true")
    return found


def refuse(problem: str) -> NoReturn:
    """Bad input: one line naming the problem and the fix, exit status 2."""
    print(problem, file=sys.stderr)
    raise SystemExit(2)


def nearest(found: list[tuple[Path, dict]], key) -> tuple[Path, dict]:
    return min(found, key=key)


def chosen(run: Path, batch: int, marks_only: bool = False) -> list[tuple[str, Path, dict]]:
    """(label, snapshot, progress): StudioGAN's marks reached, then (unless marks_only) the
    minute marks and best.pt."""
    found = snapshots(run)
    reached = found[-1][1]["step"] * batch
    picks = []
    for mark in STUDIOGAN_DCGAN:
        if mark <= reached * 1.05:
            path, progress = nearest(found, lambda f, m=mark: abs(f[1]["step"] * batch - m))
            picks.append((f"{mark / 1e6:.2f}M images", path, progress))
    if marks_only:
        return picks
    for minutes in MINUTE_MARKS:
        if found[-1][1]["seconds"] >= minutes * 60 * 0.98:
            path, progress = nearest(found, lambda f, m=minutes: abs(f[1]["seconds"] - m * 60))
            picks.append((f"{minutes} minutes", path, progress))
    best = run / "checkpoints" / checkpoint.BEST
    if best.is_file():
        picks.append(("best.pt", best, checkpoint.load(best)["progress"]))
    return picks


def floor(evaluator: Evaluator, config, train) -> float:
    """FID of as many training images against the held-out reference: the protocol's floor
    (scored as `gan-lab fid` scores one image set against another)."""
    own = Evaluator(config.metrics, train.images, train.key, evaluator.device,
                    cache_dir(config.data))  # fmt: skip
    return evaluator.score(own.reference.features, None)["fid"]


def studiogan_at(images: int) -> float | None:
    return STUDIOGAN_DCGAN.get(min(STUDIOGAN_DCGAN, key=lambda m: abs(m - images)))


def plot(rows: list[dict], floor_fid: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    marks = sorted(STUDIOGAN_DCGAN)
    axes.plot(
        [m / 1e6 for m in marks] + [STUDIOGAN_BEST[0] / 1e6],
        [STUDIOGAN_DCGAN[m] for m in marks] + [STUDIOGAN_BEST[1]],
        "s--",
        label="PyTorch-StudioGAN DCGAN (1 GPU, its log)",
    )
    curve = {r["images_seen"]: r for r in rows if not r["label"].startswith("best.pt")}
    ours = sorted(curve.values(), key=lambda r: r["images_seen"])
    axes.plot(
        [r["images_seen"] / 1e6 for r in ours],
        [r["fid"] for r in ours],
        "o-",
        label="gan_lab cifar10_fast (2 CPU cores)",
    )
    for r in ours:
        axes.annotate(f"{r['train_minutes']:.0f} min", (r["images_seen"] / 1e6, r["fid"]),
                      textcoords="offset points", xytext=(4, 6), fontsize=8)  # fmt: skip
    axes.axhline(floor_fid, color="grey", linestyle=":", label=f"real-data floor {floor_fid:.1f}")
    axes.set_xlabel("images seen by D (millions)")
    axes.set_ylabel("FID, 10k samples vs 10k real")
    axes.set_title("CIFAR-10, unconditional")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "curve.png", dpi=110)


def table(rows: list[dict], floor_fid: float, machine: str) -> str:
    lines = [
        f"Machine: {machine}. FID-10k: 10,000 samples against 10,000 held-out CIFAR-10 training "
        f"images; real-data floor (10,000 training images against them) {floor_fid:.2f}.",
        "",
        "| snapshot | images seen | training minutes | FID-10k | x floor | StudioGAN DCGAN |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        anchor = r["studiogan"]
        lines.append(
            f"| {r['label']} | {r['images_seen'] / 1e6:.2f}M | {r['train_minutes']:.1f} | "
            f"{r['fid']:.1f} | {r['fid'] / floor_fid:.1f}x | "
            f"{'' if anchor is None else f'{anchor:.1f}'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the run folder (its checkpoints/epoch_*.pt)")
    parser.add_argument("--num", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, help="Inception's batch (default: the CPU's)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cifar10_fast"))
    parser.add_argument(
        "--marks-only",
        action="store_true",
        help="score StudioGAN's marks alone (where gan-lab eval scored best.pt already)",
    )
    args = parser.parse_args()
    earlier = args.out / "curve.json"
    record = json.loads(earlier.read_text()) if earlier.is_file() else {"rows": []}
    run_name = str(args.run.resolve())
    if record.get("run", run_name) != run_name:  # another run's snapshots share the names
        refuse(f"{earlier} scores {record['run']}: give {args.run} an --out of its own")
    device = torch.device("cpu")
    state = checkpoint.load(args.run / "checkpoints" / checkpoint.LAST)
    metrics = {"num_samples": args.num, "batch_size": args.batch_size, "precision": "auto"}
    config = checkpoint_config(state["config"], metrics)
    data = load_data(config)
    reference = data.reference
    evaluator = Evaluator(config.metrics, reference.images, reference.key, device,
                          cache_dir(config.data))  # fmt: skip
    floor_fid = floor(evaluator, config, data.train)
    scored = {
        (r["snapshot"], r["images_seen"]): {"samples": record["samples"], **r}
        for r in record["rows"]
        if r.get("samples", record.get("samples")) == evaluator.count
    }
    print(f"real-data floor: FID {floor_fid:.2f} ({evaluator.count} vs {evaluator.count})")
    rows = []
    for label, path, progress in chosen(args.run, config.train.batch_size, args.marks_only):
        images = progress["step"] * config.train.batch_size
        if (path.name, images) in scored:  # a rerun after more training scores the new ones
            rows.append({**scored[path.name, images], "label": label})
            continue
        started = time.perf_counter()
        generator = checkpoint.generator_of(checkpoint.load(path), device)
        fid = evaluator.evaluate(generator)["fid"]
        row = {
            "label": label,
            "snapshot": path.name,
            "images_seen": images,
            "train_minutes": progress["seconds"] / 60,
            "fid": fid,
            "studiogan": studiogan_at(images) if label.endswith("images") else None,
            "eval_seconds": time.perf_counter() - started,
            "samples": evaluator.count,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        # each row kept as soon as it is scored
        write(args.out, rows, floor_fid, evaluator.count, run_name)
    print(write(args.out, rows, floor_fid, evaluator.count, run_name))


def write(out: Path, rows: list[dict], floor_fid: float, samples: int, run: str) -> str:
    """curve.json, curve.md and curve.png in `out`; returns the table."""
    bf16 = "native bf16" if native_bf16(torch.device("cpu")) else "no native bf16"
    machine = f"{platform.machine()}, {torch.get_num_threads()} CPU threads, {bf16}"
    out.mkdir(parents=True, exist_ok=True)
    record = {"run": run, "machine": machine, "floor": floor_fid, "samples": samples, "rows": rows}
    (out / "curve.json").write_text(json.dumps(record, indent=2))
    (out / "curve.md").write_text(table(rows, floor_fid, machine))
    plot(rows, floor_fid, out)
    return table(rows, floor_fid, machine)


if __name__ == "__main__":
    main()
