"""Tracking: the Tracker interface (tracker.py), the factory that opens one (factory.py), the
run-folder tracker (local.py), MLflow (mlflow_tracker.py, with store.py: reaching the store;
stored_run.py: what the store holds of a run, read back when it is continued; outage.py: what
survives the store going away; export.py: the model) and the sweep's parent run
(sweep_callback.py). The tag names are gan_lab/tags.py."""

from gan_lab.tracking.factory import (
    environment_tags,
    flatten,
    open_tracker,
    placement_tags,
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
]
