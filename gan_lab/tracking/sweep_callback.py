"""The Hydra callback that gives a multirun one MLflow parent run.

Before any job starts it opens the store once (MLflow's sqlite store, created by several
processes at once, races in its schema migration and can stay broken), creates the experiment
and the parent run, and passes the store's absolute URI, the parent run id and a sweep id to
every job through the environment, which every launcher hands down to its jobs. When the sweep
ends it tallies the children and ends the parent with a summary.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lab.outcome import outcome_of
from gan_lab.tracking import PARENT_RUN_ENV, SWEEP_ID_ENV, SWEPT_ENV, tags

log = logging.getLogger(__name__)


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.client: Any = None
        self.parent_run_id: str | None = None
        self.saved_env: dict[str, str | None] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _LAST_SWEEP.clear()
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        # a search's failed trials are part of searching: its exit status stays 0
        _LAST_SWEEP["search"] = config.hydra.runtime.choices["hydra/sweeper"] == "gan_lab_optuna"
        if config.tracking.name != "mlflow":
            return
        from gan_lab.tracking.mlflow_tracker import (
            connect,
            experiment_id,
            resolve_uri,
            run_name_of,
        )

        uri = resolve_uri(config.tracking.uri)
        self.client = connect(uri)  # creates and migrates a new store here, once
        hydra = config.hydra  # HydraConfig.get() is not set yet when a multirun starts
        sweep_overrides = " ".join(hydra.overrides.task)
        sweep_id = str(hydra.sweep.dir)
        swept = swept_keys(config)
        swept_text = ",".join(swept)
        parent = self.client.create_run(
            experiment_id(self.client, config.tracking.experiment),
            run_name=run_name_of(f"sweep {', '.join(swept)}" if swept else "sweep"),
            tags={
                tags.KIND: "sweep",
                tags.SWEEP_ID: sweep_id,
                tags.SWEEP_OVERRIDES: sweep_overrides,
                tags.SWEEPER: str(hydra.runtime.choices["hydra/sweeper"]),
                tags.LAUNCHER: str(hydra.runtime.choices["hydra/launcher"]),
                tags.SWEPT: swept_text,
            },
        )
        self.parent_run_id = parent.info.run_id
        _LAST_SWEEP.update(client=self.client, parent=self.parent_run_id)
        handed_down = {
            "MLFLOW_TRACKING_URI": uri,
            PARENT_RUN_ENV: self.parent_run_id,
            SWEEP_ID_ENV: sweep_id,
            SWEPT_ENV: swept_text,
        }
        self.saved_env = {key: os.environ.get(key) for key in handed_down}
        os.environ.update(handed_down)
        log.info("MLflow sweep run %s in %s", self.parent_run_id, uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_run_id is None:  # untracked: the jobs' outcome.json files say
            counts = folder_status_counts(self.sweep_dir)
            _LAST_SWEEP.update(counts=counts, where=str(self.sweep_dir))
            return
        counts = child_status_counts(self.client, self.parent_run_id)
        _LAST_SWEEP.update(counts=counts, where=f"MLflow run {self.parent_run_id}", parent=None)
        total = sum(counts.values())
        summary = count_summary(counts)
        self.client.log_metric(self.parent_run_id, "jobs", total)
        for status, count in counts.items():
            self.client.log_metric(self.parent_run_id, f"jobs_{status.lower()}", count)
        self.client.set_tag(self.parent_run_id, tags.SUMMARY, summary or "no jobs")
        self.client.set_terminated(self.parent_run_id, "FINISHED")
        log.info("sweep finished: %d jobs (%s); MLflow run %s", total, summary, self.parent_run_id)
        for key, value in self.saved_env.items():  # as it was before the sweep
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def count_summary(counts: dict[str, int]) -> str:
    """ "3 failed, 1 finished": how many jobs ended each way."""
    return ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))


# How the last multirun of this process ended, for the command line's exit status
_LAST_SWEEP: dict[str, Any] = {}


def end_interrupted_sweep(status: str, why: str) -> None:
    """End the parent run of a sweep that stopped before its end (Ctrl-C, SIGTERM, an error of
    the sweeper): Hydra calls no callback then, and the parent would stay RUNNING."""
    parent = _LAST_SWEEP.get("parent")
    if parent is None:
        return
    client = _LAST_SWEEP["client"]
    try:
        client.set_tag(parent, tags.SUMMARY, f"stopped: {why}")
        client.set_terminated(parent, status)
    except Exception as error:  # the store itself may be what failed
        log.error("the sweep's MLflow run %s could not be ended: %s", parent, error)
    _LAST_SWEEP["parent"] = None


def sweep_failures() -> str | None:
    """A line saying how many jobs of the sweep that just ended failed or were killed, or None
    when none did (or no sweep ran, or it was a search)."""
    if _LAST_SWEEP.get("search"):
        return None
    counts = _LAST_SWEEP.get("counts", {})
    bad = sum(counts.get(status, 0) for status in ("FAILED", "KILLED", "RUNNING"))
    if not bad:
        return None
    return (
        f"{bad} of {sum(counts.values())} jobs of the sweep did not finish "
        f"({count_summary(counts)}): "
        f"see {_LAST_SWEEP['where']}"
    )


def folder_status_counts(sweep_dir: Path) -> dict[str, int]:
    """How the jobs of an untracked sweep ended, from their outcome.json files."""
    from gan_lab.outcome import RunResult
    from gan_lab.tracking.local import OUTCOME_FILE

    counts: dict[str, int] = {}
    for path in sweep_dir.glob(f"*/{OUTCOME_FILE}"):
        status = RunResult.from_json(path.read_text()).status.value
        counts[status] = counts.get(status, 0) + 1
    return counts


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


def child_status_counts(client: Any, parent_run_id: str) -> dict[str, int]:
    """How many of the sweep's runs ended each way, as their outcome records say."""
    parent = client.get_run(parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{tags.PARENT_RUN_ID}` = '{parent_run_id}'",
        max_results=50000,
    )
    counts: dict[str, int] = {}
    for child in children:
        status = outcome_of(child).status.value
        counts[status] = counts.get(status, 0) + 1
    return counts
