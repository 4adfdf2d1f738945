"""The data sets `data.name` chooses among, each registered with its loader and where to get it.

A loader turns a DataConfig and the preprocessing options into a DataSet (uint8 images and a
key), decoding through the cache (cache.py) from a source (sources.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_lab.config import DataConfig
from gan_lab.data import sources
from gan_lab.data.cache import CACHE_FORMAT, DataSet, cached, decode_all, digest, from_arrays
from gan_lab.data.preprocess import Preprocess
from gan_lab.data.synthetic import synthetic_images
from gan_lab.errors import DataError
from gan_lab.registry import Registry


@dataclass(frozen=True)
class DataSource:
    load: Callable[[DataConfig, Preprocess], DataSet]
    home: str  # where a user gets it, for the error when data.path holds nothing
    files: bool = True  # read from data.path (not built in)


DATASETS: Registry[DataSource] = Registry("data.name")


def image_shape(data: DataConfig, model_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The (channels, size, size) the data set will have: a null size or channels follows the
    model's."""
    channels = data.channels if data.channels is not None else model_shape[0]
    size = data.size if data.size is not None else model_shape[1]
    return channels, size, size


def load_images(data: DataConfig, shape: tuple[int, int, int]) -> DataSet:
    """The data set as a uint8 tensor (N, C, H, W), from the cache when it is there."""
    channels, size, _ = shape
    options = Preprocess(size, channels, tuple(data.crop) if data.crop else None, data.resize_mode)
    return DATASETS[data.name].load(data, options)


def located(data: DataConfig) -> Path:
    """data.path, which must exist."""
    path = Path(data.path).expanduser()
    if not path.exists():
        raise DataError(
            f"data.path={data.path} does not exist: get {DATASETS[data.name].home}, "
            "then point data.path at its folder or .zip file"
        )
    return path


def _synthetic(data: DataConfig, options: Preprocess) -> DataSet:
    images = synthetic_images(data.num_images, options.size, options.channels, data.seed)
    key = digest(
        ["synthetic", CACHE_FORMAT, data.num_images, options.size, options.channels, data.seed]
    )
    return DataSet(torch.from_numpy(images), key)


def _files(data: DataConfig, options: Preprocess, path: Path | None = None) -> DataSet:
    """Image files in a folder tree or a ZIP file, class = parent folder."""
    files = sources.Files.open(path or located(data))
    chosen = sources.select(files.images, data, files.root)
    return cached(data, options, files.stamp, lambda: decode_all(files, chosen, options, data))


def _cifar10(data: DataConfig, options: Preprocess) -> DataSet:
    """torchvision's batch files (downloaded when asked), else a folder of class folders."""
    if data.download:
        Path(data.path).expanduser().mkdir(parents=True, exist_ok=True)
    path = located(data)
    if not (data.download or sources.is_torchvision_cifar10(path)):
        return _files(data, options, path)
    arrays, stamp = sources.cifar10_arrays(data, path)
    return cached(data, options, stamp, lambda: from_arrays(arrays, options))


def _celeba(data: DataConfig, options: Preprocess) -> DataSet:
    path = Path(data.path).expanduser()
    if data.download:
        path.mkdir(parents=True, exist_ok=True)
        if not any(path.rglob("*.jpg")):
            sources.download_celeba(path, DATASETS["celeba"].home)
    return _files(data, options, sources.celeba_folder(located(data)))


DATASETS.add("synthetic", DataSource(_synthetic, "nothing: it is built in", files=False))
DATASETS.add("folder", DataSource(_files, "any folder or .zip file of images"))
DATASETS.add(
    "cifar10", DataSource(_cifar10, "CIFAR-10: data.download=true fetches it with internet")
)
DATASETS.add(
    "celeba",
    DataSource(
        _celeba,
        "aligned CelebA (img_align_celeba): "
        "https://www.kaggle.com/datasets/jessicali9530/celeba-dataset, or data.download=true",
    ),
)
DATASETS.add(
    "anime_faces",
    DataSource(
        _files,
        "the Anime Face Dataset: https://www.kaggle.com/datasets/splcher/animefacedataset",
    ),
)
DATASETS.add(
    "cat_faces",
    DataSource(
        _files, "a cat-face set: https://www.kaggle.com/datasets/azmeenasiraj/cat-faces-data-set"
    ),
)
DATASETS.add(
    "animal_faces",
    DataSource(
        _files,
        "AFHQ (train/{cat,dog,wild}): https://www.kaggle.com/datasets/andrewmvd/animal-faces",
    ),
)
