"""gan_lab's Optuna sweeper: Optuna 4+'s ask-and-tell API behind Hydra's Sweeper interface.

    python -m gan_lab -m search=anime_s2 data.path=<anime faces>

hydra-optuna-sweeper 1.3 pins Optuna below 3 and cannot prune, hence this one. Each trial is one
Hydra job, started through whichever launcher is configured (basic, joblib, Ray, submitit), with
`trial.*` overrides that let the job report its FID each evaluation to the study and stop when
the pruner gives up on it. With hydra.sweeper.n_jobs > 1, one thread per slot asks for a trial,
launches it and tells its result, so a pruned trial frees its slot at once.

The study lives in its own journal file (studies/<study_name>.journal by default; never MLflow's
database), so running the same command again resumes it: finished trials count, trials that an
interruption left running are run again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.storages import fail_stale_trials
from optuna.trial import TrialState

from gan_lab.errors import GanLabError
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.search.space import parse_space
from gan_lab.search.study import MLFLOW_RUN, SETTINGS, build, open_storage, plain
from gan_lab.sweep.record import current_sweep

log = logging.getLogger(__name__)

TARGET = "hydra_plugins.gan_lab_plugins.optuna_sweeper.GanLabOptunaSweeper"
FINISHED_STATES = (
    TrialState.COMPLETE,
    TrialState.PRUNED,
    TrialState.FAIL,
)


SAMPLER = {"_target_": "optuna.samplers.TPESampler", "seed": 0}
PRUNER = {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 3, "n_warmup_steps": 1}


@dataclass
class OptunaSweeperConf:
    _target_: str = TARGET
    # The sampler's and pruner's specs reach the sweeper as written (not built by Hydra): each
    # trial's job builds the pruner again from the spec stored in the study.
    _recursive_: bool = False
    study_name: str = "gan_lab"
    storage: str | None = (
        None  # a journal file path or a database URL; null: studies/<name>.journal
    )
    direction: str = "minimize"
    objective: str = "fid"  # a metric of the run's result: fid (the last), best_fid, kid, ...
    n_trials: int = 20  # finished trials the study should have
    n_jobs: int = 1  # trials at once (more than 1 needs a parallel launcher)
    # Optuna's own sampler and pruner, as Hydra instantiates objects: _target_ and arguments
    # (null: SAMPLER, PRUNER below; a spec given replaces them whole, it is not merged with them).
    # TPE gets constant_liar=true when trials run in parallel, unless it is set; a sampler's seed
    # moves on by the trials a resumed study already has, so that it draws new points. The pruner
    # judges each trial's objective after every evaluation (step = epoch, from 1).
    sampler: Any = None
    pruner: Any = None
    params: dict[str, str] = field(default_factory=dict)


# How each ending of a trial's run counts in its study.
TRIAL_STATE = {
    Status.FINISHED: TrialState.COMPLETE,
    Status.PRUNED: TrialState.PRUNED,
    Status.FAILED: TrialState.FAIL,
    Status.KILLED: TrialState.FAIL,
}
# How each state of a study's trials counts in the search's summary (waiting ones do not).
TRIAL_STATUS = {
    TrialState.COMPLETE: Status.FINISHED,
    TrialState.PRUNED: Status.PRUNED,
    TrialState.FAIL: Status.FAILED,
    TrialState.RUNNING: Status.RUNNING,  # another search's, on a database server
}


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Trials left RUNNING by an interrupted invocation end FAIL and are asked again, first.
    Returns their numbers. Where the storage keeps heartbeats (a database server, which another
    search may be driving now), only trials whose heartbeat stopped count as interrupted;
    elsewhere only one sweeper drives a study at a time (its lock), so every RUNNING one does."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if _beats(study):
        fail_stale_trials(study)
        failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        stale = [t for t in running if t.number in failed]
    else:
        stale = running
        for trial in stale:
            study.tell(trial.number, state=TrialState.FAIL)
    for trial in stale:
        study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number})
    return [trial.number for trial in stale]


def _beats(study: optuna.Study) -> bool:
    # Optuna offers these only in its own modules (what Study.optimize uses)
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(study._storage)


@contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Tells the storage, every heartbeat interval while the block runs, that `trial` lives
    (where the storage keeps heartbeats; elsewhere it does nothing)."""
    if not _beats(study):
        yield
        return
    storage = study._storage
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            storage.record_heartbeat(trial._trial_id)
            stop.wait(storage.get_heartbeat_interval())

    beating = threading.Thread(target=beat, name=f"heartbeat {trial.number}", daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join()


def trial_counts(study: optuna.Study) -> dict[Status, int]:
    """The study's trials by how they ended, every invocation's (an interrupted trial FAIL)."""
    counts: dict[Status, int] = {}
    for trial in study.get_trials(deepcopy=False):
        if trial.state in TRIAL_STATUS:
            status = TRIAL_STATUS[trial.state]
            counts[status] = counts.get(status, 0) + 1
    return counts


def finished_count(study: optuna.Study) -> int:
    """Finished trials that count toward n_trials: interrupted ones (run again) do not."""
    trials = study.get_trials(deepcopy=False)
    requeued = {t.user_attrs["requeued_from"] for t in trials if "requeued_from" in t.user_attrs}
    return sum(t.state in FINISHED_STATES and t.number not in requeued for t in trials)


def study_lock(storage: str, study_name: str) -> Path | None:
    """The file a search holds while it runs its study, derived from the storage itself so that
    searches started in any folder share it: beside a journal file or a sqlite database (one per
    study), None for a database server (postgresql://, mysql://), which has no file to be beside
    and whose trials keep a heartbeat instead."""
    if "://" not in storage:
        return Path(storage).with_suffix(".lock")
    if not storage.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(storage).database
    if not database or database == ":memory:":  # a database of this process alone
        return None
    path = Path(database).resolve()
    return path.with_name(f"{path.name}.{study_name}.lock")


class OptunaSweeper(Sweeper):
    def __init__(self, **conf: Any) -> None:
        given = {k: v for k, v in conf.items() if k not in ("_target_", "_recursive_")}
        self.conf = OptunaSweeperConf(**given)
        self.lock = threading.Lock()

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _storage(self) -> str:
        """Where the study lives, as given: a URI, or a journal file (by default
        studies/<study name>.journal)."""
        return self.conf.storage or str(Path("studies") / f"{self.conf.study_name}.journal")

    def _study(self) -> tuple[optuna.Study, str]:
        conf = self.conf
        spec = self._storage()
        if "://" not in spec:
            spec = str(Path(spec).resolve())  # jobs in other folders or processes find it too
        pruner = plain(conf.pruner or PRUNER)
        study = optuna.create_study(
            study_name=conf.study_name,
            storage=open_storage(spec),
            pruner=build("hydra.sweeper.pruner", pruner),
            direction=conf.direction,
            load_if_exists=True,
        )
        # What each trial's job needs to judge itself (gan_lab.search.trial.TrialJudge)
        study.set_user_attr(SETTINGS, {"objective": conf.objective, "pruner": pruner})
        sampler = plain(conf.sampler or SAMPLER)
        if sampler.get("seed") is not None:
            sampler["seed"] += len(study.trials)
        if conf.n_jobs > 1 and sampler.get("_target_", "").endswith("TPESampler"):
            sampler.setdefault("constant_liar", True)  # parallel trials spread out
        study.sampler = build("hydra.sweeper.sampler", sampler)
        return study, spec

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        conf = self.conf
        if conf.n_jobs > 1 and type(self.launcher).__name__ == "BasicLauncher":
            raise GanLabError(
                f"hydra.sweeper.n_jobs={conf.n_jobs} needs a parallel launcher: add "
                "hydra/launcher=joblib (or ray, slurm)"
            )
        space = parse_space(dict(conf.params), arguments)
        # Held while this search runs: a second search of the same study refuses in one line
        # instead of rerunning this one's running trials as interrupted ones.
        from filelock import FileLock, Timeout

        lock = study_lock(self._storage(), conf.study_name)
        if lock is None:  # a database server: Optuna's heartbeat tells live trials from stale ones
            return self._search(space)
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(lock), timeout=0):
                return self._search(space)
        except Timeout:
            raise GanLabError(
                f"study {conf.study_name} is being run by another search (lock {lock}): wait "
                "for it to end, or give this one another hydra.sweeper.study_name"
            ) from None

    def _search(self, space) -> list[JobReturn]:
        conf = self.conf
        study, spec = self._study()
        requeued = requeue_interrupted(study)
        todo = max(conf.n_trials - finished_count(study), 0)
        log.info(
            "study %s in %s: %d trials to run%s",
            conf.study_name,
            spec,
            todo,
            f" ({len(requeued)} interrupted ones again)" if requeued else "",
        )
        # every check passed: the search's parent run now (a refused search leaves none)
        current_sweep().open_search(conf.study_name, spec, requeued)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        trial_args = [f"trial.study={conf.study_name}", f"trial.storage='{spec}'"]
        self.remaining = todo
        results: list[JobReturn] = []

        def slot() -> None:
            while True:
                with self.lock:
                    if self.remaining <= 0:
                        return
                    self.remaining -= 1
                    trial = study.ask(space.distributions)
                overrides = [
                    *space.overrides(trial.params),
                    *trial_args,
                    f"trial.number={trial.number}",
                ]
                with heartbeat(study, trial):
                    (outcome,) = self.launcher.launch([overrides], initial_job_idx=trial.number)
                with self.lock:
                    self._tell(study, trial, outcome)
                    results.append(outcome)

        if conf.n_jobs == 1:
            slot()
        else:
            with ThreadPoolExecutor(conf.n_jobs) as pool:
                for future in [pool.submit(slot) for _ in range(conf.n_jobs)]:
                    future.result()
        self._summarise(study, sweep_dir)
        current_sweep().counts = trial_counts(study)  # the parent's summary: the study's truth
        return results

    def _tell(self, study: optuna.Study, trial: optuna.Trial, job: JobReturn) -> None:
        """The trial's state from its run's outcome; the outcome is stored on the trial too."""
        try:
            outcome = job.return_value  # raises what the job raised
        except Exception as error:  # a bug outside run(), which returns every failure
            outcome = Outcome(Status.FAILED, reason=Reason.ERROR, error=repr(error))
        value = outcome.metrics.get(self.conf.objective)
        state = TRIAL_STATE[outcome.status]
        if state == TrialState.COMPLETE and value is None:  # run() judged it: never expected
            state = TrialState.FAIL
        trial.set_user_attr("status", outcome.status.value)
        if outcome.reason is not None:
            trial.set_user_attr("reason", outcome.reason.value)
        if outcome.error:
            trial.set_user_attr("error", outcome.error[:1000])
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        log.info("trial %d: %s", trial.number, outcome.describe())

    def _summarise(self, study: optuna.Study, sweep_dir: Path) -> None:
        """The best trial in the log and, as Hydra's own Optuna sweeper writes it, in
        <sweep dir>/optimization_results.yaml."""
        done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
        if not done:
            log.warning("study %s: no trial completed", self.conf.study_name)
            return
        best = study.best_trial
        results = {
            "name": "optuna",
            "study": self.conf.study_name,
            "best_trial": best.number,
            "best_params": best.params,
            "best_value": best.value,
            "mlflow_run_id": best.user_attrs.get(MLFLOW_RUN),
        }
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        args = " ".join(f"{k}={v}" for k, v in best.params.items())
        log.info(
            "study %s: best trial %d, %s %.4g: %s",
            self.conf.study_name,
            best.number,
            self.conf.objective,
            best.value,
            args,
        )
