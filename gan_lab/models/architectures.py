"""The architectures that model.arch chooses among. Each registers itself in the module that
builds it (`ARCHITECTURES.add("resnet", Architecture(...))` in resnet.py); networks.py builds
by the registry, and the names are checked with the others' (gan_lab/training/checks.py).
An architecture with keys of its own also has a section in the model group's schema
(model.resnet: gan_lab/config/model.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gan_lab.config.model import ModelConfig
from gan_lab.registry import Registry


@dataclass(frozen=True)
class Architecture:
    """An architecture's two builders. The generator maps (N, latent_dim) latents to images and
    has the attributes latent_dim, latent_distribution, output_shape (C, H, W) and output_range;
    the discriminator maps images of the given size to (N,) logits."""

    generator: Callable[[ModelConfig], nn.Module]
    discriminator: Callable[[ModelConfig, int], nn.Module]


ARCHITECTURES: Registry[Architecture] = Registry("model.arch")
