"""Entry point: `python -m gan_lab [overrides]` and the `gan-lab` console script.

Thin on purpose: Hydra composes conf/, the schema validates, run.py builds and trains.
A user error (bad config key, type or value; missing data) is printed as one line with exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_lab.config import CONF_DIR, Config, register_schema, to_config
from gan_lab.errors import GanLabError

register_schema()
log = logging.getLogger("gan_lab")
# conf/hydra/launcher/ray.yaml deliberately shadows hydra-ray-launcher's own `ray` option (one GPU
# per job by default); Hydra then validates it against the plugin's schema and says so each time.
warnings.filterwarnings("ignore", message="'hydra/launcher/ray' is validated against ConfigStore")


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def train(cfg: DictConfig) -> dict[str, Any]:
    """One Hydra job. In a multirun a failed job is logged and reported in its return value,
    so that the sweep's other jobs go on and its parent run is closed."""
    from gan_lab.tracking import RunInfo  # after composition: --help and config errors stay fast

    hydra_config = HydraConfig.get()
    job = hydra_config.job
    info = RunInfo(
        name=job.override_dirname or "default",
        tags={"gan_lab.overrides": job.override_dirname},
    )
    if not OmegaConf.is_missing(job, "num"):  # set in multiruns only
        info.tags["gan_lab.job"] = str(job.num)
    try:
        config = _typed(cfg)
        return _run_job(config, Path(hydra_config.runtime.output_dir), info)
    except Exception as error:
        if hydra_config.mode != RunMode.MULTIRUN:
            if isinstance(error, GanLabError):  # exit here: Hydra would add a line of its own
                _exit_with(f"gan-lab: error: {error}")
            raise
        if isinstance(error, GanLabError):
            log.error("job %s failed: %s", job.num, error)
        else:
            log.exception("job %s failed", job.num)
        return {"status": "FAILED", "error": f"{type(error).__name__}: {error}"}


def _run_job(config: Config, run_dir: Path, info) -> dict[str, Any]:
    """run(), reporting each evaluation to its Optuna trial when the job is one."""
    from gan_lab.run import run

    if config.trial.number is None:
        return {"status": "FINISHED", **run(config, run_dir, info)}
    from gan_lab.search.trial import TrialReporter

    reporter = TrialReporter(config.trial)
    info.tags.update(
        {"gan_lab.trial": str(config.trial.number), "gan_lab.study": config.trial.study}
    )
    result = run(config, run_dir, info, on_evaluation=reporter.report)
    if reporter.pruned_at is not None:
        return {"status": "PRUNED", **result}
    if "stopped_at_epoch" in result:
        return {"status": "FAILED", "error": f"{config.trial.objective} was not finite", **result}
    return {"status": "FINISHED", **result}


def _typed(cfg: DictConfig) -> Config:
    """The validated config; an OmegaConf error while typing it (say, an interpolation of the
    wrong type) is a config error too."""
    try:
        return to_config(cfg)
    except OmegaConfBaseException as error:
        raise GanLabError(f"config error: {describe_config_error(error)}") from error


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


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
        return _first_line(text) + (f"; choose one of: {known}" if known else "")
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        message = _first_line(str(cause))
        if "not in struct" in message or "Key '" in message and "not" in message:
            return (
                f"unknown config key '{key}': check the spelling, or list the keys with --cfg job"
            )
        return f"{key}: {message}" if key else message
    if isinstance(error, OmegaConfBaseException):
        key = getattr(error, "full_key", None)
        return f"{key}: {_first_line(str(error))}" if key else _first_line(str(error))
    return _first_line(str(error))


def _exit_with(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(2)


COMMANDS = ("eval", "fid", "report")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        from gan_lab.cli import run_command

        try:
            run_command(sys.argv[1:])
        except GanLabError as error:
            _exit_with(f"gan-lab: error: {error}")
        return
    # Let Hydra's errors reach us as exceptions, so they become one line here.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        train()
    except GanLabError as error:
        _exit_with(f"gan-lab: error: {error}")
    except HydraException as error:
        _exit_with(f"gan-lab: config error: {describe_config_error(error)}")


if __name__ == "__main__":
    main()
