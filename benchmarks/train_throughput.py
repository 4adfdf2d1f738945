"""Training throughput (images/s) of every model preset on the current device.

For each preset, gan_lab's loop (uint8 images on the device, statistics read every
`log_every` steps) runs beside a plain loop written the way pytorch/examples' dcgan/main.py is
(a DataLoader with 2 workers over a float TensorDataset, `.item()` three times a step), on the
same architecture, data and batch size, in the same process. It prints both and their ratio.

    python benchmarks/train_throughput.py                 # every preset, 20 timed steps each
    python benchmarks/train_throughput.py --presets dcgan32 anime_s1 --steps 50 --device cuda
    python benchmarks/train_throughput.py --precisions fp32 bf16 --repeats 3   # gan_lab only
    python benchmarks/train_throughput.py --presets dcgan64_fast dcgan32 dcgan64 \
        --precisions fp32 bf16 --against dcgan64          # the fast 64x64 model beside both

With --precisions, gan_lab's loop runs every preset in each precision in turn, alternating,
--repeats times (so that a neighbour's load falls on all alike); it prints the best of each, the
ratio of each precision to the first, and with --against each preset's ratio to that preset in
the same precision. Every figure names its kernel path: the CPU capability torch dispatches to
(AVX2, AVX512, ...) and whether the CPU computes bf16 natively.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from gan_lab.config.compose import compose
from gan_lab.data.batches import BatchSource
from gan_lab.data.synthetic import synthetic_images
from gan_lab.devices import native_bf16, resolve_device, resolve_precision
from gan_lab.models.gan import build_gan
from gan_lab.models.networks import output_shape
from gan_lab.sampling import Latents
from gan_lab.training.checkpoint import Progress
from gan_lab.training.loop import LoopSettings, Training, TrainStep, fit

PRESETS = [
    "dcgan32",
    "dcgan64_fast",
    "animal_faces28",
    "cifar_dcgan32",
    "anime_s1",
    "anime_s2",
    "celeba64",
    "cat_faces64",
    "dcgan64",
]


class _NoTracker:
    def log_metrics(self, metrics, step):
        pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gan_lab_loop(
    config, images: torch.Tensor, device: torch.device, warmup: int, steps: int
) -> float:
    gan = build_gan(config, device)
    batches = BatchSource(images, config.train.batch_size, device, gan.generator.output_range, 0)
    latents = Latents(config.model.latent_dim, "normal", device, 0)
    step = TrainStep.of(config, resolve_precision(config.train.precision, device), None)

    def settings(max_steps: int) -> LoopSettings:
        return LoopSettings(10**6, max_steps, config.tracking.log_every, progress=False)

    position = Progress()
    fit(Training(gan, batches, latents, step, settings(warmup)), position, _NoTracker())
    _sync(device)
    start = time.perf_counter()
    fit(Training(gan, batches, latents, step, settings(warmup + steps)), position, _NoTracker())
    _sync(device)
    return steps * config.train.batch_size / (time.perf_counter() - start)


def examples_loop(
    config, images: torch.Tensor, device: torch.device, warmup: int, steps: int
) -> float:
    """pytorch/examples dcgan/main.py's loop, on gan_lab's networks (whose D returns logits),
    laid out as PyTorch makes them (contiguous), with plain Adam, in fp32."""
    gan = build_gan(config, device)
    net_g, net_d = gan.generator, gan.discriminator
    betas = tuple(config.optim.betas)
    for net in (net_g, net_d):
        net.to(memory_format=torch.contiguous_format)
    gan.opt_g = torch.optim.Adam(net_g.parameters(), lr=config.optim.lr_g, betas=betas)
    gan.opt_d = torch.optim.Adam(net_d.parameters(), lr=config.optim.lr_d, betas=betas)
    low, high = net_g.output_range
    floats = images.float() / 255 * (high - low) + low
    loader = DataLoader(
        TensorDataset(floats),
        batch_size=config.train.batch_size,
        shuffle=True,
        num_workers=2,
        drop_last=True,
        persistent_workers=True,
    )
    criterion = torch.nn.BCEWithLogitsLoss()
    opt_d, opt_g = gan.opt_d, gan.opt_g
    done, start = 0, 0.0
    while done < warmup + steps:
        for (real,) in loader:
            if done == warmup:
                _sync(device)
                start = time.perf_counter()
            real = real.to(device)
            b = real.size(0)
            net_d.zero_grad()
            label = torch.full((b,), 1.0, device=device)
            output = net_d(real)
            err_real = criterion(output, label)
            err_real.backward()
            d_x = torch.sigmoid(output).mean().item()
            noise = torch.randn(b, config.model.latent_dim, device=device)
            fake = net_g(noise)
            label.fill_(0.0)
            output = net_d(fake.detach())
            err_fake = criterion(output, label)
            err_fake.backward()
            d_g_z1 = torch.sigmoid(output).mean().item()
            opt_d.step()
            net_g.zero_grad()
            label.fill_(1.0)
            output = net_d(fake)
            err_g = criterion(output, label)
            err_g.backward()
            d_g_z2 = torch.sigmoid(output).mean().item()
            opt_g.step()
            _ = (err_real.item() + err_fake.item(), err_g.item(), d_x, d_g_z1, d_g_z2)
            done += 1
            if done == warmup + steps:
                break
    _sync(device)
    return steps * config.train.batch_size / (time.perf_counter() - start)


def _compose(preset: str, args: argparse.Namespace, precision: str):
    return compose(
        f"model={preset}",
        f"train.batch_size={args.batch_size}",
        f"train.precision={precision}",
        f"train.device={args.device}",
        f"train.compile={args.compile or 'null'}",
    )


def _images(config, args: argparse.Namespace) -> torch.Tensor:
    shape = output_shape(config.model)
    count = args.batch_size * (args.warmup + args.steps)
    return torch.from_numpy(synthetic_images(count, shape[1], shape[0], seed=0))


def compare_precisions(args: argparse.Namespace, device: torch.device, name: str) -> None:
    """gan_lab's loop for every preset in each of args.precisions, alternating over both,
    args.repeats times; the best of each (the run least disturbed by anything else on the
    machine), the ratio to the first precision, and with args.against to that preset."""
    first, *others = args.precisions
    presets = list(dict.fromkeys([*args.presets, *([args.against] if args.against else [])]))
    print(
        f"device: {name}; batch {args.batch_size}; {args.steps} timed steps after "
        f"{args.warmup} warm-up steps; best of {args.repeats}, alternating"
    )
    configs = {(s, p): _compose(s, args, p) for s in presets for p in args.precisions}
    images = {s: _images(configs[s, first], args) for s in presets}  # the same in every precision
    best = dict.fromkeys(configs, 0.0)
    for _ in range(args.repeats):
        for preset, precision in configs:
            rate = gan_lab_loop(
                configs[preset, precision], images[preset], device, args.warmup, args.steps
            )
            best[preset, precision] = max(best[preset, precision], rate)
    header = "".join(f"{p + ' img/s':>14}" for p in args.precisions)
    header += "".join(f"{p + '/' + first:>12}" for p in others)
    header += "".join(f"{p + ' x ' + args.against:>20}" for p in args.precisions if args.against)
    print(f"{'preset':<16}{'image':>10}{header}")
    for preset in presets:
        image = "x".join(map(str, output_shape(configs[preset, first].model)))
        line = "".join(f"{best[preset, p]:>14.1f}" for p in args.precisions)
        line += "".join(f"{best[preset, p] / best[preset, first]:>12.2f}" for p in others)
        if args.against:
            line += "".join(
                f"{best[preset, p] / best[args.against, p]:>20.2f}" for p in args.precisions
            )
        print(f"{preset:<16}{image:>10}{line}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="gan_lab's train.precision")
    parser.add_argument("--compile", help="gan_lab's train.compile (a torch.compile mode)")
    parser.add_argument("--precisions", nargs="+", help="compare these, alternating (gan_lab)")
    parser.add_argument("--repeats", type=int, default=3, help="with --precisions")
    parser.add_argument("--against", help="with --precisions: each preset's ratio to this one")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads, kernels "
        f"{torch.backends.cpu.get_cpu_capability()}, native bf16 {native_bf16(device)}"
    )
    if args.precisions:
        compare_precisions(args, device, name)
        return
    precision = resolve_precision(args.precision, device)
    print(
        f"device: {name}; batch {args.batch_size}; gan_lab in {precision}, the loop in the ", end=""
    )
    print(
        "style of pytorch/examples in fp32 on the same networks (contiguous, plain Adam); ",
        end="",
    )
    print(f"{args.steps} timed steps after {args.warmup} warm-up steps")
    print(f"{'preset':<16}{'image':>10}{'gan_lab img/s':>15}{'examples img/s':>16}{'ratio':>8}")
    for preset in args.presets:
        config = _compose(preset, args, args.precision)
        shape = output_shape(config.model)
        images = _images(config, args)
        ours = gan_lab_loop(config, images, device, args.warmup, args.steps)
        theirs = examples_loop(config, images, device, args.warmup, args.steps)
        image = "x".join(map(str, shape))
        ratio = ours / theirs
        print(f"{preset:<16}{image:>10}{ours:>15.1f}{theirs:>16.1f}{ratio:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
