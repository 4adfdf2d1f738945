"""Puts the project's sweeps/ folder (groups sweep/ and search/) and the user's own config folder
(local/, see gan_lab.config.locations.user_conf_dir) on Hydra's config search path."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from gan_lab.config.locations import SWEEPS_DIR, user_conf_dir


class GanLabSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="gan_lab-sweeps", path=f"file://{SWEEPS_DIR}")
        search_path.append(provider="gan_lab-user", path=f"file://{user_conf_dir()}")
