"""The commands beside training: `gan-lab eval` and `gan-lab fid`.

gan-lab eval outputs/2026-11-23/18-00-00/checkpoints/epoch_0020.pt --num 10000
gan-lab eval runs:/<mlflow run id> --images 64
gan-lab fid real_images/ generated.zip
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torchvision.utils import save_image

from gan_lab import checkpoint
from gan_lab.config import Config, DataConfig, MetricsConfig, register_schema, to_config
from gan_lab.data import cache_dir, image_shape, load_images
from gan_lab.devices import resolve_device
from gan_lab.errors import GanLabError
from gan_lab.models.dcgan import Generator
from gan_lab.sampling import generate_all

log = logging.getLogger("gan_lab")


def _checkpoint_path(target: str, tracking_uri: str | None) -> Path:
    """A checkpoint file, or the final checkpoint of an MLflow run (runs:/<id> or an id)."""
    path = Path(target).expanduser()
    if path.exists():
        return path
    if target.startswith("runs:/") or (len(target) == 32 and target.isalnum()):
        import mlflow

        run_id = target.removeprefix("runs:/").split("/")[0]
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="checkpoints/last.pt", tracking_uri=tracking_uri
            )
        except Exception as error:  # MLflow raises several types for a missing run or artifact
            raise GanLabError(
                f"cannot get the checkpoint of MLflow run {run_id} ({type(error).__name__}): check "
                "the run id and --tracking-uri (or MLFLOW_TRACKING_URI)"
            ) from error
        return Path(local)
    raise GanLabError(f"{target} is neither a checkpoint file nor an MLflow run (runs:/<id>)")


def _config(saved: dict, metrics: dict) -> Config:
    """The checkpoint's config, with the metrics options given on the command line."""
    register_schema()
    merged = OmegaConf.merge(OmegaConf.structured(Config), saved, {"metrics": metrics})
    return to_config(merged)


def _evaluator(config: Config, device: torch.device, images, key: str):
    from gan_lab.metrics.evaluator import Evaluator

    return Evaluator(config.metrics, images, key, device, cache_dir(config.data))


def evaluate(args: argparse.Namespace) -> dict[str, float]:
    state = checkpoint.load(_checkpoint_path(args.target, args.tracking_uri))
    metrics = {"num_samples": args.num, "batch_size": args.batch_size, "name": "standard"}
    if args.weights:
        metrics["inception_weights"] = args.weights
    config = _config(state["config"], metrics)
    if args.data_path:
        config = replace(config, data=replace(config.data, path=args.data_path))
    device = resolve_device(args.device)
    generator = Generator(config.model)
    generator.load_state_dict(checkpoint.generator_weights(state))
    generator.to(device).eval()
    data = load_images(config.data, image_shape(config.data, generator.output_shape))
    evaluator = _evaluator(config, device, data.images, data.key)
    scores = evaluator.evaluate(generator)
    step = state["progress"]["step"]
    out = Path(args.out) if args.out else Path(args.target).parent / f"eval_step{step}"
    _write_samples(generator, args.images, config.metrics.seed, out)
    (out / "metrics.json").write_text(json.dumps({"step": step, **scores}, indent=2))
    print(f"{args.target} (step {step}, {evaluator.count} samples):")
    for name, value in scores.items():
        print(f"  {name:16} {value:.6g}")
    print(f"images, grid and metrics.json in {out}")
    return scores


def _write_samples(generator: Generator, count: int, seed: int, out: Path) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    images = generate_all(generator, count, seed)
    for index, image in enumerate(images):
        save_image(image, out / "images" / f"{index:05d}.png")
    save_image(images[:64], out / "grid.png", nrow=8)


def _native_size(source: str) -> int:
    """The size of the first image of a folder or ZIP (FID resizes from the native size)."""
    from gan_lab.data import sources
    from gan_lab.data.datasets import located
    from gan_lab.data.preprocess import decode

    files = sources.Files.open(located(DataConfig(name="folder", path=source)))
    if not files.images:
        raise GanLabError(f"no image files in {source}")
    height, width = decode(files.read(files.images[0].name), 3).shape[-2:]
    return max(height, width)


def fid(args: argparse.Namespace) -> dict[str, float]:
    """FID and KID between two folders or ZIP files of images, as `python -m pytorch_fid` does:
    each set at its own size (the first image's; others are resized to it), then the network's
    TF-style resize to 299x299."""
    from gan_lab.metrics import scores

    device = resolve_device(args.device)
    metrics = MetricsConfig(
        batch_size=args.batch_size, inception_weights=args.weights, compute=["fid", "kid"]
    )
    features = []
    for source in (args.a, args.b):
        size = args.size or _native_size(source)
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
        config = Config(data=data, metrics=replace(metrics, num_samples=count))
        features.append(_evaluator(config, device, loaded.images, loaded.key).reference.features)
    a, b = features
    result = {"fid": scores.fid(scores.statistics(a), scores.statistics(b))}
    result["kid"], result["kid_std"] = scores.kid(
        a, b, metrics.kid_subsets, metrics.kid_subset_size
    )
    print(
        f"FID {result['fid']:.4f}  KID {result['kid']:.6f} ± {result['kid_std']:.6f}  "
        f"({len(a)} vs {len(b)} images)"
    )
    return result


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size", type=int, help="Inception's batch (default: 16 on a CPU, 250 on a GPU)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--weights", help="the Inception weights file (else the usual places)")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="gan-lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = main.add_subparsers(dest="command", required=True)
    ev = commands.add_parser(
        "eval", help="metrics, images and a grid for a checkpoint or MLflow run"
    )
    ev.add_argument("target", help="a checkpoint file, or runs:/<MLflow run id>")
    ev.add_argument(
        "--num",
        type=int,
        help="generated images for the metrics (default: 512 on a CPU, about a minute; 10000, "
        "as published FIDs, on a GPU)",
    )
    ev.add_argument("--images", type=int, default=64, help="PNG images to write")
    ev.add_argument("--out", help="output folder (default: eval_step<N> beside the checkpoint)")
    ev.add_argument("--data-path", help="where the run's data set is now, if it moved")
    ev.add_argument("--tracking-uri", help="the MLflow store of runs:/ targets")
    _common(ev)
    ev.set_defaults(handler=evaluate)
    fd = commands.add_parser("fid", help="FID and KID between two folders or ZIP files of images")
    fd.add_argument("a")
    fd.add_argument("b")
    fd.add_argument("--size", type=int, help="resize both sets to this square first (default: no)")
    fd.add_argument("--num", type=int, default=50000, help="at most this many images of each")
    fd.add_argument("--cache-dir", help="where the decoded images are cached")
    _common(fd)
    fd.set_defaults(handler=fid)
    rp = commands.add_parser("report", help="the scenario table of a sweep, from MLflow")
    rp.add_argument("target", help="an MLflow experiment (its latest sweep) or a sweep's run id")
    rp.add_argument("--out", help="output folder (default: reports/<target>)")
    rp.add_argument("--tracking-uri", help="the MLflow store (default: MLflow's, ./mlflow.db)")
    rp.set_defaults(handler=_report)
    return main


def _report(args: argparse.Namespace):
    from gan_lab.report import report

    return report(args.target, args.out, args.tracking_uri)


def run_command(argv: list[str]) -> dict[str, float]:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parser().parse_args(argv)
    return args.handler(args)
