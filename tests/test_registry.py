"""Each named choice has one home: its registry. The YAML options of a group and the registry
agree, and the config checks refuse what is not registered."""

from __future__ import annotations

import pytest
import torch
import yaml

from gan_lab.config import CONF_DIR, MetricsConfig, ModelConfig
from gan_lab.config.compose import compose
from gan_lab.data.datasets import DATASETS
from gan_lab.errors import ConfigError
from gan_lab.metrics.evaluator import Evaluator
from gan_lab.metrics.scores import METRICS
from gan_lab.models.init import INITS
from gan_lab.models.networks import ARCHITECTURES
from gan_lab.models.optimizers import OPTIMIZERS
from gan_lab.registry import Registry
from gan_lab.training.checks import check_names
from gan_lab.training.losses import LOSSES
from tests.helpers.metrics import StandIn


@pytest.mark.parametrize(
    ("group", "registry", "extra"),
    [
        ("loss", LOSSES, set()),
        ("init", INITS, {"auto"}),
        ("data", DATASETS, set()),
        ("optim", OPTIMIZERS, set()),
    ],
)
def test_every_option_of_a_group_is_a_registered_name(group, registry, extra):
    options = {}
    for path in (CONF_DIR / group).glob("*.yaml"):
        options[path.stem] = yaml.safe_load(path.read_text())["name"]
    assert set(options.values()) <= set(registry.names()) | extra
    assert set(registry.names()) <= set(options.values())  # and each has an option to choose


def test_every_model_preset_names_a_registered_architecture():
    """model.arch is a registry too: each architecture registers itself where it is built."""
    presets = [yaml.safe_load(p.read_text()) for p in (CONF_DIR / "model").glob("*.yaml")]
    chosen = {preset.get("arch", ModelConfig.arch) for preset in presets}
    assert chosen == set(ARCHITECTURES.names())


def test_an_unregistered_name_is_refused_with_the_registered_ones():
    with pytest.raises(ConfigError) as raised:
        check_names(compose("init.name=glorot"))
    assert raised.value.key == "init.name"
    assert all(name in str(raised.value) for name in INITS.names())


def test_no_metrics_named_means_every_registered_one(tmp_path):
    """metrics.compute null (the default) is resolved by the evaluator, not the schema."""
    assert compose().metrics.compute is None
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    cpu = torch.device("cpu")
    every = Evaluator(MetricsConfig(num_samples=8), images, "k", cpu, tmp_path, StandIn())
    assert every.compute == list(METRICS.names())
    only = MetricsConfig(num_samples=8, compute=["fid"])
    assert Evaluator(only, images, "k", cpu, tmp_path, StandIn()).compute == ["fid"]


def test_a_name_is_registered_once():
    registry: Registry[int] = Registry("thing.name")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("a", 2)
    assert registry["a"] == 1 and registry.names() == ("a",)
