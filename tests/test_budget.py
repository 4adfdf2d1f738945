"""Budget-first runs: a wall-clock budget (train.max_minutes), held-out images as the metrics'
reference (data.holdout), and best.pt keeping the better of the raw and averaged generator."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import gan_lab.metrics.evaluator
import gan_lab.training.loop
import gan_lab.training.run
from gan_lab.data import DataSet, split
from gan_lab.errors import ConfigError
from gan_lab.outcome import Outcome, Reason, Status
from gan_lab.training import checkpoint
from gan_lab.training.evaluation import Evaluation
from gan_lab.training.parts import load_data
from gan_lab.training.run import run
from tests.helpers.configs import STEPS_PER_EPOCH
from tests.helpers.metrics import stand_in_metrics


class Clock:
    """time for the loop: every reading is a second later than the last."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def _logged(run_dir, name: str) -> list[float]:
    with (run_dir / "metrics.csv").open() as f:
        return [float(row["value"]) for row in csv.DictReader(f) if row["name"] == name]


def _logged_steps(run_dir, name: str) -> list[int]:
    with (run_dir / "metrics.csv").open() as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row["name"] == name]


def test_max_minutes_stops_at_a_step_keeps_the_best_snapshot_and_finishes(
    tmp_path, tiny_config, monkeypatch
):
    stand_in_metrics(monkeypatch)
    monkeypatch.setattr(gan_lab.training.loop, "time", Clock())
    config = tiny_config(
        "train.epochs=50", "train.max_minutes=0.25", "metrics=standard", "metrics.every=1"
    )
    outcome = run(config, tmp_path / "run")
    assert outcome.status == Status.FINISHED and outcome.reason == Reason.BUDGET
    # two or three clock readings a step: 15 seconds are 5 to 8 steps, far from 50 epochs' 300
    assert 4 <= outcome.step <= 8
    state = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["progress"]["step"] == outcome.step
    assert state["progress"]["seconds"] >= 15
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    assert outcome.metrics["best_fid"] == state["progress"]["best_fid"]
    assert _logged(tmp_path / "run", "images_seen")[-1] == outcome.step * 16
    assert _logged(tmp_path / "run", "train_minutes")[-1] >= 0.25
    assert Outcome.from_json((tmp_path / "run" / "outcome.json").read_text()).describe() == (
        "FINISHED (budget)"
    )


def test_time_spent_scoring_does_not_count_against_the_budget(tmp_path, tiny_config, monkeypatch):
    # A machine that scores slowly (emulated bf16) buys the same training with the same minutes:
    # each evaluation here takes 100 s of the clock, the budget is 15 s of training
    clock = Clock()
    stand_in_metrics(monkeypatch)
    monkeypatch.setattr(gan_lab.training.loop, "time", clock)
    monkeypatch.setattr(gan_lab.training.run, "time", clock)
    evaluate = gan_lab.metrics.evaluator.Evaluator.evaluate

    def slow(self, generator):
        clock.now += 100
        return evaluate(self, generator)

    monkeypatch.setattr(gan_lab.metrics.evaluator.Evaluator, "evaluate", slow)
    config = tiny_config(
        "train.epochs=50", "train.max_minutes=0.25", "metrics=standard", "metrics.every=1"
    )
    outcome = run(config, tmp_path / "run")
    assert outcome.reason == Reason.BUDGET and 4 <= outcome.step <= 8  # as with instant scoring
    # how the minutes went: training (the budget), scoring, checkpoints
    assert 0.25 <= outcome.metrics["train_minutes"] < 0.5
    assert outcome.metrics["eval_minutes"] >= 100 / 60
    assert outcome.metrics["checkpoint_minutes"] > 0
    state = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["progress"]["eval_seconds"] >= 100


def test_a_run_that_ends_before_its_budget_has_no_budget_reason(tmp_path, tiny_config):
    outcome = run(tiny_config("train.epochs=1", "train.max_minutes=60"), tmp_path / "run")
    assert outcome.status == Status.FINISHED and outcome.reason is None
    assert outcome.step == STEPS_PER_EPOCH


def test_the_held_out_split_is_seeded_and_never_trained_on(tiny_config):
    config = tiny_config("data.holdout=30")
    data = load_data(config)
    assert len(data.train.images) == 96 - 30 and len(data.held_out.images) == 30
    assert data.reference is data.held_out
    whole = torch.cat([data.train.images, data.held_out.images]).flatten(1)
    assert len(torch.unique(whole, dim=0)) == 96  # no image in both
    assert load_data(config).indices == data.indices  # the same split every time
    assert load_data(tiny_config("data.holdout=30", "data.seed=1")).indices != data.indices
    assert data.train.key != data.held_out.key


def test_no_holdout_scores_against_the_training_images(tiny_config):
    data = load_data(tiny_config())
    assert data.held_out is None and data.reference is data.train and data.indices == []


def test_a_run_scores_against_its_held_out_images_and_records_them(
    tmp_path, tiny_config, monkeypatch
):
    stand_in_metrics(monkeypatch)
    config = tiny_config(
        "data.holdout=24", "train.epochs=1", "metrics=standard", "metrics.num_samples=64"
    )
    outcome = run(config, tmp_path / "run")
    assert outcome.metrics["eval_samples"] == 24  # capped at the held-out images
    record = json.loads((tmp_path / "run" / "holdout.json").read_text())
    assert record["count"] == 24 and record["indices"] == load_data(config).indices


def test_a_holdout_that_leaves_nothing_to_train_on_is_refused():
    images = DataSet(torch.zeros(10, 3, 4, 4, dtype=torch.uint8), "key")
    with pytest.raises(ConfigError, match=r"data.holdout=9 .*at most 8"):
        split(images, 9, 0)


def test_best_snapshot_scores_raw_and_averaged_generators(tmp_path, tiny_config, monkeypatch):
    stand_in_metrics(monkeypatch)
    config = tiny_config(
        "train.epochs=2", "ema.half_life=200", "metrics=standard", "metrics.every=1"
    )
    outcome = run(config, tmp_path / "run")
    metrics = outcome.metrics
    assert {"fid", "fid_raw", "kid_raw"} <= set(metrics)
    best = checkpoint.load(tmp_path / "run" / "checkpoints" / "best.pt")
    fids = {"raw": _logged(tmp_path / "run", "fid_raw"), "ema": _logged(tmp_path / "run", "fid")}
    assert metrics["best_fid"] == min(fids["raw"] + fids["ema"])
    raw_kept = best.get(checkpoint.RAW_SHOWN, False)
    assert raw_kept == (min(fids["raw"]) < min(fids["ema"]))
    shown = checkpoint.generator_weights(best)
    source = best["generator"] if raw_kept else best[checkpoint.EMA]
    name = next(iter(best["generator"]))
    expected = source[name] if raw_kept else source[f"module.{name}"]
    assert torch.equal(shown[name], expected)


def test_best_pt_shows_the_raw_generator_where_it_scored_better():
    raw, averaged = {"w": torch.ones(1)}, {"module.w": torch.zeros(1), "n_averaged": 3}
    state = {"generator": raw, checkpoint.EMA: averaged}
    assert torch.equal(checkpoint.generator_weights(state)["w"], torch.zeros(1))
    state[checkpoint.RAW_SHOWN] = True
    assert torch.equal(checkpoint.generator_weights(state)["w"], torch.ones(1))


def test_every_minutes_evaluates_after_each_span_of_training(tmp_path, tiny_config, monkeypatch):
    stand_in_metrics(monkeypatch)
    monkeypatch.setattr(gan_lab.training.loop, "time", Clock())
    config = tiny_config(
        "train.epochs=12", "metrics=standard", "metrics.every=1", "metrics.every_minutes=0.2"
    )
    outcome = run(config, tmp_path / "run")
    evaluated = _logged(tmp_path / "run", "fid")
    # 72 steps read the clock four or five times each: about 25 marks of 12 s, each scored at
    # the step after it, two or three in an epoch, and the end's evaluation
    steps = _logged_steps(tmp_path / "run", "fid")
    assert 18 <= len(evaluated) <= 32 and len(set(steps)) < len(steps)  # some within one epoch
    assert outcome.status == Status.FINISHED


def test_a_resumed_run_scores_at_the_next_minute_mark_not_at_once(
    tmp_path, tiny_config, monkeypatch
):
    stand_in_metrics(monkeypatch)
    monkeypatch.setattr(gan_lab.training.loop, "time", Clock())
    by_minutes = ("metrics=standard", "metrics.every=1", "metrics.every_minutes=0.2")
    run(tiny_config("train.epochs=2", *by_minutes), tmp_path / "run")
    saved = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")["progress"]["seconds"]
    scored_at, score = [], Evaluation.score

    def recorded(self, gan, step, seconds):
        scored_at.append(seconds)
        return score(self, gan, step, seconds)

    monkeypatch.setattr(Evaluation, "score", recorded)
    run(tiny_config("train.epochs=3", "train.resume=auto", *by_minutes), tmp_path / "run")
    # its 6 more steps read the clock over 20 times: past the next 12-second mark, where the
    # first score falls (before continue_from, the first step after the resume was scored)
    mark = 0.2 * 60
    assert scored_at and scored_at[0] >= (saved // mark + 1) * mark


def test_a_holdout_that_leaves_fewer_images_than_a_batch_says_both_counts(tiny_config):
    """96 images, 90 held out: the 6 left are fewer than a batch of 16; the line says both."""
    with pytest.raises(ConfigError) as refused:
        load_data(tiny_config("data.holdout=90"))
    message = str(refused.value)
    assert message.startswith("data.holdout=90 is not allowed: at most 80")
    assert "has 96 images" in message and "leaves 6 to train on" in message
