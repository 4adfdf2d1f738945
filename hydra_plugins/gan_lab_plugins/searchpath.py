"""Puts the project's sweeps/ folder on Hydra's config search path (groups sweep/ and search/)."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from gan_lab.config import SWEEPS_DIR


class GanLabSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="gan_lab-sweeps", path=f"file://{SWEEPS_DIR}")
