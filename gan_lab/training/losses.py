"""GAN losses on the discriminator's raw outputs (logits). Each is registered under its
`loss.name`; a new one is a class here and a file in conf/loss/.

Every loss sees the real and the fake logits together, so that a paired (relativistic) loss is
no special case: D's loss is two terms, logged as d_loss_real and d_loss_fake, whose sum D
minimises; G's loss gets D's logits on the real batch too where `generator_needs_real` says so
(else None, and the loop spends no pass of D on them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F

from gan_lab.registry import Registry

if TYPE_CHECKING:
    from gan_lab.config import LossConfig


class GanLoss(Protocol):
    generator_needs_real: bool  # generator() reads D's logits on real images

    def discriminator(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """D's loss as its two terms (d_loss_real, d_loss_fake); D minimises their sum."""
        ...

    def generator(
        self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None
    ) -> torch.Tensor: ...

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

    generator_needs_real = False

    def __init__(self, cfg: LossConfig) -> None:
        self.real_label, self.fake_label = cfg.real_label, cfg.fake_label

    def _to(self, logits: torch.Tensor, label: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))

    def discriminator(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._to(real_logits, self.real_label), self._to(fake_logits, self.fake_label)

    def generator(
        self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
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


class _Unlabelled:
    """A loss without labels (loss.real_label and fake_label are bce's and lsgan's), whose
    d_real / d_fake show sigmoid(logit), as for bce."""

    generator_needs_real = False

    def __init__(self, cfg: LossConfig) -> None:
        pass

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())


@LOSSES.register("hinge")
class Hinge(_Unlabelled):
    """Hinge loss (Lim and Ye 2017; SAGAN, BigGAN): D pushes real logits above 1 and fake ones
    below -1, G raises D's logits on its fakes."""

    def discriminator(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        real, fake = real_logits.float(), fake_logits.float()
        return F.relu(1 - real).mean(), F.relu(1 + fake).mean()

    def generator(
        self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        return -fake_logits.float().mean()


@LOSSES.register("rpgan")
class RelativisticPairing(_Unlabelled):
    """The relativistic pairing loss of R3GAN (Huang et al. 2024; brownvc/R3GAN,
    R3GAN/Trainer.py): each real image is paired with the fake image at the same place in the
    batch, D raises softplus's argument D(real) - D(fake), and G the reverse:

        D: mean softplus(-(D(x_i) - D(G(z_i))))    G: mean softplus(-(D(G(z_i)) - D(x_i)))

    G's loss reads D(real) again, after D's update (as R3GAN's G phase does), with no gradient.
    R3GAN regularises it with R1 on real and R2 on fake images at the same gamma
    (conf/loss/rpgan.yaml sets loss.r1_gamma = loss.r2_gamma, every step).

    Logged: d_loss_real is the pairing loss, D's whole loss but for the penalties; d_loss_fake
    is 0, as the pairing loss has no separate fake term. d_real / d_fake show sigmoid(logit)."""

    generator_needs_real = True

    def discriminator(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pairing = F.softplus(-(real_logits.float() - fake_logits.float())).mean()
        return pairing, torch.zeros_like(pairing)

    def generator(
        self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None
    ) -> torch.Tensor:
        if real_logits is None:
            raise ValueError("rpgan's generator loss needs D's logits on real images")
        return F.softplus(-(fake_logits.float() - real_logits.float())).mean()
