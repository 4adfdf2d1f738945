"""The Hydra callback of every multirun (conf/config.yaml, hydra.callbacks): Hydra's two hooks
around a sweep, passed to its record (record.py), which gives it one MLflow parent run."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lab.sweep import record


class SweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        record.begin(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        record.end()
