"""What the report concludes from the runs: one row per run, the parameters that vary, which of
them mattered for FID (Optuna's fANOVA), and the command that reruns the best run."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import Run as MlflowRun

from gan_lab import tags
from gan_lab.metrics.scores import SAMPLES
from gan_lab.outcome import Outcome, Status, outcome_of
from gan_lab.overrides import key_of, not_experiment, short


@dataclass
class Row:
    run: MlflowRun
    outcome: Outcome
    fid: float | None
    swept: list[str] = field(default_factory=list)  # the keys the sweep varies
    images: dict[str, Path] = field(default_factory=dict)  # loss curves, final grid

    @classmethod
    def of(cls, run: MlflowRun, swept: list[str]) -> Row:
        """The row of a run: its FID only where it finished with a finite one."""
        outcome, fid = outcome_of(run), run.data.metrics.get("fid")
        ok = outcome.status == Status.FINISHED and fid is not None and math.isfinite(fid)
        return cls(run, outcome, fid if ok else None, swept)

    @property
    def params(self) -> dict[str, str]:
        return self.run.data.params

    @property
    def tags(self) -> dict[str, str]:
        return self.run.data.tags

    @property
    def status(self) -> str:
        return self.outcome.headline

    @property
    def number(self) -> str:
        """The trial or job number of a sweep ("trial 3", "job 2"), else the run name."""
        if tags.TRIAL in self.tags:
            return f"trial {self.tags[tags.TRIAL]}"
        if tags.JOB in self.tags:
            return f"job {self.tags[tags.JOB]}"
        return self.run.info.run_name

    @property
    def label(self) -> str:
        """The number and what the sweep varies: "job 2: lr=0.0001 batch_size=64", config groups
        such as recipe=ema too, as the job recorded it; else from the swept params."""
        given = self.tags.get(tags.SWEPT_VALUES)
        name = self.run.info.run_name or ""
        if given:
            values = short(json.loads(given))
        elif name.startswith("job ") and ": " in name:  # gan_lab 0.2 named its jobs so, untagged
            values = name.split(": ", 1)[1]
        else:
            values = short({k: self.params[k] for k in self.swept if k in self.params})
        return f"{self.number}: {values}" if values else self.number

    @property
    def metrics(self) -> dict[str, float]:
        return self.run.data.metrics

    @property
    def samples(self) -> int | None:
        """How many images the run's last scores rest on (None: not logged, gan_lab 0.1)."""
        count = self.metrics.get(SAMPLES)
        return None if count is None else int(count)

    @property
    def wall_seconds(self) -> float | None:
        info = self.run.info
        return (info.end_time - info.start_time) / 1000 if info.end_time else None


def varying_params(runs: list[MlflowRun]) -> list[str]:
    """Params whose values differ across the runs, leaving out those that are not part of the
    experiment (overrides.not_experiment). A param that always moves with one listed before it
    (optim.lr_g follows optim.lr) is left out."""
    skipped = not_experiment()
    keys = sorted({k for r in runs for k in r.data.params if k not in skipped})
    columns: dict[str, tuple] = {}
    for key in keys:
        column = tuple(r.data.params.get(key) for r in runs)
        if len(set(column)) > 1 and column not in columns.values():
            columns[key] = column
    return list(columns)


def as_override(value: str) -> str:
    """A logged param value ("[128, 64]", "None", "True") as Hydra override text."""
    return {"None": "null", "True": "true", "False": "false"}.get(value, value.replace(", ", ","))


def importances(rows: list[Row], keys: list[str]) -> dict[str, float]:
    """Optuna's fANOVA importance of each varying parameter for FID, over the finished runs."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    scored = [r for r in rows if r.fid is not None]
    if len(scored) < 3 or not keys:
        return {}
    distributions, values = {}, {}
    for key in keys:
        raw = [r.params.get(key, "None") for r in scored]
        try:
            numbers = [float(v) for v in raw]
        except ValueError:
            numbers = None
        if numbers is not None and min(numbers) < max(numbers):
            distributions[key] = FloatDistribution(min(numbers), max(numbers))
            values[key] = numbers
        elif len(set(raw)) > 1:
            distributions[key] = CategoricalDistribution(sorted(set(raw)))
            values[key] = raw
    if not distributions:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for index, row in enumerate(scored):
        params = {key: values[key][index] for key in distributions}
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=distributions, value=row.fid)
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return optuna.importance.get_param_importances(study, evaluator=evaluator)


def command(row: Row, *overrides: str) -> str:
    """`python -m gan_lab` with the --config-dir that the run was composed with, if any."""
    config_dir = row.tags.get(tags.CONFIG_DIR)
    where = [f"--config-dir {config_dir}"] if config_dir else []
    return " ".join(["python -m gan_lab", *where, *overrides])


def rerun_command(parent: MlflowRun | None, best: Row, keys: list[str]) -> str:
    """The sweep's overrides, less those the sweep varies, plus the best run's values of them."""
    base = parent.data.tags.get(tags.SWEEP_OVERRIDES, "").split() if parent else []
    base = [o for o in base if key_of(o) not in keys]
    chosen = [f"{k}={as_override(best.params[k])}" for k in keys if k in best.params]
    return command(best, *base, *chosen)
