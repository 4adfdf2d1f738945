"""What a run built for training, in one record (Parts), and the first two phases that build
it: the data, at the size and channels the generator makes, and the networks with what trains
them. run.py adds the evaluation policy and hands the record to the loop; the run's own records,
its checkpoints and its tracker, stay with the run (run.py), which needs them to end a run that
failed before its parts were all built."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan_lab.config import Config
from gan_lab.data import Split, image_shape, load_images, split
from gan_lab.data.batches import BatchSource
from gan_lab.data.datasets import DataSet
from gan_lab.errors import ConfigError
from gan_lab.models.gan import Gan, build_gan
from gan_lab.models.networks import output_shape
from gan_lab.sampling import Latents
from gan_lab.training.augment import Augment
from gan_lab.training.evaluation import Evaluation
from gan_lab.training.loop import Training


@dataclass
class Parts(Training):
    """The loop's input (Training) and the evaluation policy its hooks consult."""

    evaluation: Evaluation

    def epochs_begun(self, step: int) -> int:
        """The epoch `step` belongs to (a partial epoch counts): scores and the final generator
        are labelled with it."""
        return -(-step // self.batches.steps_per_epoch)


def load_data(config: Config) -> Split:
    """1. data: the images, at the size and channels the generator makes, less the held-out
    ones (data.holdout)."""
    model_shape = output_shape(config.model)
    shape = image_shape(config.data, model_shape)
    if shape != model_shape:
        shown = "x".join(map(str, model_shape)), "x".join(map(str, shape))
        raise ConfigError(
            "model",
            config.model.name,
            f"it generates {shown[0]} images but data={config.data.name} gives {shown[1]}: "
            "choose a model preset for that image size, or set data.size / data.channels "
            "to match",
        )
    data = split(load_images(config.data, shape), config.data.holdout, config.data.seed)
    left, batch = len(data.train.images), config.train.batch_size
    total = left + len(data.indices)
    if left < batch <= total:  # the hold-out's doing: said here, where both counts are known
        raise ConfigError(
            "data.holdout",
            config.data.holdout,
            f"at most {total - batch}: the data set has {total} images, and holding out "
            f"{config.data.holdout} leaves {left} to train on, fewer than "
            f"train.batch_size={batch}",
        )
    return data


def build_networks(
    config: Config, data: DataSet, device: torch.device
) -> tuple[Gan, Augment | None, Latents, BatchSource]:
    """2. networks: G and D initialised, their optimisers; the augmentation; the latent stream;
    the batches. Draws from the RNGs: seed them first."""
    train = config.train
    gan = build_gan(config, device)
    output_range = gan.generator.output_range
    augment = None
    if config.augment.policy:
        augment = Augment(config.augment, output_range, train.batch_size, device, train.seed)
    model = config.model
    latents = Latents(model.latent_dim, model.latent_distribution, device, train.seed)
    batches = BatchSource(
        data.images,
        train.batch_size,
        device,
        output_range,
        train.seed,
        config.data.on_device,
        config.data.flip,
    )
    return gan, augment, latents, batches
