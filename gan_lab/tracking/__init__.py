"""Where a run's params, metrics, images and files go. The training loop only sees `Tracker`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Tracker(Protocol):
    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_image(self, image: np.ndarray, key: str, step: int) -> None: ...

    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None: ...


class LocalTracker:
    """tracking=none: no tracking store. Metrics go to the run folder's metrics.csv (one row per
    step and name); images, checkpoints and the config are already files in the run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        if not self.path.exists():
            self.path.write_text("step,name,value\n")

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerows((step, name, value) for name, value in metrics.items())

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        pass

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        pass

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        pass
