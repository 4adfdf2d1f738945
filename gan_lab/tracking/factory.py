"""Which tracker a run gets (tracking.name), and what it is told about where it runs.

The implementations are imported here, in the functions that need them, so that the interface
(tracker.py) and the implementations never import each other in a circle, and MLflow is imported
only when a run tracks with it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gan_lab import tags
from gan_lab.config.choices import TrackerName
from gan_lab.tracking.tracker import RunInfo, Tracker
from gan_lab.training.signals import slurm_job

if TYPE_CHECKING:
    import torch

    from gan_lab.config import TrackingConfig
    from gan_lab.outcome import Outcome

log = logging.getLogger(__name__)


def open_tracker(
    cfg: TrackingConfig, run_dir: Path, info: RunInfo, continued_run_id: str | None = None
) -> Tracker:
    """The tracker tracking.name names, logging to a new run named and tagged as `info` says, or
    continuing run `continued_run_id` (training/continuation.py decides which)."""
    if cfg.name == TrackerName.NONE:
        from gan_lab.tracking.local import LocalTracker

        return LocalTracker(run_dir)
    from gan_lab.tracking.mlflow_tracker import MlflowTracker  # MLflow only when tracking

    return MlflowTracker.open(
        cfg.uri, cfg.experiment, info.name, dict(info.tags), run_dir, continued_run_id
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


def placement_tags() -> dict[str, str]:
    """Where a job of a cluster runs, told anew each time its run opens (a requeued job runs
    again, maybe elsewhere): SLURM's job and how many times SLURM requeued it, Ray's node."""
    import sys

    found = {}
    if job := slurm_job():
        found[tags.SLURM_JOB] = job
        found[tags.REQUEUES] = os.environ.get("SLURM_RESTART_COUNT", "0")
    ray = sys.modules.get("ray")  # imported and initialised in a Ray worker only
    if ray is not None and ray.is_initialized():
        found[tags.RAY_NODE] = ray.get_runtime_context().get_node_id()
    return found


def record_untyped(cfg: Any, run_dir: Path, info: RunInfo, outcome: Outcome) -> None:
    """The record of a sweep's job whose config could not be typed (an invalid value in one of
    the sweep's values): its tracker opened from the config's tracking keys, its params as
    given, its outcome."""
    from omegaconf import OmegaConf

    from gan_lab.config import TrackingConfig

    try:
        tracking = TrackingConfig(**OmegaConf.to_container(cfg.tracking, resolve=True))
        tracker = open_tracker(tracking, run_dir, info)
        tracker.log_params(flatten({k: _resolved(cfg, k) for k in cfg if k != "hydra"}))
        tracker.finish(outcome)
    except Exception as error:  # the tracking keys themselves are what is wrong
        log.error("the failure could not be recorded: %s", error)


def _resolved(cfg: Any, key: str) -> Any:
    """One group of the config with its interpolations resolved (optim.lr_d=${.lr} as the
    value it stands for), or as written where one of them cannot be (that may be the error)."""
    from omegaconf import OmegaConf

    try:
        value = cfg[key]  # a plain value's interpolation resolves as it is read
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    except Exception:
        return OmegaConf.to_container(cfg, resolve=False)[key]
