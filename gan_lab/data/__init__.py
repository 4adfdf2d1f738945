"""Data sets, decoded once into a uint8 cache and served as batches on the device."""

from gan_lab.data.cache import DataSet, cache_dir
from gan_lab.data.datasets import DATASETS, image_shape, load_images
from gan_lab.data.split import Split, split

__all__ = ["DATASETS", "DataSet", "Split", "cache_dir", "image_shape", "load_images", "split"]
