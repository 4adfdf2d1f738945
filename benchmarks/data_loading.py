"""Serving training batches: gan_lab's decoded-once cache against torchvision's ImageFolder.

On the same folder of images, with the same preprocessing (center crop, resize to --size,
scaled to [-1, 1]) and batch size, it times
  - building gan_lab's cache (decode everything once), and opening it again (memory map);
  - batches per second from gan_lab's BatchSource on the CPU;
  - batches per second from ImageFolder + DataLoader (2 workers, shuffled), decoding every epoch,
and prints the ratio. Without --folder it writes 4,096 synthetic PNG images to a temporary folder.

    python benchmarks/data_loading.py                                   # synthetic PNG files
    python -m zipfile -e ../shared/data/anime-faces-64.zip /tmp/anime
    python benchmarks/data_loading.py --folder /tmp/anime --size 64     # real JPEG files
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from gan_lab.config import DataConfig
from gan_lab.data import load_images
from gan_lab.data.batches import BatchSource
from gan_lab.data.synthetic import synthetic_images


def write_synthetic_folder(folder: Path, count: int, size: int) -> None:
    images = synthetic_images(count, size, 3, seed=0)
    (folder / "shapes").mkdir(parents=True)  # ImageFolder needs one class folder
    for index, image in enumerate(images):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / "shapes" / f"{index:05d}.png")


def images_per_second(batches, count: int, batch_size: int) -> float:
    iterator = iter(batches)
    next(iterator)  # start-up (workers, first decode) is left out of the timing
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    return count * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--folder", type=Path, help="a folder of images (with or without class folders)"
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder
        if folder is None:
            folder = Path(tmp) / "images"
            write_synthetic_folder(folder, 4096, args.size)
        data = DataConfig(
            name="folder",
            path=str(folder),
            size=args.size,
            channels=3,
            cache_dir=str(Path(tmp) / "cache"),
            workers=2,
        )
        shape = (3, args.size, args.size)

        start = time.perf_counter()
        images = load_images(data, shape).images
        build = time.perf_counter() - start
        start = time.perf_counter()
        images = load_images(data, shape).images
        reopen = time.perf_counter() - start

        source = BatchSource(images, args.batch_size, torch.device("cpu"), (-1.0, 1.0), seed=0)
        cached = images_per_second(
            (b for epoch in range(10**6) for b in source.epoch(epoch)),
            args.batches,
            args.batch_size,
        )
        transform = transforms.Compose(
            [
                transforms.Resize(args.size),
                transforms.CenterCrop(args.size),
                transforms.ToTensor(),
                transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            ]
        )
        loader = DataLoader(
            datasets.ImageFolder(str(folder), transform=transform),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=2,
            drop_last=True,
        )
        plain = images_per_second(
            (b for _ in range(10**6) for b, _ in loader), args.batches, args.batch_size
        )
    where = args.folder or "synthetic PNG files"
    print(f"{len(images)} images of {args.size}x{args.size} from {where}")
    speed = len(images) / build
    print(f"cache: built in {build:.1f} s ({speed:.0f} images/s), reopened in {reopen:.3f} s")
    print(f"gan_lab BatchSource (cached):        {cached:10.0f} images/s")
    print(f"ImageFolder + DataLoader, 2 workers: {plain:10.0f} images/s")
    print(f"ratio: {cached / plain:.1f}x")


if __name__ == "__main__":
    main()
