"""One run: build everything a validated Config names, train, and write the run folder.

Run folder layout (Hydra's output folder):
  samples/epoch_NNNN.png    fixed-noise sample grid after each epoch
  checkpoints/last.pt       latest checkpoint; epoch_NNNN.pt kept every train.checkpoint_every
  metrics.csv               with tracking=none
  .hydra/                   Hydra's record of the composed config and the overrides
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from gan_lab import checkpoint
from gan_lab.config import Config, ConfigError, resolve_device
from gan_lab.data import image_shape, load_images
from gan_lab.data.batches import BatchSource
from gan_lab.losses import GanLoss
from gan_lab.models.dcgan import Discriminator, Generator, count_parameters
from gan_lab.models.init import initialize
from gan_lab.tracking import LocalTracker, Tracker
from gan_lab.train import Gan, Latents, LoopSettings, fit

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_shapes(
    model_shape: tuple[int, int, int], data_shape: tuple[int, int, int], config: Config
) -> None:
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
def sample_grid(generator: torch.nn.Module, noise: torch.Tensor, nrow: int) -> torch.Tensor:
    """The generator's images for `noise` as one grid in [0, 1], shape (C, H, W)."""
    was_training = generator.training
    generator.eval()
    images = generator(noise).float()
    generator.train(was_training)
    low, high = generator.output_range
    return make_grid((images - low) / (high - low), nrow=nrow, padding=2).clamp_(0, 1).cpu()


def run(config: Config, run_dir: Path, tracker: Tracker | None = None) -> dict[str, float]:
    """Train as `config` says, writing into `run_dir`. Returns the final epoch's mean losses."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.train.device)
    seed_everything(config.train.seed)
    gan, model_shape = build_gan(config, device)
    data_shape = image_shape(config.data, model_shape)
    check_shapes(model_shape, data_shape, config)
    images = load_images(config.data, data_shape)
    batches = BatchSource(
        images,
        config.train.batch_size,
        device,
        gan.generator.output_range,
        config.train.seed,
        config.data.on_device,
    )
    latents = Latents(
        config.model.latent_dim, config.model.latent_distribution, device, config.train.seed
    )
    tracker = tracker or LocalTracker(run_dir)
    config_dict = asdict(config)

    start_step = 0
    resume_from = checkpoint.find_resume(config.train.resume, run_dir)
    if resume_from is not None:
        start_step = checkpoint.restore(checkpoint.load(resume_from), gan, latents)
        log.info("resumed from %s at step %d", resume_from, start_step)

    g_counts, d_counts = count_parameters(gan.generator), count_parameters(gan.discriminator)
    log.info(
        "device %s; %d images %s; G %s parameters (Keras total %s), D %s (%s)",
        device,
        images.shape[0],
        "x".join(map(str, data_shape)),
        f"{g_counts[0]:,}",
        f"{g_counts[1]:,}",
        f"{d_counts[0]:,}",
        f"{d_counts[1]:,}",
    )

    noise = fixed_noise(config, device)
    last_means: dict[str, float] = {}

    def save_checkpoint(step: int, keep_as: str | None) -> None:
        state = checkpoint.training_state(gan, latents, step, config_dict, {})
        checkpoint.save(run_dir / "checkpoints", state, keep_as)

    def on_epoch_end(epoch: int, step: int, means: dict[str, float]) -> None:
        last_means.update(means)
        grid = sample_grid(gan.generator, noise, config.train.grid_size)
        path = run_dir / "samples" / f"epoch_{epoch:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        tracker.log_image(grid.mul(255).round().byte().permute(1, 2, 0).numpy(), "samples", epoch)
        if epoch % config.train.checkpoint_every == 0:
            keep = f"epoch_{epoch:04d}.pt" if config.train.keep_checkpoints else None
            save_checkpoint(step, keep)

    settings = LoopSettings(
        config.train.epochs,
        config.train.max_steps,
        config.tracking.log_every,
        config.train.precision,
        config.train.progress,
    )
    step = fit(
        gan, batches, latents, GanLoss(config.loss), tracker, settings, start_step, on_epoch_end
    )
    if (
        step % batches.steps_per_epoch
        or (step // batches.steps_per_epoch) % config.train.checkpoint_every
    ):
        save_checkpoint(step, None)  # the end of the run always leaves a checkpoint
    log.info("finished at step %d; run folder %s", step, run_dir)
    return last_means
