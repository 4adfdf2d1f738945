"""An evaluation's speed and exactness: FID of N generated 64x64 images against cached reference
statistics, by gan_lab's Evaluator (fp32, and the opt-in bf16 mode) and by torch-fidelity's
calculate_metrics, with the same generator and Inception weights.

Each side's reference statistics come from its own cache, warmed up before timing, so the timed
part is what an evaluation during training costs: generating the images, the Inception features,
the Fréchet distance. Exactness: the FID of gan_lab's fp32 features against the FID of the same
images through torch-fidelity's network as it comes (NCHW, batch 100), and the bf16 mode's
deviation from fp32.

    python benchmarks/fid.py                     # 10,000 images, the default device
    python benchmarks/fid.py --num 1000 --device cpu
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from gan_lab.config import MetricsConfig
from gan_lab.config.compose import compose
from gan_lab.data.synthetic import synthetic_images
from gan_lab.devices import native_bf16, resolve_device
from gan_lab.metrics import scores
from gan_lab.metrics.evaluator import Evaluator, to_uint8
from gan_lab.metrics.inception import EXTRACTOR_NAME, find_weights
from gan_lab.models.dcgan import Generator
from gan_lab.sampling import ImageGenerator, generate


class Uint8Generator(nn.Module):
    """The generator as torch-fidelity wants it: latent in, uint8 RGB images out."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.images = ImageGenerator(generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return to_uint8(self.images(z))


class Images(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def torch_fidelity_fid(generator, reference, num, batch_size, weights, cache: Path, device):
    import torch_fidelity

    return torch_fidelity.calculate_metrics(
        input1=torch_fidelity.GenerativeModelModuleWrapper(
            Uint8Generator(generator), generator.latent_dim, "normal", 0
        ),
        input1_model_num_samples=num,
        input2=Images(reference),
        input2_cache_name=f"gan-lab-benchmark-{len(reference)}",
        cache_root=str(cache),
        fid=True,
        batch_size=batch_size,
        feature_extractor_weights_path=str(weights.path),
        cuda=device.type == "cuda",
        verbose=False,
    )["frechet_inception_distance"]


@torch.no_grad()
def plain_fid(evaluator: Evaluator, generator, weights, device) -> float:
    """The FID of gan_lab's evaluation images through torch-fidelity's network as it comes."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = FeatureExtractorInceptionV3(
        EXTRACTOR_NAME, ["2048"], feature_extractor_weights_path=str(weights.path)
    )
    net = net.to(device).eval()
    images = torch.cat([to_uint8(b).cpu() for b in generate(generator, evaluator.count, 2024)])
    features = torch.cat([net(b.to(device))[0].cpu() for b in images.split(100)])
    return scores.fid(scores.statistics(features.double()), evaluator.reference.stats)


def timed(compute) -> tuple[float, float]:
    start = time.perf_counter()
    value = compute()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, help="gan_lab's (default: the device's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    generator = Generator(compose("model=dcgan64").model).to(device).eval()
    reference = torch.from_numpy(synthetic_images(args.num, 64, 3, seed=0))
    fp32 = MetricsConfig(num_samples=args.num, batch_size=args.batch_size, compute=["fid"])
    bf16 = replace(fp32, precision="bf16")
    weights = find_weights(None, Path.home() / ".cache" / "gan_lab")
    # bf16 only where the CPU or GPU computes it natively: elsewhere it is emulated, far slower
    modes = {"fp32": fp32, **({"bf16": bf16} if native_bf16(device) else {})}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        evaluators = {  # building each warms its reference cache
            name: Evaluator(cfg, reference, "benchmark", device, cache)
            for name, cfg in modes.items()
        }
        torch_fidelity_fid(generator, reference, 2, 100, weights, cache, device)  # its cache
        timings = {
            f"gan_lab Evaluator, {name}": timed(lambda e=evaluator: e.evaluate(generator)["fid"])
            for name, evaluator in evaluators.items()
        }
        timings["torch-fidelity calculate_metrics"] = timed(
            lambda: torch_fidelity_fid(generator, reference, args.num, 100, weights, cache, device)
        )
        exact = plain_fid(evaluators["fp32"], generator, weights, device)
    print(
        f"FID of {args.num} generated 64x64 images against cached reference statistics, "
        f"{device} ({weights.source})"
    )
    for name, (seconds, value) in timings.items():
        print(f"{name:34} {seconds:8.1f} s {args.num / seconds:8.1f} images/s   FID {value:.4f}")
    ours = timings["gan_lab Evaluator, fp32"]
    theirs = timings["torch-fidelity calculate_metrics"][0]
    print(f"speed ratio gan_lab fp32 / torch-fidelity: {theirs / ours[0]:.2f}")
    print(
        f"exactness: gan_lab fp32 FID {ours[1]:.4f}, the same images through torch-fidelity's "
        f"network {exact:.4f}: relative deviation {abs(ours[1] - exact) / exact:.1e}"
    )
    if "bf16" in modes:
        fast = timings["gan_lab Evaluator, bf16"][1]
        deviation = abs(fast - ours[1]) / ours[1]
        print(f"bf16 mode: FID {fast:.4f}, relative deviation from fp32 {deviation:.1e}")
    else:
        print(f"bf16 mode: not timed, {device} has no native bf16")


if __name__ == "__main__":
    main()
