"""A report a person can trust at a glance: the evidence behind every score, what each run was,
pictures on one scale, runs that can be told apart in MLflow."""

from __future__ import annotations

import re

import pytest
from PIL import Image

import gan_lab.plots
import gan_lab.report
from gan_lab import tags
from gan_lab.report import report
from tests.helpers.cli import run_cli
from tests.helpers.configs import with_defaults
from tests.helpers.metrics import stand_in_metrics
from tests.helpers.tracking import parent_and_children, runs_of

SCORED_SWEEP = [
    "metrics=standard",
    "metrics.every=1",
    "metrics.num_samples=120",
    "data.num_images=128",
    "train.epochs=2",
    "tracking=mlflow",
    "tracking.log_model=false",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A tracked two-job learning-rate sweep scored on 120 samples, and its report (once for
    every test here)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _sweep_and_report(tmp_path_factory.mktemp("sweep"), monkeypatch)


def _sweep_and_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stand_in_metrics(monkeypatch)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = with_defaults(*SCORED_SWEEP, f"tracking.uri={store}")
    run_cli(monkeypatch, "-m", *args, "optim.lr=1e-4,3e-4", f"hydra.sweep.dir={tmp_path / 's'}")
    ylims = []
    draw = gan_lab.plots.loss_curves

    def remembered(history, title="", ylim=None):
        ylims.append(ylim)
        return draw(history, title, ylim)

    monkeypatch.setattr(gan_lab.plots, "loss_curves", remembered)
    labels = []
    over_epochs = gan_lab.report.metric_over_epochs

    def legend(runs, metric):
        labels.extend(runs)
        return over_epochs(runs, metric)

    monkeypatch.setattr(gan_lab.report, "metric_over_epochs", legend)
    path = report("gan_lab", str(tmp_path / "report"), store)
    _, runs = runs_of(store)
    parent, children = parent_and_children(runs)
    return path, children, ylims, labels


def _rows(markdown: str) -> list[dict[str, str]]:
    lines = [
        line.strip("| ").split(" | ") for line in markdown.splitlines() if line.startswith("|")
    ]
    header = lines[0]
    return [dict(zip(header, cells, strict=True)) for cells in lines[2:]]


def test_every_score_shows_the_samples_it_rests_on(sweep):
    path, *_ = sweep
    markdown = path.read_text()
    assert "2 runs, sorted by FID (on fewer samples than it is shown for)." in markdown
    rows = _rows(markdown)
    assert len(rows) == 2
    for row in rows:
        assert row["FID"] == "too few samples (120)"  # FID needs 500
        assert re.fullmatch(r"-?[\d.e-]+ ± [\d.e-]+ \(n=120\)", row["KID"]), row["KID"]
        rates = [row[f"{q} / samples"] for q in ("good", "decent", "poor")]
        counts = [int(re.fullmatch(r"(\d+) / 120 \(\d+\.\d%\)", r).group(1)) for r in rates]
        assert sum(counts) == 120


def test_the_header_says_what_every_run_shares_and_each_row_what_differs(sweep):
    path, children, *_ = sweep
    markdown = path.read_text()
    assert (
        "Shared by all: data synthetic (128 images); model dcgan32: G [8, 8] 29,120; "
        "D [8, 8, 16] 3,761; optimiser adam, betas [0.5, 0.999]; batch 16; epochs 2; recipe seed."
    ) in markdown
    rows = _rows(markdown)
    assert {row["run"] for row in rows} == {"job 0: lr=0.0001", "job 1: lr=0.0003"}
    assert {row["optim.lr"] for row in rows} == {"0.0001", "0.0003"}
    assert all(row["steps"] == "16" and row["wall time"].endswith(" s") for row in rows)


def test_the_pictures_are_on_one_scale_and_readable(sweep):
    path, children, ylims, labels = sweep
    assert len(ylims) == 2 and ylims[0] == ylims[1] is not None  # one y-scale for every run
    assert sorted(labels) == ["job 0: lr=0.0001", "job 1: lr=0.0003"]  # the legend's names
    sweep_dir = path.parent.parent / "s"
    for child in children:
        grid = Image.open(path.parent / "images" / f"{child.info.run_id}-final.png")
        native = Image.open(sweep_dir / child.data.tags[tags.JOB] / "samples" / "final.png")
        assert grid.width >= gan_lab.report.GRID_WIDTH > native.width  # 138 px, scaled up
        assert grid.width % native.width == 0  # by whole pixels, without smoothing:
        colours = {colour for _, colour in grid.getcolors(maxcolors=1 << 24)}
        assert colours == {colour for _, colour in native.getcolors(maxcolors=1 << 24)}
    page = (path.parent / "report.html").read_text()
    assert "`" not in page and "<code>python -m gan_lab" in page  # Markdown rendered
    assert "name='viewport'" in page and "overflow-x:auto" in page and "pixelated" in page


def test_sweep_runs_are_named_by_what_varies(sweep):
    _, children, *_ = sweep
    names = sorted(child.info.run_name for child in children)
    assert names == ["job 0: lr=0.0001", "job 1: lr=0.0003"]
    assert all(child.data.tags[tags.SWEPT] == "optim.lr" for child in children)
    assert all("optim.lr=" in child.data.tags[tags.OVERRIDES] for child in children)
