"""Comparing checkpoints tensor by tensor."""

from __future__ import annotations

from pathlib import Path

import torch


def assert_same_checkpoint(a: object, b: object, path: str = "checkpoint") -> None:
    """Every tensor and value of two checkpoints equal (the config aside: the resumed run's
    command line differs; and the time it took), so that a resumed run is the uninterrupted one
    bit for bit."""
    if isinstance(a, dict):
        # the config aside, and the wall-clock seconds spent training, scoring and saving
        timings = {"seconds", "eval_seconds", "checkpoint_seconds"}
        unequal = {"checkpoint": {"config"}, "checkpoint.progress": timings}.get(path, set())
        keys = set(a) - unequal
        assert keys == set(b) - unequal, path
        for key in keys:
            assert_same_checkpoint(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_checkpoint(x, y, f"{path}[{index}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path} differs"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def assert_resumes_bit_exact(overrides: list[str], folder: Path) -> dict:
    """Trains `overrides` for 2 epochs straight, and for 1 epoch then resumed to 2
    (train.resume=auto): both end on the same last.pt, which it returns."""
    from gan_lab.config.compose import compose
    from gan_lab.training import checkpoint
    from gan_lab.training.run import run

    run(compose(*overrides, "train.epochs=2"), folder / "straight")
    run(compose(*overrides, "train.epochs=1"), folder / "stopped")
    run(compose(*overrides, "train.epochs=2", "train.resume=auto"), folder / "stopped")
    straight = checkpoint.load(folder / "straight" / "checkpoints" / "last.pt")
    resumed = checkpoint.load(folder / "stopped" / "checkpoints" / "last.pt")
    assert_same_checkpoint(straight, resumed)
    return straight
