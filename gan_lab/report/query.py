"""What the report reads from MLflow, and the one thing it may write to the registry.

Every cost here grows with the number of runs and no faster: the runs come in pages of
`search_runs`, the latest value of a metric is read from the run itself (run.data.metrics), the
histories that the figures need and the final sample grids are fetched a few at a time in
parallel (a tracking server answers each in a round trip), and a finished run's grid is
downloaded once: a later report of the same folder finds it there.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities import Run as MlflowRun

from gan_lab import tags
from gan_lab.errors import GanLabError
from gan_lab.tracking import History

CHAMPION = "champion"  # the alias of the best run's registered model
GRID_WIDTH = 384  # pixels: final sample grids are scaled up by whole pixels to at least this
PAGE = 1000  # runs per search_runs call: a tracking server's page, not a cap on the runs
PARALLEL = 8  # requests in flight at once: enough to hide a server's round trips

T = TypeVar("T")
R = TypeVar("R")


def search_all(client: MlflowClient, experiment_ids: list[str], query: str = "") -> list[MlflowRun]:
    """Every run that matches `query`, page after page (MLflow's own limit per call is
    50,000 runs and a server answers large pages slowly)."""
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, query, max_results=PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_runs(client: MlflowClient, target: str) -> tuple[MlflowRun | None, list[MlflowRun]]:
    """The sweep's parent run and its children. `target`: a parent run id (or runs:/<id>), or an
    experiment name, whose most recent sweep is taken (or all its runs when it has no sweep)."""
    run_id = target.removeprefix("runs:/").strip("/")
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        parent = _run(client, run_id) or _sweep_by_prefix(client, run_id)
        if parent is None:
            raise GanLabError(
                f"{target} is neither an MLflow experiment nor a run id (or the start of a sweep's "
                f"id) in {client.tracking_uri}: check the name, or --tracking-uri"
            )
        experiment_ids = [parent.info.experiment_id]
    else:
        experiment_ids = [experiment.experiment_id]
        sweeps = client.search_runs(
            experiment_ids,
            f"tags.`{tags.KIND}` = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        parent = sweeps[0] if sweeps else None
    if parent is None:
        runs = search_all(client, experiment_ids)
        return None, [r for r in runs if r.data.tags.get(tags.KIND) != "sweep"]
    query = f"tags.`{tags.PARENT_RUN_ID}` = '{parent.info.run_id}'"
    return parent, search_all(client, experiment_ids, query)


def _run(client: MlflowClient, run_id: str) -> MlflowRun | None:
    try:
        return client.get_run(run_id)
    except Exception:  # MLflow raises its own types for an unknown or malformed id
        return None


def _sweep_by_prefix(client: MlflowClient, prefix: str) -> MlflowRun | None:
    """The sweep whose parent run id starts with `prefix` (the report's title shows 8
    characters); MLflow's search cannot match the start of an id, so the sweeps are listed."""
    if len(prefix) < 4:
        return None
    experiments = [e.experiment_id for e in client.search_experiments()]
    sweeps = search_all(client, experiments, f"tags.`{tags.KIND}` = 'sweep'")
    found = [r for r in sweeps if r.info.run_id.startswith(prefix)]
    return found[0] if len(found) == 1 else None


def in_parallel(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """work(item) for each item, PARALLEL at a time, in the items' order."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(work, items))


def histories(client: MlflowClient, runs: list[MlflowRun], keys: Iterable[str]) -> list[History]:
    """Each run's (step, value) points of the metrics `keys` that it logged (a metric it never
    logged costs no request: its latest value, in run.data.metrics, says so)."""
    keys = list(keys)

    def of(run: MlflowRun) -> History:
        logged = [key for key in keys if key in run.data.metrics]
        return {
            key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
            for key in logged
        }

    return in_parallel(of, runs)


def final_grids(client: MlflowClient, runs: list[MlflowRun], out: Path) -> list[Path | None]:
    """Each run's final sample grid (None where it has none), scaled up by whole pixels (no
    smoothing) to at least GRID_WIDTH pixels across, so that 32x32 samples can be seen. A
    finished run's grid is kept in out/images and not fetched again."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    return in_parallel(lambda run: _final_grid(client, run, out), runs)


def _final_grid(client: MlflowClient, run: MlflowRun, out: Path) -> Path | None:
    from PIL import Image

    run_id = run.info.run_id
    target = out / "images" / f"{run_id}-final.png"
    if target.exists() and run.info.status == "FINISHED":  # it cannot change any more
        return target
    with tempfile.TemporaryDirectory(dir=out) as folder:  # each run's final.png apart
        try:  # from the run's artifact URI: by run id, MLflow would first ask for the run again
            local = download_artifacts(
                artifact_uri=f"{run.info.artifact_uri}/final.png",
                dst_path=folder,
                tracking_uri=client.tracking_uri,
            )
        except Exception:  # MLflow's and the artifact stores' own types: no final grid logged
            return None
        with Image.open(local) as grid:
            factor = max(1, -(-GRID_WIDTH // grid.width))
            grid.resize((grid.width * factor, grid.height * factor), Image.NEAREST).save(target)
    return target


def crown_champion(client: MlflowClient, best: MlflowRun) -> list[str]:
    """Set the alias `champion` on the registered model versions that the best run logged
    (tracking.register_model), unless the version it names now comes from a run with a lower
    best FID (a report of an older sweep leaves a better champion alone); returns the
    `models:/<name>@champion` URIs that the best run's versions hold. Only `gan-lab report
    --crown` calls it: a report alone writes nothing to the registry."""
    crowned = []
    fid = best.data.metrics.get("best_fid", math.inf)
    for version in client.search_model_versions(f"run_id = '{best.info.run_id}'"):
        try:
            reigning = client.get_model_version_by_alias(version.name, CHAMPION)
            reigning_fid = client.get_run(reigning.run_id).data.metrics.get("best_fid", math.inf)
        except Exception:  # MLflow raises its own types where no version has the alias
            reigning_fid = math.inf
        if fid <= reigning_fid:
            client.set_registered_model_alias(version.name, CHAMPION, version.version)
            crowned.append(f"models:/{version.name}@{CHAMPION}")
    return crowned
