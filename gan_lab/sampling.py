"""Latent vectors and seeded images from a generator: what the training loop, the sample grids,
the metrics, `gan-lab eval` and anything else that samples share."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from gan_lab.registry import Registry

# model.latent_distribution: (count, dim, rng, device) -> latent vectors
DISTRIBUTIONS: Registry[Callable[..., torch.Tensor]] = Registry("model.latent_distribution")


@DISTRIBUTIONS.register("normal")
def _normal(count: int, dim: int, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(count, dim, generator=rng, device=device)


@DISTRIBUTIONS.register("uniform")
def _uniform(count: int, dim: int, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(count, dim, generator=rng, device=device).mul_(2).sub_(1)  # U(-1, 1)


class ImageGenerator(nn.Module):
    """A generator whose images are mapped to [0, 1] whatever its last activation (its
    `output_range`): the form in which generated images are saved, scored and served."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.low, self.high = generator.output_range

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        images = self.generator(z).float()
        return ((images - self.low) / (self.high - self.low)).clamp(0, 1)


class Latents:
    """Latent vectors from a random generator of their own, so the stream is saved and restored
    in checkpoints independently of dropout's use of the global RNG."""

    def __init__(self, dim: int, distribution: str, device: torch.device, seed: int) -> None:
        self.dim, self.device = dim, device
        self.draw = DISTRIBUTIONS[distribution]
        self.rng = torch.Generator(device=device).manual_seed(seed)

    def sample(self, count: int) -> torch.Tensor:
        return self.draw(count, self.dim, self.rng, self.device)

    @classmethod
    def of(cls, generator: nn.Module, seed: int, device: torch.device | None = None) -> Latents:
        """The latent stream a generator expects (its latent_dim and distribution)."""
        device = device or torch.device("cpu")
        return cls(generator.latent_dim, generator.latent_distribution, device, seed)


@torch.no_grad()
def images_of(
    generator: nn.Module, vectors: torch.Tensor, batch_size: int = 256
) -> Iterator[torch.Tensor]:
    """The images of latent `vectors` as float (N, C, H, W) in [0, 1], in batches on the
    generator's device; the generator samples in eval mode (batch norm's running statistics)
    and is put back as it was."""
    device = next(generator.parameters()).device
    images = ImageGenerator(generator)
    was_training = generator.training
    generator.eval()
    try:
        for batch in vectors.split(batch_size):
            yield images(batch.to(device))
    finally:
        generator.train(was_training)


def generate(
    generator: nn.Module, count: int, seed: int, batch_size: int = 256
) -> Iterator[torch.Tensor]:
    """`count` images of `generator` from the latent vectors of `seed`, as images_of() gives
    them. The vectors are drawn on the CPU, so every device shows the same points."""
    vectors = Latents.of(generator, seed).sample(count)  # at once: the same whatever the batch
    return images_of(generator, vectors, batch_size)


def generate_all(generator: nn.Module, count: int, seed: int) -> torch.Tensor:
    """generate() as one tensor on the CPU: grids and PNG files."""
    return torch.cat([batch.cpu() for batch in generate(generator, count, seed)])
