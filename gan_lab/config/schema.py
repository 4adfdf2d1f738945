"""The run's config: one dataclass per config group, each with the checks of its values beside it.

Hydra merges conf/ into these dataclasses (registered as `gan_lab_schema`), so an unknown key or a
value of the wrong type fails while the config is composed. Each group's `check` then refuses
values that types cannot express. Names that code registers (losses, init schemes, data sets,
metrics) are checked where the run is assembled (gan_lab/training/checks.py), so this ground
floor imports no implementation. Every default lives here: the YAML options of conf/ set only
what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING, SI

from gan_lab.config.choices import (
    CompileMode,
    LimitMode,
    MetricsName,
    MetricsPrecision,
    Precision,
    ResizeMode,
    TrackerName,
    values,
)
from gan_lab.config.model import ModelConfig
from gan_lab.errors import require, require_choice


@dataclass
class DataConfig:
    name: str = MISSING  # a registered data set: synthetic, folder, cifar10, ...
    path: str | None = None  # a folder or a .zip file of images (data sets other than synthetic)
    # null: the model's image size and channels; set, they must match the model's
    size: int | None = None
    channels: int | None = None
    classes: list[str] | None = None  # keep these class sub-folders (CIFAR-10: class names)
    crop: list[int] | None = None  # box [left, upper, right, lower] in source pixels, as PIL's
    resize_mode: str = ResizeMode.CENTER_CROP.value  # center_crop | pad (to square) | stretch
    limit: int | None = None  # use only this many images
    limit_mode: str = LimitMode.FIRST.value  # first (sorted file order) | random (data.seed)
    flip: bool = False  # random horizontal flips, drawn per epoch from the run seed
    download: bool = False  # fetch the data set (cifar10, celeba) when it is not at data.path
    cache_dir: str | None = None  # null: $GAN_LAB_CACHE, else ~/.cache/gan_lab
    workers: int = 2  # processes decoding images when a cache is built
    num_images: int = 4096  # synthetic only
    seed: int = 0  # synthetic images; the random limit
    on_device: bool = True  # keep the uint8 images on the training device when they fit
    # Images set aside by a split seeded with data.seed, never trained on: the metrics' reference
    # (the run records which, in holdout.json). 0: train on all, score against the same images.
    holdout: int = 0

    def check(self) -> None:
        require(self.num_images >= 1, "data.num_images", self.num_images, "an integer >= 1")
        require(self.size is None or self.size >= 1, "data.size", self.size, "null or >= 1")
        require(self.channels in (None, 1, 3), "data.channels", self.channels, "null, 1 or 3")
        require_choice("data.resize_mode", self.resize_mode, values(ResizeMode))
        require_choice("data.limit_mode", self.limit_mode, values(LimitMode))
        require(self.limit is None or self.limit >= 1, "data.limit", self.limit, "null or >= 1")
        require(self.holdout >= 0, "data.holdout", self.holdout, "images >= 0 (0: none)")
        require(self.workers >= 0, "data.workers", self.workers, "an integer >= 0 (0: in-process)")
        require(
            self.classes is None or len(self.classes) > 0,
            "data.classes",
            self.classes,
            "null (all) or a list of class names, such as [dog]",
        )
        if self.crop is not None:
            box = self.crop
            ok = len(box) == 4 and box[0] < box[2] and box[1] < box[3] and min(box) >= 0
            require(
                ok,
                "data.crop",
                box,
                "a box [left, upper, right, lower] with left < right and upper < lower",
            )


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float = 2e-4
    lr_g: float = SI("${.lr}")
    lr_d: float = SI("${.lr}")
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # adam, adamw
    eps: float = 1e-8  # adam, adamw, rmsprop
    momentum: float = 0.0  # sgd, rmsprop
    weight_decay: float = 0.0  # adamw's decoupled decay; an L2 penalty for the others
    # Both learning rates follow a half cosine over the run (R3GAN's), from lr_g / lr_d at its
    # start to this share of them at its end (R3GAN: 0.25, 2e-4 to 5e-5); null: constant
    lr_end_ratio: float | None = None

    def check(self) -> None:
        for key in ("lr", "lr_g", "lr_d"):
            value = getattr(self, key)
            require(value > 0, f"optim.{key}", value, "a learning rate > 0, such as 2e-4")
        require(
            self.lr_end_ratio is None or self.lr_end_ratio > 0,
            "optim.lr_end_ratio",
            self.lr_end_ratio,
            "null (a constant learning rate) or a share > 0 of it, such as 0.25",
        )
        require(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            "optim.betas",
            self.betas,
            "two values in [0, 1), such as [0.5,0.999]",
        )
        require(self.eps > 0, "optim.eps", self.eps, "a value > 0, such as 1e-8")
        require(0 <= self.momentum < 1, "optim.momentum", self.momentum, "a value in [0, 1)")
        require(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "a value >= 0")


@dataclass
class InitConfig:
    name: str = "auto"  # auto: each layer's pinned scheme, else the preset's default_init
    std: float = 0.02  # for normal and truncated_normal

    def check(self) -> None:
        require(self.std > 0, "init.std", self.std, "a standard deviation > 0")


@dataclass
class LossConfig:
    name: str = "bce"  # a registered loss: bce (non-saturating), lsgan, hinge, rpgan
    real_label: float = 1.0  # bce and lsgan's targets (one-sided label smoothing: 0.9)
    fake_label: float = 0.0
    # R1 (Mescheder et al. 2018): gamma/2 * E||grad_x D(x)||^2 on real images; 0 turns it off.
    r1_gamma: float = 0.0
    # R2 (R3GAN's pair for R1): the same on fake images (detached from G); 0 turns it off.
    r2_gamma: float = 0.0
    r1_every: int = 16  # lazy R1 and R2 (StyleGAN2's lazy regularisation): every N steps, times N
    # r1_gamma and r2_gamma follow a half cosine over the run (R3GAN's), from their values at
    # its start to this share of them at its end (R3GAN: 0.1); null: constant
    gamma_end_ratio: float | None = None

    def check(self) -> None:
        require(self.r1_gamma >= 0, "loss.r1_gamma", self.r1_gamma, "0 (off) or a value > 0")
        require(self.r2_gamma >= 0, "loss.r2_gamma", self.r2_gamma, "0 (off) or a value > 0")
        require(self.r1_every >= 1, "loss.r1_every", self.r1_every, "steps, an integer >= 1")
        require(
            self.gamma_end_ratio is None or self.gamma_end_ratio >= 0,
            "loss.gamma_end_ratio",
            self.gamma_end_ratio,
            "null (constant gammas) or a share >= 0 of them, such as 0.1",
        )


@dataclass
class EmaConfig:
    """An exponential moving average of the generator: what is sampled, scored and kept."""

    half_life: int | None = None  # images for the average to forget half; null: no average
    rampup: float | None = 0.05  # half-life at most this share of the images seen; null: none
    # Score the raw generator beside the average at each evaluation (fid_raw, ...); best.pt keeps
    # whichever scores the lower FID, and the run's product is that one
    score_raw: bool = True

    def check(self) -> None:
        require(
            self.half_life is None or self.half_life >= 1,
            "ema.half_life",
            self.half_life,
            "null (off) or images >= 1, such as 10000",
        )
        require(self.rampup is None or self.rampup > 0, "ema.rampup", self.rampup, "null or > 0")


@dataclass
class AugmentConfig:
    """Differentiable augmentation of D's real and fake images (DiffAugment; adaptive: ADA)."""

    policy: list[str] = field(default_factory=list)  # color, translation, cutout; []: off
    probability: float = 1.0  # of each transform per image; adaptive: where p starts
    adaptive: bool = False  # steer p so that E[sign(D(real))] stays at target
    target: float = 0.6
    adjust_every: int = 4  # steps between adjustments of p
    adjust_images: int = 100_000  # images over which p can move from 0 to 1

    def check(self) -> None:
        require(0 <= self.probability <= 1, "augment.probability", self.probability, "in [0, 1]")
        require(0 < self.target < 1, "augment.target", self.target, "a value in (0, 1)")
        require(self.adjust_every >= 1, "augment.adjust_every", self.adjust_every, ">= 1")
        require(self.adjust_images >= 1, "augment.adjust_images", self.adjust_images, ">= 1")


@dataclass
class TrainConfig:
    batch_size: int = 64
    epochs: int = 5
    max_steps: int | None = None  # stop after this many steps in all (quick tries, tests)
    # A wall-clock budget for the training loop (its evaluations included), across resumes: the
    # run stops at the step boundary after it and ends FINISHED (reason: budget). Epochs and
    # max_steps still bound it: set train.epochs high enough for the minutes to be what ends it.
    max_minutes: float | None = None
    seed: int = 0
    # auto: bf16 where the device computes it natively (AVX-512 BF16 / AMX CPUs, GPUs of compute
    # capability 8+), else fp32 | fp32 | bf16 | fp16 (a GPU's; adds a gradient scaler). auto is the
    # default since benchmarks/precision_fid.py put bf16's FIDs within run-to-run noise of fp32's
    # (README, Performance); the run's tag gan_lab.precision says what it resolved to.
    precision: str = Precision.AUTO.value
    compile: str | None = None  # a torch.compile mode for both networks: default, reduce-overhead
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    checkpoint_every: int = 1  # epochs; the end of the run always saves
    keep_checkpoints: bool = True  # keep checkpoints/epoch_NNNN.pt beside checkpoints/last.pt
    # Of those, only the newest N (null: all; each is a whole checkpoint, about 6 MB for dcgan32)
    keep_last: int | None = None
    resume: str | None = None  # auto (this run folder's last checkpoint) or a checkpoint path
    grid_size: int = 4  # the fixed-noise sample grid is grid_size x grid_size
    progress: bool = True

    def check(self) -> None:
        require(self.batch_size >= 1, "train.batch_size", self.batch_size, "an integer >= 1")
        require(self.epochs >= 1, "train.epochs", self.epochs, "an integer >= 1")
        require(
            self.max_steps is None or self.max_steps >= 1,
            "train.max_steps",
            self.max_steps,
            "null or an integer >= 1",
        )
        require(
            self.max_minutes is None or self.max_minutes > 0,
            "train.max_minutes",
            self.max_minutes,
            "null (no time limit) or minutes > 0, such as 20",
        )
        require(
            self.keep_last is None or self.keep_last >= 1,
            "train.keep_last",
            self.keep_last,
            "null (keep every epoch's checkpoint) or an integer >= 1; "
            "train.keep_checkpoints=false keeps none",
        )
        require(
            self.checkpoint_every >= 1,
            "train.checkpoint_every",
            self.checkpoint_every,
            "an integer >= 1 (epochs)",
        )
        require(self.grid_size >= 1, "train.grid_size", self.grid_size, "an integer >= 1")
        require_choice("train.precision", self.precision, values(Precision))
        modes = (None, *values(CompileMode))
        allowed = "null (off), default, reduce-overhead (CUDA graphs) or max-autotune"
        require(self.compile in modes, "train.compile", self.compile, allowed)


@dataclass
class TrackingConfig:
    name: str = TrackerName.MLFLOW.value  # mlflow | none (the run folder only, no MLflow)
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else MLflow's default ./mlflow.db
    experiment: str = "gan_lab"
    log_every: int = 10  # steps between metric reads (each read synchronises the device)
    log_model: bool = True  # log the generator of the best FID as an MLflow model at the end
    register_model: str | None = None  # also register it in MLflow's model registry by this name
    log_checkpoint: bool = True  # upload the final checkpoint as an artifact

    def check(self) -> None:
        require_choice("tracking.name", self.name, values(TrackerName))
        require(self.log_every >= 1, "tracking.log_every", self.log_every, "an integer >= 1")


@dataclass
class MetricsConfig:
    name: str = MetricsName.STANDARD.value  # standard | none (no Inception network is loaded)
    every: int = 5  # epochs between evaluations; 0: only at the end of the run
    # Instead, minutes of training between evaluations (at the step after each): for runs on a
    # time budget, and searches, whose trials' pruner then compares them at equal minutes
    every_minutes: float | None = None
    # generated (and real reference) images, capped at the data set's size; null: what fits the
    # device, 512 on a CPU (about a minute), 10,000 on a GPU (as published FIDs)
    num_samples: int | None = None
    batch_size: int | None = None  # null: 16 on a CPU (fastest there), 250 on a GPU
    # auto: bf16 where the device computes it natively (3x faster on a CPU with AVX-512 BF16,
    # FID 0.44% off fp32's: benchmarks/inception_precision.py), else fp32 (emulated bf16 is
    # slower than fp32); fp32 for figures that must match other machines' to the last digit
    precision: str = MetricsPrecision.AUTO.value
    seed: int = 2024  # the latent seed of the evaluation samples: the same images every time
    compute: list[str] | None = None  # registered names; null: every registered metric
    inception_weights: str | None = None  # a weights file; null: the usual places (see README)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    neighborhood: int = 3  # k of the k-NN manifolds (precision, recall, realism)
    quality_thresholds: list[float] = field(default_factory=lambda: [0.9, 0.75])  # good, decent

    def check(self) -> None:
        require_choice("metrics.name", self.name, values(MetricsName))
        require(self.every >= 0, "metrics.every", self.every, "epochs >= 0 (0: at the end only)")
        require(
            self.every_minutes is None or self.every_minutes > 0,
            "metrics.every_minutes",
            self.every_minutes,
            "null (metrics.every counts epochs) or minutes > 0",
        )
        for key in ("num_samples", "batch_size"):
            value = getattr(self, key)
            require(value is None or value >= 2, f"metrics.{key}", value, "null or an integer >= 2")
        require_choice("metrics.precision", self.precision, values(MetricsPrecision))
        require(self.neighborhood >= 1, "metrics.neighborhood", self.neighborhood, ">= 1")
        require(
            self.kid_subsets >= 1 and self.kid_subset_size >= 2,
            "metrics.kid_subset_size",
            self.kid_subset_size,
            "kid_subsets >= 1 and kid_subset_size >= 2",
        )
        good_decent = self.quality_thresholds
        require(
            len(good_decent) == 2 and good_decent[0] >= good_decent[1] > 0,
            "metrics.quality_thresholds",
            good_decent,
            "[good, decent] realism-score thresholds with good >= decent > 0, such as [0.9,0.75]",
        )


@dataclass
class TrialConfig:
    """Set by gan_lab's Optuna sweeper on each trial's command line; null outside a search. The
    objective and the pruner are the study's (the sweeper stores them on it)."""

    study: str | None = None
    storage: str | None = None
    number: int | None = None

    def check(self) -> None:
        if self.number is not None:
            require(bool(self.study and self.storage), "trial.study", self.study, "and storage")


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
    ema: EmaConfig = field(default_factory=EmaConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)

    def check(self) -> None:
        """Every group's checks; ConfigError on the first bad value."""
        groups = (self.model, self.optim, self.init, self.loss, self.ema, self.augment)
        for group in (*groups, self.train, self.tracking, self.data, self.metrics, self.trial):
            group.check()
        require(
            not ((self.loss.r1_gamma > 0 or self.loss.r2_gamma > 0) and self.train.compile),
            "train.compile",
            self.train.compile,
            "null while loss.r1_gamma or loss.r2_gamma > 0: R1 and R2 need a double backward, "
            "which a compiled discriminator does not support",
        )
