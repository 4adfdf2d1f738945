"""How the command line ends, in one table: for each kind of exception that stops a run or a
sweep, the exit status, the line printed, and how a sweep's parent run ends with it (Hydra calls
no callback then, and the parent would stay RUNNING). A run or sweep that ends by itself exits 0,
unless its sweep is unfinished (SweepUnfinished, in the table too)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import yaml
from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from gan_lab.errors import GanLabError, Terminated, first_line
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.sweep.record import SweepRefused, SweepUnfinished, current_sweep


@dataclass(frozen=True)
class Ending:
    """How the command line ends after one kind of exception."""

    status: int  # the exit status
    says: Callable[[BaseException], str]  # what it prints, after "gan-lab: "
    # how the parent run of a sweep ends, as an Outcome (None: as it is, or there is none yet)
    parent: Callable[[BaseException], Outcome] | None = None
    stops_jobs: bool = False  # the sweep's jobs stop with it: none of their runs stays RUNNING
    sweep_only: bool = False  # outside a sweep's launcher, a bug: raised with its traceback


def _stopped(number: int, reason: Reason, by: str, stops_jobs: bool = False) -> Ending:
    """Signal `number` stopped the process: its run (and its sweep's parent) recorded KILLED."""
    return Ending(
        128 + number,
        lambda error: f"stopped by {by}; the run is recorded KILLED",
        lambda error: Outcome(Status.KILLED, reason=reason, error=by),
        stops_jobs,
    )


def _failed(why: Callable[[BaseException], str]) -> Callable[[BaseException], Outcome]:
    return lambda error: Outcome(Status.FAILED, reason=Reason.ERROR, error=why(error))


def _cannot_write(error: BaseException) -> str:
    where = f" {error.filename}" if getattr(error, "filename", None) else ""
    return (
        f"error: cannot write{where}: {getattr(error, 'strerror', None) or error}: choose a "
        "folder that can be written (hydra.run.dir=..., hydra.sweep.dir=...) or free some space"
    )


def _launcher_stopped(error: BaseException) -> str:
    """The launcher gave up (joblib's TerminatedWorkerError: a worker was killed): the jobs it
    ran are ended KILLED and the parent FAILED with their count, for a rerun to continue."""
    sweep, why = current_sweep(), _launcher_why(error)
    if sweep.lost():  # it says the command that continues the sweep
        return f"{why}; {sweep.lost()}"
    return (
        f"{why}; {sweep.failures() or 'no job finished'}\n"
        f"gan-lab: to continue: {sweep.resume_command}"
    )


def _launcher_why(error: BaseException) -> str:
    return f"the launcher stopped: {type(error).__name__}: {first_line(error)}"


def describe_config_error(error: BaseException) -> str:
    """One line from Hydra's and OmegaConf's multi-line composition errors."""
    cause = error.__cause__ or error.__context__
    if isinstance(error, MissingConfigException):
        # Hydra lists the group's options between "Available options" and "Config search path".
        text = str(error).split("Config search path")[0]
        options = (
            text.split("Available options")[-1].splitlines()[1:] if "Available" in text else []
        )
        known = ", ".join(o.strip() for o in options if o.strip())
        return first_line(text) + (f"; choose one of: {known}" if known else "")
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        message = first_line(str(cause))
        if "not in struct" in message or "Key '" in message and "not" in message:
            parent = str(key).rsplit(".", 1)[0]
            if parent in ("hydra.sweeper.sampler", "hydra.sweeper.pruner"):
                example = (
                    "_target_:optuna.samplers.TPESampler,seed:1"
                    if parent.endswith("sampler")
                    else "_target_:optuna.pruners.MedianPruner,n_startup_trials:2"
                )
                whole = f"{parent}={{{example}}}"
                return f"unknown config key '{key}': {parent} is given whole, e.g. {whole}"
            return (
                f"unknown config key '{key}': check the spelling, or list the keys with --cfg job"
            )
        return f"{key}: {message}" if key else message
    if isinstance(error, OmegaConfBaseException):
        key = getattr(error, "full_key", None)
        return f"{key}: {first_line(str(error))}" if key else first_line(str(error))
    return first_line(str(error))


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """'<file>, line 4, column 4: expected ',' or ']', but got ':'' from PyYAML's several lines."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or first_line(str(error))
    if mark is None:
        return problem
    return f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}: {problem}"


# The first kind an exception is an instance of decides, as except clauses would, in this order
# (Hydra's MissingConfigException is both a HydraException and an OSError).
ENDINGS: dict[type[BaseException], Ending] = {
    SweepRefused: Ending(2, lambda error: f"error: {error.error}"),  # before any job ran
    KeyboardInterrupt: _stopped(signal.SIGINT, Reason.INTERRUPTED, "Ctrl-C"),
    # this process's SIGTERM, or a joblib worker's raised again here: the other workers' jobs
    # stop with it, and none of their runs stays RUNNING
    Terminated: _stopped(signal.SIGTERM, Reason.TERMINATED, "SIGTERM", stops_jobs=True),
    GanLabError: Ending(2, lambda error: f"error: {error}", _failed(str)),
    HydraException: Ending(
        2,
        lambda error: f"config error: {describe_config_error(error)}",
        _failed(describe_config_error),
    ),
    yaml.YAMLError: Ending(2, lambda error: f"config error: {describe_yaml_error(error)}"),
    OSError: Ending(2, _cannot_write),  # an output folder that cannot be written, a full disk
    SweepUnfinished: Ending(1, str),  # its store went away, or not all its jobs finished
    Exception: Ending(
        1, _launcher_stopped, _failed(_launcher_why), stops_jobs=True, sweep_only=True
    ),
}


def ending_of(error: BaseException) -> Ending | None:
    """How the command line ends after `error`; None where it is a bug (or SystemExit), to be
    raised as it is."""
    for kind, ending in ENDINGS.items():
        if isinstance(error, kind):
            return None if ending.sweep_only and not current_sweep().open else ending
    return None


def end_with(ending: Ending, error: BaseException) -> NoReturn:
    """The sweep's parent run ended as `ending` says, its line printed, and the process exited
    with its status."""
    sweep = current_sweep()
    if ending.parent is not None:
        outcome = ending.parent(error)
        if ending.stops_jobs and sweep.open:
            sweep.abandon(outcome.error, outcome.status)
        sweep.close(outcome, f"stopped: {outcome.error}")
    print(f"gan-lab: {ending.says(error)}", file=sys.stderr)
    sys.exit(ending.status)
