"""SNGAN's residual generator and discriminator (Miyato et al. 2018, its CIFAR-10 ResNets), for
model.arch=resnet: small fast models that a budget can train, their width and D's depth Hydra
keys. Written here because torchvision's ResNets are classifiers with batch norm and
max-pooling, not GAN blocks; the layers are PyTorch's own.

G: z -> dense to (C, 4, 4) -> up-blocks to the image size -> BN, ReLU, 3x3 conv -> tanh.
   An up-block: BN, ReLU, 2x nearest upsampling, 3x3 conv, BN, ReLU, 3x3 conv; its shortcut
   upsamples and convolves 1x1.
D: an optimised first block (3x3 conv, ReLU, 3x3 conv, 2x2 average pooling; shortcut: pooling,
   1x1 conv), down-blocks to 8x8 (ReLU, conv, ReLU, conv, pooling), `depth` blocks without
   resampling, ReLU, a sum over positions, a dense layer to one logit. Every D layer is
   spectrally normalised (parameters.apply_spectral_norm reads wants_spectral_norm), and D keeps no
   batch statistics, so real and fake images go through it in one pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_lab.config import ModelConfig
from gan_lab.models.architectures import ARCHITECTURES, Architecture
from gan_lab.models.parameters import widened


def _conv(cin: int, cout: int, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            _conv(cin, cout),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            _conv(cout, cout),
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2), _conv(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class DownBlock(nn.Module):
    """Without `down`, a block at the same resolution (its shortcut the identity where the
    channels match). `first`: SNGAN's optimised block on the image, no ReLU before it."""

    def __init__(self, cin: int, cout: int, down: bool = True, first: bool = False) -> None:
        super().__init__()
        pool = [nn.AvgPool2d(2)] if down else []
        layers = [] if first else [nn.ReLU()]
        layers += [_conv(cin, cout), nn.ReLU(), _conv(cout, cout), *pool]
        self.residual = nn.Sequential(*layers)
        if first:
            self.shortcut = nn.Sequential(*pool, _conv(cin, cout, 1))
        elif cin != cout or down:
            self.shortcut = nn.Sequential(_conv(cin, cout, 1), *pool)
        else:
            self.shortcut = nn.Identity()
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                layer.wants_spectral_norm = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        r, size = cfg.resnet, cfg.resnet.size
        channels = widened(r.g_channels, cfg.width)
        self.project = nn.Linear(cfg.latent_dim, channels * 4 * 4)
        self.unflatten = nn.Unflatten(1, (channels, 4, 4))
        ups = int(math.log2(size // 4))
        self.blocks = nn.Sequential(*(UpBlock(channels, channels) for _ in range(ups)))
        self.output = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(), _conv(channels, cfg.channels), nn.Tanh()
        )
        self.latent_dim = cfg.latent_dim
        self.latent_distribution = cfg.latent_distribution
        self.output_shape = (cfg.channels, size, size)
        self.output_range = (-1.0, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.blocks(self.unflatten(self.project(z))))


class ResNetDiscriminator(nn.Module):
    def __init__(self, cfg: ModelConfig, image_size: int) -> None:
        super().__init__()
        r = cfg.resnet
        channels = widened(r.d_channels, cfg.width)
        downs = int(math.log2(image_size // 8))  # to 8x8, as SNGAN's D at 32x32
        blocks = [DownBlock(cfg.channels, channels, first=True)]
        blocks += [DownBlock(channels, channels) for _ in range(downs - 1)]
        blocks += [DownBlock(channels, channels, down=False) for _ in range(r.depth)]
        self.blocks = nn.Sequential(*blocks, nn.ReLU())
        self.head = nn.Linear(channels, 1)
        self.head.wants_spectral_norm = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x).sum(dim=(2, 3))).flatten()


ARCHITECTURES.add("resnet", Architecture(ResNetGenerator, ResNetDiscriminator))
