"""optim.name: the optimiser of both networks, each a torch.optim class with the optim group's
settings (lr per network; betas and eps for the Adam family; momentum for SGD and RMSprop)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from gan_lab.config import OptimConfig
from gan_lab.registry import Registry

Build = Callable[[Iterable[torch.nn.Parameter], float, OptimConfig], torch.optim.Optimizer]
OPTIMIZERS: Registry[Build] = Registry("optim.name")


# fused: one kernel for all parameters (PyTorch's fastest Adam and AdamW, on the CPU too)
@OPTIMIZERS.register("adam")
def _adam(params, lr: float, cfg: OptimConfig) -> torch.optim.Optimizer:
    betas = (cfg.betas[0], cfg.betas[1])
    return torch.optim.Adam(
        params, lr=lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=True
    )


@OPTIMIZERS.register("adamw")
def _adamw(params, lr: float, cfg: OptimConfig) -> torch.optim.Optimizer:
    betas = (cfg.betas[0], cfg.betas[1])
    return torch.optim.AdamW(
        params, lr=lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=True
    )


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params, lr: float, cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        params, lr=lr, eps=cfg.eps, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


@OPTIMIZERS.register("sgd")
def _sgd(params, lr: float, cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def optimizer(net: torch.nn.Module, lr: float, cfg: OptimConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS[cfg.name](net.parameters(), lr, cfg)
