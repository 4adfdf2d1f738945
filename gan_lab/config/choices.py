"""The closed choices of the config: values that no plugin adds to, each an Enum that the checks
and the code that acts on it share. StrEnum members equal their strings, so configs, MLflow
params and comparisons stay plain text ("center_crop"). Open choices (losses, data sets, metrics,
init schemes: anything a user may add) are registries in the modules that implement them."""

from __future__ import annotations

from enum import StrEnum


class ResizeMode(StrEnum):  # data.resize_mode: how a non-square image becomes square
    CENTER_CROP = "center_crop"
    PAD = "pad"  # to square, black
    STRETCH = "stretch"


class LimitMode(StrEnum):  # data.limit_mode: which images data.limit keeps
    FIRST = "first"  # in sorted file order
    RANDOM = "random"  # seeded by data.seed


class NormPer(StrEnum):  # model.generator.projection.norm_per
    FEATURE = "feature"  # BatchNorm1d over the dense layer's features, before the reshape
    CHANNEL = "channel"  # BatchNorm2d over channels, after it


class Order(StrEnum):  # a block's order of normalisation and activation (model.*.order)
    NORM_ACT = "norm_act"  # conv -> norm -> act
    ACT_NORM = "act_norm"  # conv -> act -> norm


class OutputLayer(StrEnum):  # model.generator.output.layer
    CONV_TRANSPOSE = "conv_transpose"
    CONV = "conv"


class Precision(StrEnum):  # train.precision
    AUTO = "auto"  # bf16 where the device computes it natively, else fp32
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"  # a GPU's; adds a gradient scaler


class CompileMode(StrEnum):  # train.compile: torch.compile's mode (null: not compiled)
    DEFAULT = "default"
    REDUCE_OVERHEAD = "reduce-overhead"  # CUDA graphs
    MAX_AUTOTUNE = "max-autotune"


class TrackerName(StrEnum):  # tracking.name
    MLFLOW = "mlflow"
    NONE = "none"  # the run folder only; MLflow is never imported


class MetricsName(StrEnum):  # metrics.name
    STANDARD = "standard"
    NONE = "none"  # the Inception network is never loaded


class MetricsPrecision(StrEnum):  # metrics.precision: the Inception network's
    AUTO = "auto"  # bf16 where the device computes it natively, else fp32
    FP32 = "fp32"
    BF16 = "bf16"


def values(choice: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in choice)
