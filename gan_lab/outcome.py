"""How a run ended: one typed result, decided once by run(), recorded once by the tracker (the
MLflow run status plus the tag gan_lab.outcome, or outcome.json in the run folder), and read back
from that record by the command line, the sweeper, the sweep callback and the report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gan_lab import tags
from gan_lab.errors import GanLabError

_ERROR_LENGTH = 4000  # keeps the record within MLflow's 8,000 characters for a tag


class Status(StrEnum):
    RUNNING = "RUNNING"  # read back only: no outcome recorded (yet, or a kill -9 came first)
    FINISHED = "FINISHED"  # trained to the end
    FAILED = "FAILED"  # an error, a divergence, or an invalid objective value (see reason)
    KILLED = "KILLED"  # Ctrl-C or SIGTERM
    PRUNED = "PRUNED"  # a search's pruner stopped it early, on purpose


# MLflow's run statuses have no PRUNED: a pruned run was stopped before its end, as a killed one.
MLFLOW_STATUS = {
    Status.FINISHED: "FINISHED",
    Status.FAILED: "FAILED",
    Status.KILLED: "KILLED",
    Status.PRUNED: "KILLED",
}


class Reason(StrEnum):
    """Why a run did not finish (None when it did), or what ended a finished one early."""

    ERROR = "error"  # an exception: a bug, or input the run could not use (error says which)
    DIVERGED = "diverged"  # a loss became NaN or infinite
    INVALID_VALUE = "invalid value"  # a search objective that is missing or not finite
    INTERRUPTED = "interrupted"  # Ctrl-C
    TERMINATED = "terminated"  # SIGTERM: a scheduler's time limit or preemption, docker stop
    PRUNED = "pruned"
    BUDGET = "budget"  # FINISHED at train.max_minutes, before its epochs' end


@dataclass
class Outcome:
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)  # last epoch's means and scores
    step: int = 0  # the training step reached
    reason: Reason | None = None
    error: str | None = None  # the error's text, or what the pruner saw
    # The exception itself, for a caller in this process (never pickled or recorded).
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "exception": None}

    @property
    def user_error(self) -> bool:
        """The run failed on input the user can fix (one line), not on a bug."""
        return isinstance(self.exception, GanLabError)

    @property
    def headline(self) -> str:
        """The status and the reason: 'FAILED (diverged)', 'PRUNED', 'FINISHED'."""
        text = self.status.value
        if self.reason is not None and self.reason.value != self.status.value.lower():
            text += f" ({self.reason.value})"
        return text

    def describe(self) -> str:
        """One line: 'FAILED (diverged): training diverged by step 12 ...'."""
        error = " ".join(self.error.split()) if self.error else ""
        return f"{self.headline}: {error}" if error else self.headline

    def to_json(self) -> str:
        error = self.error
        if error and len(error) > _ERROR_LENGTH:
            error = error[:_ERROR_LENGTH] + "..."
        record: dict[str, Any] = {
            "status": self.status.value,
            "reason": self.reason.value if self.reason else None,
            "error": error,
            "step": self.step,
            "metrics": self.metrics,
        }
        return json.dumps(record, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        record = json.loads(text)
        reason = record.get("reason")
        return cls(
            status=Status(record["status"]),
            metrics=record.get("metrics", {}),
            step=record.get("step", 0),
            reason=Reason(reason) if reason else None,
            error=record.get("error"),
        )


def outcome_of(run: Any) -> Outcome:
    """The recorded result of an MLflow run. A run without one (still running, or ended by a
    kill -9 before it could say) has its MLflow status and no reason; a run recorded by gan_lab
    0.1 says what it can from its tags of then."""
    recorded = run.data.tags.get(tags.OUTCOME)
    if recorded:
        return Outcome.from_json(recorded)
    status = run.info.status  # SCHEDULED counts as RUNNING: not ended either
    if status == "FINISHED" and tags.LEGACY_STOPPED_EARLY in run.data.tags:
        return Outcome(
            Status.PRUNED, reason=Reason.PRUNED, error=run.data.tags[tags.LEGACY_STOPPED_EARLY]
        )
    error = run.data.tags.get(tags.LEGACY_ERROR)
    return Outcome(
        Status(status) if status in Status.__members__ else Status.RUNNING,
        reason=Reason.ERROR if error else None,
        error=error,
    )
