"""GAN losses on the discriminator's raw outputs (logits). Each is registered under its
`loss.name`; a new one is a class here and a file in conf/loss/."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F

from gan_lab.registry import Registry

if TYPE_CHECKING:
    from gan_lab.config import LossConfig


class GanLoss(Protocol):
    def discriminator(self, logits: torch.Tensor, real: bool) -> torch.Tensor: ...

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor: ...

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        """D's belief that an image is real (logged as d_real, d_fake)."""
        ...


LOSSES: Registry[type] = Registry("loss.name")


def make_loss(cfg: LossConfig) -> GanLoss:
    return LOSSES[cfg.name](cfg)


@LOSSES.register("bce")
class BinaryCrossEntropy:
    """Binary cross-entropy on logits (BCEWithLogits, what the Keras seeds' sigmoid + BCE
    compute); the generator's loss is the non-saturating one (its fakes labelled real)."""

    def __init__(self, cfg: LossConfig) -> None:
        self.real_label, self.fake_label = cfg.real_label, cfg.fake_label

    def _to(self, logits: torch.Tensor, label: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))

    def discriminator(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        return self._to(logits, self.real_label if real else self.fake_label)

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return self._to(fake_logits, self.real_label)

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())


@LOSSES.register("lsgan")
class LeastSquares(BinaryCrossEntropy):
    """Least-squares GAN (Mao et al. 2017): mean squared error of D's raw output to the labels."""

    def _to(self, logits: torch.Tensor, label: float) -> torch.Tensor:
        return F.mse_loss(logits.float(), torch.full_like(logits, label, dtype=torch.float32))

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float()


@LOSSES.register("hinge")
class Hinge:
    """Hinge loss (Lim and Ye 2017; SAGAN, BigGAN): D pushes real logits above 1 and fake ones
    below -1, G raises D's logits on its fakes. It has no labels (loss.real_label and fake_label
    are bce's and lsgan's); d_real / d_fake show sigmoid(logit), as for bce."""

    def __init__(self, cfg: LossConfig) -> None:
        pass

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def discriminator(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        return F.relu(1 - logits.float() if real else 1 + logits.float()).mean()

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.float().mean()
