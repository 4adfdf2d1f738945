"""Tracking: the Tracker interface (tracker.py), the factory that opens one (factory.py), the
run-folder tracker (local.py), MLflow (mlflow_tracker.py, with store.py: reaching the store;
stored_run.py: what the store holds of a run, read back when it is continued; outage.py: what
survives the store going away; export.py: the model). The tag names are gan_lab/tags.py; a
sweep's parent run is gan_lab/sweep/."""

from gan_lab.tracking.factory import environment_tags, flatten, open_tracker, placement_tags
from gan_lab.tracking.tracker import History, RunInfo, Tracker

__all__ = [
    "History",
    "RunInfo",
    "Tracker",
    "environment_tags",
    "flatten",
    "open_tracker",
    "placement_tags",
]
