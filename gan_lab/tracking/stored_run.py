"""The MLflow run a tracker logs to, as the tracker knows it: which steps the store holds, every
metric point, whether the model is logged. A new run starts it empty; a run continued in the same
record (training/continuation.py decides which) reads it back from the store, so that it gets
what the store missed, and nothing twice: what the store holds is read back (metrics, sample
grids, the logged model), what the run folder has beyond it (metrics.csv, samples/) is found for
the tracker to send, and what a killed process left half-done (a model PENDING, a grid without
its thumbnail) is removed and made again."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_lab import tags as tag
from gan_lab.tracking.store import describe, store_errors

log = logging.getLogger(__name__)

# MLflow's log_image writes "<key>+step+<step>+timestamp+<ms>+<uuid>" twice: as .png and as
# "+compressed.webp" (the UI's thumbnail). An image is complete with both.
_IMAGE_FILES = (".png", "+compressed.webp")

Points = dict[str, list[tuple[int, float]]]  # metric -> (step, value) points


@dataclass
class StoredRun:
    """One MLflow run and what the store holds of it; its tracker keeps it up to date."""

    run_id: str
    run_name: str
    continued: bool = False  # reopened from an earlier process rather than created
    model_logged: bool = False  # the run's generator is in the store
    # per metric, and per image as "image:<key>": the steps the store holds
    logged: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    # Every metric point of this run, kept here so that reading it back needs no flush
    # (flushing MLflow's asynchronous queue costs about a second).
    history: Points = field(default_factory=lambda: defaultdict(list))

    def missing_metrics(self, points: Points) -> dict[int, dict[str, float]]:
        """Of the run folder's metric `points` (metrics.csv), those the store does not have:
        step -> values."""
        missing: dict[int, dict[str, float]] = defaultdict(dict)
        for key, values in points.items():
            for step, value in values:
                if step not in self.logged[key]:
                    missing[step][key] = value
        return dict(sorted(missing.items()))

    def missing_grids(self, samples: Path) -> list[tuple[int, Path]]:
        """The run folder's sample grids (`samples`/epoch_NNNN.png) the store does not have."""
        found = []
        for path in sorted(samples.glob("epoch_*.png")):
            step = int(path.stem.removeprefix("epoch_"))
            if step not in self.logged["image:samples"]:
                found.append((step, path))
        return found


def create_run(client: Any, experiment: str, run_name: str, tags: dict[str, str]) -> StoredRun:
    """A new MLflow run in experiment (id) `experiment`."""
    run = client.create_run(experiment, run_name=run_name, tags=tags)
    return StoredRun(run.info.run_id, run.info.run_name)


def reopen_run(client: Any, run_id: str, uri: str) -> StoredRun | None:
    """Run `run_id` continued: RUNNING again, without the outcome it ended with before, and what
    the store holds of it read back; None where the store (`uri`) does not have it."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        log.warning("run %s of the checkpoint is not in %s: a new run", run_id, uri)
        return None
    stored = StoredRun(run_id, run.info.run_name, continued=True)
    stored.model_logged = settle_models(client, run_id, run.info.experiment_id)
    client.update_run(run_id, status="RUNNING")
    if tag.OUTCOME in run.data.tags:  # how it ended before: no longer true
        client.delete_tag(run_id, tag.OUTCOME)
    for key in run.data.metrics:
        history = client.get_metric_history(run_id, key)
        stored.history[key] = sorted((m.step, m.value) for m in history)
        stored.logged[key] = {step for step, _ in stored.history[key]}
    read_logged_images(client, stored, run.info.artifact_uri)
    return stored


def settle_models(client: Any, run_id: str, experiment: str) -> bool:
    """Whether the run has its logged model. A model that a killed process left half-logged
    (PENDING) is deleted, so that the run ends with one; a READY one whose process died before
    tagging the run is tagged now."""
    from mlflow.entities import LoggedModelStatus
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_logged_models(
            [experiment], filter_string=f"source_run_id = '{run_id}'"
        )
    except MlflowException:  # a server older than MLflow 3 has no logged models to search
        return tag.MODEL_URI in client.get_run(run_id).data.tags
    logged = False
    for model in found:
        if model.status == LoggedModelStatus.READY:
            client.set_tag(run_id, tag.MODEL_URI, model.model_uri)
            logged = True
        else:
            client.delete_logged_model(model.model_id)
    return logged


def image_files(names: list[str]) -> dict[str, set[str]]:
    """The image artifacts' names by image ("<key>+step+<step>+timestamp+...") -> the endings
    of it present (".png", "+compressed.webp")."""
    found: dict[str, set[str]] = defaultdict(set)
    for name in names:
        for ending in _IMAGE_FILES:
            if name.endswith(ending) and "+step+" in name:
                found[name.removesuffix(ending)].add(ending)
                break
    return dict(found)


def read_logged_images(client: Any, stored: StoredRun, artifact_uri: str) -> None:
    """The steps of each image key already stored complete. The files of an incomplete one (an
    upload killed between its two files) are deleted where the store allows, and its step is
    left unlogged, so that the tracker's replay() logs it again from the run folder's copy."""
    listed = client.list_artifacts(stored.run_id, "images")
    names = [Path(item.path).name for item in listed]
    for image, endings in image_files(names).items():
        key, _, rest = image.partition("+step+")
        step = rest.split("+")[0]
        if not step.isdigit():
            continue
        if endings == set(_IMAGE_FILES):
            stored.logged[f"image:{key}"].add(int(step))
            continue
        log.info("sample grid %s of step %s is incomplete: logging it again", key, step)
        for ending in endings:
            _delete_artifact(artifact_uri, f"images/{image}{ending}")


def _delete_artifact(artifact_uri: str, path: str) -> None:
    """Delete one artifact where the artifact store can (local files, S3, the MLflow server's
    proxy); elsewhere it stays beside the image logged again."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        get_artifact_repository(artifact_uri).delete_artifacts(path)
    except (NotImplementedError, *store_errors()) as error:
        log.warning("could not delete the incomplete artifact %s (%s)", path, describe(error))
