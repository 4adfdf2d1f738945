"""The evaluation policy on its own (training/evaluation.py): when a run is scored, which
generator's FID counts, which snapshot is the best and what a search trial's judge decides. In
process, with a stand-in scorer and judge: no training, no tracker, no MLflow."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

from gan_lab.config import MetricsConfig, TrialConfig
from gan_lab.metrics.scores import SAMPLES
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.search.trial import SETTINGS, TrialJudge, open_storage
from gan_lab.training.evaluation import GO_ON, Evaluation, Scored, Verdict

RAW, AVERAGE = "raw generator", "moving average"


class Scorer:
    """Scores each generator (here a name) as its table says, and counts the calls."""

    def __init__(self, fids: dict[str, float]) -> None:
        self.fids, self.scored = fids, []

    def evaluate(self, generator: str) -> dict[str, float]:
        self.scored.append(generator)
        return {"fid": self.fids[generator], "kid": self.fids[generator] / 100, SAMPLES: 64}


class Judge:
    """Answers every evaluation with `answer`, and keeps what it was shown."""

    def __init__(self, answer: Outcome | None = None) -> None:
        self.answer, self.seen = answer, []

    def after_evaluation(self, step: int, metrics: dict[str, float], unit: str = "epoch"):
        self.seen.append((step, metrics, unit))
        return self.answer

    def at_end(self, metrics: dict[str, float]) -> Outcome | None:
        return self.answer


def gan(averaged: bool = True) -> SimpleNamespace:
    """What the policy reads of models.gan.Gan: the generator it shows, the raw one, the average."""
    shown = AVERAGE if averaged else RAW
    return SimpleNamespace(eval_generator=shown, generator=RAW, ema=object() if averaged else None)


def policy(scorer=None, judge=None, score_raw: bool = True, **metrics) -> Evaluation:
    return Evaluation(MetricsConfig(**metrics), score_raw, scorer or Scorer({RAW: 1.0}), judge)


PRUNED = Outcome(Status.PRUNED, reason=Reason.PRUNED, error="after epoch 4 (fid 90)")


def test_by_epochs_it_scores_every_so_many_epochs_and_at_the_end():
    evaluation = policy(every=2)
    assert [e for e in range(1, 7) if evaluation.due_after_epoch(e)] == [2, 4, 6]
    assert not evaluation.by_minutes and not evaluation.due_after_step(10_000)
    assert evaluation.due_at_end(step=36)
    evaluation.score(gan(averaged=False), step=36, seconds=50)
    assert not evaluation.due_at_end(step=36)  # scored at its last step already
    assert evaluation.due_at_end(step=37)


def test_every_zero_epochs_scores_at_the_end_only():
    evaluation = policy(every=0)
    assert not any(evaluation.due_after_epoch(e) for e in range(1, 10))
    assert evaluation.due_at_end(step=12)


def test_without_a_scorer_nothing_is_ever_due():
    evaluation = Evaluation(MetricsConfig(every=1, every_minutes=None), True)
    assert not evaluation.due_after_epoch(1) and not evaluation.due_at_end(5)
    assert not Evaluation(MetricsConfig(every_minutes=1.0), True).by_minutes


def test_by_minutes_it_scores_at_the_step_after_each_mark_whatever_the_epoch():
    evaluation = policy(every=1, every_minutes=0.5)  # every 30 s of training
    assert evaluation.by_minutes
    assert not evaluation.due_after_epoch(1)  # the epochs no longer count
    assert not evaluation.due_after_step(seconds=29.9)
    assert evaluation.due_after_step(seconds=31.0)
    evaluation.score(gan(averaged=False), step=7, seconds=31.0)
    assert evaluation.evaluated_mark == 1
    assert not evaluation.due_after_step(seconds=59.0)  # the same mark: scored already
    assert evaluation.due_after_step(seconds=95.0)  # marks skipped by a long step: one score
    evaluation.score(gan(averaged=False), step=9, seconds=95.0)
    assert evaluation.evaluated_mark == 3


def test_the_raw_generator_counts_where_its_fid_is_lower():
    scorer = Scorer({AVERAGE: 20.0, RAW: 15.0})
    scored = policy(scorer).score(gan(), step=10, seconds=1)
    assert scorer.scored == [AVERAGE, RAW]
    assert scored.fid == 15.0 and scored.raw_better
    assert scored.scores["fid"] == 20.0 and scored.scores["fid_raw"] == 15.0
    assert f"{SAMPLES}_raw" not in scored.scores  # the counts are the same for both


def test_the_moving_average_counts_where_its_fid_is_lower_or_the_raw_one_is_not_scored():
    scored = policy(Scorer({AVERAGE: 10.0, RAW: 15.0})).score(gan(), step=10, seconds=1)
    assert scored.fid == 10.0 and not scored.raw_better
    scorer = Scorer({AVERAGE: 20.0, RAW: 15.0})
    scored = policy(scorer, score_raw=False).score(gan(), step=10, seconds=1)  # ema.score_raw
    assert scorer.scored == [AVERAGE] and scored.fid == 20.0 and "fid_raw" not in scored.scores
    scorer = Scorer({RAW: 15.0})
    scored = policy(scorer).score(gan(averaged=False), step=10, seconds=1)  # no average kept
    assert scorer.scored == [RAW] and scored.fid == 15.0 and not scored.raw_better


def test_the_best_snapshot_is_the_lowest_fid_so_far():
    assert Evaluation.is_best(Scored({}, 30.0), best_fid=None)  # the first score is the best
    assert Evaluation.is_best(Scored({}, 12.0), best_fid=12.5)
    assert not Evaluation.is_best(Scored({}, 12.5), best_fid=12.5)  # a tie keeps the older one
    assert not Evaluation.is_best(Scored({}, 40.0), best_fid=12.5)
    assert not Evaluation.is_best(Scored({"kid": 0.1}, None), best_fid=None)  # no FID computed


def test_outside_a_search_the_run_goes_on():
    evaluation = policy()
    evaluation.score(gan(averaged=False), step=6, seconds=1)
    assert evaluation.verdict(epoch=1, best_fid=1.0) == GO_ON and GO_ON.goes_on
    assert evaluation.verdict_at_end({"fid": 1.0}) == GO_ON


def test_a_pruned_trial_stops_the_run_with_the_judges_outcome():
    judge = Judge(PRUNED)
    evaluation = policy(Scorer({RAW: 90.0}), judge, every=2)
    evaluation.score(gan(averaged=False), step=24, seconds=1)
    verdict = evaluation.verdict(epoch=4, best_fid=80.0)
    assert verdict == Verdict(PRUNED) and not verdict.goes_on
    step, shown, unit = judge.seen[-1]
    assert (step, unit) == (4, "epoch")
    assert shown["fid"] == 90.0 and shown["best_fid"] == 80.0  # the best so far, not this one
    assert policy(judge=Judge(None)).verdict(epoch=4, best_fid=None) == GO_ON


def test_by_minutes_the_judge_compares_trials_at_minute_marks():
    judge = Judge(None)
    evaluation = policy(Scorer({RAW: 5.0}), judge, every_minutes=2.5)
    evaluation.score(gan(averaged=False), step=300, seconds=5.2 * 60)
    assert evaluation.verdict(epoch=9, best_fid=5.0) == GO_ON
    assert judge.seen[-1][0] == 2 and judge.seen[-1][2] == "2.5-minute mark"


def test_at_the_end_the_judge_decides_whether_the_trial_counts():
    invalid = Outcome(Status.FAILED, reason=Reason.INVALID_VALUE, error="fid is missing")
    assert policy(judge=Judge(invalid)).verdict_at_end({}) == Verdict(invalid)


@pytest.fixture
def trial(tmp_path) -> TrialConfig:
    """Trial 0 of a study in a journal file, whose pruner stops any trial with FID above 50."""
    storage = str(tmp_path / "study.journal")
    study = optuna.create_study(study_name="s", storage=open_storage(storage))
    pruner = {"_target_": "optuna.pruners.ThresholdPruner", "upper": 50.0}
    study.set_user_attr(SETTINGS, {"objective": "fid", "pruner": pruner})
    study.ask()
    return TrialConfig(study="s", storage=storage, number=0)


def test_a_real_trial_over_the_threshold_is_pruned_with_what_the_pruner_saw(trial):
    evaluation = policy(Scorer({RAW: 20.0}), TrialJudge(trial), every=1)
    evaluation.score(gan(averaged=False), step=6, seconds=1)
    assert evaluation.verdict(epoch=1, best_fid=20.0) == GO_ON  # under the threshold
    evaluation.scorer = Scorer({RAW: 80.0})
    evaluation.score(gan(averaged=False), step=12, seconds=2)
    stop = evaluation.verdict(epoch=2, best_fid=20.0).stop
    assert stop.status == Status.PRUNED and stop.error == "after epoch 2 (fid 80)"


def test_a_resumed_run_goes_on_from_the_minute_mark_its_checkpoint_passed():
    evaluation = policy(every=1, every_minutes=0.5)
    evaluation.continue_from(seconds=95.0)  # marks 1 to 3 were scored before the checkpoint
    assert not evaluation.due_after_step(seconds=96.0)
    assert evaluation.due_after_step(seconds=121.0)
    by_epochs = policy(every=2)
    by_epochs.continue_from(seconds=95.0)
    assert by_epochs.evaluated_mark == 0 and by_epochs.due_after_epoch(2)
