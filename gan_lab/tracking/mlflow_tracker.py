"""MLflow tracking: one MLflow run per gan_lab run (a child of the sweep's run in a multirun).

Metrics and images go through MLflow's asynchronous logging, so a logging step never waits for
the store; ending the run writes out what is still queued.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

import gan_lab
from gan_lab.errors import GanLabError
from gan_lab.models.dcgan import ImageGenerator
from gan_lab.outcome import MLFLOW_STATUS, RunResult
from gan_lab.tracking import tags as tag

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

_PARAMS_PER_CALL = 100  # MLflow's limit for one log_batch call
_PARAM_LENGTH = 6000  # MLflow's limit for a param value
# Characters MLflow refuses in a logged model's name, and the longest name it takes
_NOT_IN_MODEL_NAMES = re.compile(r"[/:.%\"']")
_MODEL_NAME_LENGTH = 200


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


def connect(uri: str) -> MlflowClient:
    """A client of the store at `uri`, created (and migrated) now if it is new."""
    # MLflow announces each schema migration of a new store on stderr; a run's own log is enough.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    client = MlflowClient(uri)
    try:
        client.search_experiments(max_results=1)  # opens the store: creates a new sqlite schema
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
    def __init__(
        self,
        uri: str | None,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        parent_run_id: str | None = None,
        resume_run_id: str | None = None,
    ) -> None:
        self.uri = resolve_uri(uri)
        mlflow.set_tracking_uri(self.uri)  # the fluent mlflow.pytorch.log_model uses this store
        self.client = connect(self.uri)
        self.logged_until: dict[str, int] = {}  # per metric: the last step already in the store
        # Every metric point of this run, kept here so that reading it back needs no flush
        # (flushing MLflow's asynchronous queue costs about a second).
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.resumed = resume_run_id is not None and self._reopen(resume_run_id)
        if not self.resumed:
            if parent_run_id:
                tags = {**tags, tag.PARENT_RUN_ID: parent_run_id}
            run = self.client.create_run(
                experiment_id(self.client, experiment), run_name=run_name, tags=tags
            )
            self.run_id, self.run_name = run.info.run_id, run.info.run_name
        log.info("MLflow run %s in %s (experiment %s)", self.run_id, self.uri, experiment)

    def _reopen(self, run_id: str) -> bool:
        """Continue a checkpoint's run: metrics already logged up to a step are not logged
        again, so a resumed run has no repeated steps."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            log.warning(
                "run %s of the checkpoint is not in %s: starting a new run", run_id, self.uri
            )
            return False
        self.run_id, self.run_name = run_id, run.info.run_name
        self.client.update_run(run_id, status="RUNNING")
        if tag.OUTCOME in run.data.tags:  # how it ended before: no longer true
            self.client.delete_tag(run_id, tag.OUTCOME)
        for key in run.data.metrics:
            history = self.client.get_metric_history(run_id, key)
            self.history[key] = sorted((m.step, m.value) for m in history)
            self.logged_until[key] = self.history[key][-1][0]
        # log_image names its files "<key>+step+<step>+timestamp+...": the steps already logged
        for item in self.client.list_artifacts(run_id, "images"):
            key, _, rest = Path(item.path).name.partition("+step+")
            if rest.split("+")[0].isdigit():
                step = int(rest.split("+")[0])
                self.logged_until[f"image:{key}"] = max(
                    step, self.logged_until.get(f"image:{key}", -1)
                )
        return True

    def log_params(self, params: dict[str, Any]) -> None:
        if self.resumed:  # MLflow refuses to change a logged param; the first values stand
            return
        items = [Param(k, str(v)[:_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), _PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=items[start : start + _PARAMS_PER_CALL])

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

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
        now = int(time.time() * 1000)
        batch = [
            Metric(key, float(value), now, step)
            for key, value in metrics.items()
            if step > self.logged_until.get(key, -1)
        ]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch, synchronous=False)
        for metric in batch:
            self.history[metric.key].append((step, metric.value))

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        if step > self.logged_until.get(f"image:{key}", -1):
            self.client.log_image(self.run_id, image, key=key, step=step, synchronous=False)

    def log_figure(self, figure: Figure, name: str) -> None:
        self.client.log_figure(self.run_id, figure, name)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

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

    def metric_history(self, keys: list[str]) -> dict[str, list[tuple[int, float]]]:
        return {key: list(self.history.get(key, [])) for key in keys}

    def finish(self, result: RunResult) -> None:
        """The outcome as the tag gan_lab.outcome, then the run's MLflow status. MLflow's
        set_terminated first writes out everything still queued."""
        self.client.set_tag(self.run_id, tag.OUTCOME, result.to_json())
        self.client.set_terminated(self.run_id, MLFLOW_STATUS[result.status])


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
