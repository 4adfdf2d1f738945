"""The losses on known logits, and their names as the config checks see them."""

from __future__ import annotations

import pytest
import torch

from gan_lab.config import LossConfig, compose
from gan_lab.errors import ConfigError
from gan_lab.losses import LOSSES, make_loss
from gan_lab.names import check_names

LOGITS = torch.tensor([2.0, -0.5, 0.0])


def test_bce_is_binary_cross_entropy_on_logits():
    loss = make_loss(LossConfig(name="bce"))
    expected = -torch.log(torch.sigmoid(LOGITS)).mean()
    assert loss.discriminator(LOGITS, real=True) == pytest.approx(expected.item())
    assert loss.generator(LOGITS) == pytest.approx(expected.item())  # non-saturating


def test_lsgan_is_the_squared_distance_to_the_label():
    loss = make_loss(LossConfig(name="lsgan"))
    assert loss.discriminator(LOGITS, real=False) == pytest.approx((4 + 0.25 + 0) / 3)


def test_hinge_penalises_logits_inside_the_margin():
    loss = make_loss(LossConfig(name="hinge"))
    # real: relu(1 - x) = 0, 1.5, 1; fake: relu(1 + x) = 3, 0.5, 1
    assert loss.discriminator(LOGITS, real=True) == pytest.approx(2.5 / 3)
    assert loss.discriminator(LOGITS, real=False) == pytest.approx(4.5 / 3)
    assert loss.generator(LOGITS) == pytest.approx(-1.5 / 3)


def test_every_registered_loss_has_a_config_option_and_unknown_names_list_them():
    for name in LOSSES.names():
        assert compose(f"loss={name}").loss.name == name
    with pytest.raises(ConfigError) as raised:
        check_names(compose("loss.name=wasserstein"))
    assert raised.value.key == "loss.name"
    assert all(name in str(raised.value) for name in LOSSES.names())
