"""optim.name chooses the optimiser of both networks (torch.optim), and each resumes exactly."""

from __future__ import annotations

import pytest
import torch

from gan_lab.models.gan import build_gan
from gan_lab.models.optimizers import OPTIMIZERS
from gan_lab.outcome import Status
from gan_lab.training import checkpoint
from gan_lab.training.run import run
from tests.helpers.checkpoints import assert_same_checkpoint

EXPECTED = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


def test_every_registered_optimiser_is_tested():
    assert set(OPTIMIZERS.names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_optim_group_chooses_the_optimiser(tiny_config, name):
    config = tiny_config(f"optim={name}", "optim.lr=1e-3")
    gan = build_gan(config, torch.device("cpu"))
    for optimiser in (gan.opt_g, gan.opt_d):
        assert type(optimiser) is EXPECTED[name]
        assert optimiser.param_groups[0]["lr"] == 1e-3
    if name == "sgd":
        assert gan.opt_g.param_groups[0]["momentum"] == 0.9  # conf/optim/sgd.yaml's


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_optimiser_trains_and_resumes_bit_exactly(tmp_path, tiny_config, name):
    straight = run(tiny_config(f"optim={name}", "train.max_steps=4"), tmp_path / "straight")
    assert straight.status == Status.FINISHED and straight.step == 4
    run(tiny_config(f"optim={name}", "train.max_steps=2"), tmp_path / "resumed")
    again = tiny_config(f"optim={name}", "train.max_steps=4", "train.resume=auto")
    run(again, tmp_path / "resumed")
    last = [
        checkpoint.load(tmp_path / f / "checkpoints" / "last.pt") for f in ("straight", "resumed")
    ]
    assert_same_checkpoint(*last)
    assert all(torch.isfinite(torch.tensor(v)) for v in straight.metrics.values())
