"""Hydra override text as gan_lab reads it back: an override's key, the short form of a sweep's
values that names its jobs, and the config keys that are not part of the experiment.

Imported by the entry point before composition: it imports neither torch nor matplotlib."""

from __future__ import annotations

import functools

import yaml

from gan_lab.config import CONF_DIR


def key_of(override: str) -> str:
    """The config key an override sets or deletes: `+optim.lr=1e-4`, `++optim.lr=1e-4` and
    `~optim.lr` are all optim.lr."""
    return override.split("=", 1)[0].lstrip("+~")


def keys_of(text: str) -> list[str]:
    """The keys of a comma-separated list of swept keys ("optim.lr,+recipe")."""
    return [key_of(k) for k in text.split(",") if k]


def short(values: dict[str, str]) -> str:
    """What a sweep's job was given, by the last part of each key: "lr=0.0001 batch_size=64"."""
    return " ".join(f"{key.split('.')[-1]}={value}" for key, value in values.items())


@functools.cache
def not_experiment() -> frozenset[str]:
    """The keys that say where or how a run ran, not what it trained: Hydra leaves them out of
    run names (hydra.job.config.override_dirname.exclude_keys) and the report out of the
    parameters that vary. The one list is conf/config.yaml's, because Hydra reads it there
    while composing, in every launcher's processes, before any gan_lab code could hand it a
    Python constant; Hydra matches whole keys, so the list names each key, not its group."""
    config = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    return frozenset(config["hydra"]["job"]["config"]["override_dirname"]["exclude_keys"])
