"""The report from start to end: find the runs (query.py), order and conclude (analysis.py),
draw and write (render.py), log the files to the sweep's parent run, and crown the best run's
model where asked. `report` is `gan-lab report`; `build` does the work for a given client."""

from __future__ import annotations

import os
from pathlib import Path

from mlflow import MlflowClient

from gan_lab import tags
from gan_lab.errors import GanLabError
from gan_lab.files import atomic_write
from gan_lab.overrides import keys_of
from gan_lab.plots import LOSS_CURVES, metric_over_epochs
from gan_lab.report import query, render
from gan_lab.report.analysis import Row, command, importances, varying_params
from gan_lab.report.query import crown_champion, find_runs
from gan_lab.tracking.mlflow_tracker import resolve_uri


def build(client: MlflowClient, target: str, out: Path, crown: bool = False) -> Path:
    parent, runs = find_runs(client, target)
    if not runs:
        raise GanLabError(f"no runs found for {target} in {client.tracking_uri}")
    out.mkdir(parents=True, exist_ok=True)
    swept = keys_of(parent.data.tags.get(tags.SWEPT, "")) if parent else []
    rows = sorted(
        (Row.of(run, swept) for run in runs),
        key=lambda r: (r.fid is None, r.fid if r.fid is not None else 0, r.number),
    )
    ordered = [row.run for row in rows]
    for row, grid in zip(rows, query.final_grids(client, ordered, out), strict=True):
        if grid is not None:
            row.images["final samples"] = grid
    render.loss_curves(rows, query.histories(client, ordered, LOSS_CURVES), out)
    keys = varying_params(ordered)
    best_runs = rows[: render.FID_FIGURE_RUNS]
    fid_histories = query.histories(client, [row.run for row in best_runs], ["fid"])
    fids = {row.label: h.get("fid", []) for row, h in zip(best_runs, fid_histories, strict=True)}
    metric_over_epochs(fids, "FID").savefig(out / render.FID_FIGURE, bbox_inches="tight")
    conclusions = render.conclusions_of(rows, keys, importances(rows, keys), parent)
    best = next((r for r in rows if r.fid is not None), None)
    if crown and best is not None:
        for uri in crown_champion(client, best.run):
            conclusions.append(f"Its registered model is now `{uri}`.")
    experiment = client.get_experiment(runs[0].info.experiment_id).name
    title = f"{experiment}: sweep {parent.info.run_id[:8]}" if parent else experiment
    if parent is not None:
        given = parent.data.tags.get(tags.SWEEP_OVERRIDES, "")
        conclusions.insert(0, f"Sweep: `{command(rows[0], '-m', given)}`")
    summary = render.summary_line(rows, keys)
    markdown = render.to_markdown(title, summary, rows, keys, conclusions)
    atomic_write(out / "report.md", lambda tmp: tmp.write_text(markdown))
    page = render.to_html(title, summary, rows, keys, conclusions, out)
    atomic_write(out / "report.html", lambda tmp: tmp.write_text(page))
    if parent is not None:
        for name in ("report.md", "report.html", render.FID_FIGURE):
            client.log_artifact(parent.info.run_id, str(out / name), "report")
    return out / "report.md"


def report(target: str, out: str | None, tracking_uri: str | None, crown: bool = False) -> Path:
    """The report of `target` in out (default reports/<target>); `crown`: also move the alias
    `champion` to the best run's registered model (gan-lab report --crown)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(resolve_uri(tracking_uri))
    folder = Path(out) if out else Path("reports") / target.replace("/", "_").replace(":", "_")
    path = build(client, target, folder, crown)
    print(f"report: {path} and {path.with_suffix('.html')}")
    return path
