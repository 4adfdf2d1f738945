"""Reaching gan_lab from Python and the registry: the notebook API, `gan-lab sample`, the best
generator as the MLflow model (registered, crowned champion, servable), the run's data set."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from PIL import Image

import gan_lab
from gan_lab import tags
from gan_lab.cli import run_command
from gan_lab.data import image_shape, load_images
from gan_lab.report import report
from gan_lab.trained import interpolate
from gan_lab.training import checkpoint
from tests.helpers.cli import run_cli
from tests.helpers.configs import with_defaults
from tests.helpers.metrics import stand_in_metrics
from tests.helpers.tracking import parent_and_children, runs_of

SCORED = ["metrics=standard", "metrics.every=1", "metrics.num_samples=32", "train.epochs=3"]


def test_a_notebook_composes_trains_loads_and_samples(tmp_path, monkeypatch):
    stand_in_metrics(monkeypatch)
    config = gan_lab.compose(*with_defaults(*SCORED, "ema.half_life=200"))
    result = gan_lab.train(config, tmp_path / "run")
    assert result.status == "FINISHED"
    state = checkpoint.load(tmp_path / "run" / "checkpoints" / "best.pt")
    generator = gan_lab.load_generator(tmp_path / "run")  # the folder: its best checkpoint
    expected = checkpoint.generator_weights(state)  # the moving average, as the run scored it
    for name, tensor in generator.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    images = gan_lab.sample(generator, 5, seed=1)
    assert images.shape == (5, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, gan_lab.sample(generator, 5, seed=1))  # the same for a seed


@pytest.mark.integration
def test_importing_gan_lab_loads_neither_torch_nor_mlflow():
    code = "import sys, gan_lab; print('torch' in sys.modules, 'mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.integration
def test_gan_lab_sample_writes_images_a_grid_and_latent_walks_without_data_or_inception(
    tmp_path, tiny_config
):
    gan_lab.train(tiny_config("train.epochs=1"), tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    code = (
        "import sys; from gan_lab.cli import run_command; "
        f"run_command(['sample', '{last}', '--num', '6', '--out', '{tmp_path / 's'}']); "
        f"run_command(['sample', '{last}', '--num', '2', '--interpolate', '5', "
        f"'--out', '{tmp_path / 'walk'}']); "
        "print('torch_fidelity' in sys.modules, 'gan_lab.data.cache' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"]  # no Inception network, no data set
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 6
    assert Image.open(tmp_path / "s" / "grid.png").size == (2 + 6 * 34, 2 + 34)  # 8 a row
    assert Image.open(tmp_path / "walk" / "grid.png").size == (2 + 5 * 34, 2 + 2 * 34)


def test_a_latent_walk_goes_from_one_image_to_another(tmp_path, tiny_config):
    gan_lab.train(tiny_config("train.epochs=1"), tmp_path)
    generator = gan_lab.load_generator(tmp_path)
    walk = interpolate(generator, walks=2, steps=6, seed=0).view(2, 6, 3, 32, 32)
    ends = gan_lab.sample(generator, 4, seed=0).view(2, 2, 3, 32, 32)  # the same latent vectors
    assert torch.allclose(walk[:, 0], ends[:, 0], atol=1e-5)
    assert torch.allclose(walk[:, -1], ends[:, 1], atol=1e-5)
    steps = (walk[:, 1:] - walk[:, :-1]).abs().mean(dim=(2, 3, 4))
    assert (steps > 0).all()  # it moves at every step


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:.*validate_serving_input:FutureWarning")
def test_the_best_generator_is_logged_registered_crowned_and_servable(tmp_path, monkeypatch, store):
    """A two-job sweep scored every epoch: each run logs best.pt and the MLflow model of its
    best FID's moving average, registered as `pets`; the report crowns the best run's version
    `champion`; models:/pets@champion loads that generator and serves the README's request."""
    import mlflow.models

    stand_in_metrics(monkeypatch)
    run_cli(
        monkeypatch,
        "-m",
        *with_defaults(*SCORED, "optim.lr=1e-4,3e-4", "ema.half_life=200", "tracking=mlflow"),
        f"tracking.uri={store}",
        "tracking.register_model=pets",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    client, runs = runs_of(store)
    parent, children = parent_and_children(runs)
    for child in children:
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "checkpoints")}
        assert artifacts == {"checkpoints/best.pt", "checkpoints/last.pt"}
        best_epoch = int(child.data.tags[tags.MODEL_EPOCH])
        fids = client.get_metric_history(child.info.run_id, "fid")
        assert best_epoch == min(fids, key=lambda m: m.value).step  # the epoch of the best FID
    versions = client.search_model_versions("name = 'pets'")
    assert len(versions) == 2

    report(parent.info.run_id, str(tmp_path / "report"), store, crown=True)
    champion = client.get_model_version_by_alias("pets", "champion")
    best = min(children, key=lambda r: r.data.metrics["best_fid"])
    assert champion.run_id == best.info.run_id

    generator = gan_lab.load_generator("models:/pets@champion", tracking_uri=store)
    local = client.download_artifacts(best.info.run_id, "checkpoints/best.pt", str(tmp_path))
    shown = checkpoint.generator_weights(checkpoint.load(local))
    assert all(torch.equal(t, shown[k]) for k, t in generator.state_dict().items())

    latents = np.random.default_rng(0).standard_normal((2, 100)).round(3).tolist()
    request = json.dumps({"inputs": latents})  # what the README's curl sends
    model_uri = f"models:/pets/{champion.version}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    served = np.asarray(mlflow.models.validate_serving_input(model_uri, request))
    assert served.shape == (2, 3, 32, 32) and served.min() >= 0 and served.max() <= 1
    with torch.no_grad():  # the champion's images of those latent vectors
        direct = generator(torch.tensor(latents, dtype=torch.float32))
    low, high = generator.output_range
    assert np.allclose(served, ((direct - low) / (high - low)).clamp(0, 1).numpy(), atol=1e-5)


@pytest.mark.integration
def test_a_run_records_its_data_set_with_the_cache_key_as_digest(tmp_path, tiny_config, store):
    result = gan_lab.train(
        tiny_config("train.epochs=1", "tracking=mlflow", f"tracking.uri={store}"), tmp_path
    )
    assert result.status == "FINISHED"
    client = MlflowClient(store)
    (record,) = client.search_runs([client.get_experiment_by_name("gan_lab").experiment_id])
    (dataset,) = record.inputs.dataset_inputs
    config = tiny_config()
    key = load_images(config.data, image_shape(config.data, (3, 32, 32))).key
    assert (dataset.dataset.name, dataset.dataset.digest) == ("synthetic", key)


def test_a_users_own_config_is_applied_under_the_command_line(tmp_path, monkeypatch):
    local = tmp_path / "local"
    local.mkdir()
    (local / "default.yaml").write_text(
        "# @package _global_\ndata:\n  cache_dir: /somewhere/cache\ntracking:\n  experiment: mine\n"
    )
    monkeypatch.setenv("GAN_LAB_CONFIG_DIR", str(tmp_path))
    config = gan_lab.compose("tracking.experiment=theirs")
    assert (config.data.cache_dir, config.tracking.experiment) == ("/somewhere/cache", "theirs")


def test_an_unknown_command_lists_the_commands(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exited:
        run_cli(monkeypatch, "bogus")
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "gan-lab: error: no command 'bogus': train with gan-lab [key=value ...], or run one of "
        "sample, eval, fid, report (gan-lab COMMAND --help)"
    )


@pytest.mark.parametrize("command", ["sample", "eval", "fid", "report"])
def test_every_command_shows_its_defaults_in_its_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        run_command([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "(default:" in text
