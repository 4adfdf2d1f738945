from __future__ import annotations

import pytest

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
