"""Tracking: the Tracker interface (tracker.py), the run-folder tracker (local.py), MLflow
(mlflow_tracker.py), the sweep's parent run (sweep_callback.py) and the tag names (tags.py)."""

from gan_lab.tracking.tracker import (
    PARENT_RUN_ENV,
    SWEEP_ID_ENV,
    SWEPT_ENV,
    History,
    RunInfo,
    Tracker,
    environment_tags,
    flatten,
    open_tracker,
    recorded_run_id,
)

__all__ = [
    "PARENT_RUN_ENV",
    "SWEEP_ID_ENV",
    "SWEPT_ENV",
    "History",
    "RunInfo",
    "Tracker",
    "environment_tags",
    "flatten",
    "open_tracker",
    "recorded_run_id",
]
