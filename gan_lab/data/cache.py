"""The decoded-once cache: every data set becomes one uint8 array (N, C, H, W) in a .npy file.

The first run that needs a data set decodes and preprocesses it, in `data.workers` processes, and
writes the array atomically to the cache folder under a key that hashes the source's files (names,
sizes, modification times; a ZIP's members' CRC-32s) and every preprocessing option. Later runs,
and every job of a sweep, memory-map that file instead of decoding again. Two jobs that build it
at once leave one good file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from gan_lab.config import DataConfig
from gan_lab.data.preprocess import Preprocess, decode, preprocess, to_channels
from gan_lab.data.sources import Files
from gan_lab.errors import DataError
from gan_lab.files import atomic_write

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the cached arrays change meaning


class DataSet(NamedTuple):
    images: torch.Tensor  # uint8 (N, C, H, W)
    key: str  # changes whenever the images would: the key of caches derived from them


def cache_dir(data: DataConfig) -> Path:
    if data.cache_dir:
        return Path(data.cache_dir).expanduser()
    if os.environ.get("GAN_LAB_CACHE"):
        return Path(os.environ["GAN_LAB_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "gan_lab"


def digest(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cache_key(data: DataConfig, options: Preprocess, stamp: list) -> str:
    selection = {k: getattr(data, k) for k in ("name", "classes", "limit", "limit_mode", "seed")}
    return digest([CACHE_FORMAT, stamp, asdict(options), selection])


def cached(
    data: DataConfig, options: Preprocess, stamp: list, build: Callable[[], np.ndarray]
) -> DataSet:
    """The cached array of this source (`stamp`) and these options, built by build() if new."""
    key = cache_key(data, options, stamp)
    path = cache_dir(data) / "data" / f"{data.name}-{key}.npy"
    if path.exists():
        try:
            array = np.load(path, mmap_mode="c")  # copy-on-write: never writes to the cache
            log.info("data: %d images from the cache %s", len(array), path)
            return DataSet(torch.from_numpy(array), key)
        except (ValueError, OSError) as error:  # a damaged cache file is rebuilt, not trusted
            log.warning("data cache %s is unreadable (%s): building it again", path, error)
    array = build()

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.save(f, array)

    atomic_write(path, write)
    log.info("data: %d images decoded once and cached in %s", len(array), path)
    return DataSet(torch.from_numpy(np.load(path, mmap_mode="c")), key)


def from_arrays(images: np.ndarray, options: Preprocess) -> np.ndarray:
    """Array data sets (CIFAR-10: uint8 N, H, W, C) through the same preprocessing."""
    out = np.empty((len(images), options.channels, options.size, options.size), dtype=np.uint8)
    for index, image in enumerate(images):
        chw = torch.from_numpy(image).permute(2, 0, 1)
        out[index] = preprocess(to_channels(chw, options.channels), options).numpy()
    return out


class _Decoding(Dataset):
    """Decodes one file per item in a DataLoader worker; reports failures instead of raising."""

    def __init__(self, files: Files, chosen: list, options: Preprocess) -> None:
        self.files, self.chosen, self.options = files, chosen, options

    def __len__(self) -> int:
        return len(self.chosen)

    def __getitem__(self, index: int):
        name = self.chosen[index].name
        try:
            image = decode(self.files.read(name), self.options.channels)
        except Exception as error:  # corrupt, truncated or not an image at all
            return index, None, f"{name}: {type(error).__name__}"
        try:
            return index, preprocess(image, self.options), None
        except DataError as error:  # a wrong option, not a bad file: stops the build
            return index, error, None


def decode_all(files: Files, chosen: list, options: Preprocess, data: DataConfig) -> np.ndarray:
    """The chosen files decoded and preprocessed; files that fail to decode are skipped and
    counted, and only a source where none decodes is an error."""
    out = np.empty((len(chosen), options.channels, options.size, options.size), dtype=np.uint8)
    ok = np.zeros(len(chosen), dtype=bool)
    failures: list[str] = []
    loader = DataLoader(
        _Decoding(files, chosen, options), batch_size=64, num_workers=data.workers, collate_fn=list
    )
    bar = tqdm(loader, desc=f"decoding {data.name}", unit="batch", mininterval=2, disable=None)
    for batch in bar:
        for index, image, failure in batch:
            if isinstance(image, DataError):
                raise image
            if failure:
                failures.append(failure)
            else:
                out[index], ok[index] = image.numpy(), True
    if failures:
        log.warning(
            "data: skipped %d of %d image files that could not be decoded (first: %s)",
            len(failures),
            len(chosen),
            failures[0],
        )
    if not ok.any():
        raise DataError(
            f"none of the {len(chosen)} image files in {files.root} could be decoded "
            f"(first: {failures[0]}): check data.path"
        )
    return out[ok]
