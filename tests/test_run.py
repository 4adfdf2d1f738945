"""Training end to end on the synthetic data: losses, grids, checkpoints and exact resumption."""

from __future__ import annotations

import errno
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gan_lab.cli import parser
from gan_lab.config.compose import compose
from gan_lab.errors import ConfigError, GanLabError, RunDiverged
from gan_lab.outcome import Reason, Status
from gan_lab.training import checkpoint, loop
from gan_lab.training.run import run
from tests.helpers.checkpoints import assert_same_checkpoint
from tests.helpers.cli import run_cli
from tests.helpers.configs import STEPS_PER_EPOCH, TINY, with_defaults


def _weights(run_dir):
    return checkpoint.load(run_dir / "checkpoints" / "last.pt")


def _step(state: dict) -> int:
    return state["progress"]["step"]


def test_a_short_run_writes_grids_checkpoints_and_metrics(tmp_path, tiny_config):
    config = tiny_config("train.epochs=2")
    result = run(config, tmp_path)
    assert (result.status, result.step) == (Status.FINISHED, 2 * STEPS_PER_EPOCH)
    means = result.metrics
    losses = {"g_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake"}
    minutes = {"train_minutes", "eval_minutes", "checkpoint_minutes"}  # how the time went
    assert set(means) == losses | minutes
    assert all(torch.isfinite(torch.tensor(v)) for v in means.values())
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "epoch_0000.png",  # before the first step
        "epoch_0001.png",
        "epoch_0002.png",
        "final.png",
    ]
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["epoch_0001.pt", "epoch_0002.pt", "last.pt"]  # no temporary files left
    state = _weights(tmp_path)
    assert _step(state) == 2 * STEPS_PER_EPOCH
    assert state["config"]["train"]["epochs"] == 2
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "step,name,value"
    assert any(line.startswith("2,g_loss,") for line in lines)
    assert any(line.startswith("1,epoch_g_loss,") for line in lines)


def test_the_grid_is_the_size_asked_for(tmp_path, tiny_config):
    from PIL import Image

    run(tiny_config("train.epochs=1", "train.grid_size=3"), tmp_path)
    width, height = Image.open(tmp_path / "samples" / "epoch_0001.png").size
    assert (width, height) == (3 * 32 + 4 * 2, 3 * 32 + 4 * 2)  # make_grid pads 2 px


def test_resume_after_an_epoch_is_bit_identical(tmp_path, tiny_config):
    run(tiny_config("train.epochs=3"), tmp_path / "straight")
    run(tiny_config("train.epochs=1"), tmp_path / "stopped")
    run(tiny_config("train.epochs=3", "train.resume=auto"), tmp_path / "stopped")
    assert_same_checkpoint(_weights(tmp_path / "straight"), _weights(tmp_path / "stopped"))


def test_resume_in_the_middle_of_an_epoch_is_bit_identical(tmp_path, tiny_config):
    run(tiny_config("train.epochs=2"), tmp_path / "straight")
    run(tiny_config("train.epochs=2", "train.max_steps=4"), tmp_path / "stopped")
    assert _step(_weights(tmp_path / "stopped")) == 4
    last = tmp_path / "stopped" / "checkpoints" / "last.pt"
    run(tiny_config("train.epochs=2", f"train.resume={last}"), tmp_path / "resumed")
    assert_same_checkpoint(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))


def _past_its_first_epoch(args: list[str], folder: Path) -> subprocess.Popen:
    """A command-line run in `folder`, once its first epoch is checkpointed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gan_lab", *args, f"hydra.run.dir={folder}"],
        cwd=folder.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (folder / "checkpoints" / "epoch_0001.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    return process


@pytest.mark.slow
def test_resume_after_a_kill_is_bit_identical(tmp_path, tiny_config, monkeypatch):
    """SIGKILL a command-line run once its first epoch is checkpointed, then resume it (here:
    what is resumed is the killed process's folder)."""
    args = with_defaults("data.num_images=960", "train.epochs=4")
    killed = tmp_path / "killed"
    process = _past_its_first_epoch(args, killed)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    epochs_done = _step(_weights(killed)) // (960 // 16)
    assert epochs_done >= 1
    monkeypatch.chdir(tmp_path)
    run_cli(monkeypatch, *args, "train.resume=auto", f"hydra.run.dir={killed}")
    run(tiny_config("data.num_images=960", "train.epochs=4"), tmp_path / "straight")
    assert_same_checkpoint(_weights(tmp_path / "straight"), _weights(killed))


@pytest.mark.slow
def test_sigterm_leaves_a_checkpoint_of_whole_steps_that_resumes_exactly(
    tmp_path, tiny_config, monkeypatch
):
    """What SLURM's time limit or `docker stop` sends, in the middle of training: the run ends
    KILLED (status 143) with last.pt at the step it had finished, and resumes from there."""
    args = with_defaults("data.num_images=960", "train.epochs=4")
    stopped = tmp_path / "stopped"
    process = _past_its_first_epoch(args, stopped)
    time.sleep(0.3)  # into the second epoch
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    recorded = json.loads((stopped / "outcome.json").read_text())
    assert (recorded["status"], recorded["reason"]) == ("KILLED", "terminated")
    assert _step(_weights(stopped)) == recorded["step"] > 960 // 16  # saved where it stopped
    monkeypatch.chdir(tmp_path)
    run_cli(monkeypatch, *args, "train.resume=auto", f"hydra.run.dir={stopped}")
    run(tiny_config("data.num_images=960", "train.epochs=4"), tmp_path / "straight")
    assert_same_checkpoint(_weights(tmp_path / "straight"), _weights(stopped))


def test_resume_auto_without_a_checkpoint_starts_fresh(tmp_path, tiny_config):
    run(tiny_config("train.epochs=1", "train.resume=auto"), tmp_path)
    assert _step(_weights(tmp_path)) == STEPS_PER_EPOCH


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, tiny_config):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = run(tiny_config(f"train.resume={bad}"), tmp_path / "run")
    assert result.status == Status.FAILED and result.user_error
    assert "cannot be read" in result.error and "check train.resume" in result.error


def test_a_checkpoint_of_another_model_is_a_clear_error(tmp_path, tiny_config):
    run(tiny_config("train.epochs=1"), tmp_path / "a")
    last = tmp_path / "a" / "checkpoints" / "last.pt"
    result = run(
        tiny_config("model.generator.filters=[8,4]", f"train.resume={last}"), tmp_path / "b"
    )
    assert result.status == Status.FAILED and "different model" in result.error


def test_a_crash_while_saving_leaves_the_old_checkpoint(tmp_path, tiny_config, monkeypatch):
    run(tiny_config("train.epochs=1"), tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path / "checkpoints", {"format": 1})
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


def test_divergence_stops_with_a_clear_error(tmp_path, tiny_config):
    config = tiny_config("train.epochs=1", "init=normal", "init.std=1e30", "train.precision=fp32")
    result = run(config, tmp_path)
    assert (result.status, result.reason) == (Status.FAILED, Reason.DIVERGED)
    assert re.search("diverged by step 2 .*lower optim.lr, or check the data", result.error)
    assert not (tmp_path / "checkpoints").exists()  # no checkpoint of NaN weights


def test_bf16_trains_on_cpu(tmp_path, tiny_config):
    result = run(
        tiny_config("train.epochs=1", "train.device=cpu", "train.precision=bf16"), tmp_path
    )
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())


def test_the_generator_learns_the_synthetic_data(tmp_path, tiny_config):
    """After a little training, D can no longer reject every fake with certainty."""
    config = tiny_config("train.epochs=3", "data.num_images=512")
    means = run(config, tmp_path).metrics
    assert 0.02 < means["d_fake"] < 0.98


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda_keeps_the_images_on_the_device(tmp_path, tiny_config):
    config = tiny_config("train.epochs=1", "train.device=cuda", "train.precision=bf16")
    result = run(config, tmp_path)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())


def test_multirun_gives_each_job_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_cli(
        monkeypatch,
        "-m",
        "optim.lr=1e-4,2e-4,3e-4",
        "train.epochs=1",
        "train.max_steps=2",
        *with_defaults()[1:],
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["0", "1", "2"]
    lrs = [(tmp_path / "sweep" / j / ".hydra" / "overrides.yaml").read_text() for j in jobs]
    assert [
        "optim.lr=0.0001" in lrs[0],
        "optim.lr=0.0002" in lrs[1],
        "optim.lr=0.0003" in lrs[2],
    ] == [True] * 3
    for job in jobs:
        assert (tmp_path / "sweep" / job / "checkpoints" / "last.pt").exists()


def test_an_untracked_sweep_with_a_failed_job_finishes_the_others_then_exits_1(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        run_cli(
            monkeypatch,
            "-m",
            *with_defaults("train.epochs=1", "init=normal", "init.std=1e30,0.02"),
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        )
    assert exited.value.code == 1
    said = capsys.readouterr().err
    assert "1 of 2 jobs of the sweep did not finish (1 failed, 1 finished)" in said
    assert (tmp_path / "sweep" / "1" / "checkpoints" / "last.pt").exists()  # the other job ran


def test_replace_keeps_dataclass_configs_usable():
    # run() takes plain Config dataclasses, so programmatic sweeps can derive configs
    config = compose(*TINY)
    assert replace(config.train, epochs=7).epochs == 7


@pytest.mark.slow
def test_a_compiled_run_trains_and_resumes_without_compiling(tmp_path, tiny_config):
    """train.compile leaves the networks' state dicts as they are: the checkpoint of a compiled
    run continues in a plain one."""
    compiled = run(tiny_config("train.epochs=1", "train.compile=default"), tmp_path / "c")
    assert compiled.status == Status.FINISHED
    last = tmp_path / "c" / "checkpoints" / "last.pt"
    resumed = run(tiny_config("train.epochs=2", f"train.resume={last}"), tmp_path / "plain")
    assert (resumed.status, resumed.step) == (Status.FINISHED, 2 * STEPS_PER_EPOCH)


def test_keep_last_keeps_the_newest_epoch_checkpoints_and_last(tmp_path, tiny_config):
    run(tiny_config("train.epochs=3", "train.keep_last=2"), tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["epoch_0002.pt", "epoch_0003.pt", "last.pt"]
    assert _step(_weights(tmp_path)) == 3 * STEPS_PER_EPOCH


def test_keep_last_zero_is_a_config_error(tiny_config):
    with pytest.raises(ConfigError, match="train.keep_last=0 .*keep_checkpoints=false"):
        tiny_config("train.keep_last=0")


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_last_pt(
    tmp_path, tiny_config, monkeypatch
):
    """ENOSPC half way through writing the second epoch's checkpoint: the run fails with one
    line naming the file, the bytes needed and the bytes free; last.pt is the first epoch's."""
    run(tiny_config("train.epochs=1"), tmp_path)
    save = torch.save

    def disk_full(state, target, *args, **kwargs):
        if isinstance(target, io.BytesIO):  # measuring the checkpoint's size
            return save(state, target, *args, **kwargs)
        Path(target).write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", disk_full)
    result = run(tiny_config("train.epochs=2", "train.resume=auto"), tmp_path)
    monkeypatch.undo()
    assert result.status == Status.FAILED and result.user_error  # exit 2, one line
    last = tmp_path / "checkpoints" / "last.pt"
    assert re.fullmatch(
        rf"cannot write checkpoint {re.escape(str(last))}: no space left on device "
        r"\([\d,]+ bytes needed, [\d,]+ free\): .*train\.keep_last=N.*",
        result.error,
    )
    assert _step(checkpoint.load(last)) == STEPS_PER_EPOCH  # intact, loadable
    assert not [p for p in last.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("content", ["png", "truncated"])
def test_eval_of_a_file_that_is_no_checkpoint_says_so(
    tmp_path, tiny_config, monkeypatch, capsys, content
):
    if content == "png":
        target = tmp_path / "some.png"
        target.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    else:
        run(tiny_config("train.epochs=1"), tmp_path / "run")
        whole = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
        target = tmp_path / "truncated.pt"
        target.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SystemExit) as stopped:
        run_cli(monkeypatch, "eval", str(target))
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert line.startswith(f"gan-lab: error: not a gan_lab checkpoint: {target} cannot be read")
    assert "resume" not in line


def test_a_damaged_checkpoint_to_resume_from_names_train_resume(tmp_path, tiny_config):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = run(tiny_config(f"train.resume={bad}"), tmp_path / "run")
    assert result.error.startswith("not a gan_lab checkpoint") and result.user_error
    assert result.error.endswith(f"check train.resume={bad}")


@pytest.mark.parametrize(
    ("precision", "fix"),
    [
        ("fp32", "lower optim.lr, or check the data (train.precision is fp32 already)"),
        ("bf16", "lower optim.lr, or use train.precision=fp32"),
        ("fp16", "lower optim.lr, or use train.precision=bf16 (a GPU of compute capability 8+) "
         "or fp32"),
    ],
)  # fmt: skip
def test_the_divergence_message_fits_the_precision(precision, fix):
    step = SimpleNamespace(metrics=("g_loss", "d_real"), precision=precision)
    with pytest.raises(RunDiverged) as diverged:
        loop._read(torch.tensor([math.nan, 1.0]), 1, 7, step)
    assert str(diverged.value) == f"training diverged by step 7 (g_loss=nan, d_real=1): {fix}"


def test_max_steps_beyond_the_epochs_is_said_at_the_start(caplog):
    caplog.set_level(logging.WARNING, logger="gan_lab.training.loop")
    assert loop.total_steps(loop.LoopSettings(20, 3000, 10), 39) == 780
    (record,) = caplog.records
    assert record.getMessage() == (
        "train.max_steps=3000 is never reached: train.epochs=20 ends the run at step 780 "
        "(39 steps an epoch); set train.epochs=77 to train 3000 steps"
    )
    caplog.clear()
    assert loop.total_steps(loop.LoopSettings(20, 500, 10), 39) == 500
    assert loop.total_steps(loop.LoopSettings(20, None, 10), 39) == 780
    assert not caplog.records


def test_eval_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["eval", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: None)" not in shown
    assert "(default: 512 on a CPU, about a minute;" in shown
    assert "PNG images to write (default: 64)" in shown


def test_a_full_disk_while_copying_an_epoch_checkpoint_leaves_no_torn_copy(tmp_path, monkeypatch):
    """Where hard links are not supported the epoch file is a copy: written atomically too."""
    folder = tmp_path / "checkpoints"
    checkpoint.save(folder, {"format": checkpoint.FORMAT, "n": 1})

    def no_link(*args):
        raise OSError(errno.EXDEV, "no links here")

    def copy_fills_the_disk(source, target):
        Path(target).write_bytes(b"\0" * 10)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copyfile", copy_fills_the_disk)
    with pytest.raises(GanLabError, match="no space left on device"):
        checkpoint.save(folder, {"format": checkpoint.FORMAT, "n": 2}, keep_as="epoch_0002.pt")
    monkeypatch.undo()
    assert [p.name for p in folder.iterdir()] == ["last.pt"]
    assert checkpoint.load(folder / "last.pt")["n"] == 1
