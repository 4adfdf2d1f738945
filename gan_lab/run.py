"""One run: build everything a validated Config names, train, and record the run.

Run folder layout (Hydra's output folder):
  samples/epoch_NNNN.png    fixed-noise sample grid after each epoch
  checkpoints/last.pt       latest checkpoint; epoch_NNNN.pt kept every train.checkpoint_every
  config.yaml               the resolved config
  loss_curves.png, metrics.csv   with tracking=none (with MLflow they are in the run's record)
  .hydra/                   Hydra's record of the composed config and the overrides
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import yaml
from torchvision.utils import make_grid, save_image

from gan_lab import checkpoint
from gan_lab.config import Config, ConfigError, resolve_device
from gan_lab.data import image_shape, load_images
from gan_lab.data.batches import BatchSource
from gan_lab.losses import GanLoss
from gan_lab.models.dcgan import Discriminator, Generator, ImageGenerator, count_parameters
from gan_lab.models.init import initialize
from gan_lab.plots import LOSS_CURVES, loss_curves
from gan_lab.tracking import RunInfo, Tracker, environment_tags, flatten, open_tracker
from gan_lab.train import Gan, Latents, LoopSettings, fit

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_shapes(model_shape: tuple, data_shape: tuple, config: Config) -> None:
    if model_shape != data_shape:
        shown = "x".join(map(str, model_shape)), "x".join(map(str, data_shape))
        raise ConfigError(
            "model",
            config.model.name,
            f"it generates {shown[0]} images but data={config.data.name} gives {shown[1]}: choose "
            "a model preset for that image size, or set data.size / data.channels to match",
        )


def build_gan(config: Config, device: torch.device) -> tuple[Gan, tuple[int, int, int]]:
    """Both networks, initialised by the init group, with their optimisers. Also returns the
    image shape the generator produces."""
    generator = Generator(config.model)
    size = generator.output_shape[1]
    discriminator = Discriminator(config.model, size)
    for net in (generator, discriminator):
        initialize(net, config.init.name, config.model.default_init, config.init.std)
        net.to(device)
    optim, fp16 = config.optim, config.train.precision == "fp16"

    def adam(net: torch.nn.Module, lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(optim.betas), eps=optim.eps)

    gan = Gan(
        generator,
        discriminator,
        adam(generator, optim.lr_g),
        adam(discriminator, optim.lr_d),
        torch.amp.GradScaler(device.type, enabled=fp16),
        torch.amp.GradScaler(device.type, enabled=fp16),
    )
    return gan, generator.output_shape


def fixed_noise(config: Config, device: torch.device) -> torch.Tensor:
    """The grid's latent vectors: drawn on the CPU from the run seed, so every device and every
    epoch shows the same points."""
    latents = Latents(
        config.model.latent_dim,
        config.model.latent_distribution,
        torch.device("cpu"),
        config.train.seed,
    )
    return latents.sample(config.train.grid_size**2).to(device)


@torch.no_grad()
def sample_grid(generator: Generator, noise: torch.Tensor, nrow: int) -> torch.Tensor:
    """The generator's images for `noise` as one grid in [0, 1], shape (C, H, W)."""
    was_training = generator.training
    generator.eval()
    images = ImageGenerator(generator)(noise)
    generator.train(was_training)
    return make_grid(images, nrow=nrow, padding=2).cpu()


@contextlib.contextmanager
def recorded(tracker: Tracker) -> Iterator[None]:
    """End the tracked run FINISHED, KILLED (Ctrl-C) or FAILED with the error as a tag."""
    try:
        yield
    except KeyboardInterrupt:
        tracker.finish("KILLED", "interrupted (KeyboardInterrupt)")
        raise
    except BaseException as error:
        tracker.finish("FAILED", f"{type(error).__name__}: {error}")
        raise
    tracker.finish("FINISHED")


def run(config: Config, run_dir: Path, info: RunInfo | None = None) -> dict[str, float]:
    """Train as `config` says, writing into `run_dir` and the tracker. Returns the final epoch's
    mean statistics."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.train.device)
    seed_everything(config.train.seed)
    gan, model_shape = build_gan(config, device)
    data_shape = image_shape(config.data, model_shape)
    check_shapes(model_shape, data_shape, config)
    latents = Latents(
        config.model.latent_dim, config.model.latent_distribution, device, config.train.seed
    )
    resume_from = checkpoint.find_resume(config.train.resume, run_dir)
    state = checkpoint.load(resume_from) if resume_from else None
    start_step = checkpoint.restore(state, gan, latents) if state else 0
    if state:
        log.info("resumed from %s at step %d", resume_from, start_step)

    info = info or RunInfo()
    info.tags.update(environment_tags(device))
    resume_run_id = state["extra"].get("mlflow_run_id") if state else None
    tracker = open_tracker(config.tracking, run_dir, info, resume_run_id)
    with recorded(tracker):
        return _train(config, run_dir, device, gan, latents, start_step, tracker)


def _train(
    config: Config,
    run_dir: Path,
    device: torch.device,
    gan: Gan,
    latents: Latents,
    start_step: int,
    tracker: Tracker,
) -> dict[str, float]:
    config_dict = asdict(config)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_dict, sort_keys=False))
    tracker.log_params(flatten(config_dict))
    tracker.log_artifact(run_dir / "config.yaml")
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if overrides.exists():
        tracker.log_artifact(overrides)

    images = load_images(config.data, image_shape(config.data, gan.generator.output_shape))
    batches = BatchSource(
        images,
        config.train.batch_size,
        device,
        gan.generator.output_range,
        config.train.seed,
        config.data.on_device,
        config.data.flip,
    )
    g_counts, d_counts = count_parameters(gan.generator), count_parameters(gan.discriminator)
    log.info(
        "device %s; %d images %s; G %s parameters (Keras total %s), D %s (%s)",
        device,
        images.shape[0],
        "x".join(map(str, images.shape[1:])),
        *(f"{n:,}" for n in (*g_counts, *d_counts)),
    )

    noise = fixed_noise(config, device)
    last_means: dict[str, float] = {}
    extra = {"mlflow_run_id": tracker.run_id}

    def save_checkpoint(step: int, keep_as: str | None) -> Path:
        state = checkpoint.training_state(gan, latents, step, config_dict, extra)
        return checkpoint.save(run_dir / "checkpoints", state, keep_as)

    def on_epoch_end(epoch: int, step: int, means: dict[str, float]) -> None:
        last_means.update(means)
        grid = sample_grid(gan.generator, noise, config.train.grid_size)
        path = run_dir / "samples" / f"epoch_{epoch:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        tracker.log_image(grid.mul(255).round().byte().permute(1, 2, 0).numpy(), "samples", epoch)
        if epoch % config.train.checkpoint_every == 0:
            save_checkpoint(
                step, f"epoch_{epoch:04d}.pt" if config.train.keep_checkpoints else None
            )

    settings = LoopSettings(
        config.train.epochs,
        config.train.max_steps,
        config.tracking.log_every,
        config.train.precision,
        config.train.progress,
    )
    loss = GanLoss(config.loss)
    step = fit(gan, batches, latents, loss, tracker, settings, start_step, on_epoch_end)
    per_epoch = batches.steps_per_epoch
    last = run_dir / "checkpoints" / checkpoint.LAST
    if step % per_epoch or (step // per_epoch) % config.train.checkpoint_every or not last.exists():
        last = save_checkpoint(step, None)  # the end of the run always leaves a checkpoint
    if config.tracking.log_checkpoint:
        tracker.log_artifact(last, "checkpoints")
    tracker.log_figure(loss_curves(tracker.metric_history(list(LOSS_CURVES))), "loss_curves.png")
    if config.tracking.log_model:
        tracker.log_generator(gan.generator, noise[:2])
    log.info("finished at step %d; run folder %s", step, run_dir)
    return last_means
