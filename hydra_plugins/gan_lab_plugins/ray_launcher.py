"""`hydra/launcher=ray`: Hydra's Ray launcher, waiting for every job and answering one whose
worker or node was lost (gan_lab.sweep.launchers) instead of stopping the sweep at it. Hydra's waits
with ray.get, job after job, and raises the first job's loss while the others still run."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict

from gan_lab.errors import first_line
from gan_lab.sweep.handoff import HANDED_DOWN
from gan_lab.sweep.launchers import lost_job

try:
    from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
except ImportError:  # pip install 'gan-lab[ray]'
    RayLauncher = None

log = logging.getLogger(__name__)
_starting = threading.Lock()  # a search launches its trials from several threads


if RayLauncher is not None:

    class GanLabRayLauncher(RayLauncher):
        def launch(
            self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
        ) -> Sequence[JobReturn]:
            import ray
            from hydra_plugins.hydra_ray_launcher._launcher_util import (
                launch_job_on_ray,
                start_ray,
            )

            setup_globals()
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            if not self.ray_cfg.init.get("address"):  # as Hydra's (whose setting refuses a
                # cluster: "object_store_memory must not be provided" when attaching to one)
                self.ray_cfg.init.setdefault("object_store_memory", 78643200)
            with _starting:
                start_ray(self.ray_cfg.init)
            remote = _handing_down(self.ray_cfg.remote)
            runs = []
            for num, overrides in enumerate(job_overrides, initial_job_idx):
                log.info("#%d : %s", num, " ".join(filter_overrides(overrides)))
                config = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides)
                )
                with open_dict(config):
                    config.hydra.job.id, config.hydra.job.num = f"job_id_for_{num}", num
                    run = launch_job_on_ray(
                        self.hydra_context,
                        remote,
                        config,
                        self.task_function,
                        Singleton.get_state(),
                    )
                runs.append((num, overrides, run))
            return [_result(ray, *run) for run in runs]


def _handing_down(remote: DictConfig) -> DictConfig:
    """The jobs' Ray options with the sweep's store and parent run in their environment, read
    now: ray.yaml's init.runtime_env is resolved when Hydra builds the launcher, before a
    search's parent run exists (it opens once the sweeper accepts the search)."""
    env = {key: os.environ[key] for key in HANDED_DOWN if os.environ.get(key)}
    return OmegaConf.merge(remote, {"runtime_env": {"env_vars": env}})


def _result(ray, num: int, overrides: Sequence[str], run) -> JobReturn:
    """The job's own return; a lost worker or node (Ray's system errors: with max_retries 0,
    see conf/hydra/launcher/ray.yaml) answered as lost, a job's own error raised as Hydra's."""
    from ray.exceptions import RayError, RayTaskError

    try:
        return ray.get(run)
    except RayTaskError:
        raise
    except RayError as error:
        return lost_job(num, overrides, f"its Ray worker or node was lost: {first_line(error)}")
