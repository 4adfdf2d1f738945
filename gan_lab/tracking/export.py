"""The run's generator as an MLflow model: what it takes and gives (the signature), what it needs
to run (requirements, gan_lab's code), and its name in MLflow's model list."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import gan_lab
from gan_lab import tags as tag
from gan_lab.sampling import ImageGenerator

# Characters MLflow refuses in a logged model's name, and the longest name it takes
_NOT_IN_MODEL_NAMES = re.compile(r"[/:.%\"']")
_MODEL_NAME_LENGTH = 200


def model_name(run_name: str) -> str:
    """The logged model's name: its run's ("job 2: lr=0.0001" -> "job 2 lr=0_0001"), so that
    MLflow's model list tells the sweep's models apart."""
    name = _NOT_IN_MODEL_NAMES.sub(lambda m: "" if m.group() == ":" else "_", run_name)
    return name.strip()[:_MODEL_NAME_LENGTH] or "generator"


def model_logger(
    generator: torch.nn.Module,
    example: torch.Tensor,
    epoch: int,
    run_name: str,
    registered_name: str | None,
) -> Callable[[str], str]:
    """A call that logs the generator (from `epoch`) into a run and returns the model's URI.

    Pytorch flavour, so pyfunc and `mlflow models serve` load it: latent vectors
    (N, latent_dim) float32 in, images (N, C, H, W) in [0, 1] out. Saved as "pt2"
    (torch.export), said explicitly: MLflow's default depends on where it runs, and pt2 never
    unpickles code when loaded. The model is built now (the generator trains on), logged when
    called (at once, or once the store answers)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    # contiguous weights: torch.export, which MLflow saves the model with, expects them
    plain = copy.deepcopy(generator).cpu().to(memory_format=torch.contiguous_format)
    model = ImageGenerator(plain.eval())
    example = example.detach().cpu().float()
    with torch.no_grad():
        shape = tuple(model(example).shape[1:])
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, example.shape[1]))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *shape))]),
    )
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"]
    for package in ("hydra-core", "omegaconf"):
        requirements.append(f"{package}=={_version(package)}")

    def log(run_id: str) -> str:
        import mlflow.pytorch

        with mlflow.start_run(run_id=run_id):
            logged = mlflow.pytorch.log_model(
                model,
                name=model_name(run_name),
                serialization_format="pt2",
                registered_model_name=registered_name,
                tags={tag.MODEL_EPOCH: str(epoch)},
                signature=signature,
                input_example=example.numpy(),
                pip_requirements=requirements,
                code_paths=[str(Path(gan_lab.__file__).parent)],
            )
        return logged.model_uri

    return log


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
