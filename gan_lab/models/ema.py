"""An exponential moving average of the generator (Karras et al.; StyleGAN2-ADA's G_ema), kept in
PyTorch's own torch.optim.swa_utils.AveragedModel.

The decay follows a half-life given in images, as StyleGAN2-ADA's ema_kimg: after each step of
B images the average keeps beta = 0.5 ** (B / half_life) of itself. With a ramp-up r the
half-life is at most r times the images seen so far, so the early average follows the fast-moving
generator instead of its random start. Batch-norm statistics are averaged too, so the averaged
generator samples with the statistics of the weights it averages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

if TYPE_CHECKING:
    from gan_lab.config import EmaConfig


class GeneratorEma:
    def __init__(self, generator: nn.Module, cfg: EmaConfig, batch_size: int) -> None:
        self.half_life, self.rampup, self.batch_size = cfg.half_life, cfg.rampup, batch_size
        # AveragedModel holds the copy and its update count (in the state dict); its count stays
        # on the CPU, read without waiting for the device
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
        """Move the average toward `generator` after a step that brought `images_seen` in all;
        the first update copies it. Written here rather than through AveragedModel's
        update_parameters, which moves its CPU count to the device every call: on a GPU, a
        wait for the device every training step. The arithmetic is its EMA function's (a
        foreach lerp), applied to parameters and floating-point buffers alike."""
        averaged = [*self.generator.parameters(), *self.generator.buffers()]
        current = [*generator.parameters(), *generator.buffers()]
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        first = int(self.averaged.n_averaged) == 0
        if first:
            torch._foreach_copy_([a for a, _ in floats], [c for _, c in floats])
        else:
            weight = 1 - self.decay(images_seen)
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():  # batch norm's step counter: the latest
                a.copy_(c)
        self.averaged.n_averaged += 1

    def start_from(self, generator: nn.Module) -> None:
        """Begin the average at `generator` (a checkpoint that kept none)."""
        self.generator.load_state_dict(generator.state_dict())
        self.averaged.n_averaged.zero_()

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)
