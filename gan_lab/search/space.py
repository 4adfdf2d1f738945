"""A search space written in Hydra's override grammar, as Optuna distributions.

    optim.lr: tag(log, interval(1e-5, 1e-3))       -> FloatDistribution(1e-5, 1e-3, log=True)
    train.batch_size: int(interval(16, 128))        -> IntDistribution(16, 128)
    train.batch_size: choice(10, 64, 256)           -> CategoricalDistribution
    model.generator.filters: choice([128,64,32],[128,64,64])
    init: choice(normal, truncated_normal)          -> a config group is a choice too
    train.epochs: range(10, 50, step=10)            -> CategoricalDistribution of the range
    optim.betas: [0.5,0.999]                        -> no sweep: a fixed override of every trial

Optuna's categorical choices must be plain values, so every choice is kept as the override text
it came from (for example "[128,64,32]") and handed back to Hydra as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from gan_lab.errors import GanLabError


@dataclass
class SearchSpace:
    distributions: dict[str, BaseDistribution]  # override key -> distribution
    fixed: list[str]  # overrides every trial gets

    def overrides(self, params: dict) -> list[str]:
        """A trial's sampled values as overrides (choices are override text already)."""
        return [*self.fixed, *(f"{key}={value}" for key, value in params.items())]


def _distribution(key: str, sweep) -> BaseDistribution:
    if isinstance(sweep, IntervalSweep):
        log = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):  # int(interval(a, b))
            return IntDistribution(sweep.start, sweep.end, log=log)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log)
    if isinstance(sweep, RangeSweep):
        values, value = [], sweep.start
        while value < sweep.stop:
            values.append(value)
            value += sweep.step
        return CategoricalDistribution([Transformer.str(v) for v in values])
    if isinstance(sweep, ChoiceSweep):
        return CategoricalDistribution([Transformer.str(v) for v in sweep.list])
    raise GanLabError(f"search parameter {key}: use interval(), choice() or range()")


def parse_space(params: dict[str, str], arguments: list[str]) -> SearchSpace:
    """`hydra.sweeper.params` (key -> override grammar) and the command line's overrides as a
    SearchSpace: sweeps on the command line (`optim.lr=interval(1e-5,1e-3)`) join the space."""
    parser = OverridesParser.create()
    distributions: dict[str, BaseDistribution] = {}
    fixed: list[str] = []
    for line in [f"{key}={text}" for key, text in params.items()] + list(arguments):
        override = parser.parse_override(line)
        key = override.get_key_element()
        if override.is_sweep_override():
            distributions[key] = _distribution(key, override.value())
        else:
            fixed.append(line)
    return SearchSpace(distributions, fixed)
