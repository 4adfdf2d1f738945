"""Which device a run trains on, in which precision, and how many GPUs a launcher gives a job.

torch is imported inside the functions: the command line's help and config errors need none of
it, and importing it takes over a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gan_lab.config.choices import Precision, values
from gan_lab.errors import ConfigError, require, require_choice

if TYPE_CHECKING:
    import torch


def resolve_device(name: str) -> torch.device:
    """train.device: auto picks the first CUDA device when there is one, else the CPU."""
    import torch

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


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 in hardware: a CUDA GPU of compute capability 8 or more,
    a CPU with AVX-512 BF16 or AMX. torch has no public test for the CPU's: its private
    torch.cpu._is_avx512_bf16_supported / _is_amx_tile_supported are what its own tests use."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, check, lambda: False)() for check in checks)
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """train.precision: auto is bf16 where the device computes it natively, else fp32. fp16 on a
    CPU is refused: it has no fast kernels there (about 90 times slower than fp32)."""
    require_choice("train.precision", name, values(Precision))
    require(
        not (name == Precision.FP16 and device.type == "cpu"),
        "train.precision",
        name,
        "fp16 has no fast kernels on a CPU (about 90x slower than fp32): use bf16 or fp32",
    )
    return best_precision(device) if name == Precision.AUTO else name


def best_precision(device: torch.device) -> str:
    """What `auto` resolves to (train.precision, metrics.precision): bf16 where the device
    computes it natively, else fp32."""
    return (Precision.BF16 if native_bf16(device) else Precision.FP32).value


def gpus_per_job(per_job: float = 1) -> float:
    """`${gan_lab_gpus:N}` in launcher configs: N GPUs per job where there are GPUs, else 0, so a
    GPU sweep config also runs, on the CPU, where there is none."""
    import torch

    return per_job if torch.cuda.is_available() else 0
