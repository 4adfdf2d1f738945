"""The config schema, the presets and the one-line errors of the command line."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from gan_lab.__main__ import main
from gan_lab.config.compose import compose
from gan_lab.errors import ConfigError
from gan_lab.training.checks import check_names
from tests.helpers.configs import PRESETS, ROOT


@pytest.mark.parametrize("preset", PRESETS)
def test_every_model_preset_composes(preset):
    config = compose(f"model={preset}")
    assert config.model.name == preset


def test_overrides_reach_the_typed_config():
    config = compose("model=cifar_dcgan32", "optim.lr=1e-4", "train.batch_size=64")
    assert config.model.name == "cifar_dcgan32"
    assert (config.optim.lr, config.optim.lr_g, config.optim.lr_d) == (1e-4, 1e-4, 1e-4)
    assert config.train.batch_size == 64


def test_lr_g_and_lr_d_default_to_lr_but_can_differ():
    config = compose("optim.lr=3e-4", "optim.lr_d=1e-4")
    assert (config.optim.lr_g, config.optim.lr_d) == (3e-4, 1e-4)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optim.lr=-1e-4", "optim.lr"),
        ("optim.lr_g=0", "optim.lr_g"),
        ("optim.betas=[0.5,1.0]", "optim.betas"),
        ("optim.betas=[-0.1,0.9]", "optim.betas"),
        ("optim.betas=[0.5]", "optim.betas"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.epochs=0", "train.epochs"),
        ("train.max_steps=0", "train.max_steps"),
        ("train.precision=fp8", "train.precision"),
        ("train.precision=fp16", "train.precision"),  # on the CPU: no fast kernels
        ("train.compile=fast", "train.compile"),
        ("train.device=tpu", "train.device"),
        ("train.device=cuda:99", "train.device"),
        ("model.discriminator.stride=[2,2]", "model.discriminator.stride"),
        ("model.generator.activation=swish", "model.generator.activation"),
        ("model.generator.kernel=[4,x]", "model.generator.kernel"),
        ("model.channels=2", "model.channels"),
        ("+train.typo=1", "train.typo"),
        # names checked against the registries of the code that implements them
        ("data.name=imagenet", "data.name"),
        ("metrics.compute=[fid,lpips]", "metrics.compute"),
        ("model.generator.activation=gelu", "model.generator.activation"),
        ("model.latent_distribution=cauchy", "model.latent_distribution"),
        ("model.arch=vit", "model.arch"),
        ("optim.name=lion", "optim.name"),
        ("optim.momentum=1", "optim.momentum"),
        ("data.resize_mode=zoom", "data.resize_mode"),
        ("model.generator.output.layer=upsample", "model.generator.output.layer"),
        ("metrics.precision=fp16", "metrics.precision"),
        # the recipe's keys
        ("loss.r1_gamma=-1", "loss.r1_gamma"),
        ("loss.r1_every=0", "loss.r1_every"),
        ("ema.half_life=0", "ema.half_life"),
        ("augment.policy=[blur]", "augment.policy"),
        ("augment.target=1.5", "augment.target"),
        ("model.discriminator.spectral_norm=[true]", "model.discriminator.spectral_norm"),
        ("loss.r1_gamma=1 train.compile=default", "train.compile"),  # no double backward
        ("loss.r2_gamma=1 train.compile=default", "train.compile"),  # R2's neither
        ("loss.r2_gamma=-1", "loss.r2_gamma"),
        ("loss.gamma_end_ratio=-0.1", "loss.gamma_end_ratio"),
        ("optim.lr_end_ratio=0", "optim.lr_end_ratio"),
    ],
)
def test_bad_values_name_their_key(override, key):
    """Values are checked as the config is composed, names (and the device) where the run is
    assembled: check_names, which run() and the command line call first."""
    with pytest.raises(ConfigError) as raised:
        check_names(compose("train.device=cpu", *override.split()))
    assert raised.value.key == key


def _cli(capsys, monkeypatch, tmp_path, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not_a_database.txt").write_text("plain text")
    (tmp_path / "a_file").write_text("where a folder was wanted")
    monkeypatch.setattr(
        sys, "argv", ["gan-lab", *args, "train.max_steps=1", "train.progress=false"]
    )
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:  # Hydra points the root logger at streams that pytest closes after this test
        logging.getLogger().handlers.clear()
    return exited.value.code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train.foo=1"], "train.foo"),
        (["train.batch_size=abc"], "train.batch_size"),
        (["optim.lr=-1"], "optim.lr"),
        (["optim.betas=[0.5,1.5]"], "optim.betas"),
        (["train.batch_size=0"], "train.batch_size"),
        (["train.epochs=0"], "train.epochs"),
        (["train.device=cuda:99"], "train.device"),
        (["model=nope"], "choose one of: animal_faces28"),
        (["model=cifar_dcgan32", "data.size=64"], "generates 3x32x32 images"),
        (["train.resume=/nonexistent/last.pt"], "/nonexistent/last.pt"),
        (["tracking=mlflow", "tracking.uri=sqlite:///not_a_database.txt"], "is not a database"),
        (["hydra.run.dir=a_file/run"], "cannot write a_file/run: Not a directory"),
    ],
)
def test_command_line_errors_are_one_line_with_status_2(
    capsys, monkeypatch, tmp_path, args, expected
):
    code, err = _cli(capsys, monkeypatch, tmp_path, *args)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert expected in err
    assert "Traceback" not in err


def test_a_config_file_that_is_not_yaml_is_one_line_naming_its_place(capsys, monkeypatch, tmp_path):
    (tmp_path / "mine" / "local").mkdir(parents=True)
    broken = tmp_path / "mine" / "local" / "default.yaml"
    broken.write_text("# @package _global_\ndata:\n  cache_dir: [unclosed\n  x: 1\n")
    monkeypatch.setenv("GAN_LAB_CONFIG_DIR", str(tmp_path / "mine"))
    code, err = _cli(capsys, monkeypatch, tmp_path, "tracking=none")
    assert code == 2
    assert err == (
        f"gan-lab: config error: {broken}, line 4, column 4: expected ',' or ']', but got ':'"
    )


def test_a_bad_value_never_starts_training(capsys, monkeypatch, tmp_path):
    _cli(capsys, monkeypatch, tmp_path, "optim.lr=-1")
    assert not list(tmp_path.rglob("*.pt"))


@pytest.mark.integration
def test_console_script_and_module_are_the_same_entry_point():
    script = ROOT / ".venv" / "bin" / "gan-lab"
    if not script.exists():
        pytest.skip("the console script is installed by `make install`")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "model: " in result.stdout and "animal_faces28" in result.stdout
