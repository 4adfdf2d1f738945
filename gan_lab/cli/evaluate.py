"""`gan-lab eval`: metrics, images and a grid for a checkpoint, an MLflow run or a registered
model, against the run's own data (its held-out images where it kept some) or given images."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gan_lab.cli.arguments import (
    SOURCE,
    Commands,
    add_command,
    add_inception_options,
    add_tracking_option,
)
from gan_lab.cli.common import device, evaluator, reach_store, save_images
from gan_lab.config.choices import MetricsName, MetricsPrecision, values

if TYPE_CHECKING:
    from gan_lab.config import Config


def checkpoint_config(saved: dict, metrics: dict) -> Config:
    """The checkpoint's config, with the metrics options given on the command line."""
    from omegaconf import OmegaConf

    from gan_lab.config import Config
    from gan_lab.config.compose import register_schema, to_config
    from gan_lab.training.checks import check_names

    register_schema()
    merged = OmegaConf.merge(OmegaConf.structured(Config), saved, {"metrics": metrics})
    config = to_config(merged)
    check_names(config)
    return config


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

    reach_store(args.target, args.tracking_uri)
    path, run_id = checkpoint_file(args.target, args.tracking_uri)
    state = checkpoint.load(path)
    # the precision of the machine scoring, not the one that trained (metrics.precision)
    metrics = {"num_samples": args.num, "batch_size": args.batch_size}
    metrics |= {"name": MetricsName.STANDARD.value, "precision": args.precision}
    if args.weights:
        metrics["inception_weights"] = args.weights
    config = checkpoint_config(state["config"], metrics)
    if args.data_path:
        config = replace(config, data=replace(config.data, path=args.data_path))
    on = device(args.device)
    generator = generator_of(state, on)
    data = load_images(config.data, image_shape(config.data, generator.output_shape))
    reference = f"{args.data_path}, all its images"
    if not args.data_path:  # the run's held-out images (data.holdout), where it kept some
        held_out = config.data.holdout
        data = split(data, held_out, config.data.seed).reference
        reference = f"the run's held-out images ({held_out}, data.seed {config.data.seed})"
        if not held_out:
            reference = "the run's training images (it held none out)"
    started = time.perf_counter()
    scorer = evaluator(config, on, data.images, data.key)
    scores = scorer.evaluate(generator)
    seconds = time.perf_counter() - started
    step = state["progress"]["step"]
    out = Path(args.out) if args.out else eval_folder(args.target, step, run_id)
    save_images(sample(generator, args.images, config.metrics.seed), out)
    record = {"step": step, **scores, "reference": reference, "data_key": data.key}
    # "precision" is a score (precision/recall): the Inception network's dtype is named apart
    record |= {"inception_precision": scorer.precision, "seconds": seconds}
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    print(
        f"{args.target} (step {step}): {scorer.count} samples against {scorer.count} of "
        f"{reference}, Inception in {scorer.precision}, {seconds:.0f} s"
    )
    for name, value in scores.items():
        print(f"  {name:22} {value:.6g}")
    print(f"images, grid and metrics.json in {out}")
    return scores


def add_to(commands: Commands) -> None:
    command = add_command(
        commands, "eval", "metrics, images and a grid for a checkpoint, run or model", evaluate
    )
    command.add_argument("target", help=SOURCE)
    command.add_argument(
        "--num",
        type=int,
        help="generated images for the metrics (default: 512 on a CPU, about a minute; 10000, "
        "as published FIDs, on a GPU, about 25 minutes on a CPU)",
    )
    command.add_argument("--images", type=int, default=64, help="PNG images to write")
    command.add_argument(
        "--out",
        help="output folder (default: eval_step<N> beside a checkpoint file; "
        "eval/<run id>/step<N> for an MLflow run or model)",
    )
    command.add_argument(
        "--data-path",
        help="score against these images (a folder or .zip), all of them; default: the run's "
        "data set, its held-out images where it kept some (data.holdout)",
    )
    command.add_argument(
        "--precision",
        default=MetricsPrecision.AUTO.value,
        choices=values(MetricsPrecision),
        help="the Inception network's: auto is bf16 where this machine computes it natively",
    )
    add_tracking_option(command)
    add_inception_options(command)
