"""The Tracker interface: where a run's params, metrics, images and files go. The training loop
only sees `Tracker`; open.py picks the implementation (local.py, mlflow_tracker.py), which
import this module and nothing that imports them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gan_lab.tracking import tags

if TYPE_CHECKING:  # none of them is imported for the command line's help
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    from gan_lab.outcome import RunResult

# Set by the sweep callback in the launching process; read by every job of the sweep.
PARENT_RUN_ENV = "GAN_LAB_PARENT_RUN_ID"
SWEEP_ID_ENV = "GAN_LAB_SWEEP_ID"
SWEPT_ENV = "GAN_LAB_SWEPT"  # the keys the sweep varies, comma-separated: the jobs' run names

History = dict[str, list[tuple[int, float]]]  # metric -> (step, value) points
RUN_ID_FILE = ".mlflow_run_id"  # in a run folder: the MLflow run it logs to


def recorded_run_id(run_dir: Path) -> str | None:
    """The MLflow run a run folder logged to, even where no checkpoint names it yet (a run killed
    before its first checkpoint)."""
    path = Path(run_dir) / RUN_ID_FILE
    return path.read_text().strip() or None if path.is_file() else None


@dataclass
class RunInfo:
    """How a run is named and tagged; the entry point fills it from Hydra's job."""

    name: str = "default"
    tags: dict[str, str] = field(default_factory=dict)


class Tracker(Protocol):
    run_id: str | None

    def log_params(self, params: dict[str, Any]) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_dataset(self, name: str, digest: str, path: str | None) -> None:
        """The training data: its data set name, the cache key of its images, where it lives."""
        ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_image(self, image: np.ndarray, key: str, step: int) -> None: ...

    def log_figure(self, figure: Figure, name: str) -> None: ...

    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...

    def log_generator(
        self,
        generator: torch.nn.Module,
        example: torch.Tensor,
        epoch: int,
        registered_name: str | None = None,
    ) -> None:
        """The run's generator (from `epoch`) as a servable model, registered if named."""
        ...

    def has_model(self) -> bool:
        """Whether the run already has its logged generator (it had ended, and is resumed)."""
        ...

    def metric_history(self, keys: list[str]) -> History: ...

    def finish(self, result: RunResult) -> None:
        """Record how the run ended (its status and the outcome record), once."""
        ...


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
    import torch

    import gan_lab

    found = {tags.VERSION: gan_lab.__version__}
    root = Path(gan_lab.__file__).resolve().parent.parent
    if (root / ".git").exists():
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if result.returncode == 0:
            found[tags.GIT_COMMIT] = result.stdout.strip()
    if device.type == "cuda":
        found[tags.DEVICE] = torch.cuda.get_device_name(device)
        # set per job by Ray and SLURM: which physical GPU the job got
        found[tags.CUDA_VISIBLE_DEVICES] = os.environ.get("CUDA_VISIBLE_DEVICES", "all")
    else:
        found[tags.DEVICE] = f"cpu ({torch.get_num_threads()} threads)"
    return found
