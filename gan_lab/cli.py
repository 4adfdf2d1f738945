"""The commands beside training: `gan-lab sample`, `eval`, `fid` and `report`.

  gan-lab sample models:/anime@champion --num 64 --out samples/   PNGs and a grid, no data needed
  gan-lab eval outputs/2026-11-23/18-00-00/checkpoints/best.pt     metrics against the run's data
  gan-lab eval runs:/<MLflow run id> --num 10000
  gan-lab fid real_images/ generated.zip                           FID, KID, P/R, rates of A vs B
  gan-lab report anime_scenario1                                   a sweep's table, from MLflow

A generator source is a checkpoint file, an MLflow run (runs:/<id>) or a registered model
(models:/<name>@<alias> or models:/<name>/<version>); of a run, its best checkpoint is taken.
torch, MLflow and the Inception network load only once the arguments are read, so --help is fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gan_lab.errors import GanLabError

if TYPE_CHECKING:
    import torch

    from gan_lab.config import Config
    from gan_lab.data.sources import Files

log = logging.getLogger("gan_lab")

SOURCE = "a checkpoint file, runs:/<MLflow run id> or models:/<name>@<alias>"


def _save_images(images: torch.Tensor, out: Path, nrow: int = 8) -> None:
    """Each image as out/images/NNNNN.png, and the first 64 as out/grid.png."""
    from torchvision.utils import save_image

    (out / "images").mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        save_image(image, out / "images" / f"{index:05d}.png")
    save_image(images[:64], out / "grid.png", nrow=nrow)


def _reach_store(source: str | None, tracking_uri: str | None) -> None:
    """The MLflow store checked before a command reads from it (a `source` in MLflow, or None:
    the command reads only the store): one line within seconds where it does not answer."""
    from gan_lab.tracking.store import connect

    if source is not None and not source.startswith("models:/"):
        from gan_lab.trained import run_id_of

        if run_id_of(source) is None:  # a checkpoint file: no store
            return
    connect(tracking_uri, write=False)  # a read-only store can be read


def sample(args: argparse.Namespace) -> Path:
    """PNG images and a grid from a generator; --interpolate: latent walks, one per grid row."""
    from gan_lab.trained import interpolate, load_generator
    from gan_lab.trained import sample as images_of

    _reach_store(args.source, args.tracking_uri)
    generator = load_generator(args.source, args.tracking_uri, _device(args.device))
    out = Path(args.out)
    if args.interpolate:
        images = interpolate(generator, args.num, args.interpolate, args.seed)
        _save_images(images, out, nrow=args.interpolate)
        what = f"{args.num} latent walks of {args.interpolate} steps"
    else:
        _save_images(images_of(generator, args.num, args.seed), out)
        what = f"{args.num} images"
    print(f"{what} and grid.png in {out}")
    return out


def _device(name: str):
    from gan_lab.devices import resolve_device

    return resolve_device(name)


def checkpoint_config(saved: dict, metrics: dict) -> Config:
    """The checkpoint's config, with the metrics options given on the command line."""
    from omegaconf import OmegaConf

    from gan_lab.config import Config
    from gan_lab.config.compose import register_schema, to_config

    register_schema()
    from gan_lab.training.checks import check_names

    merged = OmegaConf.merge(OmegaConf.structured(Config), saved, {"metrics": metrics})
    config = to_config(merged)
    check_names(config)
    return config


def _evaluator(config: Config, device, images, key: str):
    from gan_lab.data import cache_dir
    from gan_lab.metrics.evaluator import Evaluator

    return Evaluator(config.metrics, images, key, device, cache_dir(config.data))


def eval_folder(target: str, step: int, run_id: str | None) -> Path:
    """Where `gan-lab eval` writes by default: beside a checkpoint file (in a run folder given
    as such), eval_step<N>; for an MLflow source, eval/<run id>/step<N> here (each run its own
    folder)."""
    if run_id is not None:
        return Path("eval") / run_id / f"step{step}"
    path = Path(target).expanduser()
    return (path if path.is_dir() else path.parent) / f"eval_step{step}"


def evaluate(args: argparse.Namespace) -> dict[str, float]:
    from gan_lab.data import image_shape, load_images, split
    from gan_lab.trained import checkpoint_file, sample
    from gan_lab.training import checkpoint
    from gan_lab.training.checkpoint import generator_of

    _reach_store(args.target, args.tracking_uri)
    path, run_id = checkpoint_file(args.target, args.tracking_uri)
    state = checkpoint.load(path)
    # the precision of the machine scoring, not the one that trained (metrics.precision)
    metrics = {"num_samples": args.num, "batch_size": args.batch_size, "name": "standard"}
    metrics["precision"] = args.precision
    if args.weights:
        metrics["inception_weights"] = args.weights
    config = checkpoint_config(state["config"], metrics)
    if args.data_path:
        config = replace(config, data=replace(config.data, path=args.data_path))
    device = _device(args.device)
    generator = generator_of(state, device)
    data = load_images(config.data, image_shape(config.data, generator.output_shape))
    reference = f"{args.data_path}, all its images"
    if not args.data_path:  # the run's held-out images (data.holdout), where it kept some
        held_out = config.data.holdout
        data = split(data, held_out, config.data.seed).reference
        reference = f"the run's held-out images ({held_out}, data.seed {config.data.seed})"
        if not held_out:
            reference = "the run's training images (it held none out)"
    started = time.perf_counter()
    evaluator = _evaluator(config, device, data.images, data.key)
    scores = evaluator.evaluate(generator)
    seconds = time.perf_counter() - started
    step = state["progress"]["step"]
    out = Path(args.out) if args.out else eval_folder(args.target, step, run_id)
    _save_images(sample(generator, args.images, config.metrics.seed), out)
    record = {"step": step, **scores, "reference": reference, "data_key": data.key}
    record |= {"precision": evaluator.precision, "seconds": seconds}
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    print(
        f"{args.target} (step {step}): {evaluator.count} samples against {evaluator.count} of "
        f"{reference}, Inception in {evaluator.precision}, {seconds:.0f} s"
    )
    for name, value in scores.items():
        print(f"  {name:22} {value:.6g}")
    print(f"images, grid and metrics.json in {out}")
    return scores


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
    from gan_lab.data import load_images

    device = _device(args.device)
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
            resize_mode="stretch",
            cache_dir=args.cache_dir,
        )
        loaded = load_images(data, (3, size, size))
        count = min(args.num, len(loaded.images))
        if count < 2:
            raise GanLabError(f"{source} has {count} image: FID and KID need 2 or more a side")
        config = Config(data=data, metrics=replace(metrics, num_samples=count))
        evaluators.append(_evaluator(config, device, loaded.images, loaded.key))
    # B's evaluator, with B's features as its reference, scores A's as it would a run's samples
    a, b = (evaluator.reference.features for evaluator in evaluators)
    result = evaluators[1].score(a, None)
    print(
        f"FID {result['fid']:.4f}  KID {result['kid']:.6f} ± {result['kid_std']:.6f}  "
        f"({len(a)} vs {len(b)} images)"
    )
    rates = [f"{q} {result[f'quality_{q}']:.1%}" for q in ("good", "decent", "poor")]
    print(
        f"A against B: precision {result['precision']:.3f}  recall {result['recall']:.3f}  "
        + "  ".join(rates)
    )
    return result


def _report(args: argparse.Namespace):
    from gan_lab.report import report

    _reach_store(None, args.tracking_uri)
    return report(args.target, args.out, args.tracking_uri, crown=args.crown)


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help, and the description as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:  # no default, or one the help says in words (eval --num)
            return action.help or ""
        return super()._get_help_string(action)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size", type=int, help="Inception's batch (default: 16 on a CPU, 250 on a GPU)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--weights", help="the Inception weights file (default: as the README)")


def _tracking(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri", help="the MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)"
    )


def _command(commands, name: str, help: str, handler) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help, formatter_class=_Help)
    command.set_defaults(handler=handler)
    return command


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="gan-lab", description=__doc__, formatter_class=_Help)
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sm = _command(commands, "sample", "PNG images and a grid from a generator", sample)
    sm.add_argument("source", help=SOURCE)
    sm.add_argument("--num", type=int, default=64, help="images (with --interpolate: walks)")
    sm.add_argument("--out", default="samples", help="output folder")
    sm.add_argument("--seed", type=int, default=0, help="the latent vectors' seed")
    sm.add_argument(
        "--interpolate", type=int, metavar="STEPS", help="latent walks of STEPS images instead"
    )
    sm.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    _tracking(sm)
    ev = _command(
        commands, "eval", "metrics, images and a grid for a checkpoint, run or model", evaluate
    )
    ev.add_argument("target", help=SOURCE)
    ev.add_argument(
        "--num",
        type=int,
        help="generated images for the metrics (default: 512 on a CPU, about a minute; 10000, "
        "as published FIDs, on a GPU, about 25 minutes on a CPU)",
    )
    ev.add_argument("--images", type=int, default=64, help="PNG images to write")
    ev.add_argument(
        "--out",
        help="output folder (default: eval_step<N> beside a checkpoint file; "
        "eval/<run id>/step<N> for an MLflow run or model)",
    )
    ev.add_argument(
        "--data-path",
        help="score against these images (a folder or .zip), all of them; default: the run's "
        "data set, its held-out images where it kept some (data.holdout)",
    )
    ev.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="the Inception network's: auto is bf16 where this machine computes it natively",
    )
    _tracking(ev)
    _common(ev)
    fd = _command(
        commands,
        "fid",
        "FID and KID between two folders or ZIP files of images; precision, recall and the "
        "quality rates of A against B",
        fid,
    )
    fd.add_argument("a", help="the first image set: a folder or .zip of images")
    fd.add_argument("b", help="the second image set: a folder or .zip of images")
    fd.add_argument(
        "--size", type=int, help="resize both sets to this square first (default: each native)"
    )
    fd.add_argument("--num", type=int, default=50000, help="at most this many images of each")
    fd.add_argument("--cache-dir", help="decoded images go here (default: ~/.cache/gan_lab)")
    _common(fd)
    rp = _command(commands, "report", "the scenario table of a sweep, from MLflow", _report)
    rp.add_argument(
        "target",
        help="an MLflow experiment (its latest sweep), or a sweep's parent run id (or the first "
        "8 characters of it, as the report's title shows)",
    )
    rp.add_argument("--out", help="output folder (default: reports/<target>)")
    rp.add_argument(
        "--crown",
        action="store_true",
        help="also set the registry's alias champion on the best run's model version (without "
        "it the report writes nothing to the model registry)",
    )
    _tracking(rp)
    return main


COMMANDS = ("sample", "eval", "fid", "report")


def run_command(argv: list[str]):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parser().parse_args(argv)
    return args.handler(args)
