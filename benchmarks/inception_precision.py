"""Are bf16 Inception features good enough for FID? The FID between two disjoint sets of real
images (the real-data floor a run's FID is read against), with the features computed in fp32 and
in bf16 autocast by the same network, and each precision's feature throughput.

Real images, not generated ones: their FID is small, so a precision error shows up as a large
relative change (the hardest case). The target for metrics.precision=bf16: within 0.5%.

    python benchmarks/inception_precision.py --data ../shared/data/anime-faces-64.zip --num 1000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gan_lab.config import DataConfig
from gan_lab.data import load_images
from gan_lab.devices import native_bf16, resolve_device
from gan_lab.metrics import scores
from gan_lab.metrics.evaluator import extract
from gan_lab.metrics.inception import find_weights, shared_network


def real_images(path: Path, count: int, size: int) -> torch.Tensor:
    """The first `count` images of a folder or ZIP at `size`x`size`, through gan_lab's own data
    set loading (data=folder, decoded once into its cache), as uint8 NCHW."""
    data = DataConfig(name="folder", path=str(path), size=size, channels=3, limit=count)
    images = load_images(data, (3, size, size)).images
    if len(images) < count:
        raise SystemExit(f"{path} holds {len(images)} images, fewer than --num x 2 = {count}")
    return images


def features(network, images, device, batch_size: int, precision: str):
    start = time.perf_counter()
    batches = images.split(batch_size)
    result, _ = extract(network, batches, device, len(images), precision, precision)
    return result.double(), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="a folder or ZIP of real images")
    parser.add_argument("--num", type=int, default=1000, help="images in each of the two sets")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    capability = torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else "cuda"
    print(f"device {device}, kernels {capability}, native bf16: {native_bf16(device)}")
    if not native_bf16(device):
        print("bf16 is emulated on this device (far slower): nothing to decide here")
        return
    images = real_images(args.data, 2 * args.num, args.size)
    first, second = images[: args.num], images[args.num :]
    network = shared_network(find_weights(None, Path.home() / ".cache" / "gan_lab"), str(device))
    extract(network, [first[:32]], device, 32, "warm-up")
    rows = {}
    for precision in ("fp32", "bf16"):
        a, seconds_a = features(network, first, device, args.batch_size, precision)
        b, seconds_b = features(network, second, device, args.batch_size, precision)
        fid = scores.fid(scores.statistics(a), scores.statistics(b))
        rows[precision] = (fid, 2 * args.num / (seconds_a + seconds_b))
    print(
        f"FID between two sets of {args.num} real {args.size}x{args.size} images "
        f"of {args.data.name}"
    )
    print("| precision | FID | relative to fp32 | Inception images/s | speed |")
    print("|---|---|---|---|---|")
    fid32, speed32 = rows["fp32"]
    for precision, (fid, speed) in rows.items():
        deviation = (fid - fid32) / fid32
        print(
            f"| {precision} | {fid:.4f} | {deviation:+.3%} | {speed:.1f} | {speed / speed32:.2f}x |"
        )


if __name__ == "__main__":
    main()
