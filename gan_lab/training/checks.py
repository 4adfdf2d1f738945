"""The names a user types, checked against the registries of the code that implements them.

Called where a run is assembled (run.py, and the command line before a sweep records a job), one
floor above the implementations, as stylegan2-ada checks `--metrics` against metric_main's
registry in train.py: the config schema below knows no implementation. A bad name is a
ConfigError naming the key and the registered names.
"""

from __future__ import annotations

from gan_lab.config import Config
from gan_lab.config.model import ModelConfig, StackConfig, per_block
from gan_lab.data.datasets import DATASETS
from gan_lab.devices import resolve_device, resolve_precision
from gan_lab.errors import require
from gan_lab.metrics.scores import METRICS
from gan_lab.models.dcgan import ACTIVATIONS, NORMS, OUTPUT_RANGES
from gan_lab.models.init import INITS
from gan_lab.models.networks import ARCHITECTURES
from gan_lab.models.optimizers import OPTIMIZERS
from gan_lab.sampling import DISTRIBUTIONS
from gan_lab.training.augment import TRANSFORMS
from gan_lab.training.losses import LOSSES


def check_names(config: Config) -> None:
    """ConfigError on the first name that no implementation registered."""
    data = config.data
    DATASETS.check(data.name, "data.name")
    if DATASETS[data.name].files:
        require(bool(data.path), "data.path", data.path, "the folder or .zip of the images")
    _check_model(config.model)
    if config.init.name != "auto":
        INITS.check(config.init.name, "init.name")
    OPTIMIZERS.check(config.optim.name, "optim.name")
    LOSSES.check(config.loss.name, "loss.name")
    for name in config.augment.policy:
        TRANSFORMS.check(name, "augment.policy")
    for name in config.metrics.compute or ():
        METRICS.check(name, "metrics.compute")
    resolve_precision(config.train.precision, resolve_device(config.train.device))


def _check_model(model: ModelConfig) -> None:
    ARCHITECTURES.check(model.arch, "model.arch")
    DISTRIBUTIONS.check(model.latent_distribution, "model.latent_distribution")
    INITS.check(model.default_init, "model.default_init")
    g, d = model.generator, model.discriminator
    for stack, key in ((g, "model.generator"), (d, "model.discriminator")):
        _check_stack(stack, key)
    projection, output = g.projection, g.output
    NORMS.check(projection.norm, "model.generator.projection.norm")
    ACTIVATIONS.check(projection.activation, "model.generator.projection.activation")
    OUTPUT_RANGES.check(output.activation, "model.generator.output.activation")
    pinned = {
        "model.generator.projection.init": projection.init,
        "model.generator.output.init": output.init,
        "model.discriminator.head_init": d.head_init,
    }
    for key, scheme in pinned.items():
        if scheme is not None:
            INITS.check(scheme, key)


def _check_stack(stack: StackConfig, key: str) -> None:
    count = len(stack.filters)
    for norm in per_block(stack.norm, count, f"{key}.norm"):
        NORMS.check(norm, f"{key}.norm")
    for activation in per_block(stack.activation, count, f"{key}.activation"):
        ACTIVATIONS.check(activation, f"{key}.activation")
    if stack.init is not None:
        INITS.check(stack.init, f"{key}.init")
