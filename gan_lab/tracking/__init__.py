"""Where a run's params, metrics, images and files go. The training loop only sees `Tracker`.

tracking=mlflow (the default) logs to an MLflow store; tracking=none keeps everything in the run
folder and never imports MLflow.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from matplotlib.figure import Figure

from gan_lab.config import TrackingConfig

# Set by the sweep callback in the launching process; read by every job of the sweep.
PARENT_RUN_ENV = "GAN_LAB_PARENT_RUN_ID"
SWEEP_ID_ENV = "GAN_LAB_SWEEP_ID"

History = dict[str, list[tuple[int, float]]]


@dataclass
class RunInfo:
    """How a run is named and tagged; the entry point fills it from Hydra's job."""

    name: str = "default"
    tags: dict[str, str] = field(default_factory=dict)


class Tracker(Protocol):
    run_id: str | None

    def log_params(self, params: dict[str, Any]) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_image(self, image: np.ndarray, key: str, step: int) -> None: ...

    def log_figure(self, figure: Figure, name: str) -> None: ...

    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...

    def log_generator(self, generator: torch.nn.Module, example: torch.Tensor) -> None: ...

    def metric_history(self, keys: list[str]) -> History: ...

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None: ...


class LocalTracker:
    """tracking=none: no store. Metrics go to the run folder's metrics.csv (one row per step and
    name) and figures beside it; images, checkpoints and the config are files there already."""

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

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerows((step, name, value) for name, value in metrics.items())

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        pass

    def log_figure(self, figure: Figure, name: str) -> None:
        figure.savefig(self.run_dir / name)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        pass

    def log_generator(self, generator: torch.nn.Module, example: torch.Tensor) -> None:
        pass

    def metric_history(self, keys: list[str]) -> History:
        history: History = defaultdict(list)
        with self.path.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["name"] in keys:
                    history[row["name"]].append((int(row["step"]), float(row["value"])))
        return dict(history)

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        pass


def open_tracker(
    cfg: TrackingConfig, run_dir: Path, info: RunInfo, resume_run_id: str | None = None
) -> Tracker:
    if cfg.name == "none":
        return LocalTracker(run_dir)
    from gan_lab.tracking.mlflow_tracker import MlflowTracker  # MLflow only when tracking

    tags = dict(info.tags)
    if os.environ.get(SWEEP_ID_ENV):
        tags["gan_lab.sweep_id"] = os.environ[SWEEP_ID_ENV]
    return MlflowTracker(
        cfg.uri, cfg.experiment, info.name, tags, os.environ.get(PARENT_RUN_ENV), resume_run_id
    )


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dict -> {"optim.lr": 0.0002, ...}: every leaf as a dotted key."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def environment_tags(device: torch.device) -> dict[str, str]:
    """gan_lab's version, the project's git commit when known, and the training device."""
    import subprocess

    import gan_lab

    tags = {"gan_lab.version": gan_lab.__version__}
    root = Path(gan_lab.__file__).resolve().parent.parent
    if (root / ".git").exists():
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if result.returncode == 0:
            tags["mlflow.source.git.commit"] = result.stdout.strip()
    if device.type == "cuda":
        tags["gan_lab.device"] = torch.cuda.get_device_name(device)
        # set per job by Ray and SLURM: which physical GPU the job got
        tags["gan_lab.cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES", "all")
    else:
        tags["gan_lab.device"] = f"cpu ({torch.get_num_threads()} threads)"
    return tags
