"""The job's side of a search: report each evaluation to its Optuna trial, and judge whether the
trial stops early (pruned, or an objective that is not finite) or ends without a usable value."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import optuna

from gan_lab.config import TrialConfig
from gan_lab.errors import GanLabError, first_line
from gan_lab.outcome import Outcome, Reason, Status

log = logging.getLogger(__name__)


def plain(spec: Any) -> dict:
    """A sampler's or pruner's spec from the config as a plain dict (storable in the study)."""
    from omegaconf import DictConfig, OmegaConf

    return (
        OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else dict(spec)
    )


def build(key: str, spec: dict) -> Any:
    """An Optuna sampler or pruner from its `_target_` spec; a bad one is a one-line error."""
    from hydra.utils import instantiate

    if "_target_" not in spec:
        raise GanLabError(
            f"{key}={spec} names no class: give _target_, such as optuna.pruners.MedianPruner"
        )
    try:
        return instantiate(spec)
    except Exception as error:  # Hydra wraps import and argument errors in its own types
        cause = first_line(error.__cause__ or error)
        raise GanLabError(f"{key}: cannot build {spec['_target_']}: {cause}") from error


HEARTBEAT_S = 30  # how often a search tells a database server that its running trials live


def open_storage(spec: str):
    """An Optuna storage: a database URL (sqlite:///..., postgresql://...) or a journal file path.
    The journal file is the default: safe for trials writing from several processes at once."""
    if "://" in spec:
        if spec.startswith("sqlite:"):  # one file: the sweeper's lock beside it guards the study
            return spec
        # A database server has no file for a lock: the sweeper keeps a heartbeat for each trial
        # it runs, and a trial whose heartbeat stopped (its search died) is the only kind run again.
        import warnings

        from optuna.storages import RDBStorage

        # the sweeper beats for its trials itself (ask and tell, not Study.optimize): as meant
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        warnings.filterwarnings("ignore", message="Argument ``heartbeat_interval``")
        return RDBStorage(spec, heartbeat_interval=HEARTBEAT_S, grace_period=4 * HEARTBEAT_S)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as journal:
            journal.seek(-1, 2)
            torn = journal.read(1) != b"\n"
        if torn:  # Optuna would append its next record onto the torn line: unreadable for good
            raise GanLabError(
                f"the study journal {spec} ends in a torn line (a write was cut off): remove its "
                "last line, after the last line break, and run again; it is left as it is"
            )
    try:
        return JournalStorage(JournalFileBackend(spec))
    except Exception as error:  # Optuna raises JSON and its own errors for a damaged journal
        raise GanLabError(
            f"the study journal {spec} cannot be read ({type(error).__name__}: "
            f"{first_line(error)}): restore it, or give the search another "
            "hydra.sweeper.study_name or hydra.sweeper.storage; it is left as it is"
        ) from error


def _invalid(objective: str, value: float | None, when: str) -> Outcome:
    seen = "missing" if value is None else f"{value}"
    return Outcome(
        Status.FAILED, reason=Reason.INVALID_VALUE, error=f"{objective} is {seen} {when}"
    )


SETTINGS = "gan_lab"  # the study's user attribute that holds the sweeper's settings
MLFLOW_RUN = "mlflow_run_id"  # a trial's user attribute: the MLflow run of its job


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
