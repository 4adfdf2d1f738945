"""What a run writes into its folder and its tracker, beside the checkpoints (checkpoint.py) and
the loop's statistics (loop.py): the tags and the inputs its record opens with, the sample grids,
the final files and the generator it leaves. Functions of what they write: the run (run.py)
decides when."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import yaml

from gan_lab import tags as tag
from gan_lab.config import Config, TrainConfig
from gan_lab.data.split import Split
from gan_lab.errors import GanLabError
from gan_lab.files import atomic_write
from gan_lab.sampling import Latents, generate_all
from gan_lab.tracking import RunInfo, Tracker, environment_tags, flatten, open_tracker
from gan_lab.training.checkpoint import Checkpoints, Progress

log = logging.getLogger(__name__)
Parameters = tuple[int, int]  # models.dcgan.count_parameters: (trainable, Keras total)


def run_tags(
    config: Config,
    tags: dict[str, str],
    data: Split,
    params: tuple[Parameters, Parameters],
    device: torch.device,
    precision: str,
) -> dict[str, str]:
    """The tags a run's record opens with: `tags` (who started it), the machine, the precision,
    the search trial, the networks' sizes (G's, D's `params`) and the images trained on (and
    held out)."""
    (g_params, d_params), trial = params, config.trial
    tags = {**tags, **environment_tags(device), tag.PRECISION: precision}
    if trial.number is not None:
        tags.update({tag.TRIAL: str(trial.number), tag.STUDY: trial.study})
    tags.update({tag.G_PARAMS: str(g_params[0]), tag.D_PARAMS: str(d_params[0])})
    tags[tag.IMAGES] = str(len(data.train.images))
    if data.held_out is not None:
        tags[tag.HOLDOUT] = f"{len(data.indices)} images, data.seed {config.data.seed}"
    return tags


def log_inputs(
    tracker: Tracker, run_dir: Path, config: Config, config_dict: dict, data: Split
) -> None:
    """What the run was given: its resolved config (config.yaml and the params), the data set,
    the held-out images (holdout.json) and Hydra's overrides."""
    config_file = run_dir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config_dict, sort_keys=False))
    tracker.log_params(flatten(config_dict))
    tracker.log_dataset(config.data.name, data.train.key, config.data.path)
    tracker.log_artifact(config_file)
    if data.held_out is not None:  # which images the scores are against, never trained on
        held_out = run_dir / "holdout.json"
        record = json.dumps(
            {
                "count": len(data.indices),
                "seed": config.data.seed,
                "key": data.held_out.key,
                "indices": data.indices,
            }
        )
        atomic_write(held_out, lambda tmp: tmp.write_text(record))
        tracker.log_artifact(held_out)
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if overrides.exists():
        tracker.log_artifact(overrides)


def say_what_trains(
    device: torch.device, data: Split, params: tuple[Parameters, Parameters]
) -> None:
    log.info(
        "device %s; %d images %s; G %s parameters (Keras total %s), D %s (%s)",
        device,
        len(data.train.images),
        "x".join(map(str, data.train.images.shape[1:])),
        *(f"{n:,}" for n in (*params[0], *params[1])),
    )


def minutes_spent(progress: Progress) -> dict[str, float]:
    """How the run's minutes went so far: training (what train.max_minutes counts), scoring and
    checkpoints."""
    return {
        "train_minutes": progress.seconds / 60,
        "eval_minutes": progress.eval_seconds / 60,
        "checkpoint_minutes": progress.checkpoint_seconds / 60,
    }


def save_image(grid: torch.Tensor, path: Path) -> None:
    # torchvision costs over a second to import: not before the first training step
    from torchvision.utils import save_image

    # atomically: a grid torn by a SIGTERM would be a file no image reader opens on resume
    atomic_write(path, lambda tmp: save_image(grid, tmp, format="PNG"))


def sample_grid(generator: torch.nn.Module, train: TrainConfig) -> torch.Tensor:
    """The generator's images of the run's fixed latent vectors as one grid, (C, H, W)."""
    size = train.grid_size
    images = generate_all(generator, size**2, train.seed)
    from torchvision.utils import make_grid  # after the first step: see save_image

    return make_grid(images, nrow=size, padding=2)


def samples(run_dir: Path, name: str) -> Path:
    """samples/`name` in the run folder, which is made where it is not yet."""
    path = run_dir / "samples" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def log_grid(
    tracker: Tracker, generator: torch.nn.Module, train: TrainConfig, run_dir: Path, epoch: int
) -> None:
    """The fixed-noise grid after `epoch` epochs (0: before training) as a file and an image
    of the tracker."""
    grid = sample_grid(generator, train)
    save_image(grid, samples(run_dir, f"epoch_{epoch:04d}.png"))
    tracker.log_image(grid.mul(255).round().byte().permute(1, 2, 0).numpy(), "samples", epoch)


def upload_final_files(
    tracker: Tracker,
    config: Config,
    run_dir: Path,
    generator: torch.nn.Module,
    last: Path,
    best: Path | None,
) -> None:
    """The last step's grid of `generator` (samples/final.png), the checkpoints (`last`, and
    `best` where the run was scored) and the loss curves."""
    final = samples(run_dir, "final.png")  # the grid of the last step, epoch or not
    save_image(sample_grid(generator, config.train), final)
    tracker.log_artifact(final)
    if config.tracking.log_checkpoint:
        tracker.log_artifact(last, "checkpoints")
        if best is not None:
            tracker.log_artifact(best, "checkpoints")
    from gan_lab.plots import LOSS_CURVES, loss_curves  # matplotlib: here, not at start-up

    tracker.log_figure(loss_curves(tracker.metric_history(list(LOSS_CURVES))), "loss_curves.png")


def log_model(tracker: Tracker, config: Config, checkpoints: Checkpoints, epochs: int) -> None:
    """The generator the run leaves (best.pt's where it was scored, else the last, of `epochs`
    epochs) as the tracker's model, registered where tracking.register_model names one."""
    generator, epoch = checkpoints.kept_generator(epochs)
    example = Latents.of(generator, config.train.seed).sample(2)
    tracker.log_generator(generator, example, epoch, config.tracking.register_model)


def open_late(config: Config, run_dir: Path, info: RunInfo, config_dict: dict) -> Tracker | None:
    """The tracker of a run that failed before it opened its own (missing data, say), with the
    config's params, so that every run leaves a record; None where the store itself failed."""
    try:
        tracker = open_tracker(config.tracking, run_dir, info)
        tracker.log_params(flatten(config_dict))
    except GanLabError as error:
        log.error("the outcome could not be recorded: %s", error)
        return None
    return tracker
