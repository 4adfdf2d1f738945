"""How a sweep's runs are named and tagged, in one place: its parent run, from the launching
process's config, and each job's run, from its Hydra job and what the sweep handed down
(handoff.py); a single run is named and tagged as a job too. What a run learns of itself as it
runs (its device, its networks' size, its data) it adds itself (training/run.py)."""

from __future__ import annotations

import json
from typing import Any

from hydra.types import RunMode
from omegaconf import DictConfig

from gan_lab import tags
from gan_lab.overrides import key_of, keys_of, short
from gan_lab.sweep.handoff import handed_parent, handed_sweep
from gan_lab.tracking.tracker import RunInfo


def swept_keys(config: DictConfig) -> list[str]:
    """The keys a multirun varies: its sweeper's params and the command line's sweeps
    (`optim.lr=1e-4,2e-4`, `init=choice(normal,he_normal)`), in the order given."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    keys = [str(key) for key in params]
    parser = OverridesParser.create()
    for override in parser.parse_overrides(list(config.hydra.overrides.task)):
        if override.is_sweep_override() and override.get_key_element() not in keys:
            keys.append(override.get_key_element())
    return keys


def parent_name(swept: list[str]) -> str:
    """The parent run's name: what the sweep varies."""
    return f"sweep {', '.join(swept)}" if swept else "sweep"


def parent_tags(config: DictConfig, swept: list[str]) -> dict[str, str]:
    """The parent run's tags: a sweep, of which folder, command line, sweeper and launcher."""
    hydra = config.hydra
    return {
        tags.KIND: "sweep",
        tags.SWEEP_ID: str(hydra.sweep.dir),
        tags.SWEEP_OVERRIDES: " ".join(hydra.overrides.task),
        tags.SWEEPER: str(hydra.runtime.choices["hydra/sweeper"]),
        tags.LAUNCHER: str(hydra.runtime.choices["hydra/launcher"]),
        tags.SWEPT: ",".join(swept),
    }


def swept_values(hydra_config: Any) -> dict[str, str]:
    """This job's values of the keys the sweep varies (handed down by the sweep)."""
    given = {key_of(o): o.split("=", 1)[1] for o in hydra_config.overrides.task if "=" in o}
    _, swept = handed_sweep()
    return {key: given[key] for key in keys_of(swept) if key in given}


def job_name(hydra_config: Any) -> str:
    """A sweep job's name leads with what the sweep varies, in short: `job 2: lr=0.0001
    batch_size=64` (the full overrides are a tag)."""
    shown = short(swept_values(hydra_config))
    return f"job {hydra_config.job.num}: {shown}" if shown else f"job {hydra_config.job.num}"


def job_info(hydra_config: Any) -> RunInfo:
    """The name and tags of the run of Hydra's job `hydra_config` (HydraConfig.get()): what it
    ran, and in a sweep, its place there."""
    multirun = hydra_config.mode == RunMode.MULTIRUN
    choices = hydra_config.runtime.choices
    found = {
        tags.OVERRIDES: hydra_config.job.override_dirname,
        # "none" as Hydra writes an empty group, not Python's "None"
        tags.EXPERIMENT: choices.get("experiment") or "none",
        tags.RECIPE: choices.get("recipe") or "none",
    }
    config_dir = [
        s.path for s in hydra_config.runtime.config_sources if s.provider == "command-line"
    ]
    if config_dir:  # --config-dir: the report's rerun line repeats it
        found[tags.CONFIG_DIR] = config_dir[0].removeprefix("file://")
    if multirun:
        found[tags.JOB] = str(hydra_config.job.num)
        found[tags.SWEPT_VALUES] = json.dumps(swept_values(hydra_config))  # for the report
    found |= handed_down_tags()
    name = job_name(hydra_config) if multirun else hydra_config.job.override_dirname
    return RunInfo(name=name or "default", tags=found)


def handed_down_tags() -> dict[str, str]:
    """A sweep job's tags from what its sweep handed down: the sweep folder and the keys it
    varies (the same on the parent), and the parent run (MLflow nests the job under it)."""
    found = {}
    sweep_id, swept = handed_sweep()
    if sweep_id:
        found |= {tags.SWEEP_ID: sweep_id, tags.SWEPT: swept}
    if parent := handed_parent():
        found[tags.PARENT_RUN_ID] = parent
    return found
