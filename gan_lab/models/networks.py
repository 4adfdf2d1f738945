"""The one place that turns a model config into its two networks, by model.arch: dcgan's layer
lists (dcgan.py) or SNGAN's residual networks (resnet.py), each widened by model.width."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from gan_lab.config import ModelConfig
from gan_lab.models.dcgan import Discriminator, Generator
from gan_lab.models.resnet import ResNetDiscriminator, ResNetGenerator, widened


def _widened_dcgan(cfg: ModelConfig) -> ModelConfig:
    """The dcgan layer lists with every channel count times model.width (1: as they are, so the
    seed presets keep their exact parameter counts)."""
    if cfg.width == 1:
        return cfg
    g, d = cfg.generator, cfg.discriminator
    projection = replace(g.projection, channels=widened(g.projection.channels, cfg.width))
    g = replace(g, filters=[widened(f, cfg.width) for f in g.filters], projection=projection)
    d = replace(d, filters=[widened(f, cfg.width) for f in d.filters])
    return replace(cfg, generator=g, discriminator=d)


def build_generator(cfg: ModelConfig) -> nn.Module:
    if cfg.arch == "resnet":
        return ResNetGenerator(cfg)
    return Generator(_widened_dcgan(cfg))


def build_discriminator(cfg: ModelConfig, image_size: int) -> nn.Module:
    if cfg.arch == "resnet":
        return ResNetDiscriminator(cfg, image_size)
    return Discriminator(_widened_dcgan(cfg), image_size)


def output_shape(cfg: ModelConfig) -> tuple[int, int, int]:
    """The (channels, size, size) of the generator's images, without allocating its weights."""
    with torch.device("meta"):
        return build_generator(cfg).output_shape
