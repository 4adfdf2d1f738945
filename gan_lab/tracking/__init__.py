"""Tracking: the Tracker interface (tracker.py), the factory that opens one (factory.py), the
run-folder tracker (local.py), MLflow (mlflow_tracker.py, with store.py: reaching the store;
outage.py: what survives it going away; resume.py: continuing a run; export.py: the model) and
the sweep's parent run (sweep_callback.py). The tag names are gan_lab/tags.py."""

from gan_lab.tracking.factory import (
    environment_tags,
    flatten,
    open_tracker,
    placement_tags,
    recorded_run_id,
)
from gan_lab.tracking.tracker import (
    PARENT_RUN_ENV,
    SWEEP_ID_ENV,
    SWEPT_ENV,
    History,
    RunInfo,
    Tracker,
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
    "placement_tags",
    "recorded_run_id",
]
