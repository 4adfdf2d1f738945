"""What several commands do alike: resolve the device, check the MLflow store before reading
it, build an evaluator, write images. torch, MLflow and the Inception network are imported
inside the functions, once the arguments are read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from gan_lab.config import Config
    from gan_lab.metrics.evaluator import Evaluator


def save_images(images: torch.Tensor, out: Path, nrow: int = 8) -> None:
    """Each image as out/images/NNNNN.png, and the first 64 as out/grid.png."""
    from torchvision.utils import save_image

    (out / "images").mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        save_image(image, out / "images" / f"{index:05d}.png")
    save_image(images[:64], out / "grid.png", nrow=nrow)


def reach_store(source: str | None, tracking_uri: str | None) -> None:
    """The MLflow store checked before a command reads from it (a `source` in MLflow, or None:
    the command reads only the store): one line within seconds where it does not answer."""
    from gan_lab.tracking.store import connect

    if source is not None and not source.startswith("models:/"):
        from gan_lab.trained import run_id_of

        if run_id_of(source) is None:  # a checkpoint file: no store
            return
    connect(tracking_uri, write=False)  # a read-only store can be read


def device(name: str) -> torch.device:
    from gan_lab.devices import resolve_device

    return resolve_device(name)


def evaluator(config: Config, on: torch.device, images: torch.Tensor, key: str) -> Evaluator:
    """The evaluator of `images` (their cache key `key`) with the config's metrics options."""
    from gan_lab.data import cache_dir
    from gan_lab.metrics.evaluator import Evaluator

    return Evaluator(config.metrics, images, key, on, cache_dir(config.data))
