"""One run, read top to bottom in the order its data flows: data, networks, resume, tracker,
metrics, loop, finish. It returns how the run ended (outcome.Outcome), recorded once.

Run folder layout (Hydra's output folder):
  samples/epoch_NNNN.png    fixed-noise sample grid after each epoch; samples/final.png at the end
  checkpoints/              last.pt, epoch_NNNN.pt, best.pt (checkpoint.py)
  config.yaml               the resolved config
  metrics.csv, loss_curves.png, outcome.json   with tracking=none (else in the MLflow run)
  .hydra/                   Hydra's record of the composed config and the overrides
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from gan_lab import tags as tag
from gan_lab.config import Config
from gan_lab.config.choices import MetricsName, Precision
from gan_lab.data import cache_dir
from gan_lab.data.datasets import DataSet
from gan_lab.data.split import Split
from gan_lab.devices import native_bf16, resolve_device, resolve_precision
from gan_lab.errors import GanLabError, Refused, RunDiverged, Terminated
from gan_lab.files import atomic_write
from gan_lab.metrics.scores import REFERENCE, SAMPLES
from gan_lab.models.gan import Gan
from gan_lab.models.parameters import count_parameters
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.sampling import Latents, generate_all
from gan_lab.tracking import (
    RunInfo,
    Tracker,
    environment_tags,
    flatten,
    open_tracker,
    placement_tags,
)
from gan_lab.tracking.local import LocalTracker
from gan_lab.tracking.store import StoreUnreachable
from gan_lab.training.augment import Augment
from gan_lab.training.checkpoint import BEST, Checkpoints, Progress, one_writer
from gan_lab.training.checks import check_names
from gan_lab.training.continuation import Continuation
from gan_lab.training.loop import LoopSettings, TrainStep, fit, last_step
from gan_lab.training.parts import Parts, build_networks, load_data
from gan_lab.training.signals import Termination, sigterm_handled

log = logging.getLogger(__name__)


def run(config: Config, run_dir: Path, info: RunInfo | None = None) -> Outcome:
    """Train as `config` says, writing into `run_dir` and the tracker, and return how it ended.
    Ctrl-C and SIGTERM (SIGUSR2 under submitit) are recorded KILLED and raised again
    (KeyboardInterrupt, Terminated): they stop the process, a sweep's too. Every other ending is
    returned."""
    job = Run(config, Path(run_dir), info or RunInfo())
    try:
        with one_writer(job.run_dir):
            return _run(job)
    except Refused as error:  # before the run began: nothing to record (see Refused)
        return _failed(Reason.ERROR, error)


def _run(job: Run) -> Outcome:
    """run()'s body, with the run folder held: every ending recorded once."""
    try:
        with sigterm_handled(job.termination):
            outcome = job.execute()
    except Refused:
        raise
    except KeyboardInterrupt:
        job.record(Outcome(Status.KILLED, reason=Reason.INTERRUPTED, error="Ctrl-C"))
        raise
    except Terminated:
        job.save_before_exit()
        termination = job.termination
        job.record(Outcome(Status.KILLED, reason=Reason.TERMINATED, error=termination.name))
        termination.forward()  # SLURM's warning: submitit requeues the job, which resumes
        raise
    except RunDiverged as error:
        outcome = _failed(Reason.DIVERGED, error)
    except Exception as error:
        outcome = _failed(Reason.ERROR, error)
    return job.record(outcome)


def train(config: Config, run_dir: str | Path | None = None) -> Outcome:
    """run() for notebooks and scripts: into `run_dir`, else outputs/<date>/<time> as a command
    line run would, tracked as the config says."""
    import time

    folder = Path(run_dir) if run_dir else Path("outputs") / time.strftime("%Y-%m-%d/%H-%M-%S")
    return run(config, folder)


def _failed(reason: Reason, error: Exception) -> Outcome:
    text = str(error) if isinstance(error, GanLabError) else f"{type(error).__name__}: {error}"
    return Outcome(Status.FAILED, reason=reason, error=text, exception=error)


def _save_image(grid: torch.Tensor, path: Path) -> None:
    # torchvision costs over a second to import: not before the first training step
    from torchvision.utils import save_image

    # atomically: a grid torn by a SIGTERM would be a file no image reader opens on resume
    atomic_write(path, lambda tmp: save_image(grid, tmp, format="PNG"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Run:
    """One run: execute() builds its Parts phase by phase, trains them, finishes."""

    def __init__(self, config: Config, run_dir: Path, info: RunInfo) -> None:
        self.config, self.run_dir, self.info = config, run_dir, info
        self.config_dict = asdict(config)
        self.parts: Parts | None = None  # once every phase has built its part
        self.checkpoints: Checkpoints | None = None  # phases 3 and 4: the outcome needs them
        self.tracker: Tracker | None = None
        self.means: dict[str, float] = {}  # the last epoch's mean step statistics
        self.scores: dict[str, float] = {}  # the last evaluation
        self.evaluated_at = -1
        self.evaluated_mark = 0  # metrics.every_minutes: the minute mark last evaluated at
        self.early_outcome: Outcome | None = None  # set when the run stops early on purpose
        self.termination = Termination()
        self.start_step: int | None = None  # where training began in this process

    @property
    def progress(self) -> Progress:
        return self.checkpoints.progress

    @property
    def epochs_begun(self) -> int:
        """The epoch the step reached belongs to (a partial epoch counts): scores and the final
        generator are labelled with it."""
        return -(-self.progress.step // self.parts.batches.steps_per_epoch)

    def execute(self) -> Outcome:
        config = self.config
        check_names(config)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        device = resolve_device(config.train.device)
        precision = resolve_precision(config.train.precision, device)
        if precision == Precision.BF16 and not native_bf16(device):
            log.warning("train.precision=bf16: this %s emulates bf16, slower than fp32", device)
        data = load_data(config)  # 1. data
        seed_everything(config.train.seed)  # here: building a data cache draws from the RNG
        gan, augment, latents, batches = build_networks(config, data.train, device)  # 2.
        checkpoints = self.resume(gan, latents, augment)
        tracker = self.open_tracker(data, gan, device, precision)
        evaluator, judge = self.prepare_metrics(data.reference, device)
        checkpoints.restore_rng()  # last: building the metrics draws from the RNG too
        step = TrainStep.of(config, precision, augment)
        self.parts = Parts(
            gan, batches, latents, step, tracker, LoopSettings.of(config), device, precision,
            data, augment, checkpoints, evaluator, judge,
        )  # fmt: skip
        if self.progress.step == 0:  # MLflow's image card opens on a picture from the start
            self.log_grid(0)
        log.info("training from step %d in %s", self.progress.step, precision)
        by_minutes = self.config.metrics.every_minutes is not None and evaluator is not None
        after_step = self.after_step if by_minutes else None
        fit(self.parts, self.progress, self.after_epoch, self.termination, after_step)
        return self.finish()

    # 3. resume: weights, optimisers and progress of a checkpoint (its RNG states before the loop)
    def resume(self, gan: Gan, latents: Latents, augment: Augment | None) -> Checkpoints:
        folder = self.run_dir / "checkpoints"
        self.checkpoints = Checkpoints(
            folder, self.config.train, self.config_dict, gan, latents, augment
        )
        if self.checkpoints.continue_from(Continuation(self.config.train.resume)).step:
            log.info("resumed at step %d", self.progress.step)
        self.start_step = self.progress.step
        return self.checkpoints

    # 4. tracker: the run's record, continued when the checkpoint names one
    def open_tracker(self, data: Split, gan: Gan, device: torch.device, precision: str) -> Tracker:
        config = self.config
        tags = {**self.info.tags, **environment_tags(device), tag.PRECISION: precision}
        if config.trial.number is not None:
            tags.update({tag.TRIAL: str(config.trial.number), tag.STUDY: config.trial.study})
        g_params, d_params = count_parameters(gan.generator), count_parameters(gan.discriminator)
        tags.update({tag.G_PARAMS: str(g_params[0]), tag.D_PARAMS: str(d_params[0])})
        tags[tag.IMAGES] = str(len(data.train.images))
        if data.held_out is not None:
            tags[tag.HOLDOUT] = f"{len(data.indices)} images, data.seed {config.data.seed}"
        info = replace(self.info, tags=tags)
        continuation = Continuation(config.train.resume)
        run_id = continuation.tracked_run(self.progress.tracking_run_id, self.run_dir)
        self.tracker = tracker = open_tracker(config.tracking, self.run_dir, info, run_id)
        self.progress.tracking_run_id = tracker.run_id
        if placed := placement_tags():  # set again by a resumed run: a requeued job's count
            tracker.set_tags(placed)
        config_file = self.run_dir / "config.yaml"
        config_file.write_text(yaml.safe_dump(self.config_dict, sort_keys=False))
        tracker.log_params(flatten(self.config_dict))
        tracker.log_dataset(config.data.name, data.train.key, config.data.path)
        tracker.log_artifact(config_file)
        if data.held_out is not None:  # which images the scores are against, never trained on
            held_out = self.run_dir / "holdout.json"
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
        overrides = self.run_dir / ".hydra" / "overrides.yaml"
        if overrides.exists():
            tracker.log_artifact(overrides)
        log.info(
            "device %s; %d images %s; G %s parameters (Keras total %s), D %s (%s)",
            device,
            len(data.train.images),
            "x".join(map(str, data.train.images.shape[1:])),
            *(f"{n:,}" for n in (*g_params, *d_params)),
        )
        return tracker

    # 5. metrics: the evaluator and its reference statistics; a search trial's judge
    def prepare_metrics(self, data: DataSet, device: torch.device) -> tuple[Any, Any]:
        config = self.config
        evaluator = judge = None
        if config.metrics.name != MetricsName.NONE:
            from gan_lab.metrics.evaluator import Evaluator  # Inception only when measuring

            data_cache = cache_dir(config.data)
            evaluator = Evaluator(config.metrics, data.images, data.key, device, data_cache)
        if config.trial.number is not None:
            from gan_lab.search.trial import TrialJudge  # Optuna only in a search

            judge = TrialJudge(config.trial)
            judge.tracked_as(self.tracker.run_id)
        return evaluator, judge

    # 6. the loop's hook after each epoch: grid, evaluation when due, checkpoint when due
    def after_epoch(self, epoch: int, step: int, means: dict[str, float]) -> bool:
        """Returns True to stop the run now (a pruned trial)."""
        self.means = means
        self.log_grid(epoch)
        if self.parts.evaluator is not None and self.evaluation_due(epoch):
            self.evaluate(epoch)
        self.checkpoints.after_epoch(epoch)
        return self.early_outcome is not None

    def evaluation_due(self, epoch: int) -> bool:
        """metrics.every epochs (metrics.every_minutes: after_step decides)."""
        metrics = self.config.metrics
        return metrics.every_minutes is None and bool(metrics.every) and epoch % metrics.every == 0

    def after_step(self, step: int) -> bool:
        """metrics.every_minutes: an evaluation at the step after each of those minutes of
        training, whatever the epoch. Returns True to stop the run now (a pruned trial)."""
        if self.minute_mark() > self.evaluated_mark:
            self.evaluate(self.epochs_begun)
        return self.early_outcome is not None

    def minute_mark(self) -> int:
        """How many metrics.every_minutes the loop has run."""
        return int(self.progress.seconds // (self.config.metrics.every_minutes * 60))

    def evaluate(self, epoch: int) -> None:
        """Score the generator, log the scores at step = epoch, keep best.pt by FID, and let a
        search trial's judge decide whether the run goes on."""
        parts, gan = self.parts, self.parts.gan
        started = time.perf_counter()
        self.scores = parts.evaluator.evaluate(gan.eval_generator)
        fid, raw_better = self.scores.get("fid"), False
        if gan.ema is not None and self.config.ema.score_raw:  # which of the two to keep
            raw = parts.evaluator.evaluate(gan.generator)
            self.scores |= {f"{k}_raw": v for k, v in raw.items() if k not in (SAMPLES, REFERENCE)}
            if fid is not None and raw["fid"] < fid:
                fid, raw_better = raw["fid"], True
        self.evaluated_at = self.progress.step
        self.progress.eval_seconds += time.perf_counter() - started
        self.tracker.log_metrics({**self.scores, **self.minutes_spent()}, epoch)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in self.scores.items()))
        progress = self.progress
        if fid is not None and (progress.best_fid is None or fid < progress.best_fid):
            progress.best_fid, progress.best_epoch = fid, epoch
            self.checkpoints.best(raw_better)
            self.tracker.log_metrics({"best_fid": fid}, epoch)
        if self.config.metrics.every_minutes is not None:
            self.evaluated_mark = self.minute_mark()
        if parts.judge is not None:
            scores = {**self.scores, "best_fid": progress.best_fid}
            minutes = self.config.metrics.every_minutes
            if minutes is None:
                self.early_outcome = parts.judge.after_evaluation(epoch, scores)
            else:  # a search's trials compared at equal minutes of training, not equal epochs
                mark, unit = self.evaluated_mark, f"{minutes:g}-minute mark"
                self.early_outcome = parts.judge.after_evaluation(mark, scores, unit)

    # 7. finish: a last evaluation and checkpoint, the final grid, the uploads, the outcome
    def finish(self) -> Outcome:
        config, tracker, step, judge = (
            self.config,
            self.tracker,
            self.progress.step,
            self.parts.judge,
        )
        if (
            self.parts.evaluator is not None
            and self.evaluated_at != step
            and self.early_outcome is None
        ):
            self.evaluate(self.epochs_begun)
        last = self.checkpoints.at_end()
        # A resumed run that had already ended and been recorded uploads nothing twice
        ended_before = step == self.start_step and tracker.has_model()
        if not ended_before:
            self.upload_final_files(last)
        if config.tracking.log_model and not ended_before:
            generator, epoch = self.checkpoints.kept_generator(self.epochs_begun)
            example = Latents.of(generator, config.train.seed).sample(2)
            tracker.log_generator(generator, example, epoch, config.tracking.register_model)
        log.info("finished at step %d; run folder %s", step, self.run_dir)
        metrics = {**self.means, **self.scores, **self.minutes_spent()}
        if self.progress.best_fid is not None:
            metrics["best_fid"] = self.progress.best_fid
        outcome = self.early_outcome or (judge.at_end(metrics) if judge else None)
        if outcome is not None:
            return replace(outcome, metrics=metrics, step=step)
        budget = config.train.max_minutes
        timed_out = budget is not None and self.progress.seconds >= budget * 60
        cut_short = step < last_step(self.parts.settings, self.parts.batches.steps_per_epoch)
        reason = Reason.BUDGET if timed_out and cut_short else None
        return Outcome(Status.FINISHED, metrics=metrics, step=step, reason=reason)

    def minutes_spent(self) -> dict[str, float]:
        """How the run's minutes went so far: training (what train.max_minutes counts),
        scoring and checkpoints."""
        progress = self.progress
        return {
            "train_minutes": progress.seconds / 60,
            "eval_minutes": progress.eval_seconds / 60,
            "checkpoint_minutes": progress.checkpoint_seconds / 60,
        }

    def upload_final_files(self, last: Path) -> None:
        """The last step's grid, the checkpoints and the loss curves."""
        config, tracker = self.config, self.tracker
        final = self._samples("final.png")  # the grid of the last step, epoch or not
        _save_image(self.sample_grid(), final)
        tracker.log_artifact(final)
        if config.tracking.log_checkpoint:
            tracker.log_artifact(last, "checkpoints")
            if self.progress.best_epoch is not None:
                tracker.log_artifact(self.checkpoints.folder / BEST, "checkpoints")
        from gan_lab.plots import LOSS_CURVES, loss_curves  # matplotlib: here, not at start-up

        tracker.log_figure(
            loss_curves(tracker.metric_history(list(LOSS_CURVES))), "loss_curves.png"
        )

    def save_before_exit(self) -> None:
        """last.pt at the step reached, where training has begun (SIGTERM)."""
        if self.checkpoints is not None and self.start_step is not None:
            self.checkpoints.at_end()
            log.info("checkpoint of step %d saved before exit", self.progress.step)

    def record(self, outcome: Outcome) -> Outcome:
        """The outcome into the tracker, once. A run that ended by an exception carries the step
        and scores it had reached; one that failed before its tracker opened (missing data, say)
        opens it now, so that every run leaves a record."""
        if self.checkpoints is not None and not outcome.metrics:
            scores = {**self.means, **self.scores}
            outcome = replace(outcome, step=self.progress.step, metrics=scores)
        if self.tracker is None:
            if isinstance(outcome.exception, StoreUnreachable):  # said once, by the entry point
                # kept in the run folder: a sweep counts it, its resume runs it into the store
                LocalTracker(self.run_dir).finish(outcome)
                return outcome
            try:
                self.tracker = open_tracker(self.config.tracking, self.run_dir, self.info)
                self.tracker.log_params(flatten(self.config_dict))
            except GanLabError as error:  # the store itself is what failed
                log.error("the outcome could not be recorded: %s", error)
                return outcome
        try:
            self.tracker.finish(outcome)
        except OSError as error:  # a full disk: MlflowTracker.finish told the store first
            if outcome.status != Status.FAILED:
                raise
            # the run's own error (which file, how much space) is the one to show
            log.error("the outcome could not be written to the run folder: %s", error)
        return outcome

    def log_grid(self, epoch: int) -> None:
        """The fixed-noise grid after `epoch` epochs (0: before training) as a file and an image
        of the tracker."""
        grid = self.sample_grid()
        _save_image(grid, self._samples(f"epoch_{epoch:04d}.png"))
        self.tracker.log_image(
            grid.mul(255).round().byte().permute(1, 2, 0).numpy(), "samples", epoch
        )

    def sample_grid(self) -> torch.Tensor:
        """The generator's images of the run's fixed latent vectors as one grid, (C, H, W)."""
        size = self.config.train.grid_size
        images = generate_all(self.parts.gan.eval_generator, size**2, self.config.train.seed)
        from torchvision.utils import make_grid  # after the first step: see _save_image

        return make_grid(images, nrow=size, padding=2)

    def _samples(self, name: str) -> Path:
        path = self.run_dir / "samples" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
