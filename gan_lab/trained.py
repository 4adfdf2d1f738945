"""Trained generators from wherever they are kept, and images from them: what notebooks,
`gan-lab sample` and `gan-lab eval` share.

    from gan_lab import load_generator, sample
    generator = load_generator("models:/anime@champion")   # or runs:/<id>, or a checkpoint file
    images = sample(generator, 16)                           # (16, C, H, W) floats in [0, 1]

A source is a checkpoint file; a run folder (its best checkpoint, else its last); an MLflow run
(`runs:/<run id>`, or the bare id); or a registered MLflow model (`models:/<name>@<alias>` or
`models:/<name>/<version>`), whose checkpoint is that of the run that logged it. Of a run, the
checkpoint of its lowest FID (checkpoints/best.pt) is taken where it was logged, else its final
one. The generator comes with the weights it is shown with: the moving average where the run kept
one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gan_lab.errors import GanLabError
from gan_lab.sampling import Latents, generate_all, images_of
from gan_lab.training import checkpoint

if TYPE_CHECKING:
    from gan_lab.models.dcgan import Generator

RUN_CHECKPOINTS = ("checkpoints/best.pt", "checkpoints/last.pt")  # as logged, best first


def run_id_of(source: str, tracking_uri: str | None = None) -> str | None:
    """The MLflow run behind `source` (runs:/<id>, a bare 32-character id, models:/<name>@<alias>,
    models:/<name>/<version>, or a logged model's models:/m-<id>), or None when `source` names
    no run."""
    if source.startswith("runs:/"):
        return source.removeprefix("runs:/").split("/")[0]
    if len(source) == 32 and source.isalnum():
        return source
    if not source.startswith("models:/"):
        return None
    from mlflow import MlflowClient

    name, _, version = source.removeprefix("models:/").partition("/")
    name, _, alias = name.partition("@")
    client = MlflowClient(tracking_uri)
    try:
        if name.startswith("m-") and not alias and not version:  # a logged model's own id
            return client.get_logged_model(name).source_run_id
        found = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
    except Exception as error:  # MLflow raises its own types for an unknown name or alias
        raise GanLabError(
            f"no model {source} in {client._registry_uri}: check the name and alias (or "
            f"version), and the tracking URI ({type(error).__name__})"
        ) from error
    return found.run_id


def checkpoint_file(source: str, tracking_uri: str | None = None) -> tuple[Path, str | None]:
    """A local checkpoint file for `source` (the file itself, a run folder's, or one downloaded
    from MLflow), and the MLflow run it comes from (None for a file or folder)."""
    path = Path(source).expanduser()
    if path.is_dir():
        found = [path / name for name in RUN_CHECKPOINTS if (path / name).is_file()]
        if not found:
            raise GanLabError(
                f"{source} holds no checkpoints/best.pt nor last.pt: not a run folder"
            )
        return found[0], None
    if path.exists():
        return path, None
    run_id = run_id_of(source, tracking_uri)
    if run_id is None:
        raise GanLabError(
            f"{source} is neither a checkpoint file nor an MLflow run or model "
            "(runs:/<id>, models:/<name>@<alias>)"
        )
    import mlflow

    for artifact in RUN_CHECKPOINTS:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact, tracking_uri=tracking_uri
            )
            return Path(local), run_id
        except Exception as error:  # MLflow raises several types for a missing run or artifact
            failure = error
    raise GanLabError(
        f"cannot get a checkpoint of MLflow run {run_id} ({type(failure).__name__}): check the "
        "run id and the tracking URI (--tracking-uri or MLFLOW_TRACKING_URI)"
    ) from failure


def load_generator(
    source: str | Path, tracking_uri: str | None = None, device: str | torch.device = "cpu"
) -> Generator:
    """The generator of a checkpoint file, an MLflow run or a registered model (see above)."""
    path, _ = checkpoint_file(str(source), tracking_uri)
    return checkpoint.generator_of(checkpoint.load(path), device)


def sample(generator: torch.nn.Module, count: int, seed: int = 0) -> torch.Tensor:
    """`count` images of `generator`, (count, C, H, W) floats in [0, 1] on the CPU, the same
    for the same seed."""
    return generate_all(generator, count, seed)


@torch.no_grad()
def interpolate(generator: torch.nn.Module, walks: int, steps: int, seed: int = 0) -> torch.Tensor:
    """Latent walks: `walks` rows of `steps` images each, from one latent vector to another
    along the great circle between them (slerp: Gaussian latents keep their typical norm, which
    a straight line between two of them would shrink). (walks * steps, C, H, W) in [0, 1]."""
    ends = Latents.of(generator, seed).sample(2 * walks).view(walks, 2, -1)
    a, b = ends[:, 0], ends[:, 1]
    omega = torch.acos(torch.nn.functional.cosine_similarity(a, b).clamp(-1, 1))[:, None]
    t = torch.linspace(0, 1, steps)[:, None, None]  # (steps, 1, 1): path is (steps, walks, dim)
    slerp = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    path = torch.where(torch.sin(omega) > 1e-6, slerp, (1 - t) * a + t * b)  # parallel: a line
    vectors = path.transpose(0, 1).reshape(walks * steps, -1)
    return torch.cat([batch.cpu() for batch in images_of(generator, vectors)])
