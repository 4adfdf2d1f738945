"""Entry point: `python -m gan_lab [overrides]` and the `gan-lab` console script.

Thin on purpose: Hydra composes conf/, the schema checks, run.py trains and says how it ended.
A user error (bad config key, type or value; missing data) is printed as one line with exit
status 2; anything else is a bug and keeps its traceback. How each way of stopping exits, and
ends a sweep's parent run, is one table: gan_lab/sweep/exits.py.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_lab.config import CONF_DIR, Config
from gan_lab.config.compose import plain_presets, register_schema, to_config
from gan_lab.devices import gpus_per_job
from gan_lab.errors import GanLabError
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.sweep.exits import describe_config_error, end_with, ending_of
from gan_lab.sweep.names import job_info
from gan_lab.sweep.record import current_sweep

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
    from gan_lab.training.run import run  # after composition: --help and config errors stay fast

    hydra_config = HydraConfig.get()
    multirun = hydra_config.mode == RunMode.MULTIRUN
    info = job_info(hydra_config)
    search = hydra_config.runtime.choices.get("search")
    if search and not multirun:  # without -m the sweeper never runs: one plain run would train
        raise GanLabError(
            f"search={search} is a search over many runs: add -m (gan-lab -m search={search} ...)"
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


def _bug(outcome: Outcome) -> BaseException | None:
    return None if outcome.user_error else outcome.exception


def _single_run_ends(outcome: Outcome) -> Outcome:
    """Exit status of a single run: 0 when it trained (or was pruned), one line and 2 for an
    error the user can fix, the traceback of a bug. (Ctrl-C and SIGTERM: sweep/exits.py.)"""
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


def _exit_with(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(2)


def main() -> None:
    """`gan-lab COMMAND ...` runs a command; anything else is Hydra's: a run, a sweep, a search."""
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
        current_sweep().check_finished()  # a sweep whose store went away or jobs failed: 1
    except BaseException as error:
        ending = ending_of(error)
        if ending is None:  # a bug, with its traceback
            raise
        end_with(ending, error)


if __name__ == "__main__":
    main()
