"""The trained pair: generator and discriminator, initialised by the init group, each with its
Adam optimiser and gradient scaler (active for fp16 only), laid out for speed; and the moving
average of the generator where the ema group keeps one."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gan_lab.config import Config
from gan_lab.config.choices import Precision
from gan_lab.models.ema import GeneratorEma
from gan_lab.models.init import initialize
from gan_lab.models.networks import build_discriminator, build_generator
from gan_lab.models.optimizers import optimizer
from gan_lab.models.parameters import apply_spectral_norm


@dataclass
class Gan:
    generator: nn.Module  # models.networks builds them by model.arch
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    # D keeps no batch statistics: its logits for an image do not depend on the rest of the
    # batch, so real and fake images can go through it in one pass.
    one_pass: bool = False
    ema: GeneratorEma | None = None

    @property
    def eval_generator(self) -> nn.Module:
        """The generator whose images are shown, scored, kept as best and served: the moving
        average where there is one (the raw generator keeps training)."""
        return self.ema.generator if self.ema is not None else self.generator


def keeps_batch_statistics(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def build_gan(config: Config, device: torch.device) -> Gan:
    generator = build_generator(config.model)
    discriminator = build_discriminator(config.model, generator.output_shape[1])
    for net in (generator, discriminator):
        initialize(net, config.init.name, config.model.default_init, config.init.std)
        apply_spectral_norm(net)
        # Channels-last convolutions: 1.05-1.2x the images/s on this project's CPU in fp32
        # (benchmarks/train_throughput.py), and what tensor cores want on a GPU.
        net.to(device, memory_format=torch.channels_last)
    optim, fp16 = config.optim, config.train.precision == Precision.FP16

    gan = Gan(
        generator,
        discriminator,
        optimizer(generator, optim.lr_g, optim),
        optimizer(discriminator, optim.lr_d, optim),
        torch.amp.GradScaler(device.type, enabled=fp16),
        torch.amp.GradScaler(device.type, enabled=fp16),
        one_pass=not keeps_batch_statistics(discriminator),
    )
    if config.ema.half_life is not None:
        gan.ema = GeneratorEma(generator, config.ema, config.train.batch_size)
    if config.train.compile:
        # In place: the modules, their parameters and state-dict keys stay the same, so the
        # optimisers, checkpoints and the logged model do not change.
        for net in (generator, discriminator):
            net.compile(mode=config.train.compile)
    return gan
