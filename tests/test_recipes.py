"""The modern recipe's components do what they claim, resume exactly, and compose with every
seed experiment and sweep."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_lab.config import CONF_DIR, SWEEPS_DIR, AugmentConfig, EmaConfig
from gan_lab.config.compose import compose
from gan_lab.errors import ConfigError
from gan_lab.models.ema import GeneratorEma
from gan_lab.models.gan import build_gan
from gan_lab.outcome import Status
from gan_lab.training import checkpoint
from gan_lab.training.augment import TRANSFORMS, Augment
from gan_lab.training.loop import TrainStep, cosine_schedule, gradient_penalty
from gan_lab.training.run import run
from tests.helpers.checkpoints import assert_same_checkpoint
from tests.helpers.configs import STEPS_PER_EPOCH, TINY

CPU = torch.device("cpu")
# The seed experiments (the *_fast ones are budget-first: test_fast_experiments.py)
EXPERIMENTS = sorted(
    p.stem for p in (CONF_DIR / "experiment").glob("*.yaml") if not p.stem.endswith("_fast")
)
SWEEPS = sorted(p.stem for p in (SWEEPS_DIR / "sweep").glob("*.yaml"))
RECIPES = sorted(p.stem for p in (CONF_DIR / "recipe").glob("*.yaml"))
# Every component at once, R1 on every other step so that a short run regularises
EVERYTHING = ["recipe=modern", "loss.r1_gamma=0.5", "loss.r1_every=2", "ema.half_life=100"]


def test_spectral_norm_scales_every_discriminator_layer_to_a_largest_singular_value_of_1():
    config = compose(*TINY, "model.discriminator.spectral_norm=true")
    d = build_gan(config, CPU).discriminator
    for _ in range(5):  # each training-mode pass is one more power iteration
        d(torch.randn(4, 3, 32, 32))
    layers = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == 4  # three convolutions and the dense head
    for layer in layers:
        assert hasattr(layer, "parametrizations")
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_spectral_norm_per_block_leaves_the_other_blocks_alone():
    config = compose(*TINY, "model.discriminator.spectral_norm=[true,false,false]")
    d = build_gan(config, CPU).discriminator
    assert hasattr(d.net.block1.conv, "parametrizations")
    assert not hasattr(d.net.block2.conv, "parametrizations")
    assert not hasattr(d.net.head.dense, "parametrizations")  # follows the last block
    with pytest.raises(ConfigError, match="spectral_norm"):
        compose(*TINY, "model.discriminator.spectral_norm=[true,false]")


def test_the_moving_average_is_the_exponential_average_of_the_raw_weights():
    raw = nn.Linear(3, 2)
    ema = GeneratorEma(raw, EmaConfig(half_life=64, rampup=None), batch_size=16)
    beta = 0.5 ** (16 / 64)
    expected = raw.weight.detach().clone()
    for step in range(1, 6):
        with torch.no_grad():
            raw.weight.add_(torch.randn_like(raw.weight))
        ema.update(raw, step * 16)
        # the first update copies; later ones keep beta of the average
        current = raw.weight.detach()
        expected = current.clone() if step == 1 else beta * expected + (1 - beta) * current
        assert torch.allclose(ema.generator.weight, expected, atol=1e-6)
    assert ema.decay(16) == pytest.approx(beta)


def test_the_ramp_up_shortens_the_half_life_early_on():
    ema = GeneratorEma(nn.Linear(1, 1), EmaConfig(half_life=10_000, rampup=0.05), batch_size=64)
    assert ema.decay(640) == pytest.approx(0.5 ** (64 / 32))  # 5% of 640 images
    assert ema.decay(10_000_000) == pytest.approx(0.5 ** (64 / 10_000))


def test_the_moving_average_keeps_batch_norm_statistics():
    config = compose(*TINY, "ema.half_life=1000")
    gan = build_gan(config, CPU)
    gan.generator(torch.randn(8, 100))  # moves the raw running statistics
    gan.ema.update(gan.generator, 8)
    raw = dict(gan.generator.named_buffers())
    for name, buffer in gan.ema.generator.named_buffers():
        assert torch.equal(buffer, raw[name]), name  # the first update copies them too


def _augment(seed: int = 0, **settings) -> Augment:
    cfg = AugmentConfig(policy=list(TRANSFORMS.names()), **settings)
    return Augment(cfg, (-1.0, 1.0), batch_size=4, device=CPU, seed=seed)


def test_augmentation_is_differentiable_and_changes_the_images():
    images = torch.rand(4, 3, 16, 16, requires_grad=True)
    out = _augment()(images)
    assert out.shape == images.shape and not torch.equal(out, images)
    out.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_augmentation_is_deterministic_under_its_seed():
    images = torch.rand(4, 3, 16, 16)
    assert torch.equal(_augment(seed=3)(images), _augment(seed=3)(images))
    assert not torch.equal(_augment(seed=3)(images), _augment(seed=4)(images))
    before = torch.get_rng_state()
    _augment()(images)
    assert torch.equal(torch.get_rng_state(), before)  # its own stream, not the global one


@pytest.mark.parametrize("name", TRANSFORMS.names())
def test_each_transform_is_the_identity_where_it_does_not_apply(name):
    images = torch.rand(4, 3, 16, 16)
    augment = Augment(AugmentConfig(policy=[name], probability=0.0), (-1, 1), 4, CPU, 0)
    assert torch.allclose(augment(images), images)


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_translation_moves_whole_pixels_up_to_an_eighth_and_fills_with_zeros():
    images = torch.rand(32, 3, 16, 16) + 1  # no zeros of their own
    augment = Augment(AugmentConfig(policy=["translation"]), (-1, 1), 32, CPU, 0)
    shifts = set()
    for image, out in zip(images, augment(images), strict=True):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out, _shifted(image, dy, dx))
        ]
        assert len(found) == 1  # exactly one shift of at most 16 / 8 = 2 pixels
        shifts.add(found[0])
    assert len(shifts) > 5  # drawn per image


def test_adaptive_probability_follows_the_sign_of_d_on_real_images():
    augment = _augment(probability=0.5, adaptive=True, target=0.6, adjust_every=1)
    augment.observe(torch.ones(4), step=1)  # D sure that reals are real: r_t = 1 > 0.6
    assert augment.p.item() > 0.5
    high = augment.p.item()
    augment.observe(-torch.ones(4), step=2)  # r_t = -1 < 0.6
    assert augment.p.item() < high
    fixed = _augment(probability=0.5)
    fixed.observe(torch.ones(4), step=1)
    assert fixed.p.item() == 0.5  # not adaptive: p stays


def test_r1_has_its_known_value_on_a_linear_discriminator():
    """D(x) = w . x has gradient w for every image: R1 = ||w||^2."""
    w = torch.tensor([1.0, -2.0, 0.5, 3.0], requires_grad=True)
    real = torch.randn(5, 1, 2, 2, requires_grad=True)
    logits = real.flatten(1) @ w
    penalty = gradient_penalty(logits, real)
    assert penalty.item() == pytest.approx(w.square().sum().item())
    penalty.backward()  # D's update minimises it: d||w||^2 / dw = 2w
    assert torch.allclose(w.grad, 2 * w.detach())


def test_r1_is_applied_lazily_and_changes_the_discriminator(tmp_path, tiny_config):
    plain = run(tiny_config("train.epochs=1"), tmp_path / "plain")
    with_r1 = run(tiny_config("train.epochs=1", "loss.r1_gamma=10", "loss.r1_every=3"), tmp_path)
    assert plain.status == with_r1.status == Status.FINISHED
    a = checkpoint.load(tmp_path / "plain" / "checkpoints" / "last.pt")["discriminator"]
    b = checkpoint.load(tmp_path / "checkpoints" / "last.pt")["discriminator"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_every_component_together_trains_and_resumes_bit_for_bit(tmp_path, tiny_config):
    straight = run(tiny_config("train.epochs=2", *EVERYTHING), tmp_path / "straight")
    assert straight.status == Status.FINISHED and "augment_p" in straight.metrics
    run(tiny_config("train.epochs=2", "train.max_steps=4", *EVERYTHING), tmp_path / "stopped")
    last = tmp_path / "stopped" / "checkpoints" / "last.pt"
    run(tiny_config("train.epochs=2", f"train.resume={last}", *EVERYTHING), tmp_path / "resumed")
    a, b = (
        checkpoint.load(tmp_path / r / "checkpoints" / "last.pt") for r in ("straight", "resumed")
    )
    assert {"generator_ema", "augment"} <= set(a)
    assert_same_checkpoint(a, b)


RPGAN = ["loss=rpgan", "optim.lr_end_ratio=0.25", "augment.policy=[translation]"]


def test_rpgan_trains_with_its_schedules_and_resumes_bit_for_bit(
    tmp_path, tiny_config, monkeypatch
):
    """loss=rpgan with R1 and R2 every step, R3GAN's gamma and learning-rate schedules and an
    augmentation (drawn again for G's D(real)); progress set before every step as fit sets it."""
    total = 2 * STEPS_PER_EPOCH
    plain_step = TrainStep.__call__

    def with_progress(self, gan, real, latents, step):
        self.progress = (step - 1) / total
        return plain_step(self, gan, real, latents, step)

    monkeypatch.setattr(TrainStep, "__call__", with_progress)
    straight = run(tiny_config("train.epochs=2", *RPGAN), tmp_path / "straight")
    assert straight.status == Status.FINISHED
    assert straight.metrics["d_loss_fake"] == 0  # rpgan's pairing is all in d_loss_real
    run(tiny_config("train.epochs=2", "train.max_steps=5", *RPGAN), tmp_path / "stopped")
    last = tmp_path / "stopped" / "checkpoints" / "last.pt"
    run(tiny_config("train.epochs=2", f"train.resume={last}", *RPGAN), tmp_path / "resumed")
    a, b = (
        checkpoint.load(tmp_path / r / "checkpoints" / "last.pt") for r in ("straight", "resumed")
    )
    assert_same_checkpoint(a, b)
    lr = a["opt_d"]["param_groups"][0]["lr"]  # the last step's, on the cosine to 5e-5
    assert lr == pytest.approx(cosine_schedule(2e-4, 0.25, (total - 1) / total)) and lr < 6e-5


def test_the_grid_and_the_weights_shown_are_the_moving_average(tmp_path, tiny_config):
    run(tiny_config("train.epochs=1", "ema.half_life=100"), tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    shown = checkpoint.generator_weights(state)
    assert shown.keys() == state["generator"].keys()
    assert any(not torch.equal(shown[k], state["generator"][k]) for k in shown)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_the_modern_recipe_composes_with_every_experiment(experiment):
    config = compose(f"experiment={experiment}", "recipe=modern")
    seed = compose(f"experiment={experiment}")
    assert config.model.generator == seed.model.generator  # the same architecture...
    assert config.model.discriminator.spectral_norm is True  # ...but D's normalisation
    assert (config.loss.name, config.ema.half_life is not None) == ("hinge", True)
    assert config.train == seed.train and config.data == seed.data


@pytest.mark.parametrize("sweep", SWEEPS)
def test_the_modern_recipe_composes_with_every_seed_sweep(sweep):
    assert compose(f"sweep={sweep}", "recipe=modern").loss.name == "hinge"


def test_the_seed_recipe_is_the_default_and_changes_nothing():
    for experiment in EXPERIMENTS:
        config = compose(f"+experiment={experiment}")  # the old spelling works too
        assert config == compose(f"experiment={experiment}", "recipe=seed")
        assert (config.ema.half_life, config.augment.policy, config.loss.r1_gamma) == (None, [], 0)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_composes_and_only_the_seed_recipe_changes_nothing(recipe):
    config, seed = compose(f"recipe={recipe}"), compose()
    assert (config == seed) == (recipe == "seed")


def test_a_list_of_components_combines_exactly_those():
    config = compose("experiment=cifar_dog", "recipe=[ema,augment]")
    seed = compose("experiment=cifar_dog")
    assert config.ema.half_life == 10000
    assert config.augment.policy == ["color", "translation", "cutout"]
    # ...and nothing of the components not listed
    assert (config.loss, config.optim, config.model) == (seed.loss, seed.optim, seed.model)
