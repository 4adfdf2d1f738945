"""Named implementations that a config key chooses among (loss.name, init.name, data.name, ...).

Each implementation registers its name once, in the module that implements it; the config checks
ask the registry which names exist, so adding a loss is one function and one YAML file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from gan_lab.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names allowed for the config key `key`, each bound to its implementation."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@LOSSES.register("hinge")` above the implementation."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.key}: {name!r} is registered twice")
        self._entries[name] = entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def check(self, value: object, key: str | None = None) -> None:
        """ConfigError naming the key and the registered names unless `value` is one of them."""
        if value not in self._entries:
            raise ConfigError(key or self.key, value, "choose one of " + ", ".join(self._entries))

    def __getitem__(self, name: str) -> T:
        self.check(name)
        return self._entries[name]
