"""From Hydra's composed DictConfig to the typed, checked Config (conf/ and sweeps/ are where
locations.py says)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from gan_lab.config.locations import CONF_DIR
from gan_lab.config.schema import Config
from gan_lab.errors import ConfigError

# Groups of presets that conf/config.yaml lists as null, so that `experiment=anime_s2` chooses one
# (as lightning-hydra-template users type it). Hydra refuses `+experiment=` for a listed group;
# gan_lab reads it as `experiment=`, so that both spellings work.
PRESET_GROUPS = ("experiment", "sweep", "search")


def plain_presets(overrides: list[str]) -> list[str]:
    """`+experiment=x` as `experiment=x` (likewise sweep and search); others as they are."""
    return [
        o[1:] if o.startswith("+") and o[1:].split("=")[0] in PRESET_GROUPS else o
        for o in overrides
    ]


def register_schema() -> None:
    """Make the schema available to conf/config.yaml's defaults list as `gan_lab_schema`."""
    ConfigStore.instance().store(name="gan_lab_schema", node=Config)


def compose(*overrides: str) -> Config:
    """The checked Config that `python -m gan_lab <overrides>` would run, for scripts, notebooks,
    benchmarks and tests (Hydra's compose API; no run folder, no logging set-up)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(hydra_compose("config", overrides=plain_presets(list(overrides))))


def _reject_added_keys(node: DictConfig, prefix: str = "") -> None:
    """Keys added with `+key=value` slip past the schema (OmegaConf.to_object drops them
    silently); reject them so a misspelt key never goes unnoticed."""
    schema = OmegaConf.get_type(node)
    known = {f.name for f in fields(schema)} if is_dataclass(schema) else None
    for key in node:
        full = f"{prefix}{key}"
        if known is not None and key not in known:
            raise ConfigError(
                full,
                node[key],
                "gan_lab has no such key: check the spelling, or list the keys with --cfg job",
            )
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _reject_added_keys(child, f"{full}.")


def to_config(cfg: DictConfig) -> Config:
    """Turn Hydra's composed DictConfig into the typed Config, then check its values."""
    _reject_added_keys(cfg)
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, Config)
    config.check()
    return config
