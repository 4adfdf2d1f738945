"""The losses on known logits, and their names as the config checks see them; R3GAN's pairing
loss with R1 and R2 through a training step, and the schedules over the run's progress."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_lab.config import LossConfig
from gan_lab.config.compose import compose
from gan_lab.errors import ConfigError
from gan_lab.models.gan import Gan
from gan_lab.training.checks import check_names
from gan_lab.training.loop import TrainStep, cosine_schedule
from gan_lab.training.losses import LOSSES, make_loss

LOGITS = torch.tensor([2.0, -0.5, 0.0])


def test_bce_is_binary_cross_entropy_on_logits():
    loss = make_loss(LossConfig(name="bce"))
    expected = -torch.log(torch.sigmoid(LOGITS)).mean()
    assert loss.discriminator(LOGITS, -LOGITS)[0] == pytest.approx(expected.item())
    assert loss.generator(LOGITS, None) == pytest.approx(expected.item())  # non-saturating


def test_lsgan_is_the_squared_distance_to_the_label():
    loss = make_loss(LossConfig(name="lsgan"))
    assert loss.discriminator(-LOGITS, LOGITS)[1] == pytest.approx((4 + 0.25 + 0) / 3)


def test_hinge_penalises_logits_inside_the_margin():
    loss = make_loss(LossConfig(name="hinge"))
    # real: relu(1 - x) = 0, 1.5, 1; fake: relu(1 + x) = 3, 0.5, 1
    real_term, fake_term = loss.discriminator(LOGITS, LOGITS)
    assert real_term == pytest.approx(2.5 / 3)
    assert fake_term == pytest.approx(4.5 / 3)
    assert loss.generator(LOGITS, None) == pytest.approx(-1.5 / 3)


def test_every_registered_loss_has_a_config_option_and_unknown_names_list_them():
    for name in LOSSES.names():
        assert compose(f"loss={name}").loss.name == name
    with pytest.raises(ConfigError) as raised:
        check_names(compose("loss.name=wasserstein"))
    assert raised.value.key == "loss.name"
    assert all(name in str(raised.value) for name in LOSSES.names())


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_rpgan_is_softplus_of_the_paired_differences_of_logits():
    real, fake = LOGITS, torch.tensor([0.5, 1.0, -1.0])
    loss = make_loss(LossConfig(name="rpgan"))
    pairing, fake_term = loss.discriminator(real, fake)
    diffs = [r - f for r, f in zip(real.tolist(), fake.tolist(), strict=True)]  # 1.5, -1.5, 1
    assert pairing.item() == pytest.approx(sum(_softplus(-d) for d in diffs) / 3)
    assert fake_term.item() == 0  # one term: d_loss_fake shows 0
    g_loss = loss.generator(fake, real)
    assert g_loss.item() == pytest.approx(sum(_softplus(d) for d in diffs) / 3)
    assert loss.generator_needs_real
    with pytest.raises(ValueError, match="real"):
        loss.generator(fake, None)


def test_only_rpgan_asks_for_d_of_real_images_in_the_generator_loss():
    needs = {name: make_loss(LossConfig(name=name)).generator_needs_real for name in LOSSES.names()}
    assert needs == {"bce": False, "lsgan": False, "hinge": False, "rpgan": True}


def test_the_old_losses_sum_to_their_per_side_numbers_in_the_loop_order():
    """bce, lsgan and hinge give the loop the same two terms as before the paired protocol."""
    real, fake = LOGITS, torch.tensor([0.5, 1.0, -1.0])
    ones, zeros = torch.ones(3), torch.zeros(3)
    expected = {
        "bce": (
            F.binary_cross_entropy_with_logits(real, ones),
            F.binary_cross_entropy_with_logits(fake, zeros),
            F.binary_cross_entropy_with_logits(fake, ones),
        ),
        "lsgan": (F.mse_loss(real, ones), F.mse_loss(fake, zeros), F.mse_loss(fake, ones)),
        "hinge": (F.relu(1 - real).mean(), F.relu(1 + fake).mean(), -fake.mean()),
    }
    for name, (d_real, d_fake, g) in expected.items():
        loss = make_loss(LossConfig(name=name))
        terms = loss.discriminator(real, fake)
        assert torch.equal(terms[0], d_real) and torch.equal(terms[1], d_fake), name
        assert torch.equal(loss.generator(fake, None), g), name


class _Squares(nn.Module):
    """D(x) = c * ||x||^2: its gradient at x is 2 c x, so R1 and R2 are 4 c^2 E||x||^2 on the
    real and on the fake images, which differ here by their norms."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c * x.square().flatten(1).sum(1)


class _Constant(nn.Module):
    """G(z) = the same image, every pixel p, whatever z."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(0.5))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.p.expand(len(z), 1, 2, 2)


class _Latents:
    def sample(self, count: int) -> torch.Tensor:
        return torch.zeros(count, 1)


def _tiny_gan(lr: float = 0.1) -> Gan:
    g, d = _Constant(), _Squares()
    no_scaling = (torch.amp.GradScaler("cpu", enabled=False) for _ in range(2))
    opt_g, opt_d = torch.optim.SGD(g.parameters(), lr), torch.optim.SGD(d.parameters(), lr)
    return Gan(g, d, opt_g, opt_d, *no_scaling, one_pass=True)  # type: ignore[arg-type]


REAL = torch.full((4, 1, 2, 2), 1.5)  # ||x||^2 = 9 for every real image; 1 for the fakes


@pytest.mark.parametrize(("r1", "r2"), [(0.0, 0.0), (2.0, 0.0), (0.0, 2.0), (2.0, 2.0)])
def test_rpgan_with_r1_on_real_and_r2_on_fake_images_through_a_training_step(r1, r2):
    gan, lr = _tiny_gan(lr=0.01), 0.01
    step = TrainStep(make_loss(LossConfig(name="rpgan")), "fp32", r1, 1, None, r2_gamma=r2)
    stats = step(gan, REAL.clone(), _Latents(), 1)

    # D's loss in closed form as a function of c, differentiated by autograd
    c = torch.tensor(0.3, requires_grad=True)
    real_norm, fake_norm = 9.0, 4 * 0.5**2
    pairing = F.softplus(-(c * real_norm - c * fake_norm))
    d_loss = pairing + r1 / 2 * 4 * c**2 * real_norm + r2 / 2 * 4 * c**2 * fake_norm
    (grad_c,) = torch.autograd.grad(d_loss, c)
    c_after = 0.3 - lr * grad_c.item()
    assert gan.discriminator.c.item() == pytest.approx(c_after, rel=1e-6)

    # G's loss pairs each fake with D(real) of the updated D: softplus(-(D(G(z)) - D(x)))
    p = torch.tensor(0.5, requires_grad=True)
    c_after = gan.discriminator.c.item()  # D's float32 weight, as G's update saw it
    g_loss = F.softplus(-(c_after * 4 * p**2 - c_after * real_norm))
    (grad_p,) = torch.autograd.grad(g_loss, p)
    assert gan.generator.p.item() == pytest.approx(0.5 - lr * grad_p.item(), rel=1e-6)
    g_stat, d_real_stat, d_fake_stat = stats[:3].tolist()
    assert g_stat == pytest.approx(g_loss.item(), rel=1e-6)
    assert d_real_stat == pytest.approx(pairing.item(), rel=1e-6)  # d_loss_real: the pairing
    assert d_fake_stat == 0.0


def test_r2_is_lazy_like_r1_weighted_by_the_interval():
    """Off the r1_every grid no penalty; on it, gamma/2 * r1_every * R2."""
    results = []
    for step_number in (1, 3):
        gan = _tiny_gan()
        step = TrainStep(make_loss(LossConfig(name="rpgan")), "fp32", 0.0, 3, None, r2_gamma=2.0)
        step(gan, REAL.clone(), _Latents(), step_number)
        results.append(gan.discriminator.c.item())
    for weight, c_after in zip((0.0, 2.0 / 2 * 3), results, strict=True):
        c = torch.tensor(0.3, requires_grad=True)
        pairing = F.softplus(-(c * 9.0 - c * 1.0))
        (grad_c,) = torch.autograd.grad(pairing + weight * 4 * c**2 * 1.0, c)
        assert c_after == pytest.approx(0.3 - 0.1 * grad_c.item(), rel=1e-6)


def test_the_cosine_schedule_runs_from_start_to_its_end_share_along_half_a_cosine():
    assert cosine_schedule(0.05, 0.1, 0.0) == pytest.approx(0.05)
    assert cosine_schedule(0.05, 0.1, 0.5) == pytest.approx((0.05 + 0.005) / 2)
    assert cosine_schedule(0.05, 0.1, 1.0) == pytest.approx(0.005)
    quarter = 0.05 + (1 - (1 + math.cos(math.pi / 4)) / 2) * (0.005 - 0.05)
    assert cosine_schedule(0.05, 0.1, 0.25) == pytest.approx(quarter)
    assert cosine_schedule(2e-4, 0.25, 1.5) == pytest.approx(5e-5)  # past the end: the end
    assert cosine_schedule(2e-4, None, 0.7) == 2e-4  # no end ratio: constant, the value itself


def test_the_step_sets_the_learning_rates_and_gammas_of_its_progress():
    gan = _tiny_gan(lr=2e-4)
    loss = make_loss(LossConfig(name="rpgan"))
    step = TrainStep(
        loss, "fp32", 0.05, 1, None, r2_gamma=0.05, gamma_end_ratio=0.1,
        lr_start=(2e-4, 4e-4), lr_end_ratio=0.25,
    )  # fmt: skip
    assert step.progress == 0.0 and step.gammas() == (0.05, 0.05)
    step.progress = 0.5
    assert step.gammas() == pytest.approx((0.0275, 0.0275))
    step.progress = 1.0
    step(gan, REAL.clone(), _Latents(), 1)
    assert gan.opt_g.param_groups[0]["lr"] == pytest.approx(5e-5)
    assert gan.opt_d.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert step.gammas() == pytest.approx((0.005, 0.005))
    constant = TrainStep(loss, "fp32", 0.05, 1, None, r2_gamma=0.05)
    constant.progress = 1.0
    assert constant.gammas() == (0.05, 0.05) and constant.learning_rates() is None


def test_the_rpgan_option_sets_r3gans_cifar10_values():
    loss = compose("loss=rpgan").loss
    assert (loss.name, loss.r1_gamma, loss.r2_gamma, loss.r1_every) == ("rpgan", 0.05, 0.05, 1)
    assert loss.gamma_end_ratio == pytest.approx(0.1)  # 0.05 to 0.005
    assert compose("loss=rpgan").optim == compose().optim  # the optim group is left alone
