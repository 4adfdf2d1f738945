"""Differentiable augmentation of every image the discriminator sees, real and fake, in both
updates (DiffAugment, Zhao et al. 2020), optionally adaptive (ADA, Karras et al. 2020).

Each transform of `augment.policy` is applied to each image with probability p. p is
`augment.probability` (1: DiffAugment, every image), or, with `augment.adaptive`, steered every
`augment.adjust_every` steps so that the mean sign of D's logits on real images stays at
`augment.target` (ADA's heuristic r_t: higher means D is overfitting, so p goes up).

Written here because neither torchvision (its transforms are not differentiable per image with a
seeded generator of their own) nor kornia (not a dependency, and its random state is global)
gives a seeded, per-image, differentiable DiffAugment. All draws come from the module's own
torch.Generator, and p and the ADA statistics stay on the device; state_dict() carries them into
checkpoints, so a resumed run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from gan_lab.registry import Registry

if TYPE_CHECKING:
    from gan_lab.config import AugmentConfig

# A transform: (images, which images it applies to (N, 1, 1, 1) in {0, 1}, draws) -> images
Transform = Callable[[torch.Tensor, torch.Tensor, "Draws"], torch.Tensor]
TRANSFORMS: Registry[Transform] = Registry("augment.policy")

TRANSLATION = 1 / 8  # the largest shift, as a share of the image size (DiffAugment's)
CUTOUT = 1 / 2  # the side of the cut-out square, as a share of the image size (DiffAugment's)


class Draws:
    """Random numbers for one batch, from the augmentation's own generator, and the width of
    the images' value range (2 for tanh's [-1, 1], 1 for sigmoid's [0, 1])."""

    def __init__(self, rng: torch.Generator, device: torch.device, count: int, width: float):
        self.rng, self.device, self.count, self.width = rng, device, count, width

    def uniform(self, low: float, high: float) -> torch.Tensor:
        """One value per image, shaped (N, 1, 1, 1) to broadcast over its pixels."""
        values = torch.rand(self.count, 1, 1, 1, generator=self.rng, device=self.device)
        return values * (high - low) + low

    def integers(self, low: int, high: int) -> torch.Tensor:
        """One integer in [low, high) per image, shaped (N, 1, 1)."""
        shape = (self.count, 1, 1)
        return torch.randint(low, high, shape, generator=self.rng, device=self.device)


@TRANSFORMS.register("color")
def color(images: torch.Tensor, apply: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Brightness, saturation and contrast, each by a random amount per image. Brightness
    shifts by up to a quarter of the value range (DiffAugment's 0.5 on [-1, 1] images)."""
    images = images + draws.uniform(-0.25, 0.25) * draws.width * apply
    mean = images.mean(dim=1, keepdim=True)
    images = (images - mean) * (1 + (draws.uniform(0.0, 2.0) - 1) * apply) + mean
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * (1 + (draws.uniform(0.5, 1.5) - 1) * apply) + mean


def _rows_and_columns(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = images.shape[-2:]
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    return rows, torch.arange(width, device=images.device).view(1, 1, width)


@TRANSFORMS.register("translation")
def translation(images: torch.Tensor, apply: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Shift each image by whole pixels, up to an eighth of its size each way, filling with
    zeros (a gather: differentiable, and exact, unlike resampling)."""
    count, channels, height, width = images.shape
    dy, dx = (round(side * TRANSLATION) for side in (height, width))
    selected = apply.view(count, 1, 1).long()
    shift_y = draws.integers(-dy, dy + 1) * selected
    shift_x = draws.integers(-dx, dx + 1) * selected
    rows, columns = _rows_and_columns(images)
    source_y, source_x = rows - shift_y, columns - shift_x  # (N, H, 1), (N, 1, W)
    inside = (source_y >= 0) & (source_y < height) & (source_x >= 0) & (source_x < width)
    index = source_y.clamp(0, height - 1) * width + source_x.clamp(0, width - 1)  # (N, H, W)
    flat = images.reshape(count, channels, height * width)
    index = index.reshape(count, 1, height * width).expand(-1, channels, -1)
    moved = flat.gather(2, index).view(count, channels, height, width)
    return moved * inside.unsqueeze(1)


@TRANSFORMS.register("cutout")
def cutout(images: torch.Tensor, apply: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Zero a square of half the image's side at a random place (it may stick out)."""
    height, width = images.shape[-2:]
    size_y, size_x = (int(side * CUTOUT + 0.5) for side in (height, width))
    top = draws.integers(0, height + 1 - size_y % 2) - size_y // 2
    left = draws.integers(0, width + 1 - size_x % 2) - size_x // 2
    rows, columns = _rows_and_columns(images)
    inside = (rows >= top) & (rows < top + size_y) & (columns >= left) & (columns < left + size_x)
    cut = inside.unsqueeze(1) & apply.bool()
    return images * ~cut


class Augment:
    """The augmentation pipeline of one run: call it on a batch before D sees it."""

    def __init__(
        self,
        cfg: AugmentConfig,
        value_range: tuple[float, float],
        batch_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        self.cfg, self.batch_size, self.device = cfg, batch_size, device
        self.transforms = [TRANSFORMS[name] for name in cfg.policy]
        self.width = value_range[1] - value_range[0]
        # Its own stream: augmenting never moves the global RNG, nor the latents' or data order
        self.rng = torch.Generator(device=device).manual_seed(seed + 0xA06)
        self.p = torch.tensor(float(cfg.probability), device=device)
        self.signs = torch.zeros((), device=device)  # ADA: sum of sign(D(real)) since adjusting
        self.seen = torch.zeros((), device=device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        draws = Draws(self.rng, self.device, images.shape[0], self.width)
        for transform in self.transforms:
            apply = (draws.uniform(0.0, 1.0) < self.p).to(images.dtype)
            images = transform(images, apply, draws)
        return images.contiguous(memory_format=torch.channels_last)

    def observe(self, real_logits: torch.Tensor, step: int) -> None:
        """ADA: record D's logits on (augmented) real images; every adjust_every steps move p
        by sign(r_t - target) * images / adjust_images, r_t = E[sign(D(real))]."""
        if not self.cfg.adaptive:
            return
        self.signs += real_logits.detach().float().sign().sum()
        self.seen += real_logits.shape[0]
        if step % self.cfg.adjust_every == 0:
            r_t = self.signs / self.seen
            move = self.batch_size * self.cfg.adjust_every / self.cfg.adjust_images
            self.p = (self.p + torch.sign(r_t - self.cfg.target) * move).clamp(0.0, 1.0)
            self.signs.zero_()
            self.seen.zero_()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "p": self.p.cpu(),
            "signs": self.signs.cpu(),
            "seen": self.seen.cpu(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.p = state["p"].to(self.device)
        self.signs = state["signs"].to(self.device)
        self.seen = state["seen"].to(self.device)
        self.rng.set_state(state["rng"])
