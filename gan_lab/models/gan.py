"""The trained pair: generator and discriminator, initialised by the init group, each with its
Adam optimiser and gradient scaler (active for fp16 only)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gan_lab.config import Config
from gan_lab.models.dcgan import Discriminator, Generator
from gan_lab.models.init import initialize


@dataclass
class Gan:
    generator: Generator
    discriminator: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler


def build_gan(config: Config, device: torch.device) -> Gan:
    generator = Generator(config.model)
    discriminator = Discriminator(config.model, generator.output_shape[1])
    for net in (generator, discriminator):
        initialize(net, config.init.name, config.model.default_init, config.init.std)
        net.to(device)
    optim, fp16 = config.optim, config.train.precision == "fp16"

    def adam(net: nn.Module, lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(optim.betas), eps=optim.eps)

    return Gan(
        generator,
        discriminator,
        adam(generator, optim.lr_g),
        adam(discriminator, optim.lr_d),
        torch.amp.GradScaler(device.type, enabled=fp16),
        torch.amp.GradScaler(device.type, enabled=fp16),
    )
