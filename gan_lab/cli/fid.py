"""`gan-lab fid`: FID and KID between two folders or ZIP files of images, and A rated against B
as a run's samples are against its real images."""

from __future__ import annotations

import argparse
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gan_lab.cli.arguments import Commands, add_command, add_inception_options
from gan_lab.cli.common import device, evaluator
from gan_lab.errors import GanLabError

if TYPE_CHECKING:
    from gan_lab.data.sources import Files


def _image_files(source: str) -> Files:
    """The image files of a folder or ZIP, checked in fid's words: the data set's own checks
    name data.path, a key that `fid` does not have."""
    from gan_lab.data import sources

    path = Path(source).expanduser()
    if not path.exists():
        raise GanLabError(f"{source} does not exist: give fid a folder or .zip file of images")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise GanLabError(f"{source} is a file but not a ZIP archive: give a folder or a .zip")
    files = sources.Files.open(path)
    if not files.images:
        raise GanLabError(f"no image files in {source} (PNG, JPEG, BMP, GIF, WebP, TIFF)")
    return files


def _native_size(files: Files) -> int:
    """The size of the first image of a folder or ZIP (FID resizes from the native size)."""
    from gan_lab.data.preprocess import decode

    height, width = decode(files.read(files.images[0].name), 3).shape[-2:]
    return max(height, width)


def fid(args: argparse.Namespace) -> dict[str, float]:
    """FID and KID between two folders or ZIP files of images, as `python -m pytorch_fid` does:
    each set at its own size (the first image's; others are resized to it), then the network's
    TF-style resize to 299x299; and A rated against B as a run's samples are against its real
    images (precision, recall, the good / decent / poor rates), so real images can be rated
    the same way: the floor a generator's figures are read against."""
    from gan_lab.config import Config, DataConfig, MetricsConfig
    from gan_lab.config.choices import ResizeMode
    from gan_lab.data import load_images

    on = device(args.device)
    metrics = MetricsConfig(
        batch_size=args.batch_size,
        inception_weights=args.weights,
        compute=["fid", "kid", "pr", "quality"],
    )
    evaluators = []
    for source in (args.a, args.b):
        files = _image_files(source)
        size = args.size or _native_size(files)
        data = DataConfig(
            name="folder",
            path=source,
            size=size,
            channels=3,
            resize_mode=ResizeMode.STRETCH.value,
            cache_dir=args.cache_dir,
        )
        loaded = load_images(data, (3, size, size))
        count = min(args.num, len(loaded.images))
        if count < 2:
            raise GanLabError(f"{source} has {count} image: FID and KID need 2 or more a side")
        config = Config(data=data, metrics=replace(metrics, num_samples=count))
        evaluators.append(evaluator(config, on, loaded.images, loaded.key))
    # B's evaluator, with B's features as its reference, scores A's as it would a run's samples
    a, b = (each.reference.features for each in evaluators)
    result = evaluators[1].score(a, None)
    _print_scores(result, len(a), len(b))
    return result


def _print_scores(result: dict[str, float], count_a: int, count_b: int) -> None:
    print(
        f"FID {result['fid']:.4f}  KID {result['kid']:.6f} ± {result['kid_std']:.6f}  "
        f"({count_a} vs {count_b} images)"
    )
    rates = [f"{q} {result[f'quality_{q}']:.1%}" for q in ("good", "decent", "poor")]
    print(
        f"A against B: precision {result['precision']:.3f}  recall {result['recall']:.3f}  "
        + "  ".join(rates)
    )


def add_to(commands: Commands) -> None:
    command = add_command(
        commands,
        "fid",
        "FID and KID between two folders or ZIP files of images; precision, recall and the "
        "quality rates of A against B",
        fid,
    )
    command.add_argument("a", help="the first image set: a folder or .zip of images")
    command.add_argument("b", help="the second image set: a folder or .zip of images")
    command.add_argument(
        "--size", type=int, help="resize both sets to this square first (default: each native)"
    )
    command.add_argument("--num", type=int, default=50000, help="at most this many images of each")
    command.add_argument("--cache-dir", help="decoded images go here (default: ~/.cache/gan_lab)")
    add_inception_options(command)
