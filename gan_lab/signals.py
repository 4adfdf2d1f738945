"""SIGTERM (a scheduler's time limit or preemption, docker stop, Kubernetes) during a run: it
ends the run KILLED and recorded instead of vanishing RUNNING, with a checkpoint of where it
stopped, so that a preempted job resumes there."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from gan_lab.errors import Terminated


class Termination:
    """SIGTERM's handler. Arriving during a training step, it takes effect when the step ends
    (used as `with termination:` around each step by the loop), so that the checkpoint holds
    whole steps; anywhere else at once. Both ways it raises Terminated."""

    def __init__(self) -> None:
        self.requested = self.in_step = False

    def __call__(self, signum, frame) -> None:
        self.requested = True
        if not self.in_step:
            raise Terminated

    def __enter__(self) -> None:
        self.in_step = True

    def __exit__(self, *exc_info) -> None:
        self.in_step = False
        if self.requested and exc_info[0] is None:
            raise Terminated


@contextlib.contextmanager
def sigterm_handled(termination: Termination) -> Iterator[None]:
    """SIGTERM handled by `termination` while the block lasts. Signal handlers belong to the
    main thread: elsewhere (a sweeper's thread) the process's own handling stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, termination)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
