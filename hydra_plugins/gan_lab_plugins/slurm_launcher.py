"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher, with what a real cluster needs of it
(gan_lab.sweep.launchers): a requeued job resumes, and a job that leaves SLURM's queue without a
result is answered instead of waited for. Without the slurm extra there is nothing to subclass."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn

from gan_lab.sweep.launchers import lost_job, resumed_if_requeued, wait_for_slurm

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
except ImportError:  # pip install 'gan-lab[slurm]'
    SlurmLauncher = None

_submitit_results = None  # submitit's SlurmJob.results, once answered by _results
_patching = threading.Lock()  # a search launches its trials from several threads


def _results(job: Any) -> list[Any]:
    why = wait_for_slurm(job)
    if why is None:
        return _submitit_results(job)
    overrides, _, job_num, *_ = job.submission().args  # GanLabSlurmLauncher.__call__'s
    return [lost_job(job_num, overrides, why)]


if SlurmLauncher is not None:

    class GanLabSlurmLauncher(SlurmLauncher):
        def __call__(self, sweep_overrides: list[str], *args: Any) -> JobReturn:
            """In the SLURM job: Hydra's job, resumed where SLURM runs it again."""
            return super().__call__(resumed_if_requeued(sweep_overrides), *args)

        def checkpoint(self, *args: Any) -> Any:
            """What submitit requeues at a time limit or a preemption: the job as it was
            submitted (resumed by __call__). Hydra's own pickles this launcher again, which no
            longer pickles once its job has run (a lock among its state)."""
            import submitit

            return submitit.helpers.DelayedSubmission.load(
                submitit.JobEnvironment().paths.submitted_pickle
            )

        def launch(
            self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
        ) -> Sequence[JobReturn]:
            # Hydra's launcher waits with job.results(), job after job, and submitit has no
            # other hook for how a job's end is learnt: results() is answered by _results.
            global _submitit_results
            from submitit.slurm.slurm import SlurmJob

            with _patching:
                if _submitit_results is None:
                    _submitit_results, SlurmJob.results = SlurmJob.results, _results
            return super().launch(job_overrides, initial_job_idx)
