"""Comparing checkpoints tensor by tensor."""

from __future__ import annotations

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
