"""Scenario tables from MLflow: `gan-lab report <sweep or experiment>`.

One row per run of a sweep, sorted by FID, as the anime write-up's tables: the parameters that
vary across the sweep, a model summary, the loss curves, the final sample grid, FID and KID, and
the good / decent / poor rates. Failed, killed and pruned runs follow with their status. It ends
with what the write-ups concluded by hand: which parameters mattered most for FID (Optuna's
parameter-importance evaluator fed with the runs) and the command that reruns the best run.
Writes report.md (images beside it) and a self-contained report.html, plus fid_over_epochs.png,
and logs them to the sweep's parent run.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run

from gan_lab import tags
from gan_lab.errors import GanLabError
from gan_lab.files import atomic_write
from gan_lab.metrics.scores import MINIMUM_SAMPLES, SAMPLES
from gan_lab.outcome import RunResult, Status, outcome_of
from gan_lab.plots import metric_over_epochs
from gan_lab.tracking.mlflow_tracker import resolve_uri

log = logging.getLogger(__name__)

# Params that say where or how a run ran, not what it trained: never "varying parameters".
NOT_EXPERIMENT = (
    "trial.",
    "tracking.",
    "train.progress",
    "train.resume",
    "train.device",
    "data.path",
    "data.cache_dir",
    "data.workers",
    "data.on_device",
)
QUALITY = ("good", "decent", "poor")  # the quality_<name> rates
OPTIMISER = ("optim.lr_g", "optim.lr_d", "optim.betas")
GRID_WIDTH = 384  # pixels: final sample grids are scaled up by whole pixels to at least this
CHAMPION = "champion"  # the alias of the best run's registered model


@dataclass
class Row:
    run: Run
    outcome: RunResult
    fid: float | None
    swept: list[str] = field(default_factory=list)  # the keys the sweep varies
    images: dict[str, Path] = field(default_factory=dict)  # loss curves, final grid

    @property
    def params(self) -> dict[str, str]:
        return self.run.data.params

    @property
    def status(self) -> str:
        return self.outcome.headline

    @property
    def number(self) -> str:
        """The trial or job number of a sweep ("trial 3", "job 2"), else the run name."""
        run_tags = self.run.data.tags
        if tags.TRIAL in run_tags:
            return f"trial {run_tags[tags.TRIAL]}"
        if tags.JOB in run_tags:
            return f"job {run_tags[tags.JOB]}"
        return self.run.info.run_name

    @property
    def label(self) -> str:
        """The number and what the sweep varies: "job 2: lr=0.0001 batch_size=64", as the run is
        named (config groups such as recipe=ema too), else from the swept params."""
        name = self.run.info.run_name or ""
        if name.startswith("job ") and ": " in name:
            values = name.split(": ", 1)[1]
        else:
            values = " ".join(
                f"{k.split('.')[-1]}={self.params[k]}" for k in self.swept if k in self.params
            )
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


def find_runs(client: MlflowClient, target: str) -> tuple[Run | None, list[Run]]:
    """The sweep's parent run and its children. `target`: a parent run id (or runs:/<id>), or an
    experiment name, whose most recent sweep is taken (or all its runs when it has no sweep)."""
    run_id = target.removeprefix("runs:/").strip("/")
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        parent = _run(client, run_id) or _sweep_by_prefix(client, run_id)
        if parent is None:
            raise GanLabError(
                f"{target} is neither an MLflow experiment nor a run id (or the start of a sweep's "
                f"id) in {client.tracking_uri}: check the name, or --tracking-uri"
            )
        experiment_ids = [parent.info.experiment_id]
    else:
        experiment_ids = [experiment.experiment_id]
        sweeps = client.search_runs(
            experiment_ids,
            f"tags.`{tags.KIND}` = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        parent = sweeps[0] if sweeps else None
    if parent is None:
        runs = client.search_runs(experiment_ids, max_results=50000)
        return None, [r for r in runs if r.data.tags.get(tags.KIND) != "sweep"]
    children = client.search_runs(
        experiment_ids, f"tags.`{tags.PARENT_RUN_ID}` = '{parent.info.run_id}'", max_results=50000
    )
    return parent, children


def _run(client: MlflowClient, run_id: str) -> Run | None:
    try:
        return client.get_run(run_id)
    except Exception:  # MLflow raises its own types for an unknown or malformed id
        return None


def _sweep_by_prefix(client: MlflowClient, prefix: str) -> Run | None:
    """The sweep whose parent run id starts with `prefix` (the report's title shows 8
    characters); MLflow's search cannot match the start of an id, so the sweeps are listed."""
    if len(prefix) < 4:
        return None
    experiments = [e.experiment_id for e in client.search_experiments()]
    sweeps = client.search_runs(experiments, f"tags.`{tags.KIND}` = 'sweep'", max_results=50000)
    found = [r for r in sweeps if r.info.run_id.startswith(prefix)]
    return found[0] if len(found) == 1 else None


def crown_champion(client: MlflowClient, best: Run) -> list[str]:
    """Set the alias `champion` on the registered model versions that the best run logged
    (tracking.register_model), unless the version it names now comes from a run with a lower
    best FID (a report of an older sweep leaves a better champion alone); returns the
    `models:/<name>@champion` URIs that the best run's versions hold."""
    crowned = []
    fid = best.data.metrics.get("best_fid", math.inf)
    for version in client.search_model_versions(f"run_id = '{best.info.run_id}'"):
        try:
            reigning = client.get_model_version_by_alias(version.name, CHAMPION)
            reigning_fid = client.get_run(reigning.run_id).data.metrics.get("best_fid", math.inf)
        except Exception:  # MLflow raises its own types where no version has the alias
            reigning_fid = math.inf
        if fid <= reigning_fid:
            client.set_registered_model_alias(version.name, CHAMPION, version.version)
            crowned.append(f"models:/{version.name}@{CHAMPION}")
    return crowned


def varying_params(runs: list[Run]) -> list[str]:
    """Params whose values differ across the runs. A param that always moves with one listed
    before it (optim.lr_g follows optim.lr) is left out."""
    keys = sorted({k for r in runs for k in r.data.params if not k.startswith(NOT_EXPERIMENT)})
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


def _final_grid(client: MlflowClient, run: Run, out: Path) -> Path | None:
    """The run's final sample grid, scaled up by whole pixels (no smoothing) to at least
    GRID_WIDTH pixels across, so that 32x32 samples can be seen."""
    from PIL import Image

    if "final.png" not in {item.path for item in client.list_artifacts(run.info.run_id)}:
        return None
    local = Path(client.download_artifacts(run.info.run_id, "final.png", str(out)))
    target = out / "images" / f"{run.info.run_id}-final.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(local) as grid:
        factor = max(1, -(-GRID_WIDTH // grid.width))
        grid.resize((grid.width * factor, grid.height * factor), Image.NEAREST).save(target)
    local.unlink()
    return target


def _loss_curves(client: MlflowClient, rows: list[Row], out: Path) -> None:
    """Each run's loss curves, drawn again from its metrics on one y-scale for all runs."""
    from gan_lab.plots import LOSS_CURVES, loss_curves

    histories = {
        row.run.info.run_id: {
            key: [(m.step, m.value) for m in client.get_metric_history(row.run.info.run_id, key)]
            for key in LOSS_CURVES
        }
        for row in rows
    }
    values = [v for h in histories.values() for points in h.values() for _, v in points]
    values = sorted(v for v in values if math.isfinite(v))
    if not values:
        return
    # the 1st to 99th percentile: one diverging run does not flatten every other row's curves
    low, high = values[len(values) // 100], values[-1 - len(values) // 100]
    margin = (high - low) * 0.05 or 0.1
    for row in rows:
        history = histories[row.run.info.run_id]
        if any(history.values()):
            path = out / "images" / f"{row.run.info.run_id}-loss_curves.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            loss_curves(history, ylim=(low - margin, high + margin)).savefig(path)
            row.images["loss curves"] = path


def _number(value: float | None, digits: int = 4) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}g}"
    )


def _evidence(row: Row, metric: str, text: str) -> str:
    """`text` with the sample count behind it, or "too few samples" below the count where the
    metric means something (scores.MINIMUM_SAMPLES)."""
    count = row.samples
    if not text:
        return ""
    if count is None:
        return text
    if count < MINIMUM_SAMPLES[metric]:
        return f"too few samples ({count})"
    return f"{text} (n={count})"


def _rate(row: Row, name: str) -> str:
    """A quality rate with its count, as the write-up wrote it: "12 / 512 (2.3%)"."""
    share, count = row.metrics.get(f"quality_{name}"), row.samples
    if share is None:
        return ""
    if count is None:
        return f"{share:.1%}"
    text = f"{round(share * count)} / {count} ({share:.1%})"
    return text if count >= MINIMUM_SAMPLES["quality"] else f"too few samples ({count})"


def _model(row: Row) -> str:
    p, run_tags = row.params, row.run.data.tags
    g = f"G {p.get('model.generator.filters', '?')} {int(run_tags.get(tags.G_PARAMS, 0)):,}"
    d = f"D {p.get('model.discriminator.filters', '?')} {int(run_tags.get(tags.D_PARAMS, 0)):,}"
    return f"{p.get('model.name', '?')}: {g}; {d}"


def _rerun_command(parent: Run | None, best: Row, keys: list[str]) -> str:
    base = parent.data.tags.get(tags.SWEEP_OVERRIDES, "").split() if parent else []
    base = [o for o in base if o.split("=")[0].lstrip("+") not in keys]
    chosen = [f"{k}={as_override(best.params[k])}" for k in keys if k in best.params]
    return " ".join(["python -m gan_lab", *base, *chosen])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _shared(rows: list[Row], keys: list[str]) -> str:
    """What every row has in common (the write-up's first column lists it once): the data set
    and its images, the model, the optimiser, batch, epochs and the recipe."""
    first = rows[0]
    facts = []

    def same(key: str) -> str | None:
        values = {r.params.get(key) for r in rows}
        return first.params.get(key) if len(values) == 1 and key not in keys else None

    images = {r.run.data.tags.get(tags.IMAGES) for r in rows}
    data = same("data.name")
    if data:
        count = images.pop() if len(images) == 1 else None
        facts.append(f"data {data}" + (f" ({int(count):,} images)" if count else ""))
    if same("model.name"):
        filters = ("model.generator.filters", "model.discriminator.filters")
        whole = all(same(key) is not None for key in filters)  # else each row's differ
        facts.append(f"model {_model(first) if whole else first.params['model.name']}")
    optimiser = [f"{k.split('.')[-1]} {same(k)}" for k in OPTIMISER if same(k) is not None]
    if same("optim.name") or optimiser:
        named = [f"optimiser {same('optim.name')}"] if same("optim.name") else []
        facts.append(", ".join(named + optimiser))
    for key, name in (("train.batch_size", "batch"), ("train.epochs", "epochs")):
        if same(key):
            facts.append(f"{name} {same(key)}")
    recipes = {r.run.data.tags.get(tags.RECIPE) for r in rows}
    if len(recipes) == 1 and None not in recipes:
        facts.append(f"recipe {recipes.pop()}")
    return "; ".join(facts)


def build(client: MlflowClient, target: str, out: Path) -> Path:
    parent, runs = find_runs(client, target)
    if not runs:
        raise GanLabError(f"no runs found for {target} in {client.tracking_uri}")
    out.mkdir(parents=True, exist_ok=True)
    given = parent.data.tags.get(tags.SWEPT, "") if parent else ""
    swept = [k.lstrip("+~") for k in given.split(",") if k]  # each row's, stripped once
    rows = []
    for run in runs:
        outcome, fid = outcome_of(run), run.data.metrics.get("fid")
        ok = outcome.status == Status.FINISHED and fid is not None and math.isfinite(fid)
        row = Row(run, outcome, fid if ok else None, swept)
        grid = _final_grid(client, run, out)
        if grid is not None:
            row.images["final samples"] = grid
        rows.append(row)
    rows.sort(key=lambda r: (r.fid is None, r.fid if r.fid is not None else 0, r.number))
    _loss_curves(client, rows, out)
    keys = varying_params([r.run for r in rows])
    history = {
        r.label: [(m.step, m.value) for m in client.get_metric_history(r.run.info.run_id, "fid")]
        for r in rows
    }
    metric_over_epochs(history, "FID").savefig(out / "fid_over_epochs.png", bbox_inches="tight")
    conclusions = _conclusions(rows, keys, importances(rows, keys), parent)
    best = next((r for r in rows if r.fid is not None), None)
    for uri in crown_champion(client, best.run) if best is not None else []:
        conclusions.append(f"Its registered model is now `{uri}`.")
    experiment = client.get_experiment(runs[0].info.experiment_id).name
    title = f"{experiment}: sweep {parent.info.run_id[:8]}" if parent else experiment
    if parent is not None:
        command = parent.data.tags.get(tags.SWEEP_OVERRIDES, "")
        conclusions.insert(0, f"Sweep: `python -m gan_lab -m {command}`")
    summary = _summary(rows, keys)
    atomic_write(
        out / "report.md",
        lambda tmp: tmp.write_text(_markdown(title, summary, rows, keys, conclusions)),
    )
    page = _html(title, summary, rows, keys, conclusions, out)
    atomic_write(out / "report.html", lambda tmp: tmp.write_text(page))
    if parent is not None:
        for name in ("report.md", "report.html", "fid_over_epochs.png"):
            client.log_artifact(parent.info.run_id, str(out / name), "report")
    return out / "report.md"


def _summary(rows: list[Row], keys: list[str]) -> str:
    shared = _shared(rows, keys)
    hidden = any(
        r.fid is not None and r.samples is not None and r.samples < MINIMUM_SAMPLES["fid"]
        for r in rows
    )
    order = " (on fewer samples than it is shown for)" if hidden else ""
    text = f"{len(rows)} runs, sorted by FID{order}."
    return f"{text} Shared by all: {shared}." if shared else text


def _columns(row: Row, keys: list[str]) -> list[tuple[str, str | Path | None]]:
    """(header, value) of a row; a Path value is an image, None an image the run lacks."""
    m = row.metrics
    kid = _number(m.get("kid"), 3) + (
        f" ± {_number(m.get('kid_std'), 2)}" if "kid_std" in m else ""
    )
    return [
        ("run", row.label),
        ("status", row.status),
        *[(key, row.params.get(key, "")) for key in keys],
        ("steps", str(row.outcome.step) if row.outcome.step else ""),
        ("wall time", _duration(row.wall_seconds)),
        ("loss curves (G, D real, D fake)", row.images.get("loss curves")),
        ("final samples", row.images.get("final samples")),
        ("FID", _evidence(row, "fid", _number(row.fid))),
        ("KID", _evidence(row, "kid", kid)),
        *[(f"{q} / samples", _rate(row, q)) for q in QUALITY],
    ]


def _conclusions(
    rows: list[Row], keys: list[str], weights: dict[str, float], parent: Run | None
) -> list[str]:
    lines = []
    if weights:
        shown = ", ".join(f"`{k}` {v:.2f}" for k, v in weights.items())
        count = sum(r.fid is not None for r in rows)
        lines.append(
            f"Parameters that mattered most for FID (Optuna fANOVA over {count} runs): {shown}."
        )
    elif keys:
        lines.append("Too few finished runs with an FID (3 needed) to rank the parameters.")
    best = next((r for r in rows if r.fid is not None), None)
    if best is not None:
        lines.append(f"Best run: {best.label}, FID {_number(best.fid)}. Rerun it with:")
        lines.append(f"`{_rerun_command(parent, best, keys)}`")
    for row in rows:
        if row.outcome.status != Status.FINISHED:
            lines.append(f"{row.label}: {row.outcome.describe()}")
    return lines


def _markdown(
    title: str, summary: str, rows: list[Row], keys: list[str], conclusions: list[str]
) -> str:
    def text(value: str | Path | None) -> str:
        if isinstance(value, Path):
            return f"![](images/{value.name})"
        return (value or "").replace("|", "/")

    header = [h for h, _ in _columns(rows[0], keys)]
    lines = [
        f"# {title}",
        "",
        summary,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(text(v) for _, v in _columns(r, keys)) + " |" for r in rows]
    lines += ["", "![FID over epochs](fid_over_epochs.png)", "", "## Conclusions", ""]
    return "\n".join(lines + [f"- {line}" for line in conclusions]) + "\n"


def _embedded(path: Path, css_class: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img class="{css_class}" src="data:image/png;base64,{data}">'


# Readable in a browser and in MLflow's narrow artifact preview: the table scrolls sideways
# inside its box, images shrink to the width there is, sample grids keep sharp pixels.
_STYLE = (
    "body{font-family:sans-serif;margin:8px;max-width:100%}"
    ".table{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;font-size:14px}"
    "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}"
    "th{position:sticky;top:0;background:#f4f4f4}"
    "td:first-child,th:first-child{position:sticky;left:0;background:#fff;min-width:9em}"
    "img{max-width:100%;height:auto}"
    "img.curves{width:320px}"
    "img.grid{width:256px;image-rendering:pixelated;image-rendering:crisp-edges}"
    "img.wide{width:100%;max-width:900px}"
    "code{background:#f4f4f4;padding:0 2px;word-break:break-all}"
)


def _inline_markdown(text: str) -> str:
    """A line of the report's text as HTML: its `code` spans rendered; everything else (run
    names, error messages) shown as written, never read as HTML or emphasis."""
    import markdown

    parts = text.split("`")
    for index in range(0, len(parts), 2):  # outside the code spans
        parts[index] = re.sub(r"([\\*_\[\]])", r"\\\1", html.escape(parts[index]))
    rendered = markdown.markdown("`".join(parts))
    return rendered.removeprefix("<p>").removesuffix("</p>")


def _html(
    title: str,
    summary: str,
    rows: list[Row],
    keys: list[str],
    conclusions: list[str],
    out: Path,
) -> str:
    """The same table with every image embedded, so the page stands alone."""

    def cell(header: str, value: str | Path | None) -> str:
        if isinstance(value, Path):
            return _embedded(value, "grid" if header == "final samples" else "curves")
        return html.escape(value or "")

    columns = _columns(rows[0], keys)
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(h, v)}</td>" for h, v in _columns(r, keys)) + "</tr>"
        for r in rows
    )
    items = "".join(f"<li>{_inline_markdown(c)}</li>" for c in conclusions)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{_inline_markdown(summary)}</p>"
        f"<div class='table'><table><tr>{head}</tr>{body}</table></div>"
        f"<h2>FID over epochs</h2>{_embedded(out / 'fid_over_epochs.png', 'wide')}"
        f"<h2>Conclusions</h2><ul>{items}</ul></body></html>"
    )


def report(target: str, out: str | None, tracking_uri: str | None) -> Path:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(resolve_uri(tracking_uri))
    folder = Path(out) if out else Path("reports") / target.replace("/", "_").replace(":", "_")
    path = build(client, target, folder)
    print(f"report: {path} and {path.with_suffix('.html')}")
    return path
