"""GAN losses on the discriminator's raw outputs (logits)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_lab.config import LossConfig


class GanLoss:
    """bce: binary cross-entropy on logits (BCEWithLogits, what the Keras seeds' sigmoid + BCE
    compute), generator non-saturating. lsgan: mean squared error to the labels."""

    def __init__(self, cfg: LossConfig) -> None:
        self.name = cfg.name
        self.real_label = cfg.real_label
        self.fake_label = cfg.fake_label

    def _to(self, logits: torch.Tensor, label: float) -> torch.Tensor:
        target = torch.full_like(logits, label)
        if self.name == "lsgan":
            return F.mse_loss(logits.float(), target.float())
        return F.binary_cross_entropy_with_logits(logits, target)

    def discriminator(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        return self._to(logits, self.real_label if real else self.fake_label)

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return self._to(fake_logits, self.real_label)

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        """D's belief that an image is real: sigmoid(logit) for bce, the raw output for lsgan."""
        return logits.float() if self.name == "lsgan" else torch.sigmoid(logits.float())
