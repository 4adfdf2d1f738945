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

import logging
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from gan_lab.config import Config
from gan_lab.config.choices import MetricsName, Precision
from gan_lab.data import cache_dir
from gan_lab.data.datasets import DataSet
from gan_lab.data.split import Split
from gan_lab.devices import native_bf16, resolve_device, resolve_precision
from gan_lab.errors import GanLabError, Refused, RunDiverged, Terminated
from gan_lab.models.gan import Gan
from gan_lab.models.parameters import count_parameters
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.sampling import Latents
from gan_lab.tracking import RunInfo, Tracker, open_tracker, placement_tags
from gan_lab.tracking.local import LocalTracker
from gan_lab.tracking.store import StoreUnreachable
from gan_lab.training.augment import Augment
from gan_lab.training.checkpoint import BEST, Checkpoints, Progress, one_writer
from gan_lab.training.checks import check_names
from gan_lab.training.continuation import Continuation
from gan_lab.training.evaluation import GO_ON, Evaluation, Verdict
from gan_lab.training.loop import LoopSettings, TrainStep, fit, last_step
from gan_lab.training.parts import Parts, build_networks, load_data
from gan_lab.training.recording import (
    log_grid,
    log_inputs,
    log_model,
    minutes_spent,
    open_late,
    run_tags,
    say_what_trains,
    upload_final_files,
)
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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device_and_precision(config: Config) -> tuple[torch.device, str]:
    """train.device and train.precision as this machine resolves them (auto: the best it has)."""
    device = resolve_device(config.train.device)
    precision = resolve_precision(config.train.precision, device)
    if precision == Precision.BF16 and not native_bf16(device):
        log.warning("train.precision=bf16: this %s emulates bf16, slower than fp32", device)
    return device, precision


def prepare_metrics(
    config: Config, reference: DataSet, device: torch.device, run_id: str | None
) -> Evaluation:
    """5. metrics: the evaluation policy, with its evaluator (the reference statistics, of the
    images scored against) where the run is scored, and a search trial's judge, which stores the
    trial's tracked `run_id`."""
    evaluator = judge = None
    if config.metrics.name != MetricsName.NONE:
        from gan_lab.metrics.evaluator import Evaluator  # Inception only when measuring

        data_cache = cache_dir(config.data)
        evaluator = Evaluator(config.metrics, reference.images, reference.key, device, data_cache)
    if config.trial.number is not None:
        from gan_lab.search.trial import TrialJudge  # Optuna only in a search

        judge = TrialJudge(config.trial)
        judge.tracked_as(run_id)
    return Evaluation(config.metrics, config.ema.score_raw, evaluator, judge)


class Run:
    """One run: execute() builds its Parts phase by phase, trains them, finishes; every ending
    is recorded once (record). The checkpoints (phase 3) and the tracker (phase 4) are the run's
    own: saving before an exit and recording need them from the phase that opens them on."""

    def __init__(self, config: Config, run_dir: Path, info: RunInfo) -> None:
        self.config, self.run_dir, self.info = config, run_dir, info
        self.config_dict = asdict(config)
        self.termination = Termination()
        self.checkpoints: Checkpoints | None = None
        self.tracker: Tracker | None = None
        self.parts: Parts | None = None  # once every phase has built its part
        self.start_step: int | None = None  # where training began in this process
        self.means: dict[str, float] = {}  # the last epoch's mean step statistics

    @property
    def progress(self) -> Progress:
        return self.checkpoints.progress

    @property
    def epochs_begun(self) -> int:
        return self.parts.epochs_begun(self.progress.step)

    def execute(self) -> Outcome:
        config = self.config
        check_names(config)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        device, precision = device_and_precision(config)
        data = load_data(config)  # 1. data
        seed_everything(config.train.seed)  # here: building a data cache draws from the RNG
        gan, augment, latents, batches = build_networks(config, data.train, device)  # 2.
        checkpoints = self.resume(gan, latents, augment)  # 3.
        tracker = self.open_tracker(data, gan, device, precision)  # 4.
        evaluation = prepare_metrics(config, data.reference, device, tracker.run_id)  # 5.
        evaluation.continue_from(self.progress.seconds)
        checkpoints.restore_rng()  # last: building the metrics draws from the RNG too
        step = TrainStep.of(config, precision, augment)
        self.parts = Parts(gan, batches, latents, step, LoopSettings.of(config), evaluation)
        if self.progress.step == 0:  # MLflow's image card opens on a picture from the start
            log_grid(tracker, gan.eval_generator, config.train, self.run_dir, 0)
        log.info("training from step %d in %s", self.progress.step, precision)
        after_step = self.after_step if evaluation.by_minutes else None
        stop = fit(
            self.parts, self.progress, tracker, self.after_epoch, self.termination, after_step
        )  # 6.
        return self.finish(stop)  # 7.

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
        params = count_parameters(gan.generator), count_parameters(gan.discriminator)
        tags = run_tags(self.config, self.info.tags, data, params, device, precision)
        info = replace(self.info, tags=tags)
        continuation = Continuation(self.config.train.resume)
        run_id = continuation.tracked_run(self.progress.tracking_run_id, self.run_dir)
        self.tracker = tracker = open_tracker(self.config.tracking, self.run_dir, info, run_id)
        self.progress.tracking_run_id = tracker.run_id
        if placed := placement_tags():  # set again by a resumed run: a requeued job's count
            tracker.set_tags(placed)
        log_inputs(tracker, self.run_dir, self.config, self.config_dict, data)
        say_what_trains(device, data, params)
        return tracker

    # 6. the loop's hooks: each returns None to go on, or how the run ends now (a pruned trial)
    def after_epoch(self, epoch: int, step: int, means: dict[str, float]) -> Outcome | None:
        """The grid, an evaluation when due (metrics.every), a checkpoint when due."""
        self.means = means
        log_grid(
            self.tracker, self.parts.gan.eval_generator, self.config.train, self.run_dir, epoch
        )
        verdict = GO_ON
        if self.parts.evaluation.due_after_epoch(epoch):
            verdict = self.evaluate(epoch)
        self.checkpoints.after_epoch(epoch)
        return verdict.stop

    def after_step(self, step: int) -> Outcome | None:
        """metrics.every_minutes: an evaluation at the step after each of those minutes of
        training, whatever the epoch."""
        if self.parts.evaluation.due_after_step(self.progress.seconds):
            return self.evaluate(self.epochs_begun).stop
        return None

    def evaluate(self, epoch: int) -> Verdict:
        """Score the generator, log the scores at step = epoch, keep best.pt where the policy
        finds a new best, and return its verdict: whether the run goes on."""
        evaluation, progress, tracker = self.parts.evaluation, self.progress, self.tracker
        started = time.perf_counter()
        scored = evaluation.score(self.parts.gan, progress.step, progress.seconds)
        progress.eval_seconds += time.perf_counter() - started
        tracker.log_metrics({**scored.scores, **minutes_spent(progress)}, epoch)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in scored.scores.items()))
        if evaluation.is_best(scored, progress.best_fid):
            progress.best_fid, progress.best_epoch = scored.fid, epoch
            self.checkpoints.best(scored.raw_better)
            tracker.log_metrics({"best_fid": scored.fid}, epoch)
        return evaluation.verdict(epoch, progress.best_fid)

    # 7. finish: a last evaluation and checkpoint, the final grid, the uploads, the outcome
    def finish(self, stop: Outcome | None) -> Outcome:
        """`stop`: how the loop was stopped early, None where it ran to its end."""
        config, tracker, step = self.config, self.tracker, self.progress.step
        if stop is None and self.parts.evaluation.due_at_end(step):
            stop = self.evaluate(self.epochs_begun).stop
        last = self.checkpoints.at_end()
        # A resumed run that had already ended and been recorded uploads nothing twice
        if not (step == self.start_step and tracker.has_model()):
            best = self.checkpoints.folder / BEST if self.progress.best_epoch is not None else None
            generator = self.parts.gan.eval_generator
            upload_final_files(tracker, config, self.run_dir, generator, last, best)
            if config.tracking.log_model:
                log_model(tracker, config, self.checkpoints, self.epochs_begun)
        log.info("finished at step %d; run folder %s", step, self.run_dir)
        return self.outcome(stop)

    def outcome(self, stop: Outcome | None) -> Outcome:
        """How a run that trained ended, with its metrics: as `stop` says where the loop was
        stopped, else as a search trial's judge says at the end, else FINISHED (for the time
        budget's reason where that cut its steps short)."""
        progress, parts = self.progress, self.parts
        metrics = {**self.reached(), **minutes_spent(progress)}
        if progress.best_fid is not None:
            metrics["best_fid"] = progress.best_fid
        stop = stop or parts.evaluation.verdict_at_end(metrics).stop
        if stop is not None:
            return replace(stop, metrics=metrics, step=progress.step)
        budget = self.config.train.max_minutes
        timed_out = budget is not None and progress.seconds >= budget * 60
        cut_short = progress.step < last_step(parts.settings, parts.batches.steps_per_epoch)
        reason = Reason.BUDGET if timed_out and cut_short else None
        return Outcome(Status.FINISHED, metrics=metrics, step=progress.step, reason=reason)

    def reached(self) -> dict[str, float]:
        """The last epoch's mean step statistics and the last evaluation's scores."""
        scores = self.parts.evaluation.scores if self.parts is not None else {}
        return {**self.means, **scores}

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
            outcome = replace(outcome, step=self.progress.step, metrics=self.reached())
        if self.tracker is None:
            if isinstance(outcome.exception, StoreUnreachable):  # said once, by the entry point
                # kept in the run folder: a sweep counts it, its resume runs it into the store
                LocalTracker(self.run_dir).finish(outcome)
                return outcome
            self.tracker = open_late(self.config, self.run_dir, self.info, self.config_dict)
            if self.tracker is None:
                return outcome
        try:
            self.tracker.finish(outcome)
        except OSError as error:  # a full disk: MlflowTracker.finish told the store first
            if outcome.status != Status.FAILED:
                raise
            # the run's own error (which file, how much space) is the one to show
            log.error("the outcome could not be written to the run folder: %s", error)
        return outcome
