"""gan_lab's Optuna sweeper as Hydra sees it: `hydra/sweeper=gan_lab_optuna`.

Hydra instantiates sweepers only from classes defined under the hydra_plugins package, so the
class lives here; its logic is gan_lab.sweep.optuna_sweeper."""

from hydra.core.config_store import ConfigStore

from gan_lab.sweep.optuna_sweeper import OptunaSweeper, OptunaSweeperConf


class GanLabOptunaSweeper(OptunaSweeper):
    pass


ConfigStore.instance().store(
    group="hydra/sweeper", name="gan_lab_optuna", node=OptunaSweeperConf, provider="gan_lab"
)
