"""The config schema (dataclasses registered in Hydra's ConfigStore) and the value checks.

Hydra merges every YAML file of conf/ into these dataclasses, so an unknown key or a value of
the wrong type fails while the config is composed, before anything runs. `validate` then checks
the values that types cannot express (ranges, choices, consistency between groups).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, SI, DictConfig, OmegaConf

from gan_lab.errors import ConfigError

ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "sigmoid")
NORMS = ("none", "batch")
ORDERS = ("norm_act", "act_norm")
INITS = (
    "auto",
    "keras_default",
    "normal",
    "truncated_normal",
    "he_normal",
    "xavier_uniform",
    "pytorch_default",
)
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass
class StackConfig:
    """A list of convolution blocks. Every per-block key takes one value for all blocks or a
    list with one value per entry of `filters`."""

    filters: list[int] = field(default_factory=list)
    kernel: Any = 4
    stride: Any = 2
    bias: Any = True
    norm: Any = "none"  # none | batch
    norm_momentum: float = 0.1  # PyTorch convention: 1 - Keras momentum
    norm_eps: float = 1e-5
    activation: Any = "relu"
    slope: float = 0.2  # leaky_relu negative slope (Keras 2 default is 0.3)
    order: str = "norm_act"  # norm_act: conv -> norm -> act; act_norm: conv -> act -> norm
    dropout: Any = 0.0
    init: str | None = None  # pins this stack's init; null follows the init group


@dataclass
class ProjectionConfig:
    """The generator's dense layer from the latent vector to a (channels, size, size) tensor."""

    channels: int = 256
    size: int = 4
    bias: bool = True
    norm: str = "none"
    norm_per: str = "feature"  # feature: BatchNorm1d before the reshape; channel: BatchNorm2d after
    norm_momentum: float = 0.1
    norm_eps: float = 1e-5
    activation: str = "linear"
    slope: float = 0.2
    order: str = "norm_act"
    init: str | None = None


@dataclass
class OutputLayerConfig:
    """The generator's last layer, producing the image."""

    layer: str = "conv_transpose"  # conv_transpose | conv
    kernel: int = 4
    stride: int = 2
    bias: bool = True
    activation: str = "tanh"  # tanh: images in [-1, 1]; sigmoid: images in [0, 1]
    init: str | None = None


@dataclass
class GeneratorConfig(StackConfig):
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    output: OutputLayerConfig = field(default_factory=OutputLayerConfig)


@dataclass
class DiscriminatorConfig(StackConfig):
    activation: Any = "leaky_relu"
    head_dropout: float = 0.0  # dropout between the flatten and the final dense layer
    head_init: str | None = None


@dataclass
class ModelConfig:
    name: str = MISSING
    latent_dim: int = 100
    latent_distribution: str = "normal"  # normal: N(0, 1); uniform: U(-1, 1)
    channels: int = 3
    default_init: str = "normal"  # what init=auto applies to layers that pin none
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass
class DataConfig:
    name: str = (
        MISSING  # synthetic | folder | cifar10 | celeba | anime_faces | cat_faces | animal_faces
    )
    path: str | None = None  # a folder or a .zip file of images (data sets other than synthetic)
    size: int | None = None  # null: the model's output size (synthetic data only)
    channels: int | None = None  # null: the model's channels (synthetic data only)
    classes: list[str] | None = None  # keep these class sub-folders (CIFAR-10: class names)
    crop: list[int] | None = None  # box [left, upper, right, lower] in source pixels, as PIL's
    resize_mode: str = "center_crop"  # center_crop | pad (to square, black) | stretch
    limit: int | None = None  # use only this many images
    limit_mode: str = "first"  # first (in sorted file order) | random (seeded by data.seed)
    flip: bool = False  # random horizontal flips, drawn per epoch from the run seed
    download: bool = False  # fetch the data set (cifar10, celeba) when it is not at data.path
    cache_dir: str | None = None  # null: $GAN_LAB_CACHE, else ~/.cache/gan_lab
    workers: int = 2  # processes decoding images when a cache is built
    num_images: int = 4096  # synthetic only
    seed: int = 0  # synthetic images; the random limit
    on_device: bool = True  # keep the uint8 images on the training device when they fit


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float = 2e-4
    lr_g: float = SI("${.lr}")
    lr_d: float = SI("${.lr}")
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    eps: float = 1e-8


@dataclass
class InitConfig:
    name: str = "auto"
    std: float = 0.02  # for normal and truncated_normal


@dataclass
class LossConfig:
    name: str = "bce"  # bce: non-saturating GAN loss; lsgan: least squares
    real_label: float = 1.0
    fake_label: float = 0.0


@dataclass
class TrainConfig:
    batch_size: int = 64
    epochs: int = 5
    max_steps: int | None = None  # stop after this many steps in all (quick tries, tests)
    seed: int = 0
    precision: str = "fp32"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    checkpoint_every: int = 1  # epochs
    keep_checkpoints: bool = True  # keep epoch_NNNN.pt beside last.pt
    resume: str | None = None  # auto (this run folder's last checkpoint) or a checkpoint path
    grid_size: int = 4  # the fixed-noise sample grid is grid_size x grid_size
    progress: bool = True


@dataclass
class TrackingConfig:
    name: str = "mlflow"  # mlflow | none
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else MLflow's default ./mlflow.db
    experiment: str = "gan_lab"
    log_every: int = 10  # steps between metric reads (each read synchronises the device)
    log_model: bool = True  # log the generator as an MLflow model at the end
    log_checkpoint: bool = True  # upload the final checkpoint as an artifact


METRICS = ("fid", "kid", "is", "pr", "quality")


@dataclass
class MetricsConfig:
    name: str = "standard"  # standard | none
    every: int = 5  # epochs between evaluations; 0: only at the end of the run
    num_samples: int = 10000  # generated (and real reference) images, capped at the data set's size
    batch_size: int = 100
    seed: int = 2024  # the latent seed of the evaluation samples: the same images every time
    compute: list[str] = field(default_factory=lambda: list(METRICS))
    inception_weights: str | None = None  # a weights file; null: the usual places (see README)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    neighborhood: int = 3  # k of the k-NN manifolds (precision, recall, realism)
    quality_thresholds: list[float] = field(default_factory=lambda: [0.9, 0.75])  # good, decent


@dataclass
class TrialConfig:
    """Set by gan_lab's Optuna sweeper on each trial's command line; null outside a search."""

    study: str | None = None
    storage: str | None = None
    number: int | None = None
    objective: str = "fid"
    pruner: str = "median"  # the job decides on pruning, so it needs the sweeper's pruner
    pruner_startup_trials: int = 3
    pruner_warmup_epochs: int = 0


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    init: InitConfig = field(default_factory=InitConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)


CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
SWEEPS_DIR = CONF_DIR.parent / "sweeps"  # on the search path through hydra_plugins/gan_lab_plugins


def gpus_per_job(per_job: float = 1) -> float:
    """`${gan_lab_gpus:N}` in launcher configs: N GPUs per job where there are GPUs, else 0, so a
    GPU sweep config also runs, on the CPU, where there is none."""
    return per_job if torch.cuda.is_available() else 0


def register_schema() -> None:
    """Make the schema available to conf/config.yaml's defaults list as `gan_lab_schema`, and
    the resolvers to the configs."""
    ConfigStore.instance().store(name="gan_lab_schema", node=Config)
    OmegaConf.register_new_resolver("gan_lab_gpus", gpus_per_job, replace=True)


def compose(*overrides: str) -> Config:
    """The validated Config that `python -m gan_lab <overrides>` would run, for scripts, notebooks,
    benchmarks and tests (Hydra's compose API; no run folder, no logging set-up)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(hydra_compose("config", overrides=list(overrides)))


def _reject_added_keys(node: DictConfig, prefix: str = "") -> None:
    """Keys added with `+key=value` slip past the schema (OmegaConf.to_object drops them
    silently); reject them so a misspelt key never goes unnoticed."""
    schema = OmegaConf.get_type(node)
    known = {f.name for f in fields(schema)} if is_dataclass(schema) else None
    for key in node:
        full = f"{prefix}{key}"
        if known is not None and key not in known:
            raise ConfigError(
                full,
                node[key],
                "gan_lab has no such key: check the spelling, or list the keys with --cfg job",
            )
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _reject_added_keys(child, f"{full}.")


def to_config(cfg: DictConfig) -> Config:
    """Turn Hydra's composed DictConfig into the typed Config, then check its values."""
    _reject_added_keys(cfg)
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, Config)
    validate(config)
    return config


def per_block(value: Any, count: int, key: str) -> list:
    """Broadcast one value to every block, or check that a list has one value per block."""
    if isinstance(value, list | tuple):
        if len(value) != count:
            raise ConfigError(key, list(value), f"give one value or {count} (one per filter)")
        return list(value)
    return [value] * count


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed)


def _check_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    _check(value in choices, key, value, "choose one of " + ", ".join(choices))


_BLOCK_TYPES = {
    "kernel": (int,),
    "stride": (int,),
    "bias": (bool,),
    "norm": (str,),
    "activation": (str,),
    "dropout": (float, int),
}


def _check_stack(stack: StackConfig, key: str) -> None:
    _check(
        len(stack.filters) > 0, f"{key}.filters", stack.filters, "give at least one filter count"
    )
    count = len(stack.filters)
    for name, types in _BLOCK_TYPES.items():
        for value in per_block(getattr(stack, name), count, f"{key}.{name}"):
            wrong_bool = isinstance(value, bool) and bool not in types
            _check(
                isinstance(value, types) and not wrong_bool,
                f"{key}.{name}",
                value,
                f"a {types[0].__name__} or a list with one per filter",
            )
    for f in stack.filters:
        _check(f >= 1, f"{key}.filters", stack.filters, "filter counts >= 1")
    for k in per_block(stack.kernel, count, f"{key}.kernel"):
        _check(k >= 1, f"{key}.kernel", stack.kernel, "kernel sizes >= 1")
    for s in per_block(stack.stride, count, f"{key}.stride"):
        _check(s >= 1, f"{key}.stride", stack.stride, "strides >= 1")
    for p in per_block(stack.dropout, count, f"{key}.dropout"):
        _check(0 <= p < 1, f"{key}.dropout", stack.dropout, "dropout rates in [0, 1)")
    for n in per_block(stack.norm, count, f"{key}.norm"):
        _check_choice(f"{key}.norm", n, NORMS)
    for a in per_block(stack.activation, count, f"{key}.activation"):
        _check_choice(f"{key}.activation", a, ACTIVATIONS)
    _check_choice(f"{key}.order", stack.order, ORDERS)
    _check(
        0 <= stack.norm_momentum <= 1,
        f"{key}.norm_momentum",
        stack.norm_momentum,
        "a value in [0, 1] (PyTorch convention: 1 - Keras momentum)",
    )
    _check(stack.norm_eps > 0, f"{key}.norm_eps", stack.norm_eps, "a value > 0")
    if stack.init is not None:
        _check_choice(f"{key}.init", stack.init, INITS[1:])


def _check_model(model: ModelConfig) -> None:
    _check(model.latent_dim >= 1, "model.latent_dim", model.latent_dim, "an integer >= 1")
    _check_choice("model.latent_distribution", model.latent_distribution, ("normal", "uniform"))
    _check(model.channels in (1, 3), "model.channels", model.channels, "1 (grey) or 3 (RGB)")
    _check_choice("model.default_init", model.default_init, INITS[1:])
    _check_stack(model.generator, "model.generator")
    _check_stack(model.discriminator, "model.discriminator")
    proj = model.generator.projection
    _check(proj.channels >= 1, "model.generator.projection.channels", proj.channels, ">= 1")
    _check(proj.size >= 1, "model.generator.projection.size", proj.size, ">= 1")
    _check_choice("model.generator.projection.norm", proj.norm, NORMS)
    _check_choice("model.generator.projection.norm_per", proj.norm_per, ("feature", "channel"))
    _check_choice("model.generator.projection.activation", proj.activation, ACTIVATIONS)
    _check_choice("model.generator.projection.order", proj.order, ORDERS)
    out = model.generator.output
    _check_choice("model.generator.output.layer", out.layer, ("conv_transpose", "conv"))
    _check_choice("model.generator.output.activation", out.activation, ("tanh", "sigmoid"))
    _check(out.kernel >= 1, "model.generator.output.kernel", out.kernel, ">= 1")
    _check(out.stride >= 1, "model.generator.output.stride", out.stride, ">= 1")
    _check(
        0 <= model.discriminator.head_dropout < 1,
        "model.discriminator.head_dropout",
        model.discriminator.head_dropout,
        "a rate in [0, 1)",
    )


def _check_optim(optim: OptimConfig) -> None:
    _check_choice("optim.name", optim.name, ("adam",))
    for key in ("lr", "lr_g", "lr_d"):
        value = getattr(optim, key)
        _check(value > 0, f"optim.{key}", value, "a learning rate > 0, such as 2e-4")
    _check(
        len(optim.betas) == 2 and all(0 <= b < 1 for b in optim.betas),
        "optim.betas",
        optim.betas,
        "two values in [0, 1), such as [0.5,0.999]",
    )
    _check(optim.eps > 0, "optim.eps", optim.eps, "a value > 0, such as 1e-8")


def _check_train(train: TrainConfig) -> None:
    _check(train.batch_size >= 1, "train.batch_size", train.batch_size, "an integer >= 1")
    _check(train.epochs >= 1, "train.epochs", train.epochs, "an integer >= 1")
    _check(
        train.max_steps is None or train.max_steps >= 1,
        "train.max_steps",
        train.max_steps,
        "null or an integer >= 1",
    )
    _check(
        train.checkpoint_every >= 1,
        "train.checkpoint_every",
        train.checkpoint_every,
        "an integer >= 1 (epochs)",
    )
    _check(train.grid_size >= 1, "train.grid_size", train.grid_size, "an integer >= 1")
    _check_choice("train.precision", train.precision, PRECISIONS)
    resolve_device(train.device)


def resolve_device(name: str) -> torch.device:
    """auto picks the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name[5:]) if ":" in name else 0
        _check(
            index < count,
            "train.device",
            name,
            f"this machine has {count} CUDA device(s): use train.device=auto or cpu",
        )
        return torch.device(name)
    raise ConfigError("train.device", name, "choose auto, cpu, cuda or cuda:N")


def validate(config: Config) -> None:
    """Check every value that the schema's types cannot; raise ConfigError on the first bad one."""
    _check_model(config.model)
    _check_optim(config.optim)
    _check_choice("init.name", config.init.name, INITS)
    _check(config.init.std > 0, "init.std", config.init.std, "a standard deviation > 0")
    _check_choice("loss.name", config.loss.name, ("bce", "lsgan"))
    _check_train(config.train)
    _check(
        config.tracking.log_every >= 1,
        "tracking.log_every",
        config.tracking.log_every,
        "an integer >= 1 (steps)",
    )
    _check_data(config.data)
    _check_metrics(config.metrics)


def _check_metrics(metrics: MetricsConfig) -> None:
    _check_choice("metrics.name", metrics.name, ("standard", "none"))
    _check(metrics.every >= 0, "metrics.every", metrics.every, "epochs >= 0 (0: at the end only)")
    _check(metrics.num_samples >= 2, "metrics.num_samples", metrics.num_samples, "an integer >= 2")
    _check(metrics.batch_size >= 1, "metrics.batch_size", metrics.batch_size, "an integer >= 1")
    for name in metrics.compute:
        _check_choice("metrics.compute", name, METRICS)
    _check(metrics.neighborhood >= 1, "metrics.neighborhood", metrics.neighborhood, ">= 1")
    _check(
        metrics.kid_subsets >= 1 and metrics.kid_subset_size >= 2,
        "metrics.kid_subset_size",
        metrics.kid_subset_size,
        "kid_subsets >= 1 and kid_subset_size >= 2",
    )
    good_decent = metrics.quality_thresholds
    _check(
        len(good_decent) == 2 and good_decent[0] >= good_decent[1] > 0,
        "metrics.quality_thresholds",
        good_decent,
        "[good, decent] realism-score thresholds with good >= decent > 0, such as [0.9,0.75]",
    )


DATA_SETS = ("synthetic", "folder", "cifar10", "celeba", "anime_faces", "cat_faces", "animal_faces")


def _check_data(data: DataConfig) -> None:
    _check_choice("data.name", data.name, DATA_SETS)
    _check(data.num_images >= 1, "data.num_images", data.num_images, "an integer >= 1")
    _check(data.size is None or data.size >= 1, "data.size", data.size, "null or an integer >= 1")
    _check(data.channels in (None, 1, 3), "data.channels", data.channels, "null, 1 or 3")
    _check_choice("data.resize_mode", data.resize_mode, ("center_crop", "pad", "stretch"))
    _check_choice("data.limit_mode", data.limit_mode, ("first", "random"))
    _check(
        data.limit is None or data.limit >= 1, "data.limit", data.limit, "null or an integer >= 1"
    )
    _check(
        data.workers >= 0,
        "data.workers",
        data.workers,
        "an integer >= 0 (0: decode in this process)",
    )
    _check(
        data.classes is None or len(data.classes) > 0,
        "data.classes",
        data.classes,
        "null (all) or a list of class names, such as [dog]",
    )
    if data.crop is not None:
        ok = len(data.crop) == 4 and data.crop[0] < data.crop[2] and data.crop[1] < data.crop[3]
        _check(
            ok and min(data.crop) >= 0,
            "data.crop",
            data.crop,
            "a box [left, upper, right, lower] with left < right and upper < lower",
        )
    if data.name != "synthetic":
        _check(
            data.size is not None,
            "data.size",
            data.size,
            f"give the image size for data={data.name}",
        )
        _check(
            bool(data.path), "data.path", data.path, "give the folder or .zip file of the images"
        )
