"""Entry point: `python -m gan_lab [overrides]` and the `gan-lab` console script.

Thin on purpose: Hydra composes conf/, the schema checks, run.py trains and says how it ended.
A user error (bad config key, type or value; missing data) is printed as one line with exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import NoReturn

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_lab.config import CONF_DIR, Config
from gan_lab.config.compose import plain_presets, register_schema, to_config
from gan_lab.devices import gpus_per_job
from gan_lab.errors import GanLabError, Terminated, first_line
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.overrides import key_of, keys_of, short
from gan_lab.tracking.sweep_callback import SweepRefused, current_sweep

register_schema()
# ${gan_lab_gpus:N} in launcher configs: registered by the entry point, as the config floor knows
# no devices
OmegaConf.register_new_resolver("gan_lab_gpus", gpus_per_job, replace=True)
log = logging.getLogger("gan_lab")
# conf/hydra/launcher/ray.yaml deliberately shadows hydra-ray-launcher's own `ray` option (one GPU
# per job by default); Hydra then validates it against the plugin's schema and says so each time.
warnings.filterwarnings("ignore", message="'hydra/launcher/ray' is validated against ConfigStore")


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def job(cfg: DictConfig) -> Outcome:
    """One Hydra job: type and check the config, run it. In a multirun every ending, a failure
    too, is returned to the sweep so that its other jobs go on; a single run exits with it."""
    from gan_lab import tags
    from gan_lab.tracking import RunInfo
    from gan_lab.training.run import run  # after composition: --help and config errors stay fast

    hydra_config = HydraConfig.get()
    multirun = hydra_config.mode == RunMode.MULTIRUN
    choices = hydra_config.runtime.choices
    info = RunInfo(
        name=run_name(hydra_config) if multirun else hydra_config.job.override_dirname or "default",
        tags={
            tags.OVERRIDES: hydra_config.job.override_dirname,
            # "none" as Hydra writes an empty group, not Python's "None"
            tags.EXPERIMENT: choices.get("experiment") or "none",
            tags.RECIPE: choices.get("recipe") or "none",
        },
    )
    config_dir = [
        s.path for s in hydra_config.runtime.config_sources if s.provider == "command-line"
    ]
    if config_dir:  # --config-dir: the report's rerun line repeats it
        info.tags[tags.CONFIG_DIR] = config_dir[0].removeprefix("file://")
    if multirun:
        info.tags[tags.JOB] = str(hydra_config.job.num)
        info.tags[tags.SWEPT_VALUES] = json.dumps(swept_values(hydra_config))  # for the report
    elif choices.get("search"):  # without -m the sweeper never runs: one plain run would train
        raise GanLabError(
            f"search={choices['search']} is a search over many runs: add -m "
            f"(gan-lab -m search={choices['search']} ...)"
        )
    try:
        config = _typed(cfg)
    except GanLabError as error:
        outcome = Outcome(Status.FAILED, reason=Reason.ERROR, error=str(error), exception=error)
        if multirun:  # a sweep's record counts every job, one with an invalid value too
            from gan_lab.tracking.factory import record_untyped

            record_untyped(cfg, Path(hydra_config.runtime.output_dir), info, outcome)
    else:
        outcome = run(config, Path(hydra_config.runtime.output_dir), info)
    if multirun:
        if outcome.status == Status.FAILED:
            log.error("job %s %s", hydra_config.job.num, outcome.describe(), exc_info=_bug(outcome))
        return outcome
    return _single_run_ends(outcome)


def swept_values(hydra_config) -> dict[str, str]:
    """This job's values of the keys the sweep varies (the sweep callback hands the keys down)."""
    from gan_lab.tracking import SWEPT_ENV

    given = {key_of(o): o.split("=", 1)[1] for o in hydra_config.overrides.task if "=" in o}
    return {key: given[key] for key in keys_of(os.environ.get(SWEPT_ENV, "")) if key in given}


def run_name(hydra_config) -> str:
    """A sweep job's name leads with what the sweep varies, in short: `job 2: lr=0.0001
    batch_size=64` (the full overrides are a tag)."""
    shown = short(swept_values(hydra_config))
    return f"job {hydra_config.job.num}: {shown}" if shown else f"job {hydra_config.job.num}"


def _bug(outcome: Outcome) -> BaseException | None:
    return None if outcome.user_error else outcome.exception


def _single_run_ends(outcome: Outcome) -> Outcome:
    """Exit status of a single run: 0 when it trained (or was pruned), one line and 2 for an
    error the user can fix, the traceback of a bug. (Ctrl-C and SIGTERM end in main().)"""
    if outcome.status == Status.FAILED:
        if outcome.user_error or outcome.exception is None:
            _exit_with(f"gan-lab: error: {outcome.error}")
        raise outcome.exception
    return outcome


def _typed(cfg: DictConfig) -> Config:
    """The validated config; an OmegaConf error while typing it (say, an interpolation of the
    wrong type) is a config error too."""
    from gan_lab.training.checks import check_names

    try:
        config = to_config(cfg)
    except OmegaConfBaseException as error:
        raise GanLabError(f"config error: {describe_config_error(error)}") from error
    check_names(config)
    return config


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


def _exit_with(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(2)


def main() -> None:
    from gan_lab.cli import COMMANDS, run_command

    first = sys.argv[1] if len(sys.argv) > 1 else ""
    if first in COMMANDS:
        try:
            run_command(sys.argv[1:])
        except GanLabError as error:
            _exit_with(f"gan-lab: error: {error}")
        return
    if first and not first.startswith(("-", "+", "~")) and "=" not in first:
        _exit_with(
            f"gan-lab: error: no command {first!r}: train with gan-lab [key=value ...], or run "
            f"one of {', '.join(COMMANDS)} (gan-lab COMMAND --help)"
        )
    # Let Hydra's errors reach us as exceptions, so they become one line here.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    sys.argv[1:] = plain_presets(sys.argv[1:])
    try:
        job()
    except SweepRefused as refused:  # before any job ran: nothing to end
        _exit_with(f"gan-lab: error: {refused.error}")
    except KeyboardInterrupt:  # the run is recorded KILLED already; one line, not a traceback
        _end_sweep(Outcome(Status.KILLED, reason=Reason.INTERRUPTED, error="Ctrl-C"))
        print("gan-lab: stopped by Ctrl-C; the run is recorded KILLED", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except Terminated:  # this process's SIGTERM, or a joblib worker's, raised again here
        if current_sweep().open:  # the other workers' jobs stop with it: none stays RUNNING
            current_sweep().abandon("SIGTERM", Status.KILLED)
        _end_sweep(Outcome(Status.KILLED, reason=Reason.TERMINATED, error="SIGTERM"))
        print("gan-lab: stopped by SIGTERM; the run is recorded KILLED", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except GanLabError as error:
        _end_sweep(Outcome(Status.FAILED, reason=Reason.ERROR, error=str(error)))
        _exit_with(f"gan-lab: error: {error}")
    except HydraException as error:
        why = describe_config_error(error)
        _end_sweep(Outcome(Status.FAILED, reason=Reason.ERROR, error=why))
        _exit_with(f"gan-lab: config error: {why}")
    except yaml.YAMLError as error:  # a config file that is not YAML: its place, in one line
        _exit_with(f"gan-lab: config error: {describe_yaml_error(error)}")
    except OSError as error:  # an output folder that cannot be written, a full disk
        where = f" {error.filename}" if error.filename else ""
        _exit_with(
            f"gan-lab: error: cannot write{where}: {error.strerror or error}: choose a folder "
            "that can be written (hydra.run.dir=..., hydra.sweep.dir=...) or free some space"
        )
    except Exception as error:
        if not current_sweep().open:  # not a sweep's launcher: a bug, with its traceback
            raise
        # The launcher gave up (joblib's TerminatedWorkerError: a worker was killed); the jobs
        # it ran are ended KILLED and the parent FAILED with their count, for a rerun to continue.
        why = f"the launcher stopped: {type(error).__name__}: {first_line(error)}"
        sweep = current_sweep()
        sweep.abandon(why)
        if sweep.lost():  # it says the command that continues the sweep
            print(f"gan-lab: {why}; {sweep.lost()}", file=sys.stderr)
        else:
            print(f"gan-lab: {why}; {sweep.failures() or 'no job finished'}", file=sys.stderr)
            print(f"gan-lab: to continue: {sweep.resume_command}", file=sys.stderr)
        sys.exit(1)

    # a sweep whose store went away, or whose jobs did not all finish, is not a success
    failed = current_sweep().lost() or current_sweep().failures()
    if failed:
        print(f"gan-lab: {failed}", file=sys.stderr)
        sys.exit(1)


def _end_sweep(outcome: Outcome) -> None:
    """End the parent run of a sweep that stopped before its end (Ctrl-C, SIGTERM, an error of
    the sweeper): Hydra calls no callback then, and the parent would stay RUNNING."""
    current_sweep().close(outcome, f"stopped: {outcome.error}")


if __name__ == "__main__":
    main()
