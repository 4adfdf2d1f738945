"""The budget-first experiments (experiment=*_fast): each is a run the budget ends, scored against
held-out images, and each trains as composed."""

from __future__ import annotations

import json

import pytest

from gan_lab.config import CONF_DIR
from gan_lab.config.compose import compose
from gan_lab.outcome import Status
from gan_lab.training.run import run

FAST = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*_fast.yaml"))
SEEDS_FAST = sorted(set(FAST) - {"cifar10_fast"})  # the seeds' data sets, 20 minutes each


def test_every_seed_data_set_has_a_fast_experiment():
    assert SEEDS_FAST == [
        "afhq_cat_fast",
        "anime_fast",
        "cat_faces_fast",
        "celeba_fast",
        "cifar_dog_fast",
    ]


@pytest.mark.parametrize("experiment", SEEDS_FAST)
def test_a_fast_experiment_is_ended_by_its_minutes_and_scored_on_held_out_images(experiment):
    config = compose(f"experiment={experiment}")
    assert config.train.max_minutes == 20 and config.train.epochs >= 10_000  # minutes end it
    assert config.data.holdout == 1000 and config.metrics.every_minutes is not None
    assert config.ema.half_life and config.ema.rampup  # the ramped moving average
    assert not config.train.keep_checkpoints  # no checkpoint per epoch over hundreds of epochs
    assert config.tracking.experiment == experiment


def test_cifar10_fast_is_the_fields_protocol_all_ten_classes_and_10000_held_out():
    config = compose("experiment=cifar10_fast")
    assert config.data.name == "cifar10" and config.data.classes is None
    assert config.data.holdout == 10_000 and config.train.max_minutes == 60
    assert (config.model.name, config.model.width) == ("dcgan32", 1.5)  # as measured
    assert config.metrics.every_minutes is not None and config.tracking.experiment == "cifar10_fast"


@pytest.mark.parametrize("experiment", FAST)
def test_no_fast_experiment_pins_a_precision(experiment):
    # a budget travels: bf16 only where the machine computes it natively (README, Performance)
    config = compose(f"experiment={experiment}")
    assert (config.train.precision, config.metrics.precision) == ("auto", "auto")


def test_the_fast_experiments_keep_their_seeds_data_choices():
    assert compose("experiment=celeba_fast").data.crop == compose("experiment=celeba64").data.crop
    assert compose("experiment=cifar_dog_fast").data.classes == ["dog"]
    assert compose("experiment=cat_faces_fast").model.channels == 1  # grayscale, as seed 004


@pytest.mark.parametrize("experiment", FAST)
def test_a_fast_experiment_trains_as_composed(experiment, tmp_path):
    # its model, loss, moving average and augmentation; synthetic images, a few steps
    config = compose(
        f"experiment={experiment}",
        "data=synthetic",
        "data.num_images=80",
        "data.holdout=16",
        "train.max_steps=2",
        "metrics=none",
        "tracking=none",
        "train.progress=false",
    )
    outcome = run(config, tmp_path)
    assert outcome.status == Status.FINISHED and outcome.step == 2
    assert len(json.loads((tmp_path / "holdout.json").read_text())["indices"]) == 16
    assert not list((tmp_path / "checkpoints").glob("epoch_*.pt"))


def test_each_fast_experiment_keeps_the_recipe_it_was_measured_with():
    # anime_fast is search=anime_fast's best trial; the other four inherit its budget but were
    # measured with its earlier recipe, which they pin (a change to anime_fast must not move them)
    anime = compose("experiment=anime_fast")
    assert (anime.loss.name, anime.optim.betas, anime.augment.policy) == (
        "hinge",
        [0.5, 0.99],
        ["translation"],
    )
    for experiment in sorted(set(SEEDS_FAST) - {"anime_fast"}):
        config = compose(f"experiment={experiment}")
        assert (config.loss.name, config.optim.lr, config.optim.betas) == (
            "bce",
            2e-4,
            [0.5, 0.999],
        )
        assert config.augment.policy == ["color", "translation"]
        assert (config.model.name, config.train.max_minutes) == ("dcgan32", anime.train.max_minutes)
