"""The hand-off from a sweep to its jobs: environment variables that the sweep's record
(record.py) sets in the launching process before any job starts, and that every job inherits,
whichever launcher starts it (Ray's workers are told them: HANDED_DOWN)."""

from __future__ import annotations

import os

PARENT_RUN_ENV = "GAN_LAB_PARENT_RUN_ID"  # the sweep's parent run: each job's run is its child
SWEEP_ID_ENV = "GAN_LAB_SWEEP_ID"  # the sweep folder, tagged on the parent and on every job
SWEPT_ENV = "GAN_LAB_SWEPT"  # the keys the sweep varies, comma-separated: the jobs' run names
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"  # the store's absolute URI: every job logs to the same
HANDED_DOWN = (TRACKING_URI_ENV, PARENT_RUN_ENV, SWEEP_ID_ENV, SWEPT_ENV)

Saved = dict[str, str | None]  # the environment's values before a sweep (None: unset)


def hand_down(uri: str, sweep_id: str, swept: list[str]) -> Saved:
    """Tell the jobs the store, the sweep folder and the swept keys (the parent run follows:
    hand_down_parent). Returns the environment's values before, for restore()."""
    saved = {key: os.environ.get(key) for key in HANDED_DOWN}
    os.environ.update({TRACKING_URI_ENV: uri, SWEEP_ID_ENV: sweep_id, SWEPT_ENV: ",".join(swept)})
    return saved


def hand_down_parent(run_id: str) -> None:
    """Tell the jobs their parent run, once it is open."""
    os.environ[PARENT_RUN_ENV] = run_id


def restore(saved: Saved) -> None:
    """The environment as it was before the sweep."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def handed_parent() -> str | None:
    """In a job: its sweep's parent run."""
    return os.environ.get(PARENT_RUN_ENV) or None


def handed_sweep() -> tuple[str | None, str]:
    """In a job: its sweep's folder (None outside a tracked sweep) and swept keys, as given."""
    return os.environ.get(SWEEP_ID_ENV) or None, os.environ.get(SWEPT_ENV, "")
