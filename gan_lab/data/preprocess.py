"""Decoding and preprocessing one image: crop box, resize mode, size and channels, to uint8
(C, H, W)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_lab.errors import DataError


@dataclass(frozen=True)
class Preprocess:
    size: int
    channels: int
    crop: tuple[int, int, int, int] | None = None  # left, upper, right, lower
    resize_mode: str = "center_crop"


def decode(data: bytes, channels: int) -> torch.Tensor:
    """uint8 (channels, H, W); raises on a corrupt, truncated or foreign file. Pillow decodes
    (torchvision's decoders are deprecated since 0.29); grey is Pillow's ITU-R 601 luma."""
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    return torch.from_numpy(array.reshape(*array.shape[:2], channels).copy()).permute(2, 0, 1)


def to_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """Array images (CIFAR-10) in (C, H, W): RGB to grey with ITU-R 601 luma, as decoding does."""
    if image.shape[0] == channels:
        return image
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (image.float() * weights).sum(0, keepdim=True).add_(0.5).clamp_(0, 255).byte()


def preprocess(image: torch.Tensor, options: Preprocess) -> torch.Tensor:
    """Crop box first (as the seeds did), then the resize mode, to (channels, size, size)."""
    # torchvision costs over a second to import: only runs that build a cache need it
    from torchvision.transforms.v2 import functional as TF

    if options.crop is not None:
        left, upper, right, lower = options.crop
        height, width = image.shape[-2:]
        if right > width or lower > height:
            raise DataError(
                f"data.crop={list(options.crop)} falls outside a {width}x{height} image: give a "
                "box within it (the seeds' CelebA box fits 178x218 images)"
            )
        image = image[:, upper:lower, left:right]
    height, width = image.shape[-2:]
    if options.resize_mode == "center_crop":
        side = min(height, width)
        image = TF.center_crop(image, [side, side])
    elif options.resize_mode == "pad":  # pad to a square with black, centred
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        image = F.pad(image, (left, side - width - left, top, side - height - top))
    if image.shape[-2:] != (options.size, options.size):
        image = TF.resize(image, [options.size, options.size], antialias=True)
    return image
