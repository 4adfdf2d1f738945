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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lab import tags
from gan_lab.config.choices import TrackerName
from gan_lab.errors import GanLabError
from gan_lab.outcome import MLFLOW_STATUS, Outcome, Reason, Status, outcome_of
from gan_lab.tracking import PARENT_RUN_ENV, SWEEP_ID_ENV, SWEPT_ENV

log = logging.getLogger(__name__)


class SweepRefused(BaseException):  # noqa: N818 (not an error of its own: it carries one)
    """The sweep cannot start (its store does not answer): raised from on_multirun_start, before
    any job runs. A BaseException, because Hydra turns a callback's Exception into a warning and
    launches every job anyway; main() prints `error` in one line."""

    def __init__(self, error: GanLabError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class SweepRecord:
    """The multirun of this process: its parent run while it is open, and how its jobs ended, for
    the command line's exit status. The parent's own outcome is an Outcome, as a run's."""

    search: bool = False  # a search's failed trials are part of searching: its exit stays 0
    sweep_dir: Path | None = None
    client: Any = None
    parent_run_id: str | None = None  # None once the parent is ended (or with tracking=none)
    counts: dict[Status, int] = field(default_factory=dict)  # jobs per status, at the end
    where: str = ""  # where the jobs' records are: the sweep folder or the parent run
    open: bool = False  # launched and not ended: on_multirun_end has not run

    def close(self, outcome: Outcome, summary: str) -> None:
        """End the parent run as `outcome` says (its MLflow status and the gan_lab.outcome tag,
        as a run's); best effort, the store itself may be what failed."""
        parent, self.parent_run_id = self.parent_run_id, None
        if parent is None:
            return
        try:
            self.client.set_tag(parent, tags.SUMMARY, summary)
            self.client.set_tag(parent, tags.OUTCOME, outcome.to_json())
            self.client.set_terminated(parent, MLFLOW_STATUS[outcome.status])
        except Exception as error:
            log.error("the sweep's MLflow run %s could not be ended: %s", parent, error)

    def started(self) -> int:
        """How many jobs the launcher started: the job folders Hydra made in the sweep folder."""
        return len(job_folders(self.sweep_dir)) if self.sweep_dir else 0

    def abandon(self, why: str, status: Status = Status.FAILED) -> None:
        """End a sweep that its launcher gave up on (a worker killed by the OOM killer or a
        signal: joblib's pool cannot go on without it): every job run still RUNNING ends
        KILLED with `why`, and the parent `status` (FAILED; KILLED for a signal) with the count
        of its jobs."""
        if self.parent_run_id is None:
            if self.sweep_dir is not None:
                self.counts = folder_status_counts(self.sweep_dir)
            return
        killed = Outcome(Status.KILLED, reason=Reason.ERROR, error=why)
        try:
            for child in _children(self.client, self.parent_run_id):
                if outcome_of(child).status == Status.RUNNING:
                    self.client.set_tag(child.info.run_id, tags.OUTCOME, killed.to_json())
                    self.client.set_terminated(child.info.run_id, MLFLOW_STATUS[Status.KILLED])
            self.counts = child_status_counts(self.client, self.parent_run_id, self.started())
        except Exception as error:  # the store itself may be what failed
            log.error("the sweep's job runs could not be ended: %s", error)
        summary = f"stopped: {why}; jobs: {count_summary(self.counts) or 'none'}"
        self.close(Outcome(status, reason=Reason.ERROR, error=why), summary)

    def lost(self, job: int, why: str) -> Outcome:
        """How job number `job` ended, where its launcher got no result from it (its SLURM job
        cancelled, its Ray node lost): what its run recorded itself (a SIGTERM it caught), else
        KILLED with `why`, recorded on its run that was left RUNNING."""
        killed = Outcome(Status.KILLED, reason=Reason.TERMINATED, error=why)
        if self.parent_run_id is None:
            return killed
        try:
            for child in _children(self.client, self.parent_run_id):
                if child.data.tags.get(tags.JOB) != str(job):
                    continue
                if outcome_of(child).status != Status.RUNNING:
                    return outcome_of(child)
                self.client.set_tag(child.info.run_id, tags.OUTCOME, killed.to_json())
                self.client.set_terminated(child.info.run_id, MLFLOW_STATUS[Status.KILLED])
        except Exception as error:  # the store itself may be what failed
            log.error("the run of job %d could not be ended: %s", job, error)
        return killed

    def failures(self) -> str | None:
        """A line saying how many jobs did not finish, or None when all did (or it was a
        search, whose failed trials are part of searching)."""
        bad = sum(self.counts.get(s, 0) for s in (Status.FAILED, Status.KILLED, Status.RUNNING))
        if self.search or not bad:
            return None
        return (
            f"{bad} of {sum(self.counts.values())} jobs of the sweep did not finish "
            f"({count_summary(self.counts)}): see {self.where}"
        )


# The multirun this process runs or ran last (Hydra builds the callback; main() reads this)
_current = SweepRecord()


def current_sweep() -> SweepRecord:
    return _current


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.saved_env: dict[str, str | None] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        _current = record = SweepRecord(
            search=config.hydra.runtime.choices["hydra/sweeper"] == "gan_lab_optuna",
            sweep_dir=Path(str(config.hydra.sweep.dir)),
        )
        record.where, record.open = str(record.sweep_dir), True
        if config.tracking.name != TrackerName.MLFLOW:
            return
        from gan_lab.tracking.mlflow_tracker import connect, resolve_uri

        uri = resolve_uri(config.tracking.uri)
        try:
            record.client = connect(uri)  # creates and migrates a new store here, once
        except GanLabError as error:  # before any job: the sweep stops here, in one line
            raise SweepRefused(error) from error
        hydra = config.hydra  # HydraConfig.get() is not set yet when a multirun starts
        sweep_id, swept = str(hydra.sweep.dir), swept_keys(config)
        record.parent_run_id = (
            _reopened_parent(record.client, config, sweep_id) if config.train.resume else None
        ) or _new_parent(record.client, config, sweep_id, swept)
        record.where = f"MLflow run {record.parent_run_id}"
        handed_down = {
            "MLFLOW_TRACKING_URI": uri,
            PARENT_RUN_ENV: record.parent_run_id,
            SWEEP_ID_ENV: sweep_id,
            SWEPT_ENV: ",".join(swept),
        }
        self.saved_env = {key: os.environ.get(key) for key in handed_down}
        os.environ.update(handed_down)
        log.info("MLflow sweep run %s in %s", record.parent_run_id, uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        record = _current
        record.open = False
        if record.parent_run_id is None:  # untracked: the jobs' outcome.json files say
            if record.sweep_dir is not None:
                record.counts = folder_status_counts(record.sweep_dir)
            return
        parent = record.parent_run_id
        record.counts = counts = child_status_counts(record.client, parent, record.started())
        total, summary = sum(counts.values()), count_summary(counts)
        record.client.log_metric(parent, "jobs", total)
        for status, count in counts.items():
            record.client.log_metric(parent, f"jobs_{status.lower()}", count)
        # the sweep ran to its end: FINISHED, whatever its jobs did (the summary counts them)
        record.close(Outcome(Status.FINISHED), summary or "no jobs")
        log.info("sweep finished: %d jobs (%s); MLflow run %s", total, summary, parent)
        for key, value in self.saved_env.items():  # as it was before the sweep
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _new_parent(client: Any, config: DictConfig, sweep_id: str, swept: list[str]) -> str:
    from gan_lab.tracking.mlflow_tracker import experiment_id, run_name_of

    hydra = config.hydra
    parent = client.create_run(
        experiment_id(client, config.tracking.experiment),
        run_name=run_name_of(f"sweep {', '.join(swept)}" if swept else "sweep"),
        tags={
            tags.KIND: "sweep",
            tags.SWEEP_ID: sweep_id,
            tags.SWEEP_OVERRIDES: " ".join(hydra.overrides.task),
            tags.SWEEPER: str(hydra.runtime.choices["hydra/sweeper"]),
            tags.LAUNCHER: str(hydra.runtime.choices["hydra/launcher"]),
            tags.SWEPT: ",".join(swept),
        },
    )
    return parent.info.run_id


def _reopened_parent(client: Any, config: DictConfig, sweep_id: str) -> str | None:
    """A resumed sweep (train.resume, the same sweep folder) continues its parent run: the
    newest one of that folder, running again and without its old outcome."""
    found = client.get_experiment_by_name(config.tracking.experiment)
    if found is None:
        return None
    parents = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{tags.KIND}` = 'sweep' and tags.`{tags.SWEEP_ID}` = '{sweep_id}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not parents:
        return None
    run = parents[0]
    client.update_run(run.info.run_id, status="RUNNING")
    if tags.OUTCOME in run.data.tags:
        client.delete_tag(run.info.run_id, tags.OUTCOME)
    log.info("continuing the sweep's MLflow run %s", run.info.run_id)
    return run.info.run_id


def count_summary(counts: dict[Status, int]) -> str:
    """ "3 failed, 1 finished": how many jobs ended each way."""
    return ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))


def folder_status_counts(sweep_dir: Path) -> dict[Status, int]:
    """How the jobs of an untracked sweep ended, from their outcome.json files; a job folder
    without one (its worker died before it could say) counts as RUNNING: not ended."""
    from gan_lab.tracking.local import OUTCOME_FILE

    counts: dict[Status, int] = {}
    for folder in job_folders(sweep_dir):
        path = folder / OUTCOME_FILE
        status = Outcome.from_json(path.read_text()).status if path.is_file() else Status.RUNNING
        counts[status] = counts.get(status, 0) + 1
    return counts


def job_folders(sweep_dir: Path) -> list[Path]:
    """The folders of the sweep's jobs that started: Hydra writes .hydra/ into each first."""
    return sorted(p.parent for p in sweep_dir.glob("*/.hydra"))


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


def child_status_counts(client: Any, parent_run_id: str, started: int = 0) -> dict[Status, int]:
    """How many of the sweep's runs ended each way, as their outcome records say; of `started`
    jobs, those with no run (they failed before they reached the store) count as FAILED."""
    children = _children(client, parent_run_id)
    counts: dict[Status, int] = {}
    for child in children:
        status = outcome_of(child).status
        counts[status] = counts.get(status, 0) + 1
    if started > len(children):
        counts[Status.FAILED] = counts.get(Status.FAILED, 0) + started - len(children)
    return counts


def _children(client: Any, parent_run_id: str) -> list[Any]:
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{tags.PARENT_RUN_ID}` = '{parent_run_id}'",
        max_results=50000,
    )
