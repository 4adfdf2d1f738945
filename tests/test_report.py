"""A report a person can trust at a glance: the evidence behind every score, what each run was,
pictures on one scale, runs that can be told apart in MLflow."""

from __future__ import annotations

import json
import re
import time

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from PIL import Image

import gan_lab.plots
import gan_lab.report
import gan_lab.report.assemble
from gan_lab import tags
from gan_lab.config.compose import compose, register_schema
from gan_lab.overrides import key_of, keys_of, not_experiment
from gan_lab.report import report, varying_params
from gan_lab.report.analysis import search_as_settings
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
def sweep(tmp_path_factory, new_store):
    """A tracked two-job learning-rate sweep scored on 120 samples, and its report (once for
    every test here)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        folder = tmp_path_factory.mktemp("sweep")
        yield _sweep_and_report(folder, new_store(folder), monkeypatch)


def _sweep_and_report(tmp_path, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stand_in_metrics(monkeypatch)
    args = with_defaults(*SCORED_SWEEP, f"tracking.uri={store}")
    conf = tmp_path / "my_conf"  # a user's own config folder, searched beside gan_lab's
    conf.mkdir()
    sweep_dir = f"hydra.sweep.dir={tmp_path / 's'}"
    run_cli(monkeypatch, "-m", "--config-dir", str(conf), *args, "optim.lr=1e-4,3e-4", sweep_dir)
    ylims = []
    draw = gan_lab.plots.loss_curves

    def remembered(history, title="", ylim=None):
        ylims.append(ylim)
        return draw(history, title, ylim)

    monkeypatch.setattr(gan_lab.plots, "loss_curves", remembered)
    labels = []
    over_epochs = gan_lab.report.assemble.metric_over_epochs

    def legend(runs, metric):
        labels.extend(runs)
        return over_epochs(runs, metric)

    monkeypatch.setattr(gan_lab.report.assemble, "metric_over_epochs", legend)
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
    assert {row["run"] for row in rows} == {"job 0: optim.lr=1e-4", "job 1: optim.lr=3e-4"}
    assert {row["optim.lr"] for row in rows} == {"1e-4", "3e-4"}
    assert all(row["steps"] == "16" and row["wall time"].endswith(" s") for row in rows)


def test_the_pictures_are_on_one_scale_and_readable(sweep):
    path, children, ylims, labels = sweep
    assert len(ylims) == 1 and ylims[0] is not None  # one figure, one y-scale for every run
    curves = [path.parent / "images" / f"{c.info.run_id}-loss_curves.png" for c in children]
    assert curves[0].read_bytes() != curves[1].read_bytes()  # each run's own lines in it
    assert sorted(labels) == ["job 0: optim.lr=1e-4", "job 1: optim.lr=3e-4"]  # the legend
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
    for child in children:  # what the report labels the row with
        assert json.loads(child.data.tags[tags.SWEPT_VALUES]) == {
            "optim.lr": child.data.params["optim.lr"]
        }
    assert all("optim.lr=" in child.data.tags[tags.OVERRIDES] for child in children)


def test_the_sweep_and_rerun_lines_keep_the_config_dir(sweep):
    """Both commands the report prints find the user's own config folder again (issue 23)."""
    path, children, *_ = sweep
    conf = path.parent.parent / "my_conf"
    assert all(child.data.tags[tags.CONFIG_DIR] == str(conf) for child in children)
    lines = path.read_text().splitlines()
    assert any(
        line.startswith(f"- Sweep: `python -m gan_lab --config-dir {conf} -m ") for line in lines
    )
    rerun = lines[lines.index(next(line for line in lines if "Rerun it with:" in line)) + 1]
    assert rerun.startswith(f"- `python -m gan_lab --config-dir {conf} "), rerun
    assert rerun.count(" -m ") == 1 and re.search(r" optim\.lr=0\.000[13]`$", rerun), rerun


def test_a_row_is_labelled_by_the_values_its_job_recorded():
    """The label comes from the job's tag; a run of before the tag keeps its name's label."""
    from types import SimpleNamespace

    from gan_lab.outcome import Outcome, Status
    from gan_lab.report.analysis import Row

    def row(name: str, **run_tags: str) -> Row:
        info = SimpleNamespace(run_name=name)
        run = SimpleNamespace(info=info, data=SimpleNamespace(tags=run_tags, params={}))
        return Row(run, Outcome(Status.FINISHED), None, ["optim.lr"])

    values = json.dumps({"optim.lr": "1e-4", "recipe": "ema"})
    tagged = row("job 2", **{tags.JOB: "2", tags.SWEPT_VALUES: values})
    assert tagged.label == "job 2: optim.lr=1e-4, recipe=ema"
    assert row("job 2: lr=1e-4", **{tags.JOB: "2"}).label == "job 2: lr=1e-4"


def test_override_keys_lose_their_prefix_in_one_place():
    assert [key_of(o) for o in ("+a.b=1", "++a.b=1", "~a.b", "a.b=x=y")] == ["a.b"] * 4
    assert keys_of("optim.lr,+recipe,") == ["optim.lr", "recipe"]


def test_hydra_and_the_report_leave_out_the_same_keys():
    """One list: every key in it exists, Hydra leaves each out of a run's name and the report
    out of the parameters that vary; a key of the experiment stays in both."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gan_lab.config import CONF_DIR

    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        defaults = compose("config")
        given = {}
        for key in sorted(not_experiment()):
            value = OmegaConf.select(defaults, key, default=KeyError)
            assert value is not KeyError, f"{key} is no config key"
            value = defaults.tracking.name if key == "tracking" else value  # a group's choice
            given[key] = "null" if value is None else str(value).lower()
        overrides = [f"{k}={v}" for k, v in given.items()] + ["optim.lr=0.001"]
        named = compose("config", overrides=overrides, return_hydra_config=True)
    assert named.hydra.job.override_dirname == "optim.lr=0.001"

    from types import SimpleNamespace

    def run(**params):
        return SimpleNamespace(data=SimpleNamespace(params=params, tags={}))

    runs = [run(**{k: "a" for k in given}, **{"optim.lr": "1"}), run(**{"optim.lr": "2"})]
    assert varying_params(runs) == ["optim.lr"]
    assert {"tracking.uri", "train.device", "data.path", "trial.number"} <= not_experiment()


def _two_registered_runs(store: str) -> tuple[MlflowClient, list[str]]:
    """Two finished runs of the experiment 'crown' with FIDs 30 and 20, each with a version of
    the registered model 'pets'; the alias champion on the worse one's (version 1)."""
    client = MlflowClient(store)
    experiment = client.create_experiment("crown")
    client.create_registered_model("pets")
    ids = []
    for fid in (30.0, 20.0):
        run_id = client.create_run(experiment, run_name=f"fid {fid:.0f}").info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(key, fid, now, 0) for key in ("fid", "best_fid")]
        client.log_batch(run_id, metrics=metrics, params=[Param("optim.lr", str(fid))])
        client.set_terminated(run_id)
        client.create_model_version("pets", f"runs:/{run_id}/model", run_id)
        ids.append(run_id)
    client.set_registered_model_alias("pets", "champion", "1")
    return client, ids


@pytest.mark.integration
def test_the_report_crowns_only_when_asked(tmp_path, monkeypatch, store):
    client, (worse, better) = _two_registered_runs(store)
    markdown = report("crown", str(tmp_path / "plain"), store).read_text()
    assert client.get_model_version_by_alias("pets", "champion").run_id == worse
    assert "champion" not in markdown
    args = ["report", "crown", "--out", str(tmp_path / "crowned"), "--tracking-uri", store]
    run_cli(monkeypatch, *args, "--crown")
    assert client.get_model_version_by_alias("pets", "champion").run_id == better
    crowned = (tmp_path / "crowned" / "report.md").read_text()
    assert "Its registered model is now `models:/pets@champion`." in crowned


# A sweep of a config group's choice (model: every layer key changes with it) and of a key under
# it that the sweep sets on its own (model.width, a number of many digits)
GROUP_SWEEP = [
    "model=dcgan32,dcgan64_fast",
    "model.width=0.1234567,0.25",
    "data.num_images=64",
    "train.batch_size=16",
    "train.epochs=1",
    "train.progress=false",
    "metrics=standard",
    "metrics.every=1",
    "metrics.num_samples=32",
    "metrics.kid_subset_size=16",
    "tracking=mlflow",
    "tracking.log_model=false",
]


@pytest.fixture(scope="module")
def group_sweep(tmp_path_factory):
    """The four runs of GROUP_SWEEP in a real sqlite store, and their report's Markdown."""
    tmp_path = tmp_path_factory.mktemp("groups")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(tmp_path)
        stand_in_metrics(monkeypatch)
        store = f"sqlite:///{tmp_path / 'mlflow.db'}"
        sweep_dir = f"hydra.sweep.dir={tmp_path / 's'}"
        run_cli(monkeypatch, "-m", *GROUP_SWEEP, f"tracking.uri={store}", sweep_dir)
        path = report("gan_lab", str(tmp_path / "report"), store)
    _, runs = runs_of(store)
    return path.read_text(), parent_and_children(runs)[1]


@pytest.mark.integration
def test_the_keys_a_group_choice_sets_are_one_column_and_one_importance(group_sweep):
    markdown, children = group_sweep
    filters = {c.data.params["model.generator.filters"] for c in children}
    assert filters == {"[64, 32]", "[64, 32, 16]"}  # the layer keys vary with the choice
    header = next(line for line in markdown.splitlines() if line.startswith("| run |"))
    varying = header.split(" | ")[2:4]
    assert varying == ["model", "model.width"]  # not model.name, filters, norm...: the choice
    assert "model.generator" not in header and "model.discriminator" not in header
    assert {row["model"] for row in _rows(markdown)} == {"dcgan32", "dcgan64_fast"}
    importance = next(line for line in markdown.splitlines() if "mattered most" in line)
    assert re.findall(r"`([^`]+)` \d\.\d\d", importance) in (
        ["model", "model.width"],
        ["model.width", "model"],
    )
    rerun = next(line for line in markdown.splitlines() if line.startswith("- `python -m"))
    assert re.search(r" model=dcgan(32|64_fast)\b", rerun) and "model.generator" not in rerun


@pytest.mark.integration
def test_numbers_show_three_figures_and_the_row_label_says_what_varies(group_sweep):
    markdown, children = group_sweep
    rows = _rows(markdown)
    assert {row["model.width"] for row in rows} == {"0.123", "0.25"}
    assert {row["run"].split(": ")[1] for row in rows} == {
        f"model={model}, model.width={width}"
        for model in ("dcgan32", "dcgan64_fast")
        for width in ("0.123", "0.25")
    }
    assert "0.1234567" not in markdown.split("## Conclusions")[0]  # the rerun line keeps it all
    assert "model.width=0.1234567" in markdown.split("## Conclusions")[1]


def test_a_value_reads_in_three_significant_figures():
    from gan_lab.report.analysis import readable

    shown = {
        "0.00019844962727875773": "1.98e-4",
        "7.167196901830588e-05": "7.17e-5",
        "1e-05": "1e-5",
        "0.999": "0.999",
        "12.345": "12.3",
        "123456.7": "1.23e5",
        "64": "64",  # a whole number is shown whole
        "10000": "10000",
        "[0.5, 0.99]": "[0.5, 0.99]",
        "['none', 'batch']": "[none, batch]",
        "[translation]": "[translation]",
        "[]": "[]",
        "dcgan32": "dcgan32",
        "None": "None",
    }
    assert {value: readable(value) for value in shown} == shown


def test_a_group_sets_what_lies_under_it_or_what_its_choice_alone_decides():
    """model's keys fold into model; a global group (+anime_s2_figure) takes the keys its choice
    decides; a key swept on its own (model.width) and one no choice decides stay."""
    from types import SimpleNamespace

    def run(figure: str, model: str, width: str, batch: str, seed: str) -> SimpleNamespace:
        params = {
            "model.name": model,
            "model.generator.filters": f"[{model}]",
            "model.width": width,
            "train.batch_size": batch,
            "data.seed": seed,
        }
        given = {"anime_s2_figure": figure, "model": model, "model.width": width}
        run_tags = {
            tags.SWEPT: "+anime_s2_figure,model,model.width",
            tags.SWEPT_VALUES: json.dumps(given),
        }
        return SimpleNamespace(data=SimpleNamespace(params=params, tags=run_tags))

    runs = [
        run("fig1", "a", "1", "10", "0"),
        run("fig2", "a", "2", "64", "1"),
        run("fig1", "b", "1", "10", "2"),
        run("fig2", "b", "2", "64", "0"),
    ]
    assert varying_params(runs) == ["anime_s2_figure", "data.seed", "model", "model.width"]
    untagged = [SimpleNamespace(data=SimpleNamespace(params=r.data.params, tags={})) for r in runs]
    assert "model.generator.filters" in varying_params(untagged)  # no record of a choice


@pytest.mark.parametrize("search", ["cifar10_fast", "anime64_fast", "quick"])
def test_a_search_trial_reruns_as_one_plain_run_of_the_same_config(search):
    """The rerun line of a search's trial cannot say search=<name> (a plain run refuses it): the
    search's own settings stand in for it and compose the very config the trial ran."""
    trial = ["optim.lr=0.0003", "train.max_minutes=2"]
    settings = search_as_settings(f"search={search}")
    assert not any(s.startswith(("search=", "hydra")) for s in settings), settings
    assert compose(*settings, *trial) == compose(f"search={search}", *trial)
    assert search_as_settings("optim.lr=0.1") == ["optim.lr=0.1"]


def test_a_users_own_search_reruns_from_their_config_dir_or_is_left_as_it_was(tmp_path):
    (tmp_path / "search").mkdir()
    mine = tmp_path / "search" / "quick.yaml"  # the shipped search's name: the user's comes first
    mine.write_text(
        "defaults:\n  - override /data: cifar10\n  - override /hydra/sweeper: gan_lab_optuna\n"
        "  - _self_\ntracking:\n  experiment: my search, v2\ntrain:\n  epochs: 3\n"
    )
    settings = search_as_settings("search=quick", str(tmp_path))
    assert settings == ["data=cifar10", "tracking.experiment='my search, v2'", "train.epochs=3"]
    assert compose(*settings).tracking.experiment == "my search, v2"
    mine.write_text("defaults:\n  - some_base_of_mine\n")  # not spelled as overrides: kept
    assert search_as_settings("search=quick", str(tmp_path)) == ["search=quick"]
