"""Resume reconciliation: a run continued in the same MLflow record gets what the store missed,
and nothing twice. What it holds is read back (metrics, sample grids, the logged model); what the
run folder has beyond it (metrics.csv, samples/) is sent; what a killed process left half-done (a
model PENDING, a grid without its thumbnail) is removed and made again."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from gan_lab import tags as tag
from gan_lab.tracking.store import describe, store_errors

if TYPE_CHECKING:
    from gan_lab.tracking.mlflow_tracker import MlflowTracker

log = logging.getLogger(__name__)

# MLflow's log_image writes "<key>+step+<step>+timestamp+<ms>+<uuid>" twice: as .png and as
# "+compressed.webp" (the UI's thumbnail). An image is complete with both.
_IMAGE_FILES = (".png", "+compressed.webp")


def reopen(tracker: MlflowTracker, run_id: str) -> bool:
    """Continue run `run_id`: False where the store does not have it (a new run is started)."""
    from mlflow.exceptions import MlflowException

    client = tracker.client
    try:
        run = client.get_run(run_id)
    except MlflowException:
        log.warning("run %s of the checkpoint is not in %s: a new run", run_id, tracker.uri)
        return False
    tracker.run_id, tracker.run_name = run_id, run.info.run_name
    tracker.model_logged = settle_models(tracker, run.info.experiment_id)
    client.update_run(run_id, status="RUNNING")
    if tag.OUTCOME in run.data.tags:  # how it ended before: no longer true
        client.delete_tag(run_id, tag.OUTCOME)
    for key in run.data.metrics:
        history = client.get_metric_history(run_id, key)
        tracker.history[key] = sorted((m.step, m.value) for m in history)
        tracker.logged[key] = {step for step, _ in tracker.history[key]}
    read_logged_images(tracker, run.info.artifact_uri)
    tracker.replay()
    return True


def settle_models(tracker: MlflowTracker, experiment: str) -> bool:
    """Whether the run has its logged model. A model that a killed process left half-logged
    (PENDING) is deleted, so that the run ends with one; a READY one whose process died before
    tagging the run is tagged now."""
    from mlflow.entities import LoggedModelStatus
    from mlflow.exceptions import MlflowException

    client, run_id = tracker.client, tracker.run_id
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


def read_logged_images(tracker: MlflowTracker, artifact_uri: str) -> None:
    """The steps of each image key already stored complete. The files of an incomplete one (an
    upload killed between its two files) are deleted where the store allows, and its step is
    left unlogged, so that replay() logs it again from the run folder's copy."""
    stored = tracker.client.list_artifacts(tracker.run_id, "images")
    names = [Path(item.path).name for item in stored]
    for image, endings in image_files(names).items():
        key, _, rest = image.partition("+step+")
        step = rest.split("+")[0]
        if not step.isdigit():
            continue
        if endings == set(_IMAGE_FILES):
            tracker.logged[f"image:{key}"].add(int(step))
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


def missing_metrics(tracker: MlflowTracker) -> dict[int, dict[str, float]]:
    """The run folder's metric points (metrics.csv) that the store does not have: step -> values."""
    missing: dict[int, dict[str, float]] = defaultdict(dict)
    for key, points in tracker.journal.metric_history(None).items():
        for step, value in points:
            if step not in tracker.logged[key]:
                missing[step][key] = value
    return dict(sorted(missing.items()))


def missing_grids(tracker: MlflowTracker) -> list[tuple[int, Path]]:
    """The run folder's sample grids (samples/epoch_NNNN.png) that the store does not have."""
    found = []
    for path in sorted((tracker.run_dir / "samples").glob("epoch_*.png")):
        step = int(path.stem.removeprefix("epoch_"))
        if step not in tracker.logged["image:samples"]:
            found.append((step, path))
    return found
