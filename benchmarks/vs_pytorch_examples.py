"""gan_lab against the real pytorch/examples DCGAN program, each as a whole process.

Both train the same architecture (gan_lab's `dcgan64` is pytorch/examples' 64x64 DCGAN) on the
same image folder, batch size and number of steps (one epoch of N images, N a multiple of the
batch), from the command to the exit. pytorch/examples' `dcgan/main.py` is not part of gan_lab:
give its path (the unchanged file with its licence is in ../shared/peers/). The folder must hold
one class sub-folder of images, as torchvision's ImageFolder wants it:

    python benchmarks/vs_pytorch_examples.py --peer ../shared/peers/dcgan_main.py \\
        --zip ../shared/data/anime-faces-64.zip --images 3200

It prints each program's images/s and their ratio (gan_lab with a cold data cache, as a first
run, and with a warm one), gan_lab's time from the command to its first training step, and
gan_lab's achieved FLOP/s per training step against this machine's matmul peak, which it
measures itself (a 4096 x 4096 matmul in fp32 and bf16).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from gan_lab.config.compose import compose
from gan_lab.data.batches import BatchSource
from gan_lab.data.synthetic import synthetic_images
from gan_lab.devices import native_bf16, resolve_precision
from gan_lab.models.gan import build_gan
from gan_lab.sampling import Latents
from gan_lab.training.loop import TrainStep

FIRST_STEP = "training from step"  # gan_lab's log line just before its loop starts


def image_folder(source: Path | None, count: int, root: Path) -> Path:
    """`count` images of a ZIP file (or folder) as <root>/images/<n>.jpg, as ImageFolder reads;
    synthetic 64x64 images without a source."""
    target = root / "images"
    target.mkdir(parents=True)
    if source is None:
        from PIL import Image

        for index, pixels in enumerate(synthetic_images(count, 64, 3, seed=0)):
            Image.fromarray(pixels.transpose(1, 2, 0)).save(target / f"{index:05d}.png")
    elif source.is_dir():
        names = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
        for index, path in enumerate(names[:count]):
            (target / f"{index:05d}{path.suffix}").write_bytes(path.read_bytes())
    else:
        with zipfile.ZipFile(source) as archive:
            names = sorted(n for n in archive.namelist() if n.lower().endswith((".jpg", ".png")))
            for index, name in enumerate(names[:count]):
                (target / f"{index:05d}{Path(name).suffix}").write_bytes(archive.read(name))
    found = len(list(target.iterdir()))
    if found < count:
        raise SystemExit(f"{source} holds {found} images, fewer than --images {count}")
    return root


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float | None]:
    """Wall seconds of a whole process, and when it printed FIRST_STEP (None: never)."""
    start = time.perf_counter()
    first = None
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout:
            if first is None and FIRST_STEP in line:
                first = time.perf_counter() - start
        if process.wait():
            raise SystemExit(f"{command[:3]} failed with status {process.returncode}")
    return time.perf_counter() - start, first


def matmul_peak(dtype: torch.dtype, size: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of this machine's best square matmul in `dtype`."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def step_flops(overrides: list[str], steps: int, device: torch.device) -> tuple[float, float]:
    """FLOPs of one gan_lab training step (counted by PyTorch's FlopCounterMode) and the
    seconds a step takes, in this process, on `device`."""
    config = compose(*overrides)
    gan = build_gan(config, device)
    shape = gan.generator.output_shape
    images = torch.from_numpy(synthetic_images(config.train.batch_size * 4, shape[1], shape[0], 0))
    batches = BatchSource(images, config.train.batch_size, device, gan.generator.output_range, 0)
    latents = Latents(config.model.latent_dim, config.model.latent_distribution, device, 0)
    train_step = TrainStep.of(config, resolve_precision(config.train.precision, device), None)
    real = next(batches.epoch(0))
    with FlopCounterMode(display=False) as counter:
        train_step(gan, real, latents, 1)
    flops = counter.get_total_flops()
    for _ in range(2):
        train_step(gan, real, latents, 1)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(gan, real, latents, 1)
    _sync(device)
    return flops, (time.perf_counter() - start) / steps


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} CPU threads ({torch.backends.cpu.get_cpu_capability()})"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peer", required=True, help="pytorch/examples dcgan/main.py")
    parser.add_argument("--zip", type=Path, help="a ZIP file or folder of 64x64 images")
    parser.add_argument("--images", type=int, default=3200, help="a multiple of the batch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gan-lab", nargs="*", default=[], help="more gan_lab overrides")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the peer's --accel)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.images % args.batch_size:
        raise SystemExit("--images must be a multiple of --batch-size (the same steps for both)")
    steps = args.images // args.batch_size
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = image_folder(args.zip, args.images, tmp / "data")
        peer = [sys.executable, str(Path(args.peer).resolve()), "--dataset", "folder"]
        peer += ["--dataroot", str(folder), "--niter", "1", "--workers", "2", "--manualSeed", "0"]
        peer += ["--batchSize", str(args.batch_size), "--outf", str(tmp / "peer")]
        peer += ["--accel"] if device.type == "cuda" else []
        ours = [sys.executable, "-m", "gan_lab", "model=dcgan64", "data=folder"]
        ours += [f"data.path={folder}", "data.size=64", f"data.cache_dir={tmp / 'cache'}"]
        ours += [f"train.batch_size={args.batch_size}", "train.epochs=1", "tracking=none"]
        ours += ["metrics=none", "train.progress=false", f"train.device={args.device}"]
        ours += args.gan_lab
        peer_s, _ = timed(peer, tmp, env)
        cold_s, cold_first = timed([*ours, f"hydra.run.dir={tmp / 'cold'}"], tmp, env)
        warm_s, warm_first = timed([*ours, f"hydra.run.dir={tmp / 'warm'}"], tmp, env)
    print(
        f"dcgan64, {args.images} images of {args.zip or 'synthetic data'}, batch "
        f"{args.batch_size}, {steps} steps, whole processes on {_device_name(device)}"
    )
    print(f"{'program':<44}{'seconds':>9}{'images/s':>10}{'ratio':>8}")
    rows = [
        ("pytorch/examples dcgan/main.py", peer_s),
        (f"gan_lab, first run (decodes into its cache) {' '.join(args.gan_lab)}", cold_s),
        ("gan_lab, cache warm", warm_s),
    ]
    for name, seconds in rows:
        print(f"{name:<44}{seconds:>9.1f}{args.images / seconds:>10.1f}{peer_s / seconds:>8.2f}")
    print(f"gan_lab, command to first step: {cold_first:.1f} s cold, {warm_first:.1f} s warm")
    overrides = ["model=dcgan64", f"train.batch_size={args.batch_size}", *args.gan_lab]
    flops, seconds = step_flops(overrides, steps=5, device=device)
    precision = resolve_precision(compose(*overrides).train.precision, device)
    achieved = flops / seconds
    if device.type == "cuda":
        print(
            f"gan_lab training step ({precision}): {flops / 1e9:.1f} GFLOP in "
            f"{seconds * 1e3:.1f} ms = {achieved / 1e12:.2f} TFLOP/s"
        )
        return
    fp32 = matmul_peak(torch.float32)
    peaks = f"matmul peak {fp32 / 1e9:.0f} GFLOP/s fp32 ({achieved / fp32:.0%})"
    if native_bf16(torch.device("cpu")):  # elsewhere bf16 matmuls are emulated: minutes each
        bf16 = matmul_peak(torch.bfloat16)
        peaks += f", {bf16 / 1e9:.0f} GFLOP/s bf16 ({achieved / bf16:.0%})"
    else:
        peaks += "; this CPU has no native bf16"
    print(
        f"gan_lab training step ({precision}): {flops / 1e9:.1f} GFLOP in {seconds * 1e3:.0f} ms = "
        f"{achieved / 1e9:.1f} GFLOP/s; {peaks}"
    )


if __name__ == "__main__":
    main()
