"""model.arch=dcgan: one generic DCGAN generator and discriminator, built from the layer lists
of a ModelConfig (model.generator, model.discriminator), each channel count times model.width.

Every seed architecture (conf/model/) is a setting of these two builders. Convolutions use
Keras-style `same` padding, which is asymmetric where Keras pads asymmetrically, so that the
layer shapes and parameter counts match the Keras originals exactly.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from gan_lab.config.choices import NormPer, Order, OutputLayer
from gan_lab.config.model import ModelConfig, StackConfig, per_block
from gan_lab.errors import ConfigError
from gan_lab.models.architectures import ARCHITECTURES, Architecture
from gan_lab.models.parameters import widened
from gan_lab.registry import Registry

# A block's activation by name: slope -> module (the slope is leaky_relu's).
ACTIVATIONS: Registry[Callable[[float], nn.Module]] = Registry("activation")
ACTIVATIONS.add("linear", lambda slope: nn.Identity())
ACTIVATIONS.add("relu", lambda slope: nn.ReLU())
ACTIVATIONS.add("leaky_relu", lambda slope: nn.LeakyReLU(slope))
ACTIVATIONS.add("tanh", lambda slope: nn.Tanh())
ACTIVATIONS.add("sigmoid", lambda slope: nn.Sigmoid())

# The generator's last activation by name: the range of the images it makes.
OUTPUT_RANGES: Registry[tuple[float, float]] = Registry("model.generator.output.activation")
OUTPUT_RANGES.add("tanh", (-1.0, 1.0))
OUTPUT_RANGES.add("sigmoid", (0.0, 1.0))

# A block's normalisation by name: (features, eps, momentum, flat) -> module or None.
NORMS: Registry[Callable[..., nn.Module | None]] = Registry("norm")


@NORMS.register("none")
def _no_norm(features: int, eps: float, momentum: float, flat: bool = False) -> None:
    return None


@NORMS.register("batch")
def _batch_norm(features: int, eps: float, momentum: float, flat: bool = False) -> nn.Module:
    """BatchNorm1d over a flat feature vector (flat), else BatchNorm2d over channels."""
    return (nn.BatchNorm1d if flat else nn.BatchNorm2d)(features, eps=eps, momentum=momentum)


class CropBottomRight(nn.Module):
    """Drops `amount` rows and columns at the bottom and right.

    Written by hand because no PyTorch layer crops asymmetrically: a Keras `same` transposed
    convolution whose overhang (kernel - stride) is odd crops one pixel more at the bottom/right
    than at the top/left, and ConvTranspose2d's `padding` crops both sides equally.
    """

    def __init__(self, amount: int) -> None:
        super().__init__()
        self.amount = amount

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : -self.amount, : -self.amount]

    def extra_repr(self) -> str:
        return f"amount={self.amount}"


def same_conv(cin: int, cout: int, kernel: int, stride: int, size: int, bias: bool):
    """Keras Conv2D(padding='same'): output ceil(size/stride); the odd padding pixel goes
    bottom/right. Returns the layers and the output size."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    top, bottom = total // 2, total - total // 2
    layers: list[tuple[str, nn.Module]] = []
    if top != bottom:
        layers.append(("pad", nn.ZeroPad2d((top, bottom, top, bottom))))
        top = 0
    layers.append(("conv", nn.Conv2d(cin, cout, kernel, stride, padding=top, bias=bias)))
    return layers, out


def same_conv_transpose(cin: int, cout: int, kernel: int, stride: int, size: int, bias: bool):
    """Keras Conv2DTranspose(padding='same'): output size*stride. The full transposed
    convolution overhangs by kernel - stride; Keras crops the smaller half at top/left."""
    if kernel < stride:
        raise ConfigError(
            "kernel", kernel, f"a transposed convolution needs kernel >= stride ({stride})"
        )
    overhang = kernel - stride
    top = overhang // 2
    layers: list[tuple[str, nn.Module]] = [
        ("conv", nn.ConvTranspose2d(cin, cout, kernel, stride, padding=top, bias=bias))
    ]
    if overhang - top > top:
        layers.append(("crop", CropBottomRight(overhang - 2 * top)))
    return layers, size * stride


def _pin_init(layers: list[tuple[str, nn.Module]], scheme: str | None) -> None:
    """Record a layer's own init (as the Keras sources name one per layer) for init.py."""
    for _, layer in layers:
        layer.pinned_init = scheme


def _norm_and_act(
    norm: nn.Module | None, act: nn.Module, order: str
) -> list[tuple[str, nn.Module]]:
    pair = (
        [("norm", norm), ("act", act)]
        if order == Order.NORM_ACT
        else [("act", act), ("norm", norm)]
    )
    return [(name, module) for name, module in pair if module is not None]


def build_stack(
    stack: StackConfig, cin: int, size: int, transpose: bool, key: str
) -> tuple[list[tuple[str, nn.Module]], int, int]:
    """Convolution blocks: conv -> norm/activation in the configured order -> dropout.
    Returns the named blocks, the output channels and the output size."""
    count = len(stack.filters)
    blocks = []
    columns = zip(
        stack.filters,
        per_block(stack.kernel, count, f"{key}.kernel"),
        per_block(stack.stride, count, f"{key}.stride"),
        per_block(stack.bias, count, f"{key}.bias"),
        per_block(stack.norm, count, f"{key}.norm"),
        per_block(stack.activation, count, f"{key}.activation"),
        per_block(stack.dropout, count, f"{key}.dropout"),
        strict=True,
    )
    for index, (cout, kernel, stride, bias, norm, act, drop) in enumerate(columns, start=1):
        conv = same_conv_transpose if transpose else same_conv
        layers, size = conv(cin, cout, kernel, stride, size, bias)
        normalise = NORMS[norm](cout, stack.norm_eps, stack.norm_momentum)
        layers += _norm_and_act(normalise, ACTIVATIONS[act](stack.slope), stack.order)
        if drop > 0:
            layers.append(("drop", nn.Dropout(drop)))
        _pin_init(layers, stack.init)
        blocks.append((f"block{index}", nn.Sequential(OrderedDict(layers))))
        cin = cout
    return blocks, cin, size


class Generator(nn.Module):
    """latent (N, latent_dim) -> image (N, channels, H, W) in [-1, 1] (tanh) or [0, 1] (sigmoid)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        g = cfg.generator
        p = g.projection
        features = p.channels * p.size * p.size
        layers: list[tuple[str, nn.Module]] = [
            ("dense", nn.Linear(cfg.latent_dim, features, bias=p.bias))
        ]
        unflatten = ("reshape", nn.Unflatten(1, (p.channels, p.size, p.size)))
        flat = p.norm_per == NormPer.FEATURE
        norm = NORMS[p.norm](features if flat else p.channels, p.norm_eps, p.norm_momentum, flat)
        if not flat:
            layers.append(unflatten)
        layers += _norm_and_act(norm, ACTIVATIONS[p.activation](p.slope), p.order)
        if flat:
            layers.append(unflatten)
        _pin_init(layers, p.init)
        blocks, cin, size = build_stack(g, p.channels, p.size, True, "model.generator")
        out = g.output
        conv = same_conv_transpose if out.layer == OutputLayer.CONV_TRANSPOSE else same_conv
        out_layers, size = conv(cin, cfg.channels, out.kernel, out.stride, size, out.bias)
        out_layers.append(("act", ACTIVATIONS[out.activation](0.0)))
        _pin_init(out_layers, out.init)
        self.net = nn.Sequential(
            OrderedDict(
                [
                    ("project", nn.Sequential(OrderedDict(layers))),
                    *blocks,
                    ("output", nn.Sequential(OrderedDict(out_layers))),
                ]
            )
        )
        self.latent_dim = cfg.latent_dim
        self.latent_distribution = cfg.latent_distribution
        self.output_shape = (cfg.channels, size, size)
        self.output_range = OUTPUT_RANGES[out.activation]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """image (N, channels, size, size) -> logits (N,); the loss applies the sigmoid."""

    def __init__(self, cfg: ModelConfig, image_size: int) -> None:
        super().__init__()
        d = cfg.discriminator
        blocks, cout, size = build_stack(d, cfg.channels, image_size, False, "model.discriminator")
        head: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        if d.head_dropout > 0:
            head.append(("drop", nn.Dropout(d.head_dropout)))
        head.append(("dense", nn.Linear(cout * size * size, 1)))
        _pin_init(head, d.head_init)
        self.net = nn.Sequential(OrderedDict([*blocks, ("head", nn.Sequential(OrderedDict(head)))]))
        normalised = per_block(d.spectral_norm, len(d.filters), "model.discriminator.spectral_norm")
        for (_, block), wanted in zip(blocks, normalised, strict=True):
            block.conv.wants_spectral_norm = wanted
        self.net.head.dense.wants_spectral_norm = normalised[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def widened_lists(cfg: ModelConfig) -> ModelConfig:
    """The layer lists with every channel count times model.width (1: as they are, so the seed
    presets keep their exact parameter counts)."""
    if cfg.width == 1:
        return cfg
    g, d = cfg.generator, cfg.discriminator
    projection = replace(g.projection, channels=widened(g.projection.channels, cfg.width))
    g = replace(g, filters=[widened(f, cfg.width) for f in g.filters], projection=projection)
    d = replace(d, filters=[widened(f, cfg.width) for f in d.filters])
    return replace(cfg, generator=g, discriminator=d)


ARCHITECTURES.add(
    "dcgan",
    Architecture(
        generator=lambda cfg: Generator(widened_lists(cfg)),
        discriminator=lambda cfg, image_size: Discriminator(widened_lists(cfg), image_size),
    ),
)
