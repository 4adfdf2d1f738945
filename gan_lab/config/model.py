"""The model group's schema: the keys every architecture reads, the two networks of a DCGAN
block by block (model.generator, model.discriminator), SNGAN's residual networks (model.resnet),
and their checks. Which architectures exist is gan_lab.models' registry (model.arch is checked
against it with the other names, in gan_lab/training/checks.py); here, an architecture's own
section is checked when it is the one chosen.

Every per-block key takes one value for all blocks or a list with one value per entry of
`filters`; `per_block` is what reads them, here and in the builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from omegaconf import MISSING

from gan_lab.config.choices import NormPer, Order, OutputLayer, values
from gan_lab.errors import ConfigError, require, require_choice


class Section(Protocol):
    def check(self, key: str) -> None: ...


def per_block(value: Any, count: int, key: str) -> list:
    """Broadcast one value to every block, or check that a list has one value per block."""
    if isinstance(value, list | tuple):
        if len(value) != count:
            raise ConfigError(key, list(value), f"give one value or {count} (one per filter)")
        return list(value)
    return [value] * count


@dataclass
class StackConfig:
    """A list of convolution blocks."""

    filters: list[int] = field(default_factory=list)
    kernel: Any = 4
    stride: Any = 2
    bias: Any = True
    norm: Any = "none"  # none | batch
    norm_momentum: float = 0.1  # PyTorch convention: 1 - Keras momentum
    norm_eps: float = 1e-5
    activation: Any = "relu"
    slope: float = 0.2  # leaky_relu negative slope (Keras 2 default is 0.3)
    order: str = Order.NORM_ACT.value  # norm_act: conv, norm, act | act_norm: conv, act, norm
    dropout: Any = 0.0
    init: str | None = None  # pins this stack's init; null follows the init group

    _TYPES = {
        "kernel": (int,),
        "stride": (int,),
        "bias": (bool,),
        "norm": (str,),
        "activation": (str,),
        "dropout": (float, int),
    }

    def check(self, key: str) -> None:
        require(len(self.filters) > 0, f"{key}.filters", self.filters, "at least one filter count")
        count = len(self.filters)
        for name, types in self._TYPES.items():
            for value in per_block(getattr(self, name), count, f"{key}.{name}"):
                wrong_bool = isinstance(value, bool) and bool not in types
                require(
                    isinstance(value, types) and not wrong_bool,
                    f"{key}.{name}",
                    value,
                    f"a {types[0].__name__} or a list with one per filter",
                )
        for name, low in (("filters", 1), ("kernel", 1), ("stride", 1)):
            for value in per_block(getattr(self, name), count, f"{key}.{name}"):
                require(value >= low, f"{key}.{name}", getattr(self, name), f"values >= {low}")
        for p in per_block(self.dropout, count, f"{key}.dropout"):
            require(0 <= p < 1, f"{key}.dropout", self.dropout, "dropout rates in [0, 1)")
        require_choice(f"{key}.order", self.order, values(Order))
        require(
            0 <= self.norm_momentum <= 1,
            f"{key}.norm_momentum",
            self.norm_momentum,
            "a value in [0, 1] (PyTorch convention: 1 - Keras momentum)",
        )
        require(self.norm_eps > 0, f"{key}.norm_eps", self.norm_eps, "a value > 0")


@dataclass
class ProjectionConfig:
    """The generator's dense layer from the latent vector to a (channels, size, size) tensor."""

    channels: int = 256
    size: int = 4
    bias: bool = True
    norm: str = "none"
    norm_per: str = NormPer.FEATURE.value  # feature: BatchNorm1d before the reshape, or channel
    norm_momentum: float = 0.1
    norm_eps: float = 1e-5
    activation: str = "linear"
    slope: float = 0.2
    order: str = Order.NORM_ACT.value
    init: str | None = None

    def check(self, key: str) -> None:
        require(self.channels >= 1, f"{key}.channels", self.channels, ">= 1")
        require(self.size >= 1, f"{key}.size", self.size, ">= 1")
        require_choice(f"{key}.norm_per", self.norm_per, values(NormPer))
        require_choice(f"{key}.order", self.order, values(Order))


@dataclass
class OutputLayerConfig:
    """The generator's last layer, producing the image."""

    layer: str = OutputLayer.CONV_TRANSPOSE.value  # conv_transpose | conv
    kernel: int = 4
    stride: int = 2
    bias: bool = True
    activation: str = "tanh"  # tanh: images in [-1, 1]; sigmoid: images in [0, 1]
    init: str | None = None

    def check(self, key: str) -> None:
        require_choice(f"{key}.layer", self.layer, values(OutputLayer))
        require(self.kernel >= 1, f"{key}.kernel", self.kernel, ">= 1")
        require(self.stride >= 1, f"{key}.stride", self.stride, ">= 1")


@dataclass
class GeneratorConfig(StackConfig):
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    output: OutputLayerConfig = field(default_factory=OutputLayerConfig)

    def check(self, key: str) -> None:
        super().check(key)
        self.projection.check(f"{key}.projection")
        self.output.check(f"{key}.output")


@dataclass
class DiscriminatorConfig(StackConfig):
    activation: Any = "leaky_relu"
    head_dropout: float = 0.0  # dropout between the flatten and the final dense layer
    head_init: str | None = None
    # Spectral normalisation (Miyato et al. 2018) of each block's convolution; the final dense
    # layer follows the last block.
    spectral_norm: Any = False

    def check(self, key: str) -> None:
        super().check(key)
        for value in per_block(self.spectral_norm, len(self.filters), f"{key}.spectral_norm"):
            require(
                isinstance(value, bool),
                f"{key}.spectral_norm",
                self.spectral_norm,
                "true, false or a list with one per filter",
            )
        require(
            0 <= self.head_dropout < 1, f"{key}.head_dropout", self.head_dropout, "a rate in [0, 1)"
        )


@dataclass
class ResNetConfig:
    """model.arch=resnet: SNGAN's residual networks (Miyato et al. 2018), image size from 4x4
    doubled per generator block (data.size or `size`)."""

    size: int = 32  # image size: a power of two >= 8
    g_channels: int = 128  # every generator block's channels (SNGAN's CIFAR-10 G: 256)
    d_channels: int = 128  # every discriminator block's (SNGAN's D: 128)
    depth: int = 2  # D's residual blocks without resampling at its last stage (SNGAN's 2)

    def check(self, key: str) -> None:
        size = self.size
        ok = size >= 8 and size & (size - 1) == 0
        require(ok, f"{key}.size", size, "a power of two >= 8, such as 32 or 64")
        for name in ("g_channels", "d_channels"):
            value = getattr(self, name)
            require(value >= 1, f"{key}.{name}", value, "channels >= 1")
        require(self.depth >= 0, f"{key}.depth", self.depth, "blocks >= 0")


@dataclass
class ModelConfig:
    name: str = MISSING
    arch: str = "dcgan"  # a registered architecture: dcgan (the layer lists below) | resnet
    # every channel count of either arch times this (rounded, at least 1): one key for a search
    width: float = 1.0
    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    latent_dim: int = 100
    latent_distribution: str = "normal"  # normal: N(0, 1); uniform: U(-1, 1)
    channels: int = 3
    default_init: str = "normal"  # what init=auto applies to layers that pin none
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def check(self) -> None:
        require(self.latent_dim >= 1, "model.latent_dim", self.latent_dim, "an integer >= 1")
        require(self.channels in (1, 3), "model.channels", self.channels, "1 (grey) or 3 (RGB)")
        require(self.width > 0, "model.width", self.width, "a multiplier > 0, such as 0.5 or 2")
        for key, section in self.sections().get(self.arch, {}).items():
            section.check(key)

    def sections(self) -> dict[str, dict[str, Section]]:
        """Each architecture's own keys, checked only where it is chosen (the layer lists of a
        resnet model are empty). An architecture with keys of its own adds its section here."""
        return {
            "dcgan": {"model.generator": self.generator, "model.discriminator": self.discriminator},
            "resnet": {"model.resnet": self.resnet},
        }
