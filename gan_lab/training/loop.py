"""The training loop, and nothing else: alternating discriminator and generator updates.

It knows nothing of Hydra, MLflow or files. It gets the networks, their optimisers, a batch
source, a latent sampler, the training step (the loss and the recipe's extras) and a tracker, and
reports each finished epoch to a callback.
Per-step statistics stay on the device and are read once every `log_every` steps, so a step
never waits for the device except when logging.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from tqdm import tqdm

from gan_lab.config.choices import Precision
from gan_lab.data.batches import BatchSource
from gan_lab.errors import RunDiverged
from gan_lab.models.gan import Gan
from gan_lab.sampling import Latents
from gan_lab.training.losses import GanLoss, make_loss

if TYPE_CHECKING:
    from gan_lab.config import Config
    from gan_lab.training.augment import Augment


class MetricsLog(Protocol):
    """All the loop asks of a tracker (gan_lab.tracking's Tracker is one): it knows no store."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...


STEP_METRICS = ("g_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")
_DTYPES = {Precision.FP32: None, Precision.FP16: torch.float16, Precision.BF16: torch.bfloat16}
# What to try when the losses become NaN, by the precision that trained
_DIVERGED_FIX = {
    Precision.FP32: "lower optim.lr, or check the data (train.precision is fp32 already)",
    Precision.BF16: "lower optim.lr, or use train.precision=fp32",
    Precision.FP16: "lower optim.lr, or use train.precision=bf16 (a GPU of compute capability 8+)"
    " or fp32",
}
log = logging.getLogger(__name__)


@dataclass
class LoopSettings:
    epochs: int
    max_steps: int | None
    log_every: int
    progress: bool = True
    max_minutes: float | None = None

    @classmethod
    def of(cls, config: Config) -> LoopSettings:
        train = config.train
        log_every = config.tracking.log_every
        return cls(train.epochs, train.max_steps, log_every, train.progress, train.max_minutes)


class Position(Protocol):
    """Where the loop is: it starts at `step` and moves it on after every step, and `seconds`
    (the wall-clock time the loop has trained, over every resume, its hooks' time left out)
    with it."""

    step: int
    seconds: float


def autocast(device: torch.device, precision: str):
    dtype = _DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def discriminate(gan: Gan, real: torch.Tensor, fake: torch.Tensor):
    """D's logits on the real and the fake batch: in one pass where D keeps no batch statistics
    (fewer, larger calls), else in two, as batch norm's per-batch statistics require."""
    if gan.one_pass:
        logits = gan.discriminator(torch.cat([real, fake]))
        return logits[: len(real)], logits[len(real) :]
    return gan.discriminator(real), gan.discriminator(fake)


def gradient_penalty(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The mean over images of ||grad_x D(x)||^2 at the images x that D's `logits` are of: R1
    on real images, R2 on fake ones (kept differentiable, so that D's update minimises it)."""
    (grad,) = torch.autograd.grad(logits.float().sum(), images, create_graph=True)
    return grad.float().square().sum(dim=(1, 2, 3)).mean()


def cosine_schedule(start: float, end_ratio: float | None, progress: float) -> float:
    """R3GAN's schedule shortened to the run: from `start` at progress 0 to start * end_ratio
    at progress 1 along half a cosine (brownvc/R3GAN, training/training_loop.py,
    cosine_decay_with_warmup without its warm-up and hold, progress in place of
    cur_nimg / total_nimg, and the end value past the end); `start` itself where end_ratio is
    null. A pure function of its arguments, so that a resumed run follows it exactly."""
    if end_ratio is None:
        return start
    decay = 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return start + (1 - decay) * (start * end_ratio - start)


class TrainStep:
    """One discriminator update (a real and a fake batch), then one generator update through
    the discriminator, with what the recipe adds: the R1 (real) and R2 (fake) penalties every
    r1_every steps, the augmentation of every image D sees, the generator's moving average
    after its update.

    `progress` is how far the run has come (0.0 at its start, 1.0 at its end), set by the
    training loop before every step; the gammas (gamma_end_ratio) and the learning rates
    (lr_end_ratio, from lr_start = (G's, D's)) follow cosine_schedule over it where an end
    ratio is set, else they stay constant and progress is not read."""

    def __init__(
        self,
        loss: GanLoss,
        precision: str,
        r1_gamma: float = 0.0,
        r1_every: int = 16,
        augment: Augment | None = None,
        *,
        r2_gamma: float = 0.0,
        gamma_end_ratio: float | None = None,
        lr_start: tuple[float, float] | None = None,
        lr_end_ratio: float | None = None,
    ) -> None:
        if lr_end_ratio is not None and lr_start is None:
            raise ValueError("a learning-rate schedule needs lr_start, (G's, D's) at progress 0")
        self.loss, self.precision, self.augment = loss, precision, augment
        self.r1_gamma, self.r2_gamma, self.r1_every = r1_gamma, r2_gamma, r1_every
        self.gamma_end_ratio = gamma_end_ratio
        self.lr_start, self.lr_end_ratio = lr_start, lr_end_ratio
        self.progress = 0.0
        self.metrics = STEP_METRICS + (("augment_p",) if augment is not None else ())

    @classmethod
    def of(cls, config: Config, precision: str, augment: Augment | None) -> TrainStep:
        loss, optim = config.loss, config.optim
        return cls(
            make_loss(loss),
            precision,
            loss.r1_gamma,
            loss.r1_every,
            augment,
            r2_gamma=loss.r2_gamma,
            gamma_end_ratio=loss.gamma_end_ratio,
            lr_start=(optim.lr_g, optim.lr_d),
            lr_end_ratio=optim.lr_end_ratio,
        )

    def gammas(self) -> tuple[float, float]:
        """R1's and R2's gamma at the current progress."""
        ratio, progress = self.gamma_end_ratio, self.progress
        return (
            cosine_schedule(self.r1_gamma, ratio, progress),
            cosine_schedule(self.r2_gamma, ratio, progress),
        )

    def learning_rates(self) -> tuple[float, float] | None:
        """G's and D's learning rates at the current progress; None where they are constant
        (the optimisers' own)."""
        if self.lr_end_ratio is None or self.lr_start is None:
            return None
        lr_g, lr_d = self.lr_start
        return (
            cosine_schedule(lr_g, self.lr_end_ratio, self.progress),
            cosine_schedule(lr_d, self.lr_end_ratio, self.progress),
        )

    def __call__(self, gan: Gan, real: torch.Tensor, latents: Latents, step: int) -> torch.Tensor:
        """Global step `step` (from 1). Returns its statistics (self.metrics) as one tensor on
        the device."""
        g, d, loss, augment = gan.generator, gan.discriminator, self.loss, self.augment
        seen = augment if augment is not None else (lambda images: images)
        lazy_step = step % self.r1_every == 0
        with_r1, with_r2 = lazy_step and self.r1_gamma > 0, lazy_step and self.r2_gamma > 0
        lrs = self.learning_rates()
        if lrs is not None:
            for opt, lr in ((gan.opt_g, lrs[0]), (gan.opt_d, lrs[1])):
                for group in opt.param_groups:
                    group["lr"] = lr
        if with_r1:
            real = real.detach().requires_grad_(True)
        z = latents.sample(real.shape[0])
        with autocast(real.device, self.precision):
            fake = g(z)
            fake_in = fake.detach().requires_grad_(True) if with_r2 else fake.detach()
            real_logits, fake_logits = discriminate(gan, seen(real), seen(fake_in))
            loss_real, loss_fake = loss.discriminator(real_logits, fake_logits)
        d_loss = loss_real + loss_fake
        if with_r1 or with_r2:  # lazy: weighted by the interval, as StyleGAN2 does
            r1_gamma, r2_gamma = self.gammas()
            if with_r1:
                penalty = gradient_penalty(real_logits, real)
                d_loss = d_loss + penalty * (r1_gamma / 2 * self.r1_every)
            if with_r2:
                penalty = gradient_penalty(fake_logits, fake_in)
                d_loss = d_loss + penalty * (r2_gamma / 2 * self.r1_every)
        gan.opt_d.zero_grad(set_to_none=True)
        gan.scaler_d.scale(d_loss).backward()
        gan.scaler_d.step(gan.opt_d)
        gan.scaler_d.update()
        if augment is not None:
            augment.observe(real_logits, step)

        d.requires_grad_(False)  # G's update needs gradients through D, not for D's weights
        with autocast(real.device, self.precision):
            fake_logits_now = d(seen(fake))
            real_logits_now = None
            if loss.generator_needs_real:  # D(real) after D's update, no graph needed
                with torch.no_grad():
                    real_logits_now = d(seen(real.detach()))
            g_loss = loss.generator(fake_logits_now, real_logits_now)
        gan.opt_g.zero_grad(set_to_none=True)
        gan.scaler_g.scale(g_loss).backward()
        gan.scaler_g.step(gan.opt_g)
        gan.scaler_g.update()
        d.requires_grad_(True)
        if gan.ema is not None:
            gan.ema.update(g, step * real.shape[0])

        scores = (loss.score(real_logits).mean(), loss.score(fake_logits).mean())
        stats = [g_loss.float(), loss_real.float(), loss_fake.float(), *scores]
        if augment is not None:
            stats.append(augment.p)
        return torch.stack(stats).detach()


def _read(sums: torch.Tensor, count: int, step: int, train_step: TrainStep) -> dict[str, float]:
    """The one device synchronisation: mean statistics since the last read."""
    names, values = train_step.metrics, (sums / count).tolist()
    if not all(math.isfinite(v) for v in values):
        shown = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, values, strict=True))
        fix = _DIVERGED_FIX[train_step.precision]
        raise RunDiverged(f"training diverged by step {step} ({shown}): {fix}")
    return dict(zip(names, values, strict=True))


def last_step(settings: LoopSettings, per_epoch: int) -> int:
    """Where training ends but for a time budget: train.epochs' last step, or train.max_steps
    if that comes first."""
    total = settings.epochs * per_epoch
    return total if settings.max_steps is None else min(total, settings.max_steps)


def total_steps(settings: LoopSettings, per_epoch: int) -> int:
    """last_step(), and a max_steps that the epochs never reach said once, at the start."""
    total = settings.epochs * per_epoch
    if settings.max_steps is not None and settings.max_steps > total:
        log.warning(
            "train.max_steps=%d is never reached: train.epochs=%d ends the run at step %d "
            "(%d steps an epoch); set train.epochs=%d to train %d steps",
            settings.max_steps,
            settings.epochs,
            total,
            per_epoch,
            -(-settings.max_steps // per_epoch),
            settings.max_steps,
        )
    return last_step(settings, per_epoch)


@dataclass
class Training:
    """What the loop trains, how, and where it reports: its whole input but where it starts."""

    gan: Gan
    batches: BatchSource
    latents: Latents
    train_step: TrainStep
    tracker: MetricsLog
    settings: LoopSettings


def fit(
    training: Training,
    position: Position,
    on_epoch_end: Callable[[int, int, dict[str, float]], bool] = lambda epoch, step, means: False,
    step_guard: AbstractContextManager | None = None,
    on_step_end: Callable[[int], bool] | None = None,
) -> int:
    """Train from global step `position.step` to the end of `settings.epochs` (or `max_steps`,
    or the step after `max_minutes`), moving `position.step` and `position.seconds` (training
    time: the hooks' time left out) on after every step; the training step's `progress` (0 to
    1, its schedules' clock) is set before each step: the share of the steps or of the minutes,
    whichever is further. Calls
    on_epoch_end(completed_epochs, step, epoch_means) after each complete epoch, which returns
    True to stop early (a pruned search trial), and on_step_end(step), where given, after every
    step (the same); returns the last step reached. Each step runs inside `step_guard`, which
    may end the loop between two steps by raising (training/signals.py's handling of SIGTERM)."""
    gan, batches, latents = training.gan, training.batches, training.latents
    train_step, tracker, settings = training.train_step, training.tracker, training.settings
    per_epoch = batches.steps_per_epoch
    total = total_steps(settings, per_epoch)
    step = position.step
    step_guard = step_guard or contextlib.nullcontext()
    budget = settings.max_minutes * 60 if settings.max_minutes else math.inf
    started, seconds_before = time.perf_counter(), position.seconds
    # Time in the hooks (evaluations, grids, checkpoints) is not training: train.max_minutes
    # counts training alone, so a budget buys the same training on a machine that scores slowly
    # (emulated bf16, say); the run records the hooks' minutes apart.
    paused = 0.0

    def seconds() -> float:
        return seconds_before + time.perf_counter() - started - paused

    out_of_time = stopped = False
    quiet = None if settings.progress else True  # None: quiet where output is not a terminal
    bar = tqdm(total=total, initial=step, disable=quiet, unit="step", mininterval=1)
    gan.generator.train()
    gan.discriminator.train()
    while step < total and not (out_of_time or stopped):
        epoch = step // per_epoch
        window = torch.zeros(len(train_step.metrics), device=batches.device)
        epoch_sum = torch.zeros_like(window)
        window_steps = epoch_steps = 0
        clock = time.perf_counter()
        for real in batches.epoch(epoch, start=step - epoch * per_epoch):
            train_step.progress = min(1.0, max(step / total, seconds() / budget))
            with step_guard:
                stats = train_step(gan, real, latents, step + 1)
                step += 1
                position.step, position.seconds = step, seconds()
            window += stats
            window_steps += 1
            bar.update(1)
            out_of_time = position.seconds >= budget
            at_end = step % per_epoch == 0 or step >= total or out_of_time
            if step % settings.log_every == 0 or at_end:
                epoch_sum += window
                epoch_steps += window_steps
                metrics = _read(window, window_steps, step, train_step)
                now = time.perf_counter()
                metrics["images_per_sec"] = window_steps * batches.batch_size / (now - clock)
                metrics["images_seen"] = step * batches.batch_size
                metrics["train_minutes"] = position.seconds / 60
                lrs = {"lr_g": gan.opt_g.param_groups[0]["lr"]}  # a schedule may move them
                lrs["lr_d"] = gan.opt_d.param_groups[0]["lr"]
                tracker.log_metrics({**metrics, **lrs}, step)
                bar.set_postfix(
                    epoch=epoch + 1,
                    g_loss=f"{metrics['g_loss']:.3f}",
                    d_loss_real=f"{metrics['d_loss_real']:.3f}",
                    d_loss_fake=f"{metrics['d_loss_fake']:.3f}",
                    img_s=f"{metrics['images_per_sec']:.0f}",
                    refresh=False,
                )
                window.zero_()
                window_steps, clock = 0, now
            if on_step_end is not None:
                hook_start = time.perf_counter()
                stopped = on_step_end(step)
                pause = time.perf_counter() - hook_start
                clock += pause  # its evaluation is not training speed
                paused += pause
            if step >= total or out_of_time or stopped:
                break
        if step % per_epoch == 0 and not stopped:
            means = _read(epoch_sum, epoch_steps, step, train_step)
            tracker.log_metrics({f"epoch_{k}": v for k, v in means.items()}, step // per_epoch)
            hook_start = time.perf_counter()
            stop = on_epoch_end(step // per_epoch, step, means)
            paused += time.perf_counter() - hook_start
            if stop:
                break
    bar.close()
    return step
