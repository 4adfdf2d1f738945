"""Tracking: the Tracker interface (tracker.py), the choice of tracker (open.py), the run-folder
tracker (local.py), MLflow (mlflow_tracker.py, with store.py: reaching the store; outage.py: what
survives it going away; resume.py: continuing a run; export.py: the model), the sweep's parent
run (sweep_callback.py) and the tag names (tags.py)."""

from gan_lab.tracking.open import open_tracker
from gan_lab.tracking.tracker import (
    PARENT_RUN_ENV,
    SWEEP_ID_ENV,
    SWEPT_ENV,
    History,
    RunInfo,
    Tracker,
    environment_tags,
    flatten,
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
