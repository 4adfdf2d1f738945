"""Scenario tables from MLflow: `gan-lab report <sweep or experiment> [--crown]`.

One row per run of a sweep, sorted by FID, as the anime write-up's tables: the parameters that
vary across the sweep, a model summary, the loss curves, the final sample grid, FID and KID, and
the good / decent / poor rates. Failed, killed and pruned runs follow with their status. It ends
with what the write-ups concluded by hand: which parameters mattered most for FID (Optuna's
parameter-importance evaluator fed with the runs) and the command that reruns the best run.
Writes report.md (images beside it) and a self-contained report.html, plus fid_over_epochs.png
(the 10 best runs), and logs them to the sweep's parent run. With --crown, and only then, it
also moves the registry's alias `champion` to the best run's model.

query.py reads MLflow (and crowns), analysis.py concludes, render.py draws and writes, and
assemble.py runs them in order.
"""

from gan_lab.report.analysis import as_override, varying_params
from gan_lab.report.assemble import build, report
from gan_lab.report.query import CHAMPION, GRID_WIDTH, crown_champion, find_runs

__all__ = [
    "CHAMPION",
    "GRID_WIDTH",
    "as_override",
    "build",
    "crown_champion",
    "find_runs",
    "report",
    "varying_params",
]
