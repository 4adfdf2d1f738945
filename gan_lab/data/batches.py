"""Batches cut from one uint8 image tensor, kept on the training device when it fits.

Images are decoded once (by a source) and never again: each step gathers a batch of uint8
images by index and scales it to the generator's output range on the device. Compared with a
DataLoader over a Dataset this avoids per-image Python calls, worker processes and a host to
device copy per step, which dominate at the seeds' small image sizes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from gan_lab.errors import DataError

# Keep the images on a CUDA device only when they take at most this share of its free memory.
_DEVICE_SHARE = 0.25


def epoch_seed(seed: int, epoch: int) -> int:
    """An independent seed for each (run seed, epoch): the shuffle of any epoch can be redrawn
    without replaying the ones before it, which makes resuming mid-run exact."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= _DEVICE_SHARE * free


class BatchSource:
    """Shuffled batches of `batch_size` images per epoch; the last partial batch is dropped."""

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int,
        device: torch.device,
        value_range: tuple[float, float],
        seed: int,
        on_device: bool = True,
        flip: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        count = images.shape[0]
        if count < batch_size:
            raise DataError(
                f"the data set has {count} images, fewer than train.batch_size={batch_size}: "
                "lower train.batch_size or add images"
            )
        if on_device and _fits_on(device, images.numel()):
            images = images.to(device)
        elif device.type == "cuda":
            images = images.pin_memory()  # lets each batch's copy overlap with compute
        self.images = images
        self.device = device
        self.batch_size = batch_size
        self.steps_per_epoch = count // batch_size
        self.seed = seed
        self.flip = flip
        low, high = value_range
        self._scale, self._shift = (high - low) / 255.0, low

    def order(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's shuffle, and which images of it are flipped."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        count = self.images.shape[0]
        order = torch.randperm(count, generator=generator)
        flips = torch.rand(count, generator=generator) < 0.5
        return order, flips & self.flip

    def epoch(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        """The float batches of `epoch`, from its step `start` on."""
        order, flips = self.order(epoch)
        order, flips = order.to(self.images.device), flips.to(self.device)
        for step in range(start, self.steps_per_epoch):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            batch = self.images[index].to(self.device, non_blocking=True)
            if self.flip:
                flipped = flips[step * self.batch_size : (step + 1) * self.batch_size]
                batch = torch.where(flipped[:, None, None, None], batch.flip(-1), batch)
            batch = batch.float().mul_(self._scale).add_(self._shift)
            yield batch.contiguous(memory_format=torch.channels_last)  # as the networks are
