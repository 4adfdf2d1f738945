"""The training loop, and nothing else: alternating discriminator and generator updates.

It knows nothing of Hydra, MLflow or files. It gets the networks, their optimisers, a batch
source, a latent sampler, the training step (the loss and the recipe's extras) and somewhere to
log the step statistics, and reports each finished epoch to a callback, which may stop it.
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
from typing import TYPE_CHECKING, Protocol, TypeVar

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
    """What the loop trains and how: its whole input but where it starts and where it reports."""

    gan: Gan
    batches: BatchSource
    latents: Latents
    train_step: TrainStep
    settings: LoopSettings


Stop = TypeVar("Stop")  # what a hook answers to end the loop early: fit hands it back unread


class _Clock:
    """The loop's training time: the seconds trained before this call of fit (over every
    resume) and since, the hooks' time left out. Time in the hooks (evaluations, grids,
    checkpoints) is not training: train.max_minutes counts training alone, so a budget buys the
    same training on a machine that scores slowly (emulated bf16, say); the run records the
    hooks' minutes apart."""

    def __init__(self, seconds_before: float, max_minutes: float | None) -> None:
        self.started, self.before, self.paused = time.perf_counter(), seconds_before, 0.0
        self.budget = max_minutes * 60 if max_minutes else math.inf

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started - self.paused

    def paused_for(self, hook: Callable[..., Stop | None], *args) -> tuple[Stop | None, float]:
        """hook(*args) off the clock: its answer, and the seconds it took."""
        start = time.perf_counter()
        answer = hook(*args)
        pause = time.perf_counter() - start
        self.paused += pause
        return answer, pause


class _Sums:
    """The step statistics, summed on the device: since the last read (the window) and over
    the epoch."""

    def __init__(self, size: int, device: torch.device) -> None:
        self.window, self.window_steps = torch.zeros(size, device=device), 0
        self.epoch, self.epoch_steps = torch.zeros_like(self.window), 0

    def add(self, stats: torch.Tensor) -> None:
        self.window += stats
        self.window_steps += 1

    def read_window(self, step: int, train_step: TrainStep) -> tuple[dict[str, float], int]:
        """The window's means and its steps; the window is added to the epoch and emptied."""
        self.epoch += self.window
        self.epoch_steps += self.window_steps
        means, steps = _read(self.window, self.window_steps, step, train_step), self.window_steps
        self.window.zero_()
        self.window_steps = 0
        return means, steps


def fit(
    training: Training,
    position: Position,
    tracker: MetricsLog,
    on_epoch_end: Callable[[int, int, dict[str, float]], Stop | None] = lambda *args: None,
    step_guard: AbstractContextManager | None = None,
    on_step_end: Callable[[int], Stop | None] | None = None,
) -> Stop | None:
    """Train from global step `position.step` to the end of `settings.epochs` (or `max_steps`,
    or the step after `max_minutes`), moving `position.step` and `position.seconds` (training
    time: the hooks' time left out) on after every step and logging the step statistics to
    `tracker` every `log_every` steps; the training step's `progress` (0 to 1, its schedules'
    clock) is set before each step: the share of the steps or of the minutes, whichever is
    further. Calls on_epoch_end(completed_epochs, step, epoch_means) after each complete epoch,
    and on_step_end(step), where given, after every step: each returns None to go on, or what
    stops the loop now (a pruned search trial), which fit returns; None where it ran to its end.
    Each step runs inside `step_guard`, which may end the loop between two steps by raising
    (training/signals.py's handling of SIGTERM)."""
    gan, per_epoch = training.gan, training.batches.steps_per_epoch
    total = total_steps(training.settings, per_epoch)
    clock = _Clock(position.seconds, training.settings.max_minutes)
    steps = _Steps(training, position, tracker, total, clock)
    guard = step_guard or contextlib.nullcontext()
    gan.generator.train()
    gan.discriminator.train()
    stop, out_of_time = None, False  # the budget is checked after each step
    while stop is None and position.step < total and not out_of_time:
        # 1. the steps of one epoch, from where the last left off (mid-epoch after a resume)
        stop, sums = steps.epoch(guard, on_step_end)
        out_of_time = position.seconds >= clock.budget
        if stop is not None or position.step % per_epoch:  # stopped, or out of steps or time
            break
        # 2. the complete epoch's means, and its hook (grids, evaluations, checkpoints)
        means = _read(sums.epoch, sums.epoch_steps, position.step, training.train_step)
        epochs = position.step // per_epoch
        tracker.log_metrics({f"epoch_{k}": v for k, v in means.items()}, epochs)
        stop, _ = clock.paused_for(on_epoch_end, epochs, position.step, means)
    steps.bar.close()
    return stop


class _Steps:
    """fit's steps, an epoch at a time, their statistics read and logged every `log_every`
    steps and at the epoch's end, and shown on a progress bar."""

    def __init__(
        self, training: Training, position: Position, tracker: MetricsLog, total: int, clock: _Clock
    ) -> None:
        self.training, self.position, self.tracker = training, position, tracker
        self.total, self.clock = total, clock
        quiet = None if training.settings.progress else True  # None: quiet off a terminal
        self.bar = tqdm(
            total=total, initial=position.step, disable=quiet, unit="step", mininterval=1
        )
        self.window_start = 0.0  # the images_per_sec window's start, on the clock

    def epoch(
        self, step_guard: AbstractContextManager, on_step_end: Callable[[int], Stop | None] | None
    ) -> tuple[Stop | None, _Sums]:
        """The steps to the end of the epoch, of the steps or of the time (or to a stop from
        on_step_end, returned); the epoch's sums."""
        training, position, clock, total = self.training, self.position, self.clock, self.total
        gan, batches, train_step = training.gan, training.batches, training.train_step
        per_epoch = batches.steps_per_epoch
        epoch = position.step // per_epoch
        sums = _Sums(len(train_step.metrics), batches.device)
        self.window_start = time.perf_counter()
        for real in batches.epoch(epoch, start=position.step - epoch * per_epoch):
            # 1. one D and one G update, at the run's progress through its schedules
            share = max(position.step / total, clock.seconds() / clock.budget)
            train_step.progress = min(1.0, share)
            with step_guard:
                stats = train_step(gan, real, training.latents, position.step + 1)
                position.step, position.seconds = position.step + 1, clock.seconds()
            sums.add(stats)
            self.bar.update(1)
            step, out_of_time = position.step, position.seconds >= clock.budget
            at_end = step % per_epoch == 0 or step >= total or out_of_time
            # 2. the statistics, every log_every steps and at the end
            if step % training.settings.log_every == 0 or at_end:
                self.log_window(sums, epoch)
            # 3. the hook after every step (evaluations by minutes), off the clock
            if on_step_end is not None:
                stop, pause = clock.paused_for(on_step_end, step)
                self.window_start += pause  # its evaluation is not training speed
                if stop is not None:
                    return stop, sums
            if at_end:
                break
        return None, sums

    def log_window(self, sums: _Sums, epoch: int) -> None:
        """The window's mean statistics, the speed, the images seen and the learning rates
        (a schedule may move them) to the tracker at the step reached; the bar's postfix."""
        training, step = self.training, self.position.step
        gan, batch_size = training.gan, training.batches.batch_size
        metrics, steps = sums.read_window(step, training.train_step)
        now = time.perf_counter()
        metrics["images_per_sec"] = steps * batch_size / (now - self.window_start)
        metrics["images_seen"] = step * batch_size
        metrics["train_minutes"] = self.position.seconds / 60
        lrs = {"lr_g": gan.opt_g.param_groups[0]["lr"], "lr_d": gan.opt_d.param_groups[0]["lr"]}
        self.tracker.log_metrics({**metrics, **lrs}, step)
        self.bar.set_postfix(
            epoch=epoch + 1,
            g_loss=f"{metrics['g_loss']:.3f}",
            d_loss_real=f"{metrics['d_loss_real']:.3f}",
            d_loss_fake=f"{metrics['d_loss_fake']:.3f}",
            img_s=f"{metrics['images_per_sec']:.0f}",
            refresh=False,
        )
        self.window_start = now
