"""A run's held-out images and as many of its training images, as PNG folders: the two sides of
the real-data floor, measured as a generator is (`gan-lab fid train/ held_out/ --size 32`).

The split is the run's own (gan_lab.training.parts.load_data: data.holdout, seeded by
data.seed); the training images written are a seeded draw of the same count, never held-out ones.

    python benchmarks/export_split.py out/ data=folder data.path=../shared/data/anime-faces-64.zip \
        data.holdout=1000 model=dcgan32
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_lab.config.compose import compose  # noqa: E402
from gan_lab.training.parts import load_data  # noqa: E402


def write(images: torch.Tensor, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        pixels = image.permute(1, 2, 0).squeeze(-1).numpy()
        Image.fromarray(pixels).save(folder / f"{index:05d}.png")


def main() -> None:
    out, overrides = Path(sys.argv[1]), sys.argv[2:]
    config = compose(*overrides, "tracking=none")
    data = load_data(config)
    if data.held_out is None:
        raise SystemExit("give data.holdout=N: the floor is the held-out images against others")
    count = len(data.held_out.images)
    order = torch.randperm(len(data.train.images), generator=torch.Generator().manual_seed(0))
    write(data.train.images[order[:count]], out / "train")
    write(data.held_out.images, out / "held_out")
    print(f"{count} training and {count} held-out images in {out}/train and {out}/held_out")


if __name__ == "__main__":
    main()
