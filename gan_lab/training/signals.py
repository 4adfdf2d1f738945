"""SIGTERM (a scheduler's time limit or preemption, docker stop, Kubernetes) during a run: it
ends the run KILLED and recorded instead of vanishing RUNNING, with a checkpoint of where it
stopped, so that a preempted job resumes there. Under submitit, SLURM's warning before a time
limit or a preemption (SIGUSR2) does the same, then goes on to submitit, which requeues the job."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

from gan_lab.errors import Terminated

log = logging.getLogger(__name__)
WARNING = signal.SIGUSR2  # SLURM's `--signal` as submitit asks for it (`signal_delay_s` ahead)


def slurm_job() -> str | None:
    """This process's SLURM job as squeue and submitit name it ("1234_0" in an array), if any."""
    array = (os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID"))
    return "_".join(array) if all(array) else os.environ.get("SLURM_JOB_ID")


class Termination:
    """The handler of SIGTERM (and of SIGUSR2 where submitit wants it). Arriving during a
    training step, it takes effect when the step ends (used as `with termination:` around each
    step by the loop), so that the checkpoint holds whole steps; anywhere else at once. Both ways
    it raises Terminated."""

    def __init__(self) -> None:
        self.requested = self.in_step = False
        self.signum: int = signal.SIGTERM  # the signal that came
        self.then: Callable | None = None  # submitit's SIGUSR2 handler, called by forward()

    def __call__(self, signum, frame) -> None:
        self.requested, self.signum = True, signum
        if not self.in_step:
            raise Terminated

    def __enter__(self) -> None:
        self.in_step = True

    def __exit__(self, *exc_info) -> None:
        self.in_step = False
        if self.requested and exc_info[0] is None:
            raise Terminated

    @property
    def name(self) -> str:
        """'SIGTERM', or 'SIGUSR2 (SLURM's time limit or preemption)': the recorded error."""
        name = signal.Signals(self.signum).name
        if self.signum == WARNING:
            return f"{name} (SLURM's time limit or preemption)"
        if job := slurm_job():
            return f"{name} from SLURM (job {job}: scancel, a time limit or a requeue)"
        return name

    def forward(self) -> None:
        """Once the checkpoint is saved and the run recorded: a SIGUSR2 goes on to submitit's
        handler, which resubmits the job (the launcher's `checkpoint`) and exits; where it will
        not (`max_num_timeout` reached), it says why and the run stays KILLED."""
        if self.signum != WARNING or self.then is None:
            return
        try:
            self.then(self.signum, None)  # exits (SystemExit) once the job is requeued
        except Exception as refused:  # submitit's UncompletedJobError: not requeued
            log.warning("the job is not requeued: %s", refused)


@contextlib.contextmanager
def sigterm_handled(termination: Termination) -> Iterator[None]:
    """SIGTERM handled by `termination` while the block lasts, and SIGUSR2 where a handler of
    Python's has it already (submitit's). Signal handlers belong to the main thread: elsewhere
    (a sweeper's thread) the process's own handling stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, termination)
    if callable(signal.getsignal(WARNING)):
        termination.then = signal.signal(WARNING, termination)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if termination.then is not None:
            signal.signal(WARNING, termination.then)
