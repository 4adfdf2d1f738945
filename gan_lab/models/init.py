"""Weight initialisation schemes (the `init` config group).

init=auto follows the model preset: a layer's own pinned scheme (the Keras sources name one per
layer, for example he_normal on animal_faces28's dense layer) or else the preset's default_init.
Any other init=<name> applies that scheme to every layer, which is what an init sweep wants.
"""

from __future__ import annotations

import math

from torch import nn

# Keras draws he_normal and TruncatedNormal from a normal cut at two standard deviations;
# VarianceScaling divides the target std by this constant (the std of a unit normal cut at +-2)
# so that the truncated draws keep the intended variance.
_KERAS_TRUNCATION_STD = 0.87962566103423978

_WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def _fan_in(weight) -> int:
    return nn.init._calculate_fan_in_and_fan_out(weight)[0]


def _init_weight(layer: nn.Module, scheme: str, std: float) -> None:
    w = layer.weight
    if scheme in ("keras_default", "xavier_uniform"):
        nn.init.xavier_uniform_(w)
    elif scheme == "normal":
        nn.init.normal_(w, 0.0, std)
    elif scheme == "truncated_normal":
        nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)
    elif scheme == "he_normal":
        he_std = math.sqrt(2.0 / _fan_in(w)) / _KERAS_TRUNCATION_STD
        nn.init.trunc_normal_(w, 0.0, he_std, -2 * he_std, 2 * he_std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _init_batch_norm(layer: nn.modules.batchnorm._BatchNorm, scheme: str, std: float) -> None:
    # The DCGAN paper's scheme (pytorch/examples dcgan) draws gamma from N(1, 0.02); Keras and
    # the other schemes start batch norm at gamma = 1, beta = 0.
    if scheme == "normal":
        nn.init.normal_(layer.weight, 1.0, std)
    else:
        nn.init.ones_(layer.weight)
    nn.init.zeros_(layer.bias)


def initialize(module: nn.Module, name: str, default: str, std: float) -> None:
    """Initialise every dense, convolution and batch-norm layer of `module` in place.

    name: the init group's scheme (auto follows the preset); default: the preset's default_init.
    """
    for layer in module.modules():
        pinned = getattr(layer, "pinned_init", None) or default
        scheme = pinned if name == "auto" else name
        if scheme == "pytorch_default":
            if isinstance(layer, (*_WEIGHTED, nn.modules.batchnorm._BatchNorm)):
                layer.reset_parameters()
        elif isinstance(layer, _WEIGHTED):
            _init_weight(layer, scheme, std)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine:
            _init_batch_norm(layer, scheme, std)
