"""The run's config: the schema of every group (schema.py, model.py), its closed choices
(choices.py) and where the config folders are (locations.py). Composing it from conf/ with
Hydra is compose.py's, imported where it is used (`from gan_lab.config.compose import
compose`), so that the code that only reads a config (the loop, models, data, metrics) never
imports Hydra."""

from gan_lab.config.locations import CONF_DIR, SWEEPS_DIR
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
    "SWEEPS_DIR",
    "AugmentConfig",
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
    "per_block",
]
