"""model.arch=resnet (sngan32, sngan64) and model.width: the networks, a run, an exact resume."""

from __future__ import annotations

import pytest
import torch

from gan_lab.config.compose import compose
from gan_lab.errors import ConfigError
from gan_lab.models.gan import build_gan
from gan_lab.models.parameters import count_parameters
from gan_lab.training import checkpoint
from gan_lab.training.checks import check_names
from tests.helpers.checkpoints import assert_resumes_bit_exact

CPU = torch.device("cpu")
# a tiny SNGAN: 8 channels a block, on 64 synthetic images
TINY_RESNET = [
    "model=sngan32",
    "model.width=0.125",
    "loss=hinge",
    "data.num_images=64",
    "train.batch_size=16",
    "train.progress=false",
    "tracking=none",
    "metrics=none",
]


@pytest.mark.parametrize(("preset", "size"), [("sngan32", 32), ("sngan64", 64)])
def test_the_resnet_presets_make_images_and_logits(preset, size):
    gan = build_gan(compose(f"model={preset}", "model.width=0.125"), CPU)
    images = gan.generator(torch.randn(3, 128))
    assert images.shape == (3, 3, size, size) and images.abs().max() <= 1
    assert gan.discriminator(images).shape == (3,)
    assert gan.one_pass  # no batch statistics in D
    spectral = [m for m in gan.discriminator.modules() if hasattr(m, "parametrizations")]
    layers = [
        m for m in gan.discriminator.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    assert len(spectral) == len(layers) > 0  # every D layer spectrally normalised


def test_width_scales_every_channel_count_of_both_archs():
    def counts(*overrides):
        gan = build_gan(compose(*overrides), CPU)
        return count_parameters(gan.generator)[0], count_parameters(gan.discriminator)[0]

    assert counts("model=dcgan32", "model.width=1") == counts("model=dcgan32")
    # the latent's dense layer grows with its outputs only: a little under 4x in all
    assert counts("model=dcgan32", "model.width=2")[0] > 2.5 * counts("model=dcgan32")[0]
    narrow, wide = counts("model=sngan32", "model.width=0.5"), counts("model=sngan32")
    assert all(2.5 * n < w for n, w in zip(narrow, wide, strict=True))  # convolutions: 4x
    deeper = counts("model=sngan32", "model.resnet.depth=3")
    assert deeper[0] == wide[0] and deeper[1] > wide[1]  # depth is D's


def test_a_bad_arch_is_one_clear_error():
    """model.arch names a registered architecture: checked with the other names."""
    with pytest.raises(ConfigError, match=r"model.arch='vit' is not allowed: choose one of dcgan"):
        check_names(compose("model.arch=vit"))


def test_a_resnet_run_trains_and_resumes_bit_exact(tmp_path):
    straight = assert_resumes_bit_exact(TINY_RESNET, tmp_path)
    assert straight["progress"]["step"] == 2 * 64 // 16
    generator = checkpoint.generator_of(straight)  # rebuilt from the checkpoint's own config
    assert generator(torch.randn(2, 128)).shape == (2, 3, 32, 32)
