"""tracking=none: no store. Metrics go to the run folder's metrics.csv (one row per step and
name), figures beside it, and the outcome to outcome.json; images, checkpoints and the config
are files there already."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gan_lab.files import atomic_write
from gan_lab.tracking.tracker import History, Tracker

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from gan_lab.outcome import Outcome

OUTCOME_FILE = "outcome.json"


class LocalTracker(Tracker):
    """The run folder as the record: metrics.csv, the figures and outcome.json. It logs no
    artifacts and no model (Tracker's defaults do nothing): the files are already here, and
    checkpoints/best.pt and last.pt are the run folder's generators."""

    run_id = None

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.csv"
        if not self.path.exists():
            self.path.write_text("step,name,value\n")

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_dataset(self, name: str, digest: str, path: str | None) -> None:
        pass  # config.yaml names the data; the cache file carries the key

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerows((step, name, value) for name, value in metrics.items())

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        pass

    def log_figure(self, figure: Figure, name: str) -> None:
        figure.savefig(self.run_dir / name)

    def has_model(self) -> bool:
        return False

    def metric_history(self, keys: list[str] | None) -> History:
        """The points of `keys` (None: of every metric), as logged, repeats and all."""
        history: History = defaultdict(list)
        with self.path.open(newline="") as f:
            for row in csv.DictReader(f):
                if keys is None or row["name"] in keys:
                    history[row["name"]].append((int(row["step"]), float(row["value"])))
        return dict(history)

    def finish(self, outcome: Outcome) -> None:
        text = outcome.to_json()
        atomic_write(self.run_dir / OUTCOME_FILE, lambda tmp: tmp.write_text(text))
