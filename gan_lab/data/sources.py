"""Where the images of each data set are: files in a folder tree or a ZIP file, CIFAR-10's
batch files, aligned CelebA. A source lists its images and reads their bytes; it decodes nothing."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from gan_lab.config import DataConfig
from gan_lab.config.choices import LimitMode
from gan_lab.errors import DataError, first_line

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageFile:
    """One image of a source: its path inside the folder or ZIP, and its class folder."""

    name: str
    label: str


class Files:
    """The images of a folder tree or a ZIP file. Class = the name of an image's parent folder."""

    def __init__(self, root: Path, members: list[str], stamp: list) -> None:
        self.root = root
        self.is_zip = root.is_file()
        self.images = [ImageFile(m, PurePosixPath(m).parent.name) for m in members]
        self.stamp = stamp  # what the cache key hashes: changes whenever a file changes
        self._zip: zipfile.ZipFile | None = None

    @classmethod
    def open(cls, root: Path) -> Files:
        if zipfile.is_zipfile(root):
            with zipfile.ZipFile(root) as archive:
                infos = [i for i in archive.infolist() if not i.is_dir() and _is_image(i.filename)]
            infos.sort(key=lambda i: i.filename)
            # The archive's own record of each member's content (CRC-32 and size, read from its
            # directory without decompressing), not the file's time: a copy of the same archive
            # (data staged per job on a cluster, a data folder provisioned again) keeps its cache
            # and its reference statistics.
            stamp = [[i.filename, i.CRC, i.file_size] for i in infos]
            return cls(root, [i.filename for i in infos], stamp)
        if root.is_file():
            raise DataError(
                f"data.path={root} is a file but not a ZIP archive: give a folder or a .zip"
            )
        paths = sorted(p for p in root.rglob("*") if p.is_file() and _is_image(p.name))
        members = [p.relative_to(root).as_posix() for p in paths]
        stats = [p.stat() for p in paths]
        stamp = [[m, s.st_size, s.st_mtime_ns] for m, s in zip(members, stats, strict=True)]
        return cls(root, members, stamp)

    def read(self, name: str) -> bytes:
        if not self.is_zip:
            return (self.root / name).read_bytes()
        if self._zip is None:  # opened lazily, so each decoding worker has its own handle
            self._zip = zipfile.ZipFile(self.root)
        return self._zip.read(name)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None}  # workers reopen the archive


def _is_image(name: str) -> bool:
    path = PurePosixPath(name)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def select(images: list[ImageFile], data: DataConfig, where: Path) -> list[ImageFile]:
    """Apply data.classes, then data.limit (the first N in sorted order, or a seeded random N)."""
    if not images:
        raise DataError(
            f"no image files in {where}: check data.path (PNG, JPEG, BMP, GIF, WebP, TIFF)"
        )
    if data.classes:
        found = sorted({i.label for i in images})
        missing = [c for c in data.classes if c not in found]
        if missing:
            raise DataError(
                f"data.classes={list(data.classes)}: no class folder {', '.join(missing)} in "
                f"{where}; found: {', '.join(f or '(top level)' for f in found)}"
            )
        images = [i for i in images if i.label in data.classes]
    return [images[k] for k in limited(len(images), data)]


def limited(count: int, data: DataConfig) -> np.ndarray:
    """The indices data.limit keeps of `count` items: the first N, or N drawn with data.seed."""
    if data.limit is None or data.limit >= count:
        return np.arange(count)
    if data.limit_mode == LimitMode.RANDOM:
        return np.sort(np.random.default_rng(data.seed).choice(count, data.limit, replace=False))
    return np.arange(data.limit)


def celeba_folder(path: Path) -> Path:
    """Aligned CelebA: `path` itself, or its img_align_celeba folder, in torchvision's layout
    (<root>/celeba/img_align_celeba) or as Kaggle unpacks it."""
    for candidate in (path / "celeba" / "img_align_celeba", path / "img_align_celeba", path):
        if candidate.is_dir() and any(candidate.glob("*.jpg")):
            return candidate
    return path  # a ZIP file, or a folder whose images lie deeper: read it as a folder tree


def download_celeba(path: Path, home: str) -> None:
    """torchvision's CelebA download (Google Drive, through gdown)."""
    from torchvision.datasets import CelebA

    try:
        CelebA(str(path), split="all", target_type=[], download=True)
    except Exception as error:  # network, gdown or quota errors come in many types
        raise DataError(
            f"could not download CelebA into {path} ({type(error).__name__}: "
            f"{first_line(str(error))}): without internet, download "
            f"{home.split(', or')[0]} elsewhere and set data.path to it"
        ) from error


def cifar10_arrays(data: DataConfig, path: Path) -> tuple[np.ndarray, list]:
    """CIFAR-10's training split from torchvision's batch files (downloaded when asked):
    uint8 (N, 32, 32, 3) images of the chosen classes, and the stamp of the batch files."""
    from torchvision.datasets import CIFAR10

    try:
        dataset = CIFAR10(str(path), train=True, download=data.download)
    except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
        raise DataError(
            f"no CIFAR-10 batch files in {path} ({error}): set data.download=true, or point "
            "data.path at the folder that holds cifar-10-batches-py"
        ) from error
    except OSError as error:  # URLError and socket errors when offline
        raise DataError(
            f"could not download CIFAR-10 into {path} ({type(error).__name__}: {error}): without "
            "internet, fetch cifar-10-python.tar.gz elsewhere and unpack it into data.path"
        ) from error
    labels = np.asarray(dataset.targets)
    keep = np.ones(len(labels), dtype=bool)
    if data.classes:
        unknown = [c for c in data.classes if c not in dataset.classes]
        if unknown:
            raise DataError(
                f"data.classes={list(data.classes)}: CIFAR-10 has no class {', '.join(unknown)}; "
                f"its classes: {', '.join(dataset.classes)}"
            )
        keep = np.isin(labels, [dataset.class_to_idx[c] for c in data.classes])
    folder = Path(dataset.root) / dataset.base_folder
    stamp = [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(folder.iterdir())]
    images = dataset.data[keep]
    return images[limited(len(images), data)], stamp


def is_torchvision_cifar10(path: Path) -> bool:
    return (path / "cifar-10-batches-py").is_dir()
