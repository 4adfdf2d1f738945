"""How runs end: one record, and every reader of it (MLflow, Optuna, the report, the command
line, the sweep's summary) saying the same thing."""

from __future__ import annotations

import math
import os
import pickle
import signal

import optuna
import pytest

import gan_lab.metrics.evaluator
import gan_lab.training.loop
import gan_lab.training.run
from gan_lab import tags
from gan_lab.outcome import MLFLOW_STATUS, Outcome, Reason, Status, outcome_of
from gan_lab.report import report
from gan_lab.search.study import open_storage
from tests.helpers.cli import run_cli
from tests.helpers.configs import with_defaults
from tests.helpers.metrics import stand_in_metrics
from tests.helpers.tracking import parent_and_children, runs_of

# Each job's train.seed picks how it ends (the patches below make it so).
FINE, BROKEN, DIVERGING, NAN_FID, HOPELESS, TERMINATED = range(6)
# seed -> (status, reason, Optuna state) in a search. SIGTERM ends the whole process, and the
# interrupted trial is asked again when the search resumes (tests/test_search.py).
IN_A_SEARCH = {
    FINE: (Status.FINISHED, None, "COMPLETE"),
    BROKEN: (Status.FAILED, Reason.ERROR, "FAIL"),
    DIVERGING: (Status.FAILED, Reason.DIVERGED, "FAIL"),
    NAN_FID: (Status.FAILED, Reason.INVALID_VALUE, "FAIL"),
    HOPELESS: (Status.PRUNED, Reason.PRUNED, "PRUNED"),
}
# Outside a search there is no objective: a NaN or a poor FID is a finished run's score. The
# terminated job comes last: SIGTERM ends the sweep, as Ctrl-C does.
IN_A_SWEEP = {
    **IN_A_SEARCH,
    NAN_FID: (Status.FINISHED, None, None),
    HOPELESS: (Status.FINISHED, None, None),
    TERMINATED: (Status.KILLED, Reason.TERMINATED, None),
}


@pytest.fixture
def endings(monkeypatch):
    """Make a run end as its train.seed says: a bug in the evaluation, NaN losses, SIGTERM in
    the middle of an epoch, a NaN FID, a FID so poor that the pruner stops it."""
    stand_in_metrics(monkeypatch)
    current = {}
    seed_everything = gan_lab.training.run.seed_everything
    train_step = gan_lab.training.loop.TrainStep.__call__
    evaluate = gan_lab.metrics.evaluator.Evaluator.evaluate

    def remember_seed(seed):
        current["seed"] = seed
        seed_everything(seed)

    def step(self, *args, **kwargs):
        stats = train_step(self, *args, **kwargs)
        if current["seed"] == DIVERGING:
            return stats * math.nan
        if current["seed"] == TERMINATED:
            os.kill(os.getpid(), signal.SIGTERM)
        return stats

    def scores(self, generator):
        if current["seed"] == BROKEN:
            raise RuntimeError("broken evaluation")
        out = evaluate(self, generator)
        fid = {NAN_FID: math.nan, HOPELESS: 1e9}.get(current["seed"], out["fid"])
        return {**out, "fid": fid}

    monkeypatch.setattr(gan_lab.training.run, "seed_everything", remember_seed)
    monkeypatch.setattr(gan_lab.training.loop.TrainStep, "__call__", step)
    monkeypatch.setattr(gan_lab.metrics.evaluator.Evaluator, "evaluate", scores)


RUN = [
    "metrics=standard",
    "metrics.every=1",
    "metrics.num_samples=32",
    "metrics.kid_subset_size=16",
    "train.epochs=2",
    "tracking=mlflow",
    "tracking.log_model=false",
]


def _report_statuses(store: str, experiment: str, folder) -> dict[str, str]:
    """The report's status cell of each row, by the row's number ("job 2", "trial 3")."""
    markdown = report(experiment, str(folder), store).read_text()
    rows = [line.split(" | ") for line in markdown.splitlines() if line.startswith("| ")]
    # rows[0]: the header; a row's label is "job 2: seed=2"
    return {row[0].removeprefix("| ").split(":")[0]: row[1] for row in rows[1:]}


def _agree(run, expected: tuple, report_cell: str) -> Outcome:
    status, reason, _ = expected
    recorded = outcome_of(run)
    assert (recorded.status, recorded.reason) == (status, reason)
    assert run.info.status == MLFLOW_STATUS[status]
    assert report_cell == recorded.headline
    return recorded


@pytest.mark.integration
def test_every_ending_of_a_sweep_is_recorded_once_and_read_the_same(
    tmp_path, monkeypatch, endings, store
):
    seeds = ",".join(map(str, IN_A_SWEEP))
    args = with_defaults(*RUN, f"tracking.uri={store}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    with pytest.raises(SystemExit) as exited:
        run_cli(monkeypatch, "-m", *args, f"train.seed={seeds}")
    assert exited.value.code == 143

    _, runs = runs_of(store)
    _, children = parent_and_children(runs)
    cells = _report_statuses(store, "gan_lab", tmp_path / "report")
    assert len(children) == len(IN_A_SWEEP)
    for child in children:
        seed = int(child.data.params["train.seed"])
        _agree(child, IN_A_SWEEP[seed], cells[f"job {child.data.tags[tags.JOB]}"])


@pytest.mark.integration
def test_every_ending_of_a_search_is_the_same_in_optuna_mlflow_and_the_report(
    tmp_path, monkeypatch, endings, store
):
    journal = tmp_path / "studies" / "s.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    for seed in IN_A_SEARCH:
        study.enqueue_trial({"train.seed": str(seed)})
    args = with_defaults(*RUN, f"tracking.uri={store}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    run_cli(
        monkeypatch,
        "-m",
        "hydra/sweeper=gan_lab_optuna",
        "hydra.sweeper.study_name=s",
        f"hydra.sweeper.n_trials={len(IN_A_SEARCH)}",
        "hydra.sweeper.pruner={_target_:optuna.pruners.MedianPruner,n_startup_trials:1,n_warmup_steps:1}",
        f"train.seed=choice({','.join(map(str, IN_A_SEARCH))})",
        *args,
    )

    study = optuna.load_study(study_name="s", storage=open_storage(str(journal)))
    trials = {t.number: t for t in study.trials}
    _, runs = runs_of(store)
    parent, children = parent_and_children(runs)
    assert parent.data.tags[tags.SUMMARY] == "3 failed, 1 finished, 1 pruned"
    cells = _report_statuses(store, "gan_lab", tmp_path / "report")
    assert len(children) == len(IN_A_SEARCH)
    for child in children:
        seed = int(child.data.params["train.seed"])
        number = int(child.data.tags[tags.TRIAL])
        recorded = _agree(child, IN_A_SEARCH[seed], cells[f"trial {number}"])
        trial = trials[number]
        assert trial.state.name == IN_A_SEARCH[seed][2]
        assert trial.user_attrs["status"] == recorded.status.value
        assert trial.user_attrs.get("reason") == (recorded.reason and recorded.reason.value)
        if trial.state.name == "COMPLETE":
            assert trial.value == recorded.metrics["fid"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("seed", "code", "says"),
    [(FINE, None, ""), (DIVERGING, 2, "diverged by step"), (TERMINATED, 143, "")],
)
def test_a_single_run_exits_as_its_record_says(
    tmp_path, monkeypatch, capsys, endings, seed, code, says
):
    monkeypatch.chdir(tmp_path)
    args = with_defaults(*RUN, "tracking=none", f"train.seed={seed}", f"hydra.run.dir={tmp_path}")
    if code is None:
        run_cli(monkeypatch, *args)
    else:
        with pytest.raises(SystemExit) as exited:
            run_cli(monkeypatch, *args)
        assert exited.value.code == code
    recorded = Outcome.from_json((tmp_path / "outcome.json").read_text())
    assert recorded.status == IN_A_SWEEP[seed][0]
    assert says in capsys.readouterr().err


def test_the_record_survives_its_round_trip():
    result = Outcome(
        Status.FAILED,
        metrics={"fid": 12.5},
        step=7,
        reason=Reason.DIVERGED,
        error="x" * 10_000,
        exception=ValueError("kept in this process only"),
    )
    back = Outcome.from_json(result.to_json())
    assert (back.status, back.reason, back.step, back.metrics) == (
        Status.FAILED,
        Reason.DIVERGED,
        7,
        {"fid": 12.5},
    )
    assert len(result.to_json()) < 8000 and back.exception is None
    assert pickle.loads(pickle.dumps(result)).exception is None  # what a launcher sends back
