"""An exponential moving average of the generator (Karras et al.; StyleGAN2-ADA's G_ema), through
PyTorch's own torch.optim.swa_utils.AveragedModel.

The decay follows a half-life given in images, as StyleGAN2-ADA's ema_kimg: after each step of
B images the average keeps beta = 0.5 ** (B / half_life) of itself. With a ramp-up r the
half-life is at most r times the images seen so far, so the early average follows the fast-moving
generator instead of its random start. Batch-norm statistics are averaged too (use_buffers), so
the averaged generator samples with the statistics of the weights it averages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

if TYPE_CHECKING:
    from gan_lab.config import EmaConfig


class GeneratorEma:
    def __init__(self, generator: nn.Module, cfg: EmaConfig, batch_size: int) -> None:
        self.half_life, self.rampup, self.batch_size = cfg.half_life, cfg.rampup, batch_size
        self.averaged = AveragedModel(generator, use_buffers=True)
        self.averaged.requires_grad_(False)

    @property
    def generator(self) -> nn.Module:
        """The averaged generator: a copy of the generator's class, in eval use only."""
        return self.averaged.module

    def decay(self, images_seen: int) -> float:
        half_life = self.half_life
        if self.rampup:
            half_life = min(half_life, images_seen * self.rampup)
        return 0.5 ** (self.batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, generator: nn.Module, images_seen: int) -> None:
        """Move the average toward `generator` after a step that brought `images_seen` in all
        (the first update copies it)."""
        self.averaged.multi_avg_fn = get_ema_multi_avg_fn(self.decay(images_seen))
        self.averaged.update_parameters(generator)

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)
