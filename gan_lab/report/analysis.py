"""What the report concludes from the runs: one row per run, the parameters that vary, which of
them mattered for FID (Optuna's fANOVA), and the command that reruns the best run.

A config group that a sweep chooses (`model=dcgan32,dcgan64`) is one parameter here, its choice:
the layer keys that the choice sets are its doing, not five parameters of their own."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from mlflow.entities import Run as MlflowRun

from gan_lab import tags
from gan_lab.config import CONF_DIR, SWEEPS_DIR
from gan_lab.metrics.scores import SAMPLES
from gan_lab.outcome import Outcome, Status, outcome_of
from gan_lab.overrides import key_of, keys_of, not_experiment
from gan_lab.tracking.factory import flatten


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
    def swept_values(self) -> dict[str, str]:
        """The job's values of the keys the sweep varies, as it was given them ({} before the
        tag): config groups' choices too, {"model": "dcgan32"}."""
        return json.loads(self.tags.get(tags.SWEPT_VALUES) or "{}")

    def value_of(self, key: str) -> str | None:
        """The run's value of a varying key: a param as logged, a config group its choice."""
        return self.params.get(key, self.swept_values.get(key))

    @property
    def label(self) -> str:
        """The number and what the sweep varies, in full and readable: "job 2: optim.lr=1e-4,
        train.batch_size=64", config groups such as recipe=ema too, as the job recorded it;
        else from the swept params."""
        given = self.swept_values
        name = self.run.info.run_name or ""
        if not given and name.startswith("job ") and ": " in name:  # gan_lab 0.2, untagged
            return name
        given = given or {k: self.params[k] for k in self.swept if k in self.params}
        values = ", ".join(f"{key}={readable(value)}" for key, value in given.items())
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
    (optim.lr_g follows optim.lr) is left out, and so is one that a swept config group's choice
    sets (chosen_groups): the group is listed in its place. A param the sweep varies on its own
    (model.width beside model) stays."""
    skipped = not_experiment()
    keys = sorted({k for r in runs for k in r.data.params if k not in skipped})
    columns: dict[str, tuple] = {}
    for key in keys:
        column = tuple(r.data.params.get(key) for r in runs)
        if len(set(column)) > 1 and column not in columns.values():
            columns[key] = column
    groups = chosen_groups(runs)
    swept = {k for r in runs for k in keys_of(r.data.tags.get(tags.SWEPT, ""))}
    kept = [k for k, column in columns.items() if k in swept or not _set_by(k, column, groups)]
    return sorted(kept + [g for g, choices in groups.items() if len(set(choices)) > 1])


def chosen_groups(runs: list[MlflowRun]) -> dict[str, tuple[str, ...]]:
    """The config groups that the runs' sweep chose (`model`, `loss`, `+anime_s2_figure`: a swept
    key that is no param), each with every run's choice, where every run recorded its own."""
    params = {k for r in runs for k in r.data.params}
    swept = {k for r in runs for k in keys_of(r.data.tags.get(tags.SWEPT, ""))}
    given = [json.loads(r.data.tags.get(tags.SWEPT_VALUES) or "{}") for r in runs]
    return {
        group: tuple(values[group] for values in given)
        for group in sorted(swept - params)
        if all(group in values for values in given)
    }


def _set_by(key: str, column: tuple, groups: dict[str, tuple[str, ...]]) -> str | None:
    """The group whose choice sets the param `key`: the group it belongs to (model.* is model's),
    else one whose choice alone decides its value in every run (a group of the global package,
    such as anime_s2_figure, sets keys anywhere)."""
    for group in groups:
        if key.startswith(f"{group}."):
            return group
    for group, choices in groups.items():
        if len(set(zip(choices, column, strict=True))) == len(set(choices)):
            return group
    return None


def three_figures(number: float) -> str:
    """A number in three significant figures, in the shortest readable form: 0.5, 0.999, 12.3,
    1.98e-4 (not 0.00019844962727875773), 1.23e5."""
    if number == 0 or not math.isfinite(number):
        return f"{number:g}"
    exponent = math.floor(math.log10(abs(float(f"{number:.2e}"))))
    if -3 <= exponent < 3:
        return f"{number:.3g}"
    mantissa = f"{number / 10**exponent:.2f}".rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


def readable(value: str) -> str:
    """A logged or given value as the report shows it: floats in three significant figures,
    whole numbers as they are, lists without quotes ("['none', 'batch']" -> "[none, batch]")."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        items = _split_top_level(text[1:-1])
        return "[" + ", ".join(readable(item.strip().strip("'\"")) for item in items) + "]"
    try:
        int(text)
        return text
    except ValueError:
        pass
    try:
        return three_figures(float(text))
    except ValueError:
        return text


def _split_top_level(text: str) -> list[str]:
    """The comma-separated items of a list's inside, nested lists kept whole."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    last = text[start:]
    return items + [last] if last.strip() or items else items


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
        raw = [r.value_of(key) or "None" for r in scored]
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
    """The sweep's overrides, less those the sweep varies, plus the best run's values of them
    (exact, as logged; a config group by its choice)."""
    base = parent.data.tags.get(tags.SWEEP_OVERRIDES, "").split() if parent else []
    base = [o for o in base if key_of(o) not in keys]
    chosen = [f"{k}={as_override(best.params[k])}" for k in keys if k in best.params]
    choices = [
        f"{'' if (CONF_DIR / k).is_dir() else '+'}{k}={best.swept_values[k]}"
        for k in keys
        if k not in best.params and k in best.swept_values
    ]
    given = {key_of(o) for o in [*base, *chosen, *choices]}
    config_dir = best.tags.get(tags.CONFIG_DIR)
    base = [
        setting
        for o in base
        for setting in search_as_settings(o, config_dir)
        if setting == o or key_of(setting) not in given
    ]
    return command(best, *base, *chosen, *choices)


def search_as_settings(override: str, config_dir: str | None = None) -> list[str]:
    """`search=<name>` as the settings its file gives every trial, less its sweeper: a trial
    reruns as one plain run, where gan_lab refuses a search (it needs -m). The file is read as
    it is now, from the run's --config-dir first as Hydra would; on the command line its values
    also beat conf/local.yaml's, which the sweep merged after them. Other overrides, and a search
    whose file says what this cannot spell as overrides, are returned as they are."""
    if key_of(override) != "search":
        return [override]
    name = override.split("=", 1)[1]
    files = [Path(home) / "search" / f"{name}.yaml" for home in (config_dir, SWEEPS_DIR) if home]
    path = next((file for file in files if file.is_file()), None)
    if path is None:
        return [override]
    search = yaml.safe_load(path.read_text())
    try:
        groups = [g for entry in search.get("defaults", []) for g in _group_choice(entry)]
        values = {k: v for k, v in search.items() if k not in ("defaults", "hydra")}
        settings = [f"{k}={_yaml_override(v)}" for k, v in flatten(values).items()]
    except ValueError:
        return [override]
    return groups + settings


def _group_choice(entry: object) -> list[str]:
    """A defaults-list entry as `group=choice`; none for _self_ and the sweeper's hydra/ ones."""
    if entry == "_self_":
        return []
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ValueError(entry)
    ((group, choice),) = entry.items()
    match = re.fullmatch(r"override /([\w/]+)", group)
    if match is None:
        raise ValueError(entry)
    return [] if match[1].split("/")[0] == "hydra" else [f"{match[1]}={choice}"]


def _yaml_override(value: object) -> str:
    """A YAML value as Hydra override text: [color,translation], null, true, 'a b'."""
    if isinstance(value, list):
        return "[" + ",".join(_yaml_override(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict):
        raise ValueError(value)
    if isinstance(value, str) and not re.fullmatch(r"[\w.\-/+:]+", value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)
