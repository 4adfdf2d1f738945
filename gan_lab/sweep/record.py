"""The record of a multirun: its MLflow parent run while it is open, and how its jobs ended.

Before any job starts (begin) it opens the store once (MLflow's sqlite store, created by several
processes at once, races in its schema migration and can stay broken), checks the experiment,
creates or continues the parent run (training/continuation.py says which), and hands the store's
absolute URI, the parent run id and a sweep id down to every job (handoff.py). A search's parent
waits for its sweeper (open_search): a search that its sweeper refuses leaves no parent, and a
search run again continues its study's. When the sweep ends (end) it tallies the jobs and ends
the parent with a summary; where the store stopped answering, the jobs' own records
(outcome.json) say how they ended, and the resume command repairs the store's. What the command
line then exits with is exits.py's.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from gan_lab import tags
from gan_lab.config.choices import TrackerName
from gan_lab.errors import GanLabError
from gan_lab.outcome import MLFLOW_STATUS, Outcome, Reason, Status, outcome_of
from gan_lab.overrides import key_of
from gan_lab.sweep import handoff
from gan_lab.sweep.names import parent_name, parent_tags, swept_keys
from gan_lab.tracking.store import describe, store_errors
from gan_lab.training.continuation import Continuation, recorded_run_id

log = logging.getLogger(__name__)


class SweepRefused(BaseException):  # noqa: N818 (not an error of its own: it carries one)
    """The sweep cannot start (its store does not answer): raised from begin(), before any job
    runs. A BaseException, because Hydra turns a callback's Exception into a warning and launches
    every job anyway; the command line prints `error` in one line."""

    def __init__(self, error: GanLabError) -> None:
        super().__init__(str(error))
        self.error = error


class SweepUnfinished(Exception):  # noqa: N818 (an ending, not an error of the code)
    """The sweep ran to its end, but its store stopped answering or not all its jobs finished:
    the message says which, and where to look."""


@dataclass
class SweepRecord:
    """The multirun of this process: its parent run while it is open, and how its jobs ended, for
    the command line's exit status. The parent's own outcome is an Outcome, as a run's."""

    search: bool = False  # a search's failed trials are part of searching: its exit stays 0
    sweep_dir: Path | None = None
    resume_command: str = ""  # the command that continues the sweep (train.resume=auto)
    client: Any = None
    uri: str = ""
    experiment_id: str | None = None
    parent_tags: dict[str, str] = field(default_factory=dict)  # of a parent not yet created
    parent_name: str = "sweep"
    parent_run_id: str | None = None  # None once the parent is ended (or with tracking=none)
    counts: dict[Status, int] = field(default_factory=dict)  # jobs per status, at the end
    where: str = ""  # where the jobs' records are: the sweep folder or the parent run
    open: bool = False  # launched and not ended: end() has not run
    store_lost: str | None = None  # the store's error, where it stopped answering
    saved_env: handoff.Saved = field(default_factory=dict)  # the environment before the sweep

    def open_parent(self, earlier: str | None = None) -> None:
        """The parent run: the newest parent run that the filter `earlier` matches, continued
        (running again, without its old outcome), else a new one; handed down to the jobs."""
        client, parent = self.client, None
        if earlier is not None:
            found = client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{tags.KIND}` = 'sweep' and {earlier}",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            parent = found[0].info.run_id if found else None
        if parent is not None:
            client.update_run(parent, status="RUNNING")
            if tags.OUTCOME in found[0].data.tags:
                client.delete_tag(parent, tags.OUTCOME)
            log.info("continuing the sweep's MLflow run %s", parent)
        else:
            from gan_lab.tracking.mlflow_tracker import run_name_of

            name = run_name_of(self.parent_name)
            created = client.create_run(self.experiment_id, run_name=name, tags=self.parent_tags)
            parent = created.info.run_id
        self.parent_run_id, self.where = parent, f"MLflow run {parent}"
        handoff.hand_down_parent(parent)
        log.info("MLflow sweep run %s in %s", parent, self.uri)

    def open_search(self, study: str, storage: str, interrupted: list[int]) -> None:
        """A search's parent, once its sweeper has accepted it: its study's (a search run again,
        after a kill -9 too, continues it). The runs of the `interrupted` trials (a search that
        died left them RUNNING; the study runs them again) end KILLED at the step they reached."""
        if self.client is None:  # tracking=none
            return
        key = hashlib.sha256(f"{storage}\n{study}".encode()).hexdigest()[:16]
        self.parent_tags |= {tags.STUDY: study, tags.STUDY_KEY: key}
        self.open_parent(f"tags.`{tags.STUDY_KEY}` = '{key}'")
        numbers = {str(n) for n in interrupted}
        for child in _children(self.client, self.parent_run_id):
            running = outcome_of(child).status == Status.RUNNING
            if running and child.data.tags.get(tags.TRIAL) in numbers:
                self.end_killed(child, "the search's process ended first; the trial runs again")

    def end_killed(self, run: Any, why: str) -> None:
        """End a job's run that its process left RUNNING: KILLED, at the step it reached as far
        as the store knows: the last step of its g_loss (logged every tracking.log_every)."""
        history = self.client.get_metric_history(run.info.run_id, "g_loss")
        step = max((m.step for m in history), default=0)
        killed = Outcome(Status.KILLED, reason=Reason.ERROR, error=why, step=step)
        self.client.set_tag(run.info.run_id, tags.OUTCOME, killed.to_json())
        self.client.set_terminated(run.info.run_id, MLFLOW_STATUS[Status.KILLED])

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

    def tally(self, unrecorded: Status, children: list[Any] | None = None) -> dict[Status, int]:
        """How the sweep's jobs ended: as their runs' outcomes say (`children`: the parent's
        runs, read from the store unless given), and for each job folder of this sweep with no
        run among them, its outcome.json, else `unrecorded` (its process left no record: FAILED
        when the sweep ended, KILLED when its launcher gave up)."""
        if children is None:
            children = _children(self.client, self.parent_run_id) if self.parent_run_id else []
        counts = Counter(outcome_of(child).status for child in children)
        runs = {child.info.run_id for child in children}
        for folder in job_folders(self.sweep_dir) if self.sweep_dir else []:
            if recorded_run_id(folder) not in runs:
                counts[local_status(folder, unrecorded)] += 1
        return dict(counts)

    def lose_store(self, error: BaseException, unrecorded: Status) -> None:
        """The store stopped answering: the jobs' own records (outcome.json) are counted, and
        the parent is left for the resume command to continue."""
        self.store_lost = describe(error)
        self.counts = self.counts or self.tally(unrecorded, children=[])
        self.parent_run_id = None

    def abandon(self, why: str, status: Status = Status.FAILED) -> None:
        """End a sweep that its launcher gave up on (a worker killed by the OOM killer or a
        signal: joblib's pool cannot go on without it): every job run still RUNNING ends
        KILLED with `why` at the step it reached, a started job without a run counts KILLED,
        and the parent ends `status` (FAILED; KILLED for a signal) with the count of its jobs."""
        if self.parent_run_id is None:
            if self.store_lost is None:
                self.counts = self.tally(Status.KILLED)
            return
        try:
            children = _children(self.client, self.parent_run_id)
            for child in children:
                if outcome_of(child).status == Status.RUNNING:
                    self.end_killed(child, why)
            self.counts = self.tally(Status.KILLED)
        except store_errors() as error:
            self.lose_store(error, Status.KILLED)
            return
        summary = f"stopped: {why}; jobs: {count_summary(self.counts) or 'none'}"
        self.close(Outcome(status, reason=Reason.ERROR, error=why), summary)

    def job_lost(self, job: int, why: str) -> Outcome:
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

    def lost(self) -> str | None:
        """The line for a sweep whose store stopped answering, or None."""
        if self.store_lost is None:
            return None
        return (
            f"the tracking store {self.uri} stopped answering during the sweep "
            f"({self.store_lost}): its jobs ({count_summary(self.counts) or 'none'}) are "
            "recorded in their folders (outcome.json), not all in MLflow; once the store "
            f"answers, replay them into it with: {self.resume_command}"
        )

    def check_finished(self) -> None:
        """SweepUnfinished where the store went away or not every job finished: a sweep that
        ran to its end is a success only then."""
        if unfinished := self.lost() or self.failures():
            raise SweepUnfinished(unfinished)


# The multirun this process runs or ran last: Hydra builds the callback that begins it, and the
# sweeper, the launchers and the command line reach it here.
_current = SweepRecord()


def current_sweep() -> SweepRecord:
    return _current


def begin(config: DictConfig) -> SweepRecord:
    """The record of the multirun that `config` (with its hydra node) starts, as the current
    sweep: with tracking=mlflow its store opened once, its parent run opened (a search's waits
    for its sweeper) and handed down with the rest to its jobs."""
    global _current
    hydra = config.hydra  # HydraConfig.get() is not set yet when a multirun starts
    _current = record = SweepRecord(
        search=hydra.runtime.choices["hydra/sweeper"] == "gan_lab_optuna",
        sweep_dir=Path(str(hydra.sweep.dir)),
        resume_command=resume_command(config),
    )
    record.where, record.open = str(record.sweep_dir), True
    if config.tracking.name != TrackerName.MLFLOW:
        return record
    from gan_lab.tracking.store import connect, experiment_id, resolve_uri

    record.uri = uri = resolve_uri(config.tracking.uri)
    try:
        record.client = connect(uri)  # creates and migrates a new store here, once
        record.experiment_id = experiment_id(record.client, config.tracking.experiment)
    except GanLabError as error:  # before any job: the sweep stops here, in one line
        raise SweepRefused(error) from error
    sweep_id, swept = str(hydra.sweep.dir), swept_keys(config)
    record.parent_name, record.parent_tags = parent_name(swept), parent_tags(config, swept)
    record.saved_env = handoff.hand_down(uri, sweep_id, swept)
    if not record.search:  # a search's parent: once its sweeper accepts it (open_search)
        record.open_parent(Continuation(config.train.resume).sweep_parent(sweep_id))
    return record


def end() -> None:
    """The current sweep ran to its end: its jobs tallied, its parent run ended FINISHED with
    their count (whatever they did: the summary counts them), the environment restored."""
    record = _current
    record.open = False
    handoff.restore(record.saved_env)
    if record.parent_run_id is None:  # untracked: the jobs' outcome.json files say
        record.counts = record.counts or record.tally(Status.FAILED)
        return
    parent = record.parent_run_id
    try:  # a search's counts are its study's (the sweeper's)
        record.counts = counts = record.counts or record.tally(Status.FAILED)
        record.client.log_metric(parent, "jobs", sum(counts.values()))
        for status, count in counts.items():
            record.client.log_metric(parent, f"jobs_{status.lower()}", count)
    except store_errors() as error:
        record.lose_store(error, Status.FAILED)
        return
    summary = count_summary(counts)
    record.close(Outcome(Status.FINISHED), summary or "no jobs")
    log.info("sweep finished: %d jobs (%s); MLflow run %s", sum(counts.values()), summary, parent)


def resume_command(config: DictConfig) -> str:
    """The command that continues this sweep where it stopped: its own overrides (Hydra's and
    the job's), with train.resume=auto in the same sweep folder."""
    hydra = config.hydra
    given = [*hydra.overrides.hydra, *hydra.overrides.task]
    replaced = ("train.resume", "hydra.sweep.dir", "hydra.mode")
    kept = [shlex.quote(o) for o in given if key_of(o) not in replaced]
    folder = shlex.quote(f"hydra.sweep.dir={Path(str(hydra.sweep.dir)).resolve()}")
    return " ".join(["python -m gan_lab -m", *kept, "train.resume=auto", folder])


def count_summary(counts: dict[Status, int]) -> str:
    """ "3 failed, 1 finished": how many jobs ended each way."""
    return ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))


def local_status(folder: Path, unrecorded: Status) -> Status:
    """How a job ended as its folder's outcome.json says, else `unrecorded`."""
    from gan_lab.tracking.local import OUTCOME_FILE

    path = folder / OUTCOME_FILE
    return Outcome.from_json(path.read_text()).status if path.is_file() else unrecorded


def job_folders(sweep_dir: Path) -> list[Path]:
    """The folders of the sweep's jobs that started: Hydra writes .hydra/ into each first."""
    return sorted(p.parent for p in sweep_dir.glob("*/.hydra"))


def _children(client: Any, parent_run_id: str) -> list[Any]:
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{tags.PARENT_RUN_ID}` = '{parent_run_id}'",
        max_results=50000,
    )
