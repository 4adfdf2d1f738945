"""Which device a run trains on, and how many GPUs a launcher gives each job."""

from __future__ import annotations

import torch

from gan_lab.errors import ConfigError, require


def resolve_device(name: str) -> torch.device:
    """train.device: auto picks the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name[5:]) if ":" in name else 0
        require(
            index < count,
            "train.device",
            name,
            f"this machine has {count} CUDA device(s): use train.device=auto or cpu",
        )
        return torch.device(name)
    raise ConfigError("train.device", name, "choose auto, cpu, cuda or cuda:N")


def gpus_per_job(per_job: float = 1) -> float:
    """`${gan_lab_gpus:N}` in launcher configs: N GPUs per job where there are GPUs, else 0, so a
    GPU sweep config also runs, on the CPU, where there is none."""
    return per_job if torch.cuda.is_available() else 0
