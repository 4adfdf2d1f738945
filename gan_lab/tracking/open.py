"""The tracker of a run, from its tracking keys: tracking=mlflow (the default) logs to an MLflow
store (mlflow_tracker.py); tracking=none keeps everything in the run folder (local.py) and never
imports MLflow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gan_lab.tracking import tags
from gan_lab.tracking.tracker import PARENT_RUN_ENV, SWEEP_ID_ENV, SWEPT_ENV, RunInfo, Tracker

if TYPE_CHECKING:
    from gan_lab.config import TrackingConfig


def open_tracker(
    cfg: TrackingConfig, run_dir: Path, info: RunInfo, resume_run_id: str | None = None
) -> Tracker:
    if cfg.name == "none":
        from gan_lab.tracking.local import LocalTracker

        return LocalTracker(run_dir)
    from gan_lab.tracking.mlflow_tracker import MlflowTracker  # MLflow only when tracking

    run_tags = dict(info.tags)
    if os.environ.get(SWEEP_ID_ENV):
        run_tags[tags.SWEEP_ID] = os.environ[SWEEP_ID_ENV]
        run_tags[tags.SWEPT] = os.environ.get(SWEPT_ENV, "")
    return MlflowTracker(
        cfg.uri,
        cfg.experiment,
        info.name,
        run_tags,
        run_dir,
        os.environ.get(PARENT_RUN_ENV),
        resume_run_id,
    )
