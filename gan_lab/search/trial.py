"""The job's side of a search: report each evaluation to the Optuna trial, and stop early when
the pruner says the trial is hopeless."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import optuna

from gan_lab.config import TrialConfig
from gan_lab.errors import GanLabError

log = logging.getLogger(__name__)


def open_storage(spec: str):
    """An Optuna storage: a database URL (sqlite:///..., postgresql://...) or a journal file path.
    The journal file is the default: safe for trials writing from several processes at once."""
    if "://" in spec:
        return spec
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(spec))


def make_pruner(name: str, startup: int, warmup: int) -> optuna.pruners.BasePruner:
    """startup: trials that must finish before any is pruned; warmup: a trial's first epochs,
    which are never pruned (Optuna prunes from step n_warmup_steps on, and epochs count from 1)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup + 1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise GanLabError(f"hydra.sweeper.pruner={name!r} is not allowed: choose median or none")


class TrialReporter:
    """Reports `trial.objective` each evaluation; asks the run to stop when the trial is pruned
    or its objective is not finite."""

    def __init__(self, cfg: TrialConfig) -> None:
        storage = optuna.storages.get_storage(open_storage(cfg.storage))
        pruner = make_pruner(cfg.pruner, cfg.pruner_startup_trials, cfg.pruner_warmup_epochs)
        study = optuna.load_study(study_name=cfg.study, storage=storage, pruner=pruner)
        study_id = storage.get_study_id_from_name(cfg.study)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, cfg.number)
        # Optuna has no public way to attach to a trial that another process asked for; its
        # Trial class over the shared storage is what study.optimize itself uses.
        self.trial = optuna.trial.Trial(study, trial_id)
        self.objective = cfg.objective
        self.pruned_at: int | None = None

    def report(self, epoch: int, metrics: dict[str, float]) -> bool:
        """True when the run should stop now."""
        value = metrics.get(self.objective)
        if value is None:
            return False
        if not math.isfinite(value):
            log.warning("trial %d: %s is %s, stopping", self.trial.number, self.objective, value)
            return True
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            log.info(
                "trial %d pruned at epoch %d (%s %.4g)",
                self.trial.number,
                epoch,
                self.objective,
                value,
            )
            self.pruned_at = epoch
            return True
        return False
