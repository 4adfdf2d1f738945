"""The run's config: the schema of every group (schema.py, model.py) and its composition from
conf/ by Hydra (compose.py)."""

from gan_lab.config.compose import (
    CONF_DIR,
    SWEEPS_DIR,
    compose,
    plain_presets,
    register_schema,
    to_config,
)
from gan_lab.config.model import ModelConfig, StackConfig, per_block
from gan_lab.config.schema import (
    AugmentConfig,
    Config,
    DataConfig,
    EmaConfig,
    InitConfig,
    LossConfig,
    MetricsConfig,
    OptimConfig,
    TrackingConfig,
    TrainConfig,
    TrialConfig,
)

__all__ = [
    "CONF_DIR",
    "AugmentConfig",
    "SWEEPS_DIR",
    "Config",
    "DataConfig",
    "EmaConfig",
    "InitConfig",
    "LossConfig",
    "MetricsConfig",
    "ModelConfig",
    "OptimConfig",
    "StackConfig",
    "TrackingConfig",
    "TrainConfig",
    "TrialConfig",
    "compose",
    "per_block",
    "plain_presets",
    "register_schema",
    "to_config",
]
