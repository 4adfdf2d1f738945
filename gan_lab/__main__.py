"""Entry point: `python -m gan_lab [overrides]` and the `gan-lab` console script.

Thin on purpose: Hydra composes conf/, the schema validates, run.py builds and trains.
A user error (bad config key, type or value; missing data) is printed as one line with exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from gan_lab.config import register_schema, to_config
from gan_lab.errors import GanLabError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

register_schema()


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def train(cfg: DictConfig) -> dict[str, float]:
    from gan_lab.run import run  # after composition, so --help and config errors stay fast

    hydra_config = HydraConfig.get()
    try:
        config = to_config(cfg)
        return run(config, Path(hydra_config.runtime.output_dir))
    except GanLabError as error:
        if hydra_config.mode == RunMode.MULTIRUN:
            raise  # Hydra records the job as failed; the sweep's other jobs go on
        _exit_with(f"gan-lab: error: {error}")


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


def main() -> None:
    # Let Hydra's errors reach us as exceptions, so they become one line here.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        train()
    except GanLabError as error:
        _exit_with(f"gan-lab: error: {error}")
    except (HydraException, OmegaConfBaseException) as error:
        _exit_with(f"gan-lab: config error: {describe_config_error(error)}")


if __name__ == "__main__":
    main()
