"""One run: build everything a validated Config names, train, and record the run.

Run folder layout (Hydra's output folder):
  samples/epoch_NNNN.png    fixed-noise sample grid after each epoch; samples/final.png at the end
  checkpoints/last.pt       latest checkpoint; epoch_NNNN.pt kept every train.checkpoint_every
  config.yaml               the resolved config
  loss_curves.png, metrics.csv   with tracking=none (with MLflow they are in the run's record)
  .hydra/                   Hydra's record of the composed config and the overrides
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import yaml
from torchvision.utils import make_grid, save_image

from gan_lab import checkpoint
from gan_lab.config import Config, ConfigError, resolve_device
from gan_lab.data import cache_dir, image_shape, load_images
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


def run(
    config: Config,
    run_dir: Path,
    info: RunInfo | None = None,
    on_evaluation: Callable[[int, dict[str, float]], bool] | None = None,
) -> dict[str, float]:
    """Train as `config` says, writing into `run_dir` and the tracker. Returns the final epoch's
    mean statistics and the last metrics. on_evaluation(epoch, metrics) is called after each
    evaluation and stops the run early when it returns True."""
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
    extra = {k: v for k, v in state["extra"].items() if k != "mlflow_run_id"} if state else {}
    with recorded(tracker):
        return _train(
            config, run_dir, device, gan, latents, start_step, tracker, extra, on_evaluation
        )


class Training:
    """What one run writes, evaluates and keeps between epochs."""

    def __init__(
        self,
        config: Config,
        run_dir: Path,
        device: torch.device,
        gan: Gan,
        latents: Latents,
        tracker: Tracker,
        extra: dict,
        on_evaluation: Callable[[int, dict[str, float]], bool] | None = None,
    ) -> None:
        self.config, self.run_dir, self.device = config, run_dir, device
        self.gan, self.latents, self.tracker = gan, latents, tracker
        self.extra = {**extra, "mlflow_run_id": tracker.run_id}  # goes into every checkpoint
        self.config_dict = asdict(config)
        self.noise = fixed_noise(config, device)
        self.last_means: dict[str, float] = {}
        self.last_metrics: dict[str, float] = {}
        self.evaluated_at = -1
        self.evaluator = None
        self.on_evaluation = on_evaluation  # returns True to stop the run (a pruned trial)
        self.stopped_at: int | None = None

    def prepare(self) -> BatchSource:
        """Record the config, load the data and its metric reference; return the batches."""
        config, tracker = self.config, self.tracker
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config_dict, sort_keys=False))
        tracker.log_params(flatten(self.config_dict))
        tracker.log_artifact(self.run_dir / "config.yaml")
        overrides = self.run_dir / ".hydra" / "overrides.yaml"
        if overrides.exists():
            tracker.log_artifact(overrides)
        data = load_images(config.data, image_shape(config.data, self.gan.generator.output_shape))
        g_counts = count_parameters(self.gan.generator)
        d_counts = count_parameters(self.gan.discriminator)
        log.info(
            "device %s; %d images %s; G %s parameters (Keras total %s), D %s (%s)",
            self.device,
            len(data.images),
            "x".join(map(str, data.images.shape[1:])),
            *(f"{n:,}" for n in (*g_counts, *d_counts)),
        )
        tracker.set_tags(
            {"gan_lab.g_params": str(g_counts[0]), "gan_lab.d_params": str(d_counts[0])}
        )
        if config.metrics.name != "none":
            from gan_lab.metrics import Evaluator  # the Inception network only when measuring

            self.evaluator = Evaluator(
                config.metrics, data.images, data.key, self.device, cache_dir(config.data)
            )
        return BatchSource(
            data.images,
            config.train.batch_size,
            self.device,
            self.gan.generator.output_range,
            config.train.seed,
            config.data.on_device,
            config.data.flip,
        )

    def save_checkpoint(
        self, step: int, name: str = checkpoint.LAST, keep_as: str | None = None
    ) -> Path:
        state = checkpoint.training_state(
            self.gan, self.latents, step, self.config_dict, self.extra
        )
        return checkpoint.save(self.run_dir / "checkpoints", state, name, keep_as)

    def evaluate(self, epoch: int, step: int) -> bool:
        """Score the generator, log the scores at step = epoch, keep best.pt by FID. Returns
        True when the on_evaluation hook asks the run to stop."""
        self.last_metrics = self.evaluator.evaluate(self.gan.generator)
        self.evaluated_at = step
        self.tracker.log_metrics(self.last_metrics, epoch)
        log.info(
            "epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in self.last_metrics.items())
        )
        fid = self.last_metrics.get("fid")
        if fid is not None and fid < self.extra.get("best_fid", float("inf")):
            self.extra.update(best_fid=fid, best_epoch=epoch)
            self.save_checkpoint(step, name="best.pt")
            self.tracker.log_metrics({"best_fid": fid}, epoch)
        if self.on_evaluation is not None and self.on_evaluation(epoch, self.last_metrics):
            self.stopped_at = epoch
            self.tracker.set_tags({"gan_lab.stopped_early": f"after epoch {epoch}"})
            return True
        return False

    def on_epoch_end(self, epoch: int, step: int, means: dict[str, float]) -> bool:
        config = self.config
        self.last_means.update(means)
        grid = sample_grid(self.gan.generator, self.noise, config.train.grid_size)
        path = self.run_dir / "samples" / f"epoch_{epoch:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        self.tracker.log_image(
            grid.mul(255).round().byte().permute(1, 2, 0).numpy(), "samples", epoch
        )
        every = config.metrics.every
        stop = (
            self.evaluator is not None
            and every
            and epoch % every == 0
            and self.evaluate(epoch, step)
        )
        if epoch % config.train.checkpoint_every == 0:
            keep = f"epoch_{epoch:04d}.pt" if config.train.keep_checkpoints else None
            self.save_checkpoint(step, keep_as=keep)
        return bool(stop)

    def finish(self, step: int, per_epoch: int) -> dict[str, float]:
        """The end of the run: a last evaluation and checkpoint, the final grid, the uploads."""
        config, tracker = self.config, self.tracker
        if self.evaluator is not None and self.evaluated_at != step:
            self.evaluate(-(-step // per_epoch), step)
        last = self.run_dir / "checkpoints" / checkpoint.LAST
        at_kept_epoch = (
            step % per_epoch == 0 and (step // per_epoch) % config.train.checkpoint_every == 0
        )
        if not (at_kept_epoch and last.exists()):
            last = self.save_checkpoint(step)  # the end of the run always leaves a checkpoint
        final = self.run_dir / "samples" / "final.png"  # the grid of the last step, epoch or not
        final.parent.mkdir(parents=True, exist_ok=True)
        save_image(sample_grid(self.gan.generator, self.noise, config.train.grid_size), final)
        tracker.log_artifact(final)
        if config.tracking.log_checkpoint:
            tracker.log_artifact(last, "checkpoints")
        tracker.log_figure(
            loss_curves(tracker.metric_history(list(LOSS_CURVES))), "loss_curves.png"
        )
        if config.tracking.log_model:
            tracker.log_generator(self.gan.generator, self.noise[:2])
        log.info("finished at step %d; run folder %s", step, self.run_dir)
        result = {**self.last_means, **self.last_metrics}
        if "best_fid" in self.extra:
            result["best_fid"] = self.extra["best_fid"]
        if self.stopped_at is not None:
            result["stopped_at_epoch"] = self.stopped_at
        return result


def _train(
    config: Config,
    run_dir: Path,
    device: torch.device,
    gan: Gan,
    latents: Latents,
    start_step: int,
    tracker: Tracker,
    extra: dict,
    on_evaluation: Callable[[int, dict[str, float]], bool] | None,
) -> dict[str, float]:
    training = Training(config, run_dir, device, gan, latents, tracker, extra, on_evaluation)
    batches = training.prepare()
    settings = LoopSettings(
        config.train.epochs,
        config.train.max_steps,
        config.tracking.log_every,
        config.train.precision,
        config.train.progress,
    )
    step = fit(
        gan,
        batches,
        latents,
        GanLoss(config.loss),
        tracker,
        settings,
        start_step,
        training.on_epoch_end,
    )
    return training.finish(step, batches.steps_per_epoch)
