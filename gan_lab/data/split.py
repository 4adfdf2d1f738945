"""The held-out split (data.holdout): images set aside before training, never trained on, that
the metrics score against. Chosen by a permutation seeded with data.seed, so the same data set
and seed always set aside the same images, in every run and every job of a sweep."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan_lab.data.cache import DataSet, digest
from gan_lab.errors import ConfigError


@dataclass(frozen=True)
class Split:
    train: DataSet  # what the run trains on
    held_out: DataSet | None  # data.holdout images, None where it is 0
    indices: list[int]  # the held-out images' positions in the whole data set, ascending

    @property
    def reference(self) -> DataSet:
        """What the metrics score against: the held-out images, else the training images."""
        return self.held_out if self.held_out is not None else self.train


def split(data: DataSet, holdout: int, seed: int) -> Split:
    if holdout == 0:
        return Split(data, None, [])
    count = len(data.images)
    if holdout > count - 2:
        raise ConfigError(
            "data.holdout",
            holdout,
            f"at most {count - 2}: the data set has {count} images and 2 or more stay to train on",
        )
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    held = order[:holdout].sort().values
    kept = torch.ones(count, dtype=torch.bool)
    kept[held] = False
    held_images = data.images[held.to(data.images.device)]
    train_images = data.images[kept.to(data.images.device)]
    return Split(
        DataSet(train_images, digest([data.key, "train", holdout, seed])),
        DataSet(held_images, digest([data.key, "holdout", holdout, seed])),
        held.tolist(),
    )
