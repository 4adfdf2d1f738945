"""The job's side of a search: report each evaluation to its Optuna trial, and judge whether the
trial stops early (pruned, or an objective that is not finite) or ends without a usable value."""

from __future__ import annotations

import logging
import math

import optuna

from gan_lab.config import TrialConfig
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.search.study import MLFLOW_RUN, SETTINGS, build, open_storage

log = logging.getLogger(__name__)


def _invalid(objective: str, value: float | None, when: str) -> Outcome:
    seen = "missing" if value is None else f"{value}"
    return Outcome(
        Status.FAILED, reason=Reason.INVALID_VALUE, error=f"{objective} is {seen} {when}"
    )


class TrialJudge:
    """Reports the study's objective each evaluation to the trial; decides when it stops."""

    def __init__(self, cfg: TrialConfig) -> None:
        storage = optuna.storages.get_storage(open_storage(cfg.storage))
        study = optuna.load_study(study_name=cfg.study, storage=storage)
        settings = study.user_attrs[SETTINGS]  # as the sweeper set them
        study.pruner = build("hydra.sweeper.pruner", settings["pruner"])
        study_id = storage.get_study_id_from_name(cfg.study)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, cfg.number)
        # Optuna has no public way to attach to a trial that another process asked for; its
        # Trial class over the shared storage is what study.optimize itself uses.
        self.trial = optuna.trial.Trial(study, trial_id)
        self.objective = settings["objective"]

    def tracked_as(self, run_id: str | None) -> None:
        """Store the trial's MLflow run id on the trial (Optuna's dashboard shows it)."""
        if run_id is not None:
            self.trial.set_user_attr(MLFLOW_RUN, run_id)

    def after_evaluation(
        self, step: int, metrics: dict[str, float], unit: str = "epoch"
    ) -> Outcome | None:
        """None to go on; else how the run ends now (PRUNED, or FAILED: invalid value). `step`:
        the pruner's step, the epoch or the minute mark (`unit`) of the evaluation."""
        value = metrics.get(self.objective)
        if value is None:
            return None
        when = f"after {unit} {step}"
        if not math.isfinite(value):
            log.warning("trial %d: %s is %s, stopping", self.trial.number, self.objective, value)
            return _invalid(self.objective, value, when)
        self.trial.report(value, step)
        if not self.trial.should_prune():
            return None
        text = f"{when} ({self.objective} {value:.4g})"
        log.info("trial %d pruned %s", self.trial.number, text)
        return Outcome(Status.PRUNED, reason=Reason.PRUNED, error=text)

    def at_end(self, metrics: dict[str, float]) -> Outcome | None:
        """A trial that trained to the end counts only with a finite objective."""
        value = metrics.get(self.objective)
        if value is None or not math.isfinite(value):
            return _invalid(self.objective, value, "at the end of the run")
        return None
