"""Is a nearest-upsample + 3x3 convolution generator faster than dcgan64_fast's transposed ones?

dcgan64_fast's generator doubles the resolution with 4x4 transposed convolutions of stride 2 (4
multiply-adds per output pixel and input channel). The other common shape, nearest-neighbour
upsampling followed by a 3x3 convolution, costs 9 at the same channels. This times one training
step of each generator (forward and backward, batch 64) in fp32 and bf16 autocast, alternating,
best of --repeats: dcgan64_fast's own, the upsample shape at the same channels, and the upsample
shape with channels divided by 1.5, rounded to multiples of 8 (about the same arithmetic; odd
counts fall off the vectorised bf16 kernels). gan_lab has no upsample layer:
the second and third are built here from PyTorch modules, for this measurement only.

    python benchmarks/upsample_vs_transpose.py --repeats 5 --steps 20
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from torch import nn

from gan_lab.config.compose import compose
from gan_lab.devices import native_bf16
from gan_lab.models.networks import build_generator


def upsample_generator(latent: int, channels: list[int]) -> nn.Module:
    """128 at 4x4 from a dense layer, then upsample + 3x3 conv + BN + ReLU per block, and an
    upsample + 3x3 conv to 3 channels with tanh: dcgan64_fast's shape, nearest-upsampled."""
    layers: list[nn.Module] = [
        nn.Linear(latent, channels[0] * 16, bias=False),
        nn.Unflatten(1, (channels[0], 4, 4)),
        nn.BatchNorm2d(channels[0]),
        nn.ReLU(),
    ]
    for cin, cout in zip(channels, channels[1:], strict=False):
        layers += [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        ]
    layers += [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(channels[-1], 3, 3, padding=1, bias=False),
        nn.Tanh(),
    ]
    return nn.Sequential(*layers)


def images_per_second(net: nn.Module, precision: str, batch: int, steps: int) -> float:
    net = net.to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-4)
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            loss = net(torch.randn(batch, 100)).float().square().mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(2):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = compose("model=dcgan64_fast").model
    same = [model.generator.projection.channels, *model.generator.filters]
    narrow = [8 * round(c / 1.5 / 8) for c in same]
    nets = {
        "dcgan64_fast (transposed 4x4)": build_generator(model),
        f"upsample + 3x3 {same}": upsample_generator(100, same),
        f"upsample + 3x3 {narrow}": upsample_generator(100, narrow),
    }
    precisions = ["fp32", "bf16"] if native_bf16(torch.device("cpu")) else ["fp32"]
    print(
        f"CPU, {torch.get_num_threads()} threads, kernels "
        f"{torch.backends.cpu.get_cpu_capability()}, native bf16 "
        f"{native_bf16(torch.device('cpu'))}; generator step, batch {args.batch_size}, "
        f"best of {args.repeats}, alternating"
    )
    best = {(name, p): 0.0 for name in nets for p in precisions}
    for _ in range(args.repeats):
        for name, precision in best:
            rate = images_per_second(nets[name], precision, args.batch_size, args.steps)
            best[name, precision] = max(best[name, precision], rate)
    first = next(iter(nets))
    for name, net in nets.items():
        weights = sum(p.numel() for p in net.parameters())
        rates = ", ".join(
            f"{p} {best[name, p]:.0f} img/s ({best[name, p] / best[first, p]:.2f}x)"
            for p in precisions
        )
        print(f"{name}: {weights:,} weights; {rates}")


if __name__ == "__main__":
    main()
