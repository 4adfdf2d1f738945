"""MLflow tracking: one MLflow run per gan_lab run (a child of the sweep's run in a multirun).

Metrics and images go through MLflow's asynchronous logging with a local store, so a logging
step never waits for it; ending the run writes out what is still queued. What survives a store
that stops answering is outage.py's policy; what the store holds of the run, and what a
continued run sends again, is stored_run.py's; the model's form is export.py's; how the store is
reached is store.py's.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
from mlflow.entities import Metric, Param

from gan_lab import tags as tag
from gan_lab.outcome import MLFLOW_STATUS, Outcome
from gan_lab.tracking.export import model_logger
from gan_lab.tracking.local import LocalTracker
from gan_lab.tracking.outage import Outage
from gan_lab.tracking.store import connect, experiment_id, resolve_uri
from gan_lab.tracking.stored_run import StoredRun, create_run, reopen_run
from gan_lab.training.continuation import record_run_id

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

# the sweep callback and the report reach the store through these names too
__all__ = ["MlflowTracker", "connect", "experiment_id", "resolve_uri", "run_name_of"]

log = logging.getLogger(__name__)

_PARAMS_PER_CALL = 100  # MLflow's limit for one log_batch call
_PARAM_LENGTH = 6000  # MLflow's limit for a param value
_RUN_NAME_LENGTH = 250


def run_name_of(name: str) -> str:
    """A run name MLflow's every store takes: PostgreSQL's holds 250 characters (sqlite's any)."""
    return name if len(name) <= _RUN_NAME_LENGTH else name[: _RUN_NAME_LENGTH - 3] + "..."


class MlflowTracker:
    """The run's MLflow record. Every metric also goes to the run folder's metrics.csv and every
    sample grid is a file there (samples/), so a store that stops answering loses nothing:
    training goes on, the store is tried again every Outage.RETRY_SECONDS, and what it missed is
    sent when it answers again, at the end of the run, or, for what a process that ended could
    not send, when the run is resumed. A tracking server is called synchronously (about one
    round trip per tracking.log_every steps), so that a failure is seen at once; a local store
    through MLflow's asynchronous queue."""

    @classmethod
    def open(
        cls,
        uri: str | None,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        run_dir: Path,
        continued_run_id: str | None = None,
    ) -> MlflowTracker:
        """The tracker of run `continued_run_id`, continued, where the store has it (see
        training/continuation.py), else of a new run named `run_name`, tagged `tags`, in
        `experiment`."""
        uri = resolve_uri(uri)
        mlflow.set_tracking_uri(uri)  # the fluent mlflow.pytorch.log_model uses this store
        client = connect(uri)
        run = None if continued_run_id is None else reopen_run(client, continued_run_id, uri)
        if run is None:
            experiment_key = experiment_id(client, experiment)
            run = create_run(client, experiment_key, run_name_of(run_name), tags)
        tracker = cls(uri, client, run, run_dir)
        log.info("MLflow run %s in %s (experiment %s)", run.run_id, uri, experiment)
        return tracker

    def __init__(self, uri: str, client: Any, run: StoredRun, run_dir: Path) -> None:
        """The tracker of `run` in the store at `uri` (open() finds or creates it); a continued
        run is sent at once what its store missed."""
        self.uri, self.client, self.run = uri, client, run
        self.run_id, self.run_name = run.run_id, run.run_name
        self.run_dir = Path(run_dir)
        self.journal = LocalTracker(self.run_dir)  # the run folder's copy of every metric
        self.remote = self.uri.startswith(("http://", "https://"))
        self.outage = Outage(self.uri, self.run_dir, self.replay)
        self.outage.run_id = self.run_id
        if run.continued:
            self.replay()
        # kept in the run folder, so that a run killed before its first checkpoint resumes into
        # this record instead of leaving it RUNNING beside a new one
        record_run_id(self.run_dir, self.run_id)

    def replay(self) -> None:
        """Make the calls queued while the store was down (params, files, the model), and log
        every metric point of the run folder's metrics.csv and every sample grid of its samples/
        that the store does not have yet."""
        self.outage.send_queued()
        for step, values in self.run.missing_metrics(self.journal.metric_history(None)).items():
            self._send_metrics(values, step, synchronous=True)
        for step, path in self.run.missing_grids(self.run_dir / "samples"):
            from PIL import Image

            with Image.open(path) as image:
                self._send_image(np.asarray(image.convert("RGB")), "samples", step)

    def _send_metrics(self, metrics: dict[str, float], step: int, synchronous: bool) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch, synchronous=synchronous)
        for key in metrics:
            self.run.logged[key].add(step)

    def _send_image(self, image: np.ndarray, key: str, step: int) -> None:
        self.client.log_image(self.run_id, image, key=key, step=step, synchronous=self.remote)
        self.run.logged[f"image:{key}"].add(step)

    def log_params(self, params: dict[str, Any]) -> None:
        if self.run.continued:  # MLflow refuses to change a logged param; the first values stand
            return
        items = [Param(k, str(v)[:_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), _PARAMS_PER_CALL):
            batch = items[start : start + _PARAMS_PER_CALL]
            self.outage.call("params", lambda b=batch: self.client.log_batch(self.run_id, params=b))

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.outage.call("tags", lambda k=key, v=value: self.client.set_tag(self.run_id, k, v))

    def log_dataset(self, name: str, digest: str, path: str | None) -> None:
        """MLflow's dataset input of the run (its Datasets column and filter): the data set's
        name, the data cache key as the digest (the same images, the same digest), its path."""
        if self.run.continued:  # logged when the run began
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
        inputs = [DatasetInput(dataset, tags=[context])]
        self.outage.call("params", lambda: self.client.log_inputs(self.run_id, inputs))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        new = {k: v for k, v in metrics.items() if step not in self.run.logged[k]}
        if not new:
            return
        self.journal.log_metrics(new, step)
        for key, value in new.items():
            self.run.history[key].append((step, float(value)))
        self.outage.call("metrics", lambda: self._send_metrics(new, step, self.remote))

    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        # the run folder keeps it as samples/epoch_NNNN.png, from which replay() sends it
        if step not in self.run.logged[f"image:{key}"]:
            self.outage.call("images", lambda: self._send_image(image, key, step))

    def log_figure(self, figure: Figure, name: str) -> None:
        self.journal.log_figure(figure, name)  # the file, which a queued upload sends
        self.log_artifact(self.run_dir / name)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.outage.call(
            "artifacts", lambda: self.client.log_artifact(self.run_id, str(path), folder)
        )

    def has_model(self) -> bool:
        """Whether the run already has its logged generator (a resumed run that had ended)."""
        return self.run.model_logged

    def log_generator(
        self,
        generator: torch.nn.Module,
        example: torch.Tensor,
        epoch: int,
        registered_name: str | None = None,
    ) -> None:
        """The generator (export.py's form) into the run; the epoch it comes from is the run's
        tag gan_lab.model_epoch and the model's own; `registered_name` also registers it."""
        log_model = model_logger(generator, example, epoch, self.run_name, registered_name)

        def log() -> None:
            self.client.set_tag(self.run_id, tag.MODEL_EPOCH, str(epoch))
            self.client.set_tag(self.run_id, tag.MODEL_URI, log_model(self.run_id))
            self.run.model_logged = True

        self.outage.call("model", log)

    def metric_history(self, keys: list[str]) -> dict[str, list[tuple[int, float]]]:
        return {key: list(self.run.history.get(key, [])) for key in keys}

    def finish(self, outcome: Outcome) -> None:
        """The store first: replay what it missed, then the outcome as the tag gan_lab.outcome
        and the run's MLflow status (set_terminated first writes out everything still queued).
        Then outcome.json in the run folder. Best effort both: where the store does not answer,
        one line says how to finish the record later; a local write that fails (a full disk)
        cannot leave the store's run RUNNING, as it comes second."""

        def record() -> None:
            self.replay()
            self.client.set_tag(self.run_id, tag.OUTCOME, outcome.to_json())
            self.client.set_terminated(self.run_id, MLFLOW_STATUS[outcome.status])

        if not self.outage.call("finish", record):
            log.warning(
                "MLflow run %s could not be finished in %s: it stays RUNNING there; run again "
                "with train.resume=auto in %s once the store answers, to replay its metrics, "
                "images and outcome",
                self.run_id,
                self.uri,
                self.run_dir,
            )
        self.journal.finish(outcome)
