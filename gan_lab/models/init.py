"""Weight initialisation schemes (the `init` config group).

init=auto follows the model preset: a layer's own pinned scheme (the Keras sources name one per
layer, for example he_normal on animal_faces28's dense layer) or else the preset's default_init.
Any other init=<name> applies that scheme to every layer, which is what an init sweep wants.

A scheme is a function (layer, std) registered in INITS; it initialises dense, convolution and
batch-norm layers and leaves other layers alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from gan_lab.registry import Registry

INITS: Registry[Callable[[nn.Module, float], None]] = Registry("init.name")

# Keras draws he_normal and TruncatedNormal from a normal cut at two standard deviations;
# VarianceScaling divides the target std by this constant (the std of a unit normal cut at +-2)
# so that the truncated draws keep the intended variance.
_KERAS_TRUNCATION_STD = 0.87962566103423978

_WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
_BATCH_NORM = nn.modules.batchnorm._BatchNorm


def _weights(layer: nn.Module, draw: Callable) -> None:
    """Draw a weighted layer's weights with `draw`, zero its bias; batch norm gets gamma = 1,
    beta = 0 (what Keras and most schemes start from)."""
    if isinstance(layer, _WEIGHTED):
        draw(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    elif isinstance(layer, _BATCH_NORM) and layer.affine:
        nn.init.ones_(layer.weight)
        nn.init.zeros_(layer.bias)


@INITS.register("keras_default")
@INITS.register("xavier_uniform")  # PyTorch's name for Glorot uniform: the same draws
def glorot_uniform(layer: nn.Module, std: float) -> None:
    """What Keras layers get when the code names no initialiser."""
    _weights(layer, nn.init.xavier_uniform_)


@INITS.register("normal")
def normal(layer: nn.Module, std: float) -> None:
    """The DCGAN paper's scheme (pytorch/examples dcgan): weights N(0, std), gamma N(1, std)."""
    _weights(layer, lambda w: nn.init.normal_(w, 0.0, std))
    if isinstance(layer, _BATCH_NORM) and layer.affine:
        nn.init.normal_(layer.weight, 1.0, std)


@INITS.register("truncated_normal")
def truncated_normal(layer: nn.Module, std: float) -> None:
    _weights(layer, lambda w: nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std))


@INITS.register("he_normal")
def he_normal(layer: nn.Module, std: float) -> None:
    """Keras' he_normal: std sqrt(2 / fan_in), truncated at two standard deviations."""

    def draw(w):
        fan_in = nn.init._calculate_fan_in_and_fan_out(w)[0]
        he_std = math.sqrt(2.0 / fan_in) / _KERAS_TRUNCATION_STD
        nn.init.trunc_normal_(w, 0.0, he_std, -2 * he_std, 2 * he_std)

    _weights(layer, draw)


@INITS.register("pytorch_default")
def pytorch_default(layer: nn.Module, std: float) -> None:
    """As PyTorch constructs the layer."""
    if isinstance(layer, (*_WEIGHTED, _BATCH_NORM)):
        layer.reset_parameters()


def initialize(module: nn.Module, name: str, default: str, std: float) -> None:
    """Initialise every dense, convolution and batch-norm layer of `module` in place.

    name: the init group's scheme (auto follows the preset); default: the preset's default_init.
    """
    for layer in module.modules():
        pinned = getattr(layer, "pinned_init", None) or default
        INITS[pinned if name == "auto" else name](layer, std)
