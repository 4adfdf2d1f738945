"""The one way every command reaches an MLflow store: the URI resolved, short HTTP retries, the
store checked at once, and a store that does not answer said in one line (GanLabError)."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gan_lab.errors import GanLabError, Refused, first_line

if TYPE_CHECKING:
    from mlflow import MlflowClient

# A tracking server that does not answer is reported in seconds, not after minutes of MLflow's
# default retries (7 with back-off, 120 s each); a user's own settings stand.
HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}


class StoreUnreachable(GanLabError):
    """The tracking store did not answer, or cannot be opened or written: said once, in one
    line."""


def resolve_uri(uri: str | None) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else MLflow's default (./mlflow.db). A relative
    sqlite path becomes absolute, so that jobs started in other folders find the same store."""
    import mlflow

    uri = uri or mlflow.get_tracking_uri()
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + os.path.abspath(uri[len(prefix) :])
    return uri


def _store_lock(uri: str):
    """A lock beside a sqlite store's file: MLflow creates and migrates a new store on first
    use, and several processes doing so at once leave it half-migrated for good."""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    from filelock import FileLock

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=600)


def _quiet(uri: str) -> None:
    """Short retries for a server, and none of MLflow's start-up chatter on stderr."""
    # MLflow announces each schema migration of a new store on stderr; a run's own log is enough.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if uri.startswith(("http://", "https://")):
        for key, value in HTTP_SETTINGS.items():
            os.environ.setdefault(key, value)
        # a warning per retry of every call: gan_lab says it once, in its own line
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def _refuse_read_only(uri: str) -> None:
    """A sqlite store that cannot be written (its file, or the folder where sqlite keeps its
    journal and gan_lab its lock) is said to be read-only, before MLflow's write fails with a
    traceback of SQL."""
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///"))
    blocked = next(
        (p for p in (path, path.parent) if p.exists() and not os.access(p, os.W_OK)), None
    )
    if blocked is not None:
        raise StoreUnreachable(
            f"the tracking store {uri} is read-only ({blocked} cannot be written): make it "
            "writable, give tracking.uri a store that can be written, or run with tracking=none"
        )


def connect(uri: str | None, write: bool = True) -> MlflowClient:
    """A client of the store at `uri` (resolved as resolve_uri does), checked now: created (and
    migrated) if it is new, one process at a time; one that will be written (`write`) must be
    writable. Every command that talks to the store comes here first, so that a store that
    does not answer is one line within seconds."""
    uri = resolve_uri(uri)
    _quiet(uri)
    if write:
        _refuse_read_only(uri)
    from mlflow import MlflowClient

    try:
        with _store_lock(uri):
            client = MlflowClient(uri)
            client.search_experiments(max_results=1)  # opens the store: creates a new schema
    except Exception as error:  # MLflow raises many types for an unreachable or broken store
        raise StoreUnreachable(
            f"cannot reach the tracking store at {uri} ({describe(error)}): start the tracking "
            "server, fix tracking.uri (--tracking-uri, MLFLOW_TRACKING_URI), or run with "
            "tracking=none"
        ) from error
    return client


def describe(error: BaseException) -> str:
    """An error of MLflow or its clients as "Type: first line"."""
    text = first_line(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment `name`, created if missing; safe when several jobs race to create it."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        _refuse_deleted(client, found)
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # another job created it between our two calls
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _refuse_deleted(client: MlflowClient, experiment) -> None:
    """MLflow keeps a deleted experiment's name, and refuses new runs in it (with a traceback)."""
    if experiment.lifecycle_stage == "deleted":
        raise Refused(
            f"MLflow experiment {experiment.name!r} is deleted in {client.tracking_uri}: restore "
            f"it (MLFLOW_TRACKING_URI={client.tracking_uri} mlflow experiments restore "
            f"--experiment-id {experiment.experiment_id}), or choose another tracking.experiment"
        )


def store_errors() -> tuple[type[BaseException], ...]:
    """What a store that went away raises: MLflow's errors, the HTTP client's, the database
    driver's. Anything else (an export that fails, a file missing) is a bug."""
    import requests
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    return (
        MlflowException,
        requests.exceptions.RequestException,
        sqlalchemy.exc.SQLAlchemyError,
        ConnectionError,
        TimeoutError,
    )
