"""Weight initialisation schemes, and how init=auto follows a preset's pinned layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_lab.config.compose import compose
from gan_lab.models.dcgan import Generator
from gan_lab.models.init import initialize


def _generator(preset: str, init: str, seed: int = 0) -> Generator:
    config = compose(f"model={preset}", f"init={init}")
    torch.manual_seed(seed)
    generator = Generator(config.model)
    initialize(generator, config.init.name, config.model.default_init, config.init.std)
    return generator


def _weighted(module):
    return [
        m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d)
    ]


def test_normal_draws_std_002_and_zero_bias():
    g = _generator("cifar_dcgan32", "normal")
    for layer in _weighted(g):
        assert layer.weight.std().item() == pytest.approx(0.02, rel=0.1)
        assert torch.count_nonzero(layer.bias) == 0


def test_truncated_normal_is_cut_at_two_std():
    g = _generator("cifar_dcgan32", "truncated_normal")
    for layer in _weighted(g):
        assert layer.weight.abs().max().item() <= 0.04 + 1e-7
        # a normal cut at +-2 sigma keeps 0.88 of the std
        assert layer.weight.std().item() == pytest.approx(0.02 * 0.8796, rel=0.1)


def test_keras_default_is_glorot_uniform():
    g = _generator("cifar_dcgan32", "keras_default")
    for layer in _weighted(g):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max().item() <= bound
        assert layer.weight.abs().max().item() > 0.9 * bound
        assert torch.count_nonzero(layer.bias) == 0


def test_he_normal_matches_keras_variance():
    g = _generator("cifar_dcgan32", "he_normal")
    for layer in _weighted(g):
        fan_in = nn.init._calculate_fan_in_and_fan_out(layer.weight)[0]
        target = math.sqrt(2 / fan_in)
        assert layer.weight.std().item() == pytest.approx(target, rel=0.1)
        assert layer.weight.abs().max().item() <= 2 * target / 0.8796 + 1e-6


def test_auto_follows_the_presets_pinned_layers():
    g = _generator("animal_faces28", "auto")
    dense = g.net.project.dense  # pinned he_normal
    assert dense.weight.std().item() == pytest.approx(math.sqrt(2 / 100), rel=0.05)
    conv = g.net.block1.conv  # keras_default: glorot uniform
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(conv.weight)
    assert conv.weight.abs().max().item() <= math.sqrt(6 / (fan_in + fan_out))


def test_a_named_init_overrides_the_pins():
    g = _generator("anime_s2", "normal")
    assert g.net.block1.conv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert g.net.project.dense.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_anime_s2_pins_truncated_normal_on_hidden_transposed_convs_only():
    g = _generator("anime_s2", "auto")
    assert g.net.block2.conv.weight.abs().max().item() <= 0.04 + 1e-7
    assert g.net.output.conv.weight.abs().max().item() > 0.04  # glorot, as Keras' default


def test_pytorch_default_differs_from_keras_default():
    a = _generator("cifar_dcgan32", "pytorch_default")
    b = _generator("cifar_dcgan32", "keras_default")
    assert torch.count_nonzero(a.net.block1.conv.bias) > 0  # PyTorch draws biases
    assert not torch.equal(a.net.block1.conv.weight, b.net.block1.conv.weight)
