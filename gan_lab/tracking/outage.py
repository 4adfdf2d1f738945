"""What survives a tracking store that stops answering, decided here once for every kind of call.

The run folder keeps a copy of every metric (metrics.csv) and sample grid (samples/), so those
calls are skipped while the store is down and replayed from the folder when it answers again
(or on resume). Params, tags, files and the model exist only in the process: they are queued and
made when the store answers. The run's end is tried even while the store is down (it is the last
chance), and a failure there leaves the record for a resume to finish.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gan_lab.tracking.store import describe, store_errors

log = logging.getLogger(__name__)


class Survival(enum.Enum):
    REPLAYED = "skipped while the store is down; the run folder's copy is replayed"
    QUEUED = "kept in the process and made once the store answers"
    FORCED = "tried even while the store is down; on failure a resume finishes it"


POLICY: dict[str, Survival] = {
    "params": Survival.QUEUED,
    "tags": Survival.QUEUED,
    "metrics": Survival.REPLAYED,
    "images": Survival.REPLAYED,
    "artifacts": Survival.QUEUED,
    "model": Survival.QUEUED,
    "finish": Survival.FORCED,
}


class Outage:
    """The store's calls of one run, made under POLICY. `replay` is called with no argument
    after the first call that succeeds following a failure: it sends what the store missed."""

    RETRY_SECONDS = 30.0

    def __init__(self, uri: str, run_dir: Path, replay: Callable[[], None]) -> None:
        self.uri, self.run_dir, self.replay = uri, run_dir, replay
        self.run_id: str | None = None  # for the message, once the run is known
        self.unreachable_since: float | None = None
        self.queued: list[Callable[[], Any]] = []

    def call(self, kind: str, call: Callable[[], Any]) -> bool:
        """Make one call of `kind` to the store unless it stopped answering less than
        RETRY_SECONDS ago (a FORCED kind always tries). A store that fails is said once, in one
        line; any other error is a bug and raised. Returns whether the call was made and
        succeeded."""
        survival = POLICY[kind]
        down = self.unreachable_since is not None
        waiting = down and time.monotonic() - self.unreachable_since < self.RETRY_SECONDS
        if waiting and survival is not Survival.FORCED:
            if survival is Survival.QUEUED:
                self.queued.append(call)
            return False
        try:
            call()
            if down:
                log.info("the MLflow store %s answers again: replaying what it missed", self.uri)
                self.unreachable_since = None
                self.replay()
        except store_errors() as error:
            if not down:
                log.warning(
                    "the MLflow store %s stopped answering (%s); training goes on, its metrics "
                    "and sample grids are kept in %s and replayed into run %s when it answers",
                    self.uri,
                    describe(error),
                    self.run_dir,
                    self.run_id,
                )
            self.unreachable_since = time.monotonic()
            if survival is Survival.QUEUED:
                self.queued.append(call)
            return False
        return True

    def send_queued(self) -> None:
        """Make the calls queued while the store was down, oldest first."""
        while self.queued:
            self.queued[0]()
            self.queued.pop(0)
