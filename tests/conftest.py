from __future__ import annotations

import os

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


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A fresh MLflow sqlite store in tmp_path; the test runs there, so artifacts land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


# Fixtures that give a test a fresh MLflow store (or a server): such a test is not a unit test.
STORE_FIXTURES = {"store"}


def pytest_collection_modifyitems(items):
    """Tests with a store of their own join the integration tier, which `make test-fast` (the
    unit tier) leaves out; tests that start processes or servers are marked integration where
    they are written."""
    for item in items:
        if STORE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
