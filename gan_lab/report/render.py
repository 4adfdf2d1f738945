"""The report's figures and pages: the loss curves of every run on one scale, FID over epochs,
the table as Markdown (report.md, images beside it) and as a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

from mlflow.entities import Run as MlflowRun

from gan_lab import tags
from gan_lab.metrics.scores import MINIMUM_SAMPLES
from gan_lab.outcome import Status
from gan_lab.report.analysis import Row, readable, rerun_command
from gan_lab.tracking import History

QUALITY = ("good", "decent", "poor")  # the quality_<name> rates
OPTIMISER = ("optim.lr_g", "optim.lr_d", "optim.betas")
FID_FIGURE = "fid_over_epochs.png"
FID_FIGURE_RUNS = 10  # the runs of lowest FID that it draws: hundreds of lines would show none
FID_HEADING = f"FID over epochs of the best runs (at most {FID_FIGURE_RUNS})"


def loss_curves(rows: list[Row], histories: list[History], out: Path) -> None:
    """Each run's loss curves, drawn from its metrics on one scale for all runs (steps and
    losses). The axes, labels and legend are the same for every run, so they are drawn once and
    each run's lines are drawn over a copy of them (matplotlib's blitting): drawing and saving
    a whole figure costs a twentieth of a second a run, most of a large report's time."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    from gan_lab.plots import LOSS_CURVES
    from gan_lab.plots import loss_curves as figure_of

    points = [p for h in histories for curve in h.values() for p in curve]
    values = sorted(v for _, v in points if math.isfinite(v))
    if not values:
        return
    # the 1st to 99th percentile: one diverging run does not flatten every other row's curves
    low, high = values[len(values) // 100], values[-1 - len(values) // 100]
    margin = (high - low) * 0.05 or 0.1
    figure = figure_of(
        {key: [(0, math.nan)] for key in LOSS_CURVES}, ylim=(low - margin, high + margin)
    )
    figure.set_dpi(60)  # 384x240 pixels: the page shows it 320 wide; 4 times the pixels cost
    axes = figure.axes[0]  # 4 times the time to save and the size of report.html
    axes.set_xlim(0, max(max(s for s, _ in points), 1))
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    background = canvas.copy_from_bbox(figure.bbox)
    lines = dict(zip(LOSS_CURVES, axes.get_lines(), strict=True))
    for row, history in zip(rows, histories, strict=True):
        if not any(history.values()):
            continue
        canvas.restore_region(background)
        for key, line in lines.items():
            curve = sorted(history.get(key, [])) or [(0, math.nan)]
            line.set_data([s for s, _ in curve], [v for _, v in curve])
            axes.draw_artist(line)
        path = out / "images" / f"{row.run.info.run_id}-loss_curves.png"
        pixels = np.asarray(canvas.buffer_rgba())[..., :3]
        Image.fromarray(pixels).save(path, compress_level=3)  # level 6 is 3x slower, 10% smaller
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
    optimiser = [
        f"{k.split('.')[-1]} {readable(same(k) or '')}" for k in OPTIMISER if same(k) is not None
    ]
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


def summary_line(rows: list[Row], keys: list[str]) -> str:
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
        *[(key, readable(row.value_of(key) or "")) for key in keys],
        ("steps", str(row.outcome.step) if row.outcome.step else ""),
        ("wall time", _duration(row.wall_seconds)),
        ("loss curves (G, D real, D fake)", row.images.get("loss curves")),
        ("final samples", row.images.get("final samples")),
        ("FID", _evidence(row, "fid", _number(row.fid))),
        ("KID", _evidence(row, "kid", kid)),
        *[(f"{q} / samples", _rate(row, q)) for q in QUALITY],
    ]


def conclusions_of(
    rows: list[Row], keys: list[str], weights: dict[str, float], parent: MlflowRun | None
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
        lines.append(f"`{rerun_command(parent, best, keys)}`")
    for row in rows:
        if row.outcome.status != Status.FINISHED:
            lines.append(f"{row.label}: {row.outcome.describe()}")
    return lines


def to_markdown(
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
    lines += ["", f"## {FID_HEADING}", "", f"![FID over epochs]({FID_FIGURE})", ""]
    lines += ["## Conclusions", ""]
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


def to_html(
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
        f"<h2>{FID_HEADING}</h2>{_embedded(out / FID_FIGURE, 'wide')}"
        f"<h2>Conclusions</h2><ul>{items}</ul></body></html>"
    )
