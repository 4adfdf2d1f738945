"""What makes training and evaluation fast must not change what they compute: precision
resolution, the one-pass discriminator, batch-independent samples, defaults by device, quiet
progress off a terminal, the estimate before an evaluation."""

from __future__ import annotations

import logging

import pytest
import torch

import gan_lab.devices
from gan_lab.config import MetricsConfig
from gan_lab.config.compose import compose
from gan_lab.errors import ConfigError
from gan_lab.metrics.evaluator import Evaluator, sizes
from gan_lab.models.gan import build_gan
from gan_lab.sampling import generate
from gan_lab.training.loop import discriminate
from gan_lab.training.run import run
from tests.helpers.configs import TINY
from tests.helpers.metrics import StandIn, stand_in_metrics

CPU = torch.device("cpu")


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_is_bf16_only_where_the_device_computes_it(monkeypatch, native, expected):
    monkeypatch.setattr(gan_lab.devices, "native_bf16", lambda device: native)
    assert gan_lab.devices.resolve_precision("auto", CPU) == expected
    assert gan_lab.devices.resolve_precision("fp32", CPU) == "fp32"  # an explicit choice stands
    with pytest.raises(ConfigError, match="no fast kernels on a CPU"):
        gan_lab.devices.resolve_precision("fp16", CPU)


def test_one_discriminator_pass_gives_the_two_passes_logits():
    config = compose(*TINY, "model.discriminator.norm=none", "model.discriminator.dropout=0")
    gan = build_gan(config, CPU)
    assert gan.one_pass  # no batch norm in D
    real, fake = (
        torch.randn(5, 3, 32, 32).contiguous(memory_format=torch.channels_last) for _ in "rf"
    )
    together = discriminate(gan, real, fake)
    gan.one_pass = False
    apart = discriminate(gan, real, fake)
    for a, b in zip(together, apart, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_discriminator_with_batch_norm_sees_real_and_fake_apart():
    assert not build_gan(compose(*TINY), CPU).one_pass  # dcgan32's D has batch norm


def test_the_samples_do_not_depend_on_the_batch_size():
    generator = build_gan(compose(*TINY), CPU).generator
    small = torch.cat(list(generate(generator, 10, seed=3, batch_size=3)))
    large = torch.cat(list(generate(generator, 10, seed=3, batch_size=10)))
    assert torch.allclose(small, large, atol=1e-6)


def test_evaluation_sizes_fit_the_device():
    assert sizes(MetricsConfig(), CPU, "fp32") == (512, 16)
    assert sizes(MetricsConfig(), CPU, "bf16") == (512, 64)
    assert sizes(MetricsConfig(), torch.device("cuda"), "bf16") == (10_000, 250)
    assert sizes(MetricsConfig(num_samples=10_000, batch_size=32), CPU, "bf16") == (10_000, 32)


def test_an_evaluation_says_how_many_images_and_about_how_long(tmp_path, caplog):
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    evaluator = Evaluator(
        MetricsConfig(num_samples=24, compute=["fid"]), images, "k", CPU, tmp_path, StandIn()
    )
    generator = build_gan(compose(*TINY), CPU).generator
    with caplog.at_level(logging.INFO):
        evaluator.evaluate(generator)
    assert "scoring 24 generated images against 24 real ones, about" in caplog.text
    assert evaluator.seconds_per_image > 0


def test_progress_bars_stay_quiet_when_the_output_is_no_terminal(
    tmp_path, tiny_config, monkeypatch, capfd
):
    stand_in_metrics(monkeypatch)
    config = tiny_config("train.epochs=1", "train.progress=true", "metrics=standard")
    assert run(config, tmp_path).status == "FINISHED"
    out, err = capfd.readouterr()
    assert "%|" not in out + err  # no tqdm bar: pytest's output is not a terminal
