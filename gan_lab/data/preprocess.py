"""Decoding and preprocessing one image: crop box, resize mode, size and channels, to uint8
(C, H, W)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_lab.config.choices import ResizeMode
from gan_lab.errors import DataError


@dataclass(frozen=True)
class Preprocess:
    size: int
    channels: int
    crop: tuple[int, int, int, int] | None = None  # left, upper, right, lower
    resize_mode: ResizeMode = ResizeMode.CENTER_CROP


# Pillow's one-channel modes of more than 8 bits, and their largest value: convert() clips them
# to 255 (a 16-bit grey turns white), so they are scaled to 8 bits here.
_DEEP_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def _eight_bit(image: Image.Image) -> Image.Image:
    """An image of 16-bit or 32-bit integers, or of floats in [0, 1], as 8-bit grey; others as
    they are. Floats outside [0, 1] have no one meaning: such a file is refused (and skipped
    with the corrupt ones)."""
    if image.mode in _DEEP_MODES:
        array = np.asarray(image).astype(np.float64)
        top = _DEEP_MODES[image.mode] if array.max() <= 65535 else 2**32 - 1
        return Image.fromarray(np.round(array / top * 255).astype(np.uint8), "L")
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise ValueError("a floating-point image with values outside [0, 1]")
        return Image.fromarray(np.round(array * 255).astype(np.uint8), "L")
    return image


def decode(data: bytes, channels: int) -> torch.Tensor:
    """uint8 (channels, H, W); raises on a corrupt, truncated or foreign file. Pillow decodes
    (torchvision's decoders are deprecated since 0.29); grey is Pillow's ITU-R 601 luma; images
    of more than 8 bits a channel are scaled down, not clipped."""
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(_eight_bit(image).convert("L" if channels == 1 else "RGB"))
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
    if options.resize_mode == ResizeMode.CENTER_CROP:
        side = min(height, width)
        image = TF.center_crop(image, [side, side])
    elif options.resize_mode == ResizeMode.PAD:  # pad to a square with black, centred
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        image = F.pad(image, (left, side - width - left, top, side - height - top))
    if image.shape[-2:] != (options.size, options.size):
        image = TF.resize(image, [options.size, options.size], antialias=True)
    return image
