"""MLflow tracking: one MLflow run per gan_lab run (a child of the sweep's run in a multirun).

Metrics and images go through MLflow's asynchronous logging, so a logging step never waits for
the store; ending the run writes out what is still queued.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

import gan_lab
from gan_lab import tags as tag
from gan_lab.errors import GanLabError
from gan_lab.files import atomic_write
from gan_lab.outcome import MLFLOW_STATUS, RunResult
from gan_lab.sampling import ImageGenerator
from gan_lab.tracking.local import LocalTracker
from gan_lab.tracking.tracker import RUN_ID_FILE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

_PARAMS_PER_CALL = 100  # MLflow's limit for one log_batch call
_PARAM_LENGTH = 6000  # MLflow's limit for a param value
# Characters MLflow refuses in a logged model's name, and the longest name it takes
_NOT_IN_MODEL_NAMES = re.compile(r"[/:.%\"']")
_MODEL_NAME_LENGTH = 200
_RUN_NAME_LENGTH = 250


def run_name_of(name: str) -> str:
    """A run name MLflow's every store takes: PostgreSQL's holds 250 characters (sqlite's any)."""
    return name if len(name) <= _RUN_NAME_LENGTH else name[: _RUN_NAME_LENGTH - 3] + "..."


def model_name(run_name: str) -> str:
    """The logged model's name: its run's ("job 2: lr=0.0001" -> "job 2 lr=0_0001"), so that
    MLflow's model list tells the sweep's models apart."""
    name = _NOT_IN_MODEL_NAMES.sub(lambda m: "" if m.group() == ":" else "_", run_name)
    return name.strip()[:_MODEL_NAME_LENGTH] or "generator"


def resolve_uri(uri: str | None) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else MLflow's default (./mlflow.db). A relative
    sqlite path becomes absolute, so that jobs started in other folders find the same store."""
    uri = uri or mlflow.get_tracking_uri()
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + os.path.abspath(uri[len(prefix) :])
    return uri


# A tracking server that does not answer is reported in seconds, not after minutes of MLflow's
# default retries (7 with back-off, 120 s each); a user's own settings stand.
HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}


def _store_lock(uri: str):
    """A lock beside a sqlite store's file: MLflow creates and migrates a new store on first
    use, and several processes doing so at once leave it half-migrated for good."""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    from filelock import FileLock

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=600)


def connect(uri: str) -> MlflowClient:
    """A client of the store at `uri`, created (and migrated) now if it is new, one process at a
    time; a store that cannot be opened is one line."""
    # MLflow announces each schema migration of a new store on stderr; a run's own log is enough.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if uri.startswith(("http://", "https://")):
        for key, value in HTTP_SETTINGS.items():
            os.environ.setdefault(key, value)
        # a warning per retry of every call: the tracker says it once, in its own line
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    try:
        with _store_lock(uri):
            client = MlflowClient(uri)
            client.search_experiments(max_results=1)  # opens the store: creates a new schema
    except Exception as error:  # MLflow raises many types for an unreachable or broken store
        raise GanLabError(
            f"cannot open the MLflow store {uri} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}): start the tracking server, "
            "fix tracking.uri, or run with tracking=none"
        ) from error
    return client


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment `name`, created if missing; safe when several jobs race to create it."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # another job created it between our two calls
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class MlflowTracker:
    """The run's MLflow record. Every metric also goes to the run folder's metrics.csv and every
    sample grid is a file there (samples/), so a store that stops answering loses nothing:
    training goes on, the store is tried again every RETRY_SECONDS, and what it missed (the
    metrics and grids, and the files and model it could not take) is sent when it answers again,
    at the end of the run, or, for what a process that ended could not send, when the run is
    resumed (metrics and grids, from the run folder; the end of the run sends its files again).
    A tracking server is called synchronously (about one round trip per tracking.log_every
    steps), so that a failure is seen at once; a local store through MLflow's asynchronous
    queue."""

    RETRY_SECONDS = 30.0

    def __init__(
        self,
        uri: str | None,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        run_dir: Path,
        parent_run_id: str | None = None,
        resume_run_id: str | None = None,
    ) -> None:
        self.uri = resolve_uri(uri)
        mlflow.set_tracking_uri(self.uri)  # the fluent mlflow.pytorch.log_model uses this store
        self.client = connect(self.uri)
        self.run_dir = Path(run_dir)
        self.journal = LocalTracker(self.run_dir)  # the run folder's copy of every metric
        # A server's calls wait for their answer, so that a failure is seen at once; a local
        # store's go through MLflow's asynchronous queue (it never fails between calls).
        self.remote = self.uri.startswith(("http://", "https://"))
        self.unreachable_since: float | None = None
        self.deferred: list[Callable[[], Any]] = []  # uploads to make once the store answers
        self.logged: dict[str, set[int]] = defaultdict(set)  # per metric / image: steps stored
        # Every metric point of this run, kept here so that reading it back needs no flush
        # (flushing MLflow's asynchronous queue costs about a second).
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.model_logged = False  # the run's generator is in the store (set on resume too)
        self.resumed = resume_run_id is not None and self._reopen(resume_run_id)
        if not self.resumed:
            if parent_run_id:
                tags = {**tags, tag.PARENT_RUN_ID: parent_run_id}
            run = self.client.create_run(
                experiment_id(self.client, experiment), run_name=run_name_of(run_name), tags=tags
            )
            self.run_id, self.run_name = run.info.run_id, run.info.run_name
        # kept in the run folder, so that a run killed before its first checkpoint resumes into
        # this record instead of leaving it RUNNING beside a new one
        atomic_write(self.run_dir / RUN_ID_FILE, lambda tmp: tmp.write_text(self.run_id))
        log.info("MLflow run %s in %s (experiment %s)", self.run_id, self.uri, experiment)

    def _reopen(self, run_id: str) -> bool:
        """Continue a run: what it logged before is not logged again, and what the store missed
        (its metrics and images in this run folder) is replayed into it."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            log.warning(
                "run %s of the checkpoint is not in %s: starting a new run", run_id, self.uri
            )
            return False
        self.run_id, self.run_name = run_id, run.info.run_name
        self.model_logged = self._settle_models(run.info.experiment_id)
        self.client.update_run(run_id, status="RUNNING")
        if tag.OUTCOME in run.data.tags:  # how it ended before: no longer true
            self.client.delete_tag(run_id, tag.OUTCOME)
        for key in run.data.metrics:
            history = self.client.get_metric_history(run_id, key)
            self.history[key] = sorted((m.step, m.value) for m in history)
            self.logged[key] = {step for step, _ in self.history[key]}
        self._read_logged_images()
        self.replay()
        return True

    def _settle_models(self, experiment: str) -> bool:
        """Whether the run has its logged model. A model that a killed process left half-logged
        (PENDING) is deleted, so that the run ends with one; a READY one whose process died
        before tagging the run is tagged now."""
        from mlflow.entities import LoggedModelStatus

        try:
            found = self.client.search_logged_models(
                [experiment], filter_string=f"source_run_id = '{self.run_id}'"
            )
        except MlflowException:  # a server older than MLflow 3 has no logged models to search
            return tag.MODEL_URI in self.client.get_run(self.run_id).data.tags
        logged = False
        for model in found:
            if model.status == LoggedModelStatus.READY:
                self.client.set_tag(self.run_id, tag.MODEL_URI, model.model_uri)
                logged = True
            else:
                self.client.delete_logged_model(model.model_id)
        return logged

    def _read_logged_images(self) -> None:
        # log_image names its files "<key>+step+<step>+timestamp+...": the steps already logged
        for item in self.client.list_artifacts(self.run_id, "images"):
            key, _, rest = Path(item.path).name.partition("+step+")
            if rest.split("+")[0].isdigit():
                self.logged[f"image:{key}"].add(int(rest.split("+")[0]))

    def _store(self, call: Callable[[], Any], force: bool = False, defer: bool = False) -> bool:
        """Make one call to the store unless it stopped answering less than RETRY_SECONDS ago
        (or `force`). A store that fails is said once, in one line, and `defer`red calls are
        made again when it answers; any other error is a bug and raised. The first call that
        succeeds after a failure replays what the store missed. Returns whether the call was
        made and succeeded."""
        down = self.unreachable_since is not None
        if down and not force and time.monotonic() - self.unreachable_since < self.RETRY_SECONDS:
            if defer:
                self.deferred.append(call)
            return False
        try:
            call()
            if down:
                log.info("the MLflow store %s answers again: replaying what it missed", self.uri)
                self.unreachable_since = None
                self.replay()
        except _store_errors() as error:
            if not down:
                log.warning(
                    "the MLflow store %s stopped answering (%s); training goes on, its metrics "
                    "and sample grids are kept in %s and replayed into run %s when it answers",
                    self.uri,
                    _first_line(error),
                    self.run_dir,
                    self.run_id,
                )
            self.unreachable_since = time.monotonic()
            if defer:
                self.deferred.append(call)
            return False
        return True

    def replay(self) -> None:
        """Make the calls deferred while the store was down (files, the model), and log every
        metric point of the run folder's metrics.csv and every sample grid of its samples/ that
        the store does not have yet."""
        while self.deferred:
            self.deferred[0]()
            self.deferred.pop(0)
        missing = defaultdict(dict)
        for key, points in self.journal.metric_history(None).items():
            for step, value in points:
                if step not in self.logged[key]:
                    missing[step][key] = value
        for step, values in sorted(missing.items()):
            self._send_metrics(values, step, synchronous=True)
        for path in sorted((self.run_dir / "samples").glob("epoch_*.png")):
            step = int(path.stem.removeprefix("epoch_"))
            if step not in self.logged["image:samples"]:
                from PIL import Image

                with Image.open(path) as image:
                    self._send_image(np.asarray(image.convert("RGB")), "samples", step)

    def _send_metrics(self, metrics: dict[str, float], step: int, synchronous: bool) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch, synchronous=synchronous)
        for key in metrics:
            self.logged[key].add(step)

    def _send_image(self, image: np.ndarray, key: str, step: int) -> None:
        self.client.log_image(self.run_id, image, key=key, step=step, synchronous=self.remote)
        self.logged[f"image:{key}"].add(step)

    def log_params(self, params: dict[str, Any]) -> None:
        if self.resumed:  # MLflow refuses to change a logged param; the first values stand
            return
        items = [Param(k, str(v)[:_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), _PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=items[start : start + _PARAMS_PER_CALL])

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._store(lambda k=key, v=value: self.client.set_tag(self.run_id, k, v))

    def log_dataset(self, name: str, digest: str, path: str | None) -> None:
        """MLflow's dataset input of the run (its Datasets column and filter): the data set's
        name, the data cache key as the digest (the same images, the same digest), its path."""
        if self.resumed:  # logged when the run began
            return
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        if path:
            with warnings.catch_warnings():  # two registered sources read local files alike
                warnings.simplefilter("ignore")
                source = resolve_dataset_source(Path(path).expanduser().resolve().as_uri())
        else:  # built-in data, made by code
            source = CodeDatasetSource(tags={"gan_lab.data": name})
        dataset = MetaDataset(source, name=name, digest=digest)._to_mlflow_entity()
        context = InputTag("mlflow.data.context", "training")
        self.client.log_inputs(self.run_id, [DatasetInput(dataset, tags=[context])])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        new = {k: v for k, v in metrics.items() if step not in self.logged[k]}
        if not new:
            return
        self.journal.log_metrics(new, step)
        for key, value in new.items():
            self.history[key].append((step, float(value)))
        self._store(lambda: self._send_metrics(new, step, synchronous=self.remote))

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        # the run folder keeps it as samples/epoch_NNNN.png, from which replay() sends it
        if step not in self.logged[f"image:{key}"]:
            self._store(lambda: self._send_image(image, key, step))

    def log_figure(self, figure: Figure, name: str) -> None:
        self.journal.log_figure(figure, name)  # the file, which a deferred upload sends
        self.log_artifact(self.run_dir / name)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self._store(lambda: self.client.log_artifact(self.run_id, str(path), folder), defer=True)

    def has_model(self) -> bool:
        """Whether the run already has its logged generator (a resumed run that had ended)."""
        return self.model_logged

    def log_generator(
        self,
        generator: torch.nn.Module,
        example: torch.Tensor,
        epoch: int,
        registered_name: str | None = None,
    ) -> None:
        """The generator as an MLflow model (pytorch flavour, so pyfunc and `mlflow models
        serve` load it): latent vectors (N, latent_dim) float32 in, images (N, C, H, W) in
        [0, 1] out. Saved as "pt2" (torch.export), said explicitly: MLflow's default depends on
        where it runs, and pt2 never unpickles code when loaded. The epoch it comes from is the
        run's tag gan_lab.model_epoch and the model's own; `registered_name` also registers it."""
        import mlflow.pytorch
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec

        # contiguous weights: torch.export, which MLflow saves the model with, expects them
        plain = copy.deepcopy(generator).cpu().to(memory_format=torch.contiguous_format)
        model = ImageGenerator(plain.eval())
        example = example.detach().cpu().float()
        with torch.no_grad():
            shape = tuple(model(example).shape[1:])
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, example.shape[1]))]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *shape))]),
        )
        requirements = [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"]
        for package in ("hydra-core", "omegaconf"):
            requirements.append(f"{package}=={_version(package)}")

        def log() -> None:
            self.client.set_tag(self.run_id, tag.MODEL_EPOCH, str(epoch))
            with mlflow.start_run(run_id=self.run_id):
                logged = mlflow.pytorch.log_model(
                    model,
                    name=model_name(self.run_name),
                    serialization_format="pt2",
                    registered_model_name=registered_name,
                    tags={tag.MODEL_EPOCH: str(epoch)},
                    signature=signature,
                    input_example=example.numpy(),
                    pip_requirements=requirements,
                    code_paths=[str(Path(gan_lab.__file__).parent)],
                )
            self.client.set_tag(self.run_id, tag.MODEL_URI, logged.model_uri)
            self.model_logged = True

        self._store(log, defer=True)

    def metric_history(self, keys: list[str]) -> dict[str, list[tuple[int, float]]]:
        return {key: list(self.history.get(key, [])) for key in keys}

    def finish(self, result: RunResult) -> None:
        """Replay what the store missed, then the outcome as the tag gan_lab.outcome and the
        run's MLflow status (set_terminated first writes out everything still queued). Best
        effort: where the store does not answer, one line says how to finish the record later;
        outcome.json in the run folder keeps the outcome."""
        self.journal.finish(result)

        def record() -> None:
            self.replay()
            self.client.set_tag(self.run_id, tag.OUTCOME, result.to_json())
            self.client.set_terminated(self.run_id, MLFLOW_STATUS[result.status])

        if not self._store(record, force=True):
            log.warning(
                "MLflow run %s could not be finished in %s: it stays RUNNING there; run again "
                "with train.resume=auto in %s once the store answers, to replay its metrics, "
                "images and outcome",
                self.run_id,
                self.uri,
                self.run_dir,
            )


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store that went away raises: MLflow's errors, the HTTP client's, the database
    driver's. Anything else (an export that fails, a file missing) is a bug."""
    import requests
    import sqlalchemy.exc

    return (
        MlflowException,
        requests.exceptions.RequestException,
        sqlalchemy.exc.SQLAlchemyError,
        ConnectionError,
        TimeoutError,
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
