"""What holds for the parameters of every architecture, whichever builds them: channel counts
scaled by model.width, spectral normalisation of the layers that ask for it, and the counts a
run logs."""

from __future__ import annotations

from torch import nn


def widened(channels: int, width: float) -> int:
    """A channel count times model.width, rounded, at least 1."""
    return max(1, round(channels * width))


def apply_spectral_norm(net: nn.Module) -> None:
    """Spectral normalisation, through PyTorch's parametrization API, of the layers the builder
    flagged `wants_spectral_norm`. After the weights are initialised: its power iteration starts
    from them."""
    from torch.nn.utils.parametrizations import spectral_norm

    for layer in list(net.modules()):
        if getattr(layer, "wants_spectral_norm", False):
            spectral_norm(layer)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, Keras total): Keras also counts batch norm's moving mean and variance."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    running = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    )
    return trainable, trainable + running
