"""What a sweep needs from a cluster's launcher beyond Hydra's own plugins (the launcher classes
are hydra_plugins/gan_lab_plugins/slurm_launcher.py and ray_launcher.py, as Hydra instantiates
launchers only from there):

- a job that SLURM runs again (submitit's requeue at a time limit or a preemption, `scontrol
  requeue`, a node failure) resumes from its last.pt into the same MLflow run;
- a job that ends without a result (its SLURM job cancelled, its Ray node lost) is answered:
  its run ends KILLED (or keeps what it recorded itself) and the sweep goes on with the others,
  instead of waiting for it forever (submitit without SLURM accounting) or stopping at it (Ray).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from gan_lab.overrides import key_of
from gan_lab.sweep.record import current_sweep

log = logging.getLogger(__name__)

# SLURM's count of a job's restarts: set (1, 2, ...) in a job that SLURM requeued
RESTART_COUNT_ENV = "SLURM_RESTART_COUNT"
# SLURM job states in which a job may still write its result (squeue --states=all)
_ACTIVE = {
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
    "RESIZING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED", "SPECIAL_EXIT",
}  # fmt: skip


def resumed_if_requeued(overrides: Sequence[str]) -> list[str]:
    """A job's overrides, with train.resume=auto where SLURM runs the job again: it continues
    from its folder's last.pt (saved when it was signalled) and its MLflow run."""
    if not int(os.environ.get(RESTART_COUNT_ENV) or 0):
        return list(overrides)
    return [o for o in overrides if key_of(o) != "train.resume"] + ["train.resume=auto"]


def lost_job(job_num: int, overrides: Sequence[str], why: str) -> JobReturn:
    """The answer for a job that ended without a result: its run's own record where it made one
    (a SIGTERM it caught), else its run ended KILLED with `why`."""
    outcome = current_sweep().job_lost(job_num, why)
    log.error("job %d %s", job_num, outcome.describe())
    return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=outcome)


def slurm_state(job_id: str) -> str | None:
    """The job's state as SLURM's queue has it ('RUNNING', 'CANCELLED'...); None once the queue
    no longer knows it (SLURM forgets an ended job after MinJobAge, 300 s by default); '' when
    the controller did not answer (then nothing is decided)."""
    found = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%T", f"--jobs={job_id}"],
        capture_output=True,
        text=True,
    )
    if found.returncode:
        return None if "Invalid job id" in found.stderr else ""
    return found.stdout.strip() or None


def wait_for_slurm(job: Any, grace_s: float = 30, poll_s: float = 5) -> str | None:
    """Wait for submitit's SLURM `job`: None once its result file is there; why it never will
    be, once SLURM's queue has shown it ended (or forgotten it) for `grace_s` without one.
    submitit asks sacct, which fails where SLURM keeps no accounting, and then waits for the file
    forever; squeue answers on every cluster."""
    ended_at, state, checked = None, "", 0.0
    while not job.paths.result_pickle.exists():
        if time.time() - checked >= poll_s:
            checked, now = time.time(), slurm_state(job.job_id)
            if now != "":
                state = now or state
                ended = now is None or now not in _ACTIVE
                ended_at = (ended_at or checked) if ended else None
            if ended_at is not None and checked - ended_at >= grace_s:
                return (
                    f"SLURM job {job.job_id} ended {state or 'and left the queue'} without a "
                    "result (cancelled, out of time and not requeued, or its node lost)"
                )
        time.sleep(1)
    return None
