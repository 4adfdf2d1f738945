"""The budget-first experiments (experiment=*_fast): each is a run the budget ends, scored against
held-out images, and each trains as composed."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch
import yaml
from optuna.distributions import CategoricalDistribution

from gan_lab.config import CONF_DIR, SWEEPS_DIR
from gan_lab.config.compose import compose
from gan_lab.models.networks import output_shape
from gan_lab.outcome import Status
from gan_lab.search.space import parse_space
from gan_lab.training import checkpoint
from gan_lab.training.run import run
from tests.helpers.checkpoints import assert_resumes_bit_exact

FAST = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*_fast.yaml"))
FAST64 = sorted(e for e in FAST if e.endswith("64_fast"))  # the seeds' own 64x64, 30 minutes each
SEEDS_FAST = sorted(set(FAST) - {"cifar10_fast", *FAST64})  # the seeds' data sets, 20 minutes each
SEARCHES = sorted(p.stem for p in (SWEEPS_DIR / "search").glob("*.yaml"))


def test_every_seed_data_set_has_a_fast_experiment():
    assert SEEDS_FAST == [
        "afhq_cat_fast",
        "anime_fast",
        "cat_faces_fast",
        "celeba_fast",
        "cifar_dog_fast",
    ]
    # and every 64x64 seed data set one at its own size
    assert FAST64 == ["anime64_fast", "cat_faces64_fast", "celeba64_fast"]


@pytest.mark.parametrize("experiment", FAST64)
def test_a_64x64_fast_experiment_is_its_32x32_recipe_on_the_fast_64x64_model(experiment):
    config = compose(f"experiment={experiment}")
    small = compose(f"experiment={experiment.replace('64_fast', '_fast')}")
    assert config.model.name == "dcgan64_fast" and config.train.max_minutes == 30
    assert output_shape(config.model) == (small.model.channels, 64, 64)  # grayscale cats stay so
    moved = replace(
        small,
        model=config.model,
        train=replace(small.train, max_minutes=30),
        metrics=replace(small.metrics, every_minutes=config.metrics.every_minutes),
        tracking=replace(small.tracking, experiment=experiment),
    )
    assert asdict(config) == asdict(moved)  # data, crop, loss, optimiser, batch, EMA, augment
    assert config.metrics.every_minutes * 4 == config.train.max_minutes  # four marks, as at 32


@pytest.mark.parametrize("experiment", SEEDS_FAST + FAST64)
def test_a_fast_experiment_is_ended_by_its_minutes_and_scored_on_held_out_images(experiment):
    config = compose(f"experiment={experiment}")
    minutes = 30 if experiment in FAST64 else 20
    assert config.train.max_minutes == minutes and config.train.epochs >= 10_000  # minutes end it
    assert config.data.holdout == 1000 and config.metrics.every_minutes is not None
    assert config.ema.half_life and config.ema.rampup  # the ramped moving average
    assert not config.train.keep_checkpoints  # no checkpoint per epoch over hundreds of epochs
    assert config.tracking.experiment == experiment


def test_cifar10_fast_is_the_fields_protocol_all_ten_classes_and_10000_held_out():
    config = compose("experiment=cifar10_fast")
    assert config.data.name == "cifar10" and config.data.classes is None
    assert config.data.holdout == 10_000 and config.train.max_minutes == 60
    assert (config.model.name, config.model.width, config.loss.name) == ("dcgan32", 1.0, "hinge")
    assert (config.optim.lr, config.optim.betas) == (2.74e-4, [0.5, 0.99])  # the search's best
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
    celeba64 = compose("experiment=celeba64").data.crop
    assert compose("experiment=celeba64_fast").data.crop == celeba64  # the seed's crop
    assert compose("experiment=cat_faces64_fast").model.channels == 1


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


@pytest.mark.parametrize("search", SEARCHES)
def test_every_value_a_search_can_draw_composes(search):
    """Each trial of search=<search> composes: every choice of every parameter and both ends
    of every interval, drawn together in as few configs as the longest list of choices."""
    config = yaml.safe_load((SWEEPS_DIR / "search" / f"{search}.yaml").read_text())
    space = parse_space(config["hydra"]["sweeper"]["params"], [])
    values = {
        key: list(d.choices) if isinstance(d, CategoricalDistribution) else [d.low, d.high]
        for key, d in space.distributions.items()
    }
    for index in range(max(len(v) for v in values.values())):
        drawn = {key: choices[index % len(choices)] for key, choices in values.items()}
        compose(f"search={search}", *space.overrides(drawn))


def test_the_fast_64x64_recipe_trains_and_resumes_bit_exact(tmp_path):
    # anime64_fast's model (narrowed), moving average and augmentation, 2 epochs of 4 steps
    tiny = [
        "experiment=anime64_fast",
        "model.width=0.25",
        "data=synthetic",
        "data.num_images=64",
        "data.holdout=0",
        "train.batch_size=16",
        "train.max_minutes=null",
        "metrics=none",
        "tracking=none",
        "train.progress=false",
    ]
    straight = assert_resumes_bit_exact(tiny, tmp_path)
    assert straight["progress"]["step"] == 2 * 64 // 16
    generator = checkpoint.generator_of(straight)  # rebuilt from the checkpoint's own config
    assert generator(torch.randn(2, 100)).shape == (2, 3, 64, 64)
