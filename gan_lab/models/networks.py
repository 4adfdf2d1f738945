"""The one place that turns a model config into its two networks, by model.arch: the builders
that the architecture registered (architectures.py). Each architecture's module is imported here
so that it registers: a new one is its module and its name on the import line below."""

from __future__ import annotations

import torch
from torch import nn

from gan_lab.config import ModelConfig
from gan_lab.models import dcgan, resnet  # noqa: F401  (each registers its architecture)
from gan_lab.models.architectures import ARCHITECTURES

__all__ = ["ARCHITECTURES", "build_discriminator", "build_generator", "output_shape"]


def build_generator(cfg: ModelConfig) -> nn.Module:
    return ARCHITECTURES[cfg.arch].generator(cfg)


def build_discriminator(cfg: ModelConfig, image_size: int) -> nn.Module:
    return ARCHITECTURES[cfg.arch].discriminator(cfg, image_size)


def output_shape(cfg: ModelConfig) -> tuple[int, int, int]:
    """The (channels, size, size) of the generator's images, without allocating its weights."""
    with torch.device("meta"):
        return build_generator(cfg).output_shape
