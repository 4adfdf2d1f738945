"""The interface of a tracker: where a run's params, metrics, images and files go.

tracking=mlflow (the default) logs to an MLflow store (mlflow_tracker.py); tracking=none keeps
everything in the run folder (local.py) and never imports MLflow; factory.py opens the one a
config names. Nothing here imports an implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # none of them is imported for the command line's help
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    from gan_lab.outcome import Outcome

History = dict[str, list[tuple[int, float]]]  # metric -> (step, value) points


@dataclass
class RunInfo:
    """How a run is named and tagged; the entry point fills it from Hydra's job and, in a
    sweep, what the sweep hands down (gan_lab/sweep/names.py)."""

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

    def finish(self, outcome: Outcome) -> None:
        """Record how the run ended (its status and the outcome record), once."""
        ...
