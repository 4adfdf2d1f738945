"""Checkpoints: everything needed to continue a run bit for bit, written atomically.

A checkpoint holds both networks, both optimisers and gradient scalers, the global step, every
RNG state (Python, NumPy, torch CPU and CUDA, the latent stream) and the resolved config. It is
written to a temporary file in the same folder and renamed, so a crash never leaves a torn file,
and read back with torch.load(weights_only=True), which loads tensors and plain data only.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_lab.errors import GanLabError
from gan_lab.files import atomic_write
from gan_lab.train import Gan, Latents

FORMAT = 1
LAST = "last.pt"


def capture_rng(latents: Latents) -> dict[str, Any]:
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "latents": latents.rng.get_state(),
    }


def restore_rng(state: dict[str, Any], latents: Latents) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    latents.rng.set_state(state["latents"])


def training_state(gan: Gan, latents: Latents, step: int, config: dict, extra: dict) -> dict:
    return {
        "format": FORMAT,
        "step": step,
        "generator": gan.generator.state_dict(),
        "discriminator": gan.discriminator.state_dict(),
        "opt_g": gan.opt_g.state_dict(),
        "opt_d": gan.opt_d.state_dict(),
        "scaler_g": gan.scaler_g.state_dict(),
        "scaler_d": gan.scaler_d.state_dict(),
        "rng": capture_rng(latents),
        "config": config,
        "extra": extra,  # e.g. the tracking run id, so a resumed run continues the same record
    }


def save(folder: Path, state: dict, name: str = LAST, keep_as: str | None = None) -> Path:
    """Write `name` (last.pt) in `folder`; also keep the same file as `keep_as` (epoch_0003.pt)."""
    last = folder / name

    def write(tmp: Path) -> None:
        torch.save(state, tmp)
        if keep_as:  # a hard link costs no space; copy where links are not supported
            kept = folder / keep_as
            kept.unlink(missing_ok=True)
            try:
                os.link(tmp, kept)
            except OSError:
                shutil.copyfile(tmp, kept)

    atomic_write(last, write)
    return last


def load(path: Path) -> dict:
    """Read a checkpoint onto the CPU; a missing or unreadable file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise GanLabError(f"checkpoint {path} does not exist: check train.resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for torn or foreign files
        raise GanLabError(
            f"checkpoint {path} cannot be read ({type(error).__name__}): it is damaged or "
            "not a gan_lab checkpoint; resume from another one"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanLabError(f"checkpoint {path} is not a gan_lab checkpoint (format {FORMAT})")
    return state


def restore(state: dict, gan: Gan, latents: Latents) -> int:
    """Load a checkpoint's weights, optimiser states and RNG states; return its step."""
    try:
        gan.generator.load_state_dict(state["generator"])
        gan.discriminator.load_state_dict(state["discriminator"])
    except RuntimeError as error:
        raise GanLabError(
            "the checkpoint was trained with a different model: resume with the model config "
            f"it was saved with ({str(error).splitlines()[0]})"
        ) from error
    gan.opt_g.load_state_dict(state["opt_g"])
    gan.opt_d.load_state_dict(state["opt_d"])
    gan.scaler_g.load_state_dict(state["scaler_g"])
    gan.scaler_d.load_state_dict(state["scaler_d"])
    restore_rng(state["rng"], latents)
    return int(state["step"])


def find_resume(resume: str | None, run_dir: Path) -> Path | None:
    """train.resume: null starts fresh; auto continues this run folder's last checkpoint if
    there is one; anything else is a checkpoint path."""
    if resume is None:
        return None
    if resume == "auto":
        last = run_dir / "checkpoints" / LAST
        return last if last.is_file() else None
    return Path(resume)
