"""Checkpoints: what one holds, when each is written, and how a run continues from one.

A checkpoint holds both networks, both optimisers and gradient scalers, the generator's moving
average and the augmentation's state where the run has them, every RNG state (Python, NumPy,
torch CPU and CUDA, the latent stream), the resolved config and the run's Progress (step, best
FID, tracking run id): everything needed to continue a run bit for bit. It is written to a
temporary file in the same folder and renamed, so a crash never leaves a torn file, and read back
with torch.load(weights_only=True), which loads tensors and plain data only.

The run folder's checkpoints/ keeps last.pt (every train.checkpoint_every epochs and at the end),
epoch_NNNN.pt beside it (train.keep_checkpoints, a hard link; only the newest train.keep_last
of them where that is set) and best.pt (the lowest FID). .writer.lock in the run folder, beside
checkpoints/, is held by the one process that writes the run folder (one_writer).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_lab.config import TrainConfig
from gan_lab.errors import GanLabError, Refused, first_line
from gan_lab.files import atomic_write
from gan_lab.models.gan import Gan
from gan_lab.sampling import Latents
from gan_lab.training.augment import Augment
from gan_lab.training.continuation import Continuation

FORMAT = 2
LAST, BEST = "last.pt", "best.pt"
WRITER = ".writer.lock"  # in the run folder: checkpoints/ holds checkpoints only
EMA = "generator_ema"
RAW_SHOWN = "raw_shown"  # in best.pt only: its raw generator scored better than the average


@dataclass
class Progress:
    """How far a run has come, saved in every checkpoint beside the weights."""

    step: int = 0
    best_fid: float | None = None
    best_epoch: int | None = None
    tracking_run_id: str | None = None  # a resumed run continues the same tracked record
    # How the run's minutes were spent, over every resume: training (train.max_minutes counts
    # this alone), scoring, and writing checkpoints
    seconds: float = 0.0
    eval_seconds: float = 0.0
    checkpoint_seconds: float = 0.0


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


def capture(
    gan: Gan, latents: Latents, progress: Progress, config: dict, augment: Augment | None = None
) -> dict:
    """Everything a checkpoint holds."""
    state = {
        "format": FORMAT,
        "progress": asdict(progress),
        "generator": gan.generator.state_dict(),
        "discriminator": gan.discriminator.state_dict(),
        "opt_g": gan.opt_g.state_dict(),
        "opt_d": gan.opt_d.state_dict(),
        "scaler_g": gan.scaler_g.state_dict(),
        "scaler_d": gan.scaler_d.state_dict(),
        "rng": capture_rng(latents),
        "config": config,
    }
    if gan.ema is not None:
        state[EMA] = gan.ema.state_dict()
    if augment is not None:
        state["augment"] = augment.state_dict()
    return state


def restore(state: dict, gan: Gan, augment: Augment | None = None) -> Progress:
    """Load a checkpoint's weights, optimiser states, moving average and augmentation state;
    return its Progress. A checkpoint without a moving average (or augmentation state) that the
    run now keeps starts it afresh from the checkpoint's generator (or its start values)."""
    try:
        gan.generator.load_state_dict(state["generator"])
        gan.discriminator.load_state_dict(state["discriminator"])
    except RuntimeError as error:
        raise GanLabError(
            "the checkpoint was trained with a different model: resume with the model config "
            f"it was saved with ({first_line(error)})"
        ) from error
    gan.opt_g.load_state_dict(state["opt_g"])
    gan.opt_d.load_state_dict(state["opt_d"])
    gan.scaler_g.load_state_dict(state["scaler_g"])
    gan.scaler_d.load_state_dict(state["scaler_d"])
    if gan.ema is not None:
        if EMA in state:
            gan.ema.load_state_dict(state[EMA])
        else:
            gan.ema.start_from(gan.generator)
    if augment is not None and "augment" in state:
        augment.load_state_dict(state["augment"])
    return Progress(**state["progress"])


def generator_weights(state: dict) -> dict:
    """The weights a checkpoint's generator is shown, scored and served with: its moving
    average where the run kept one (AveragedModel's keys, less its "module." prefix), unless it
    is a best.pt whose raw generator scored the lower FID (ema.score_raw)."""
    if EMA not in state or state.get(RAW_SHOWN):
        return state["generator"]
    prefix = "module."
    return {k.removeprefix(prefix): v for k, v in state[EMA].items() if k.startswith(prefix)}


def load(path: Path) -> dict:
    """Read a checkpoint onto the CPU; a missing or unreadable file is a one-line error that
    says what the file is, not what to do next: a resume, `gan-lab eval` and `gan-lab sample`
    all read checkpoints, and each says its own fix (see Checkpoints.continue_from)."""
    path = Path(path)
    if not path.is_file():
        raise GanLabError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for torn or foreign files
        raise GanLabError(
            f"not a gan_lab checkpoint: {path} cannot be read ({type(error).__name__}), it is "
            "damaged or another kind of file"
        ) from error
    if isinstance(state, dict) and state.get("format") == 1:
        state = _from_format_1(state)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanLabError(f"not a gan_lab checkpoint (format {FORMAT}): {path}")
    return state


def _from_format_1(state: dict) -> dict:
    """Format 1 kept the step and a loose `extra` dict where Progress is now."""
    extra = state.pop("extra", {})
    state["progress"] = asdict(
        Progress(
            step=state.pop("step"),
            best_fid=extra.get("best_fid"),
            best_epoch=extra.get("best_epoch"),
            tracking_run_id=extra.get("mlflow_run_id"),
        )
    )
    return {**state, "format": FORMAT}


def save(folder: Path, state: dict, name: str = LAST, keep_as: str | None = None) -> Path:
    """Write `name` (last.pt) in `folder`; also keep the same file as `keep_as` (epoch_0003.pt)."""
    target = folder / name

    def write(tmp: Path) -> None:
        torch.save(state, tmp)
        if keep_as:  # a hard link costs no space; copy where links are not supported
            kept = folder / keep_as
            kept.unlink(missing_ok=True)
            try:
                os.link(tmp, kept)
            except OSError:
                atomic_write(kept, lambda copy: shutil.copyfile(tmp, copy))  # never a torn copy

    try:
        atomic_write(target, write)
    except (OSError, RuntimeError) as error:
        if not _out_of_space(error):
            raise
        raise GanLabError(_no_space(target, state)) from error
    return target


@contextlib.contextmanager
def one_writer(run_dir: Path) -> Iterator[None]:
    """The run folder held by this process while the block runs; another process that would
    write it (a second train.resume=auto of the folder) is refused in one line. An flock of
    the run folder's .writer.lock rather than filelock's FileLock, which empties the file each
    time it is opened: the file holds the holder's pid, for the refusal to name. A crash never
    leaves a stale lock: the kernel drops an flock when its process ends in any way, kill -9
    included, so a lock is held exactly while the process of the pid in the file lives."""
    path = Path(run_dir) / WRITER
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise Refused(
                f"the run folder {run_dir} is being written by another process (pid {holder}): "
                "wait for it to end, or give this run another hydra.run.dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _out_of_space(error: BaseException) -> bool:
    """ENOSPC, as Python says it or as torch's zip writer does: it checks each short write's
    position and raises RuntimeError("... unexpected pos N vs M") instead of the OSError."""
    if isinstance(error, OSError):
        return error.errno == errno.ENOSPC
    return "unexpected pos" in str(error)


def _no_space(target: Path, state: dict) -> str:
    """The full disk's one line: the file, the bytes it needs, the bytes free. The atomic write
    left the previous file as it was, so the bytes needed are the whole checkpoint's."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    free = shutil.disk_usage(target.parent).free
    return (
        f"cannot write checkpoint {target}: no space left on device ({buffer.tell():,} bytes "
        f"needed, {free:,} free): free some space, or keep fewer epoch checkpoints "
        "(train.keep_last=N, train.keep_checkpoints=false)"
    )


class Checkpoints:
    """The run folder's checkpoints/, the rule for each file in it, and the run's Progress."""

    def __init__(
        self,
        folder: Path,
        train: TrainConfig,
        config: dict,
        gan: Gan,
        latents: Latents,
        augment: Augment | None = None,
    ) -> None:
        self.folder, self.train, self.config = Path(folder), train, config
        self.gan, self.latents, self.augment = gan, latents, augment
        self.progress = Progress()
        self.saved_step: int | None = None  # the step last.pt holds
        self._rng: dict | None = None

    @property
    def last(self) -> Path:
        return self.folder / LAST

    def continue_from(self, continuation: Continuation) -> Progress:
        """Load the checkpoint that train.resume names (continuation.py), if any: weights and
        optimisers now, the RNG states by restore_rng(), just before training: what is built in
        between (the metrics' network) draws from the RNG too."""
        for stale in self.folder.glob(".*.tmp"):  # the temporary file of a write that was killed
            stale.unlink(missing_ok=True)
        path = continuation.checkpoint(self.last)
        if path is None:
            return self.progress
        try:  # refused, not recorded: the record would be a new run beside the one resumed
            state = load(path)
            self.progress = restore(state, self.gan, self.augment)
        except GanLabError as error:
            raise Refused(f"{error}: check train.resume={continuation.spec}") from error
        self._rng = state["rng"]
        if path.resolve() == self.last.resolve():
            self.saved_step = self.progress.step
        return self.progress

    def restore_rng(self) -> None:
        if self._rng is not None:
            restore_rng(self._rng, self.latents)

    def after_epoch(self, epoch: int) -> None:
        """last.pt every train.checkpoint_every epochs, kept as epoch_NNNN.pt when asked (the
        newest train.keep_last of them)."""
        if epoch % self.train.checkpoint_every == 0:
            keep = f"epoch_{epoch:04d}.pt" if self.train.keep_checkpoints else None
            self._save(LAST, keep)
            if keep and self.train.keep_last is not None:
                self._drop_old_epochs(self.train.keep_last)

    def _drop_old_epochs(self, keep: int) -> None:
        """All but the newest `keep` epoch_NNNN.pt; last.pt and best.pt are files of their own
        (epoch files are hard links or copies) and stay."""
        epochs = [p for p in self.folder.glob("epoch_*.pt") if p.stem[6:].isdigit()]
        for old in sorted(epochs, key=lambda p: int(p.stem[6:]))[:-keep]:
            old.unlink(missing_ok=True)

    def at_end(self) -> Path:
        """The end of a run always leaves last.pt at its final step."""
        if self.saved_step != self.progress.step:
            self._save(LAST)
        return self.last

    def best(self, raw_better: bool = False) -> None:
        """best.pt: the state now, shown with its raw generator where that scored better."""
        self._save(BEST, extra={RAW_SHOWN: True} if raw_better else None)

    def kept_generator(self, epochs_begun: int) -> tuple[torch.nn.Module, int]:
        """The generator a run leaves as its product, and the epoch it comes from: that of the
        lowest FID (best.pt) where the run was scored, else the final one (of `epochs_begun`
        epochs); the moving average where the run keeps one."""
        best = self.progress.best_epoch
        if best is None:
            return self.gan.eval_generator, epochs_begun
        return generator_of(load(self.folder / BEST)), best

    def _save(self, name: str, keep_as: str | None = None, extra: dict | None = None) -> None:
        start = time.perf_counter()
        state = capture(self.gan, self.latents, self.progress, self.config, self.augment)
        state.update(extra or {})
        save(self.folder, state, name, keep_as)
        self.progress.checkpoint_seconds += time.perf_counter() - start
        if name == LAST:
            self.saved_step = self.progress.step


def generator_of(state: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    """A checkpoint's generator with the weights it is shown with, in eval mode."""
    from omegaconf import OmegaConf

    from gan_lab.config import ModelConfig
    from gan_lab.models.networks import build_generator

    model = OmegaConf.to_object(OmegaConf.merge(ModelConfig, state["config"]["model"]))
    generator = build_generator(model)
    generator.load_state_dict(generator_weights(state))
    return generator.to(device).eval()
