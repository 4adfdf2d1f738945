"""train.resume, read in one place: what a run, or a sweep, continues.

train.resume is null (start fresh), auto (continue this run folder where it stopped), or a
checkpoint's path. From it follow three things, each decided here:

- the checkpoint to continue from: auto's is the run folder's last.pt where there is one;
- the tracked run to continue: the one the checkpoint names, else, with auto, the one the run
  folder recorded when its tracker opened (a run killed before its first checkpoint), so that it
  is not left RUNNING beside a new one;
- the sweep's parent run to continue: with train.resume set, a multirun continues the newest
  parent run of the same sweep folder.

Imports nothing of MLflow, torch or Hydra: checkpoints, trackers and sweeps all ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gan_lab import tags
from gan_lab.files import atomic_write

AUTO = "auto"
TRACKED_RUN_FILE = ".mlflow_run_id"  # in a run folder: the MLflow run it logs to


def recorded_run_id(run_dir: Path) -> str | None:
    """The MLflow run a run folder logged to, even where no checkpoint names it yet (a run killed
    before its first checkpoint)."""
    path = Path(run_dir) / TRACKED_RUN_FILE
    return path.read_text().strip() or None if path.is_file() else None


def record_run_id(run_dir: Path, run_id: str) -> None:
    """Keep in the run folder the MLflow run it logs to, as soon as that run is open."""
    atomic_write(Path(run_dir) / TRACKED_RUN_FILE, lambda tmp: tmp.write_text(run_id))


@dataclass(frozen=True)
class Continuation:
    """What train.resume (`spec`) continues."""

    spec: str | None

    def checkpoint(self, last: Path) -> Path | None:
        """The checkpoint to load, or None for a fresh start: with auto, the run folder's last.pt
        (`last`) where it exists; otherwise the path given."""
        if not self.spec:
            return None
        if self.spec == AUTO:
            return last if last.is_file() else None
        return Path(self.spec)

    def tracked_run(self, checkpoint_run_id: str | None, run_dir: Path) -> str | None:
        """The tracked run to continue, or None for a new one: the run the loaded checkpoint
        names (`checkpoint_run_id`), else with auto the one `run_dir` recorded."""
        if checkpoint_run_id is None and self.spec == AUTO:
            return recorded_run_id(run_dir)
        return checkpoint_run_id

    def sweep_parent(self, sweep_id: str) -> str | None:
        """The parent run a multirun continues, as an MLflow search filter (the newest match
        is continued), or None for a new parent: with train.resume set, the sweep folder's."""
        return f"tags.`{tags.SWEEP_ID}` = '{sweep_id}'" if self.spec else None
