"""Data sources: each turns a `data` config into one uint8 tensor (N, C, H, W), decoded once."""

from __future__ import annotations

import torch

from gan_lab.config import ConfigError, DataConfig
from gan_lab.data.synthetic import synthetic_images


def image_shape(data: DataConfig, model_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The (channels, size, size) the data set will have; synthetic data follows the model."""
    channels = data.channels if data.channels is not None else model_shape[0]
    if data.size is None:
        if data.name != "synthetic":
            raise ConfigError("data.size", None, "give the image size for this data set")
        size = model_shape[1]
    else:
        size = data.size
    return channels, size, size


def load_images(data: DataConfig, shape: tuple[int, int, int]) -> torch.Tensor:
    channels, size, _ = shape
    if data.name == "synthetic":
        return torch.from_numpy(synthetic_images(data.num_images, size, channels, data.seed))
    raise ConfigError("data.name", data.name, "choose a data set from conf/data/")
