"""A search's Optuna study as both its sides reach it (the sweeper that asks for trials,
gan_lab/sweep/optuna_sweeper.py, and each trial's job that reports to one, trial.py): its
storage, the settings the sweeper keeps in it, and the sampler and pruner built from their
specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gan_lab.errors import GanLabError, first_line


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


SETTINGS = "gan_lab"  # the study's user attribute that holds the sweeper's settings
MLFLOW_RUN = "mlflow_run_id"  # a trial's user attribute: the MLflow run of its job
