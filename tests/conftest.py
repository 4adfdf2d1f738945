from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

# Under pytest-xdist (make test: two workers on two cores) each worker and the processes its tests
# start compute on one thread: two workers of two threads each on two cores spin-wait for each
# other (OpenMP), and the suite ran slower than serially. Set before torch is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from tests.helpers.configs import tiny


@pytest.fixture(autouse=True, scope="session")
def _cache_of_the_session(tmp_path_factory):
    """Data and metric caches in a folder of the test session, never the user's own."""
    folder = tmp_path_factory.mktemp("gan_lab_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAN_LAB_CACHE", str(folder))
        # and no user's own configs (~/.config/gan_lab/local/) in the tests' compositions
        patch.setenv("GAN_LAB_CONFIG_DIR", str(tmp_path_factory.mktemp("user_config")))
        yield folder


@pytest.fixture
def tiny_config():
    """The tiny model's config, with tracking and metrics off unless the overrides choose them."""
    return tiny


@pytest.fixture(scope="session")
def new_store(tmp_path_factory) -> Callable[[Path], str]:
    """Puts a new MLflow sqlite store in a folder and gives its URI. MLflow creates a store's
    tables by running its migrations, seconds each time: the session migrates one store and each
    new one is a copy, without the default experiment, which MLflow adds when a copy is first
    opened (with the artifact root of the folder it is opened from), as in a store just created.
    A test of how a store comes to exist (runs racing to create it) uses fresh_store instead."""
    from mlflow import MlflowClient

    migrated = tmp_path_factory.mktemp("migrated_store") / "mlflow.db"
    MlflowClient(f"sqlite:///{migrated}").search_experiments()
    with sqlite3.connect(migrated) as db:
        db.execute("DELETE FROM experiments WHERE experiment_id = 0")
    db.close()

    def put(folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated, folder / "mlflow.db")
        return f"sqlite:///{folder / 'mlflow.db'}"

    return put


@pytest.fixture
def fresh_store(tmp_path, monkeypatch) -> str:
    """The URI of an MLflow sqlite store in tmp_path that does not exist yet; the test runs
    there, so artifacts land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def store(fresh_store, tmp_path, new_store) -> str:
    """A new, empty MLflow sqlite store in tmp_path (tmp_path/mlflow.db); the test runs there, so
    artifacts land there."""
    return new_store(tmp_path)


# Fixtures that give a test an MLflow store of its own (or a server): such a test is not a unit
# test.
STORE_FIXTURES = {"store", "fresh_store"}


def pytest_collection_modifyitems(items):
    """Tests with a store of their own join the integration tier, which `make test-fast` (the
    unit tier) leaves out; tests that start processes or servers are marked integration where
    they are written."""
    for item in items:
        if STORE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    # the slow tests first: pytest-xdist hands tests out in this order, so the longest start
    # early and the many short ones fill both workers at the end instead of one waiting on one
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
