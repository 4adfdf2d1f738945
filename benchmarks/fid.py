"""FID of N generated 64x64 images against cached reference statistics: gan_lab's Evaluator
against torch-fidelity's calculate_metrics, same generator, same images, same Inception weights.

Both sides get their reference statistics from their own cache (warmed up before timing), so the
timed part is what each training evaluation costs: generating the images, the Inception
features, and the Fréchet distance.

    python benchmarks/fid.py                     # 10,000 images, the default device
    python benchmarks/fid.py --num 1000 --device cpu
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from gan_lab.config import MetricsConfig, compose
from gan_lab.data.synthetic import synthetic_images
from gan_lab.devices import resolve_device
from gan_lab.metrics import Evaluator, to_uint8
from gan_lab.metrics.inception import find_weights
from gan_lab.models.dcgan import Generator, ImageGenerator


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


def torch_fidelity_fid(generator, reference, args, weights, cache: Path, device) -> float:
    import torch_fidelity

    return torch_fidelity.calculate_metrics(
        input1=torch_fidelity.GenerativeModelModuleWrapper(
            Uint8Generator(generator), generator.latent_dim, "normal", 0
        ),
        input1_model_num_samples=args.num,
        input2=Images(reference),
        input2_cache_name=f"gan-lab-benchmark-{len(reference)}",
        cache_root=str(cache),
        fid=True,
        batch_size=args.batch_size,
        feature_extractor_weights_path=str(weights.path),
        cuda=device.type == "cuda",
        verbose=False,
    )["frechet_inception_distance"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    generator = Generator(compose("model=dcgan64").model).to(device).eval()
    reference = torch.from_numpy(synthetic_images(args.num, 64, 3, seed=0))
    metrics = MetricsConfig(num_samples=args.num, batch_size=args.batch_size, compute=["fid"])
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        weights = find_weights(None, Path.home() / ".cache" / "gan_lab")
        evaluator = Evaluator(metrics, reference, "benchmark", device, cache)  # warms its cache
        torch_fidelity_fid(
            generator,
            reference,
            argparse.Namespace(**{**vars(args), "num": 2}),
            weights,
            cache,
            device,
        )  # warms torch-fidelity's reference cache
        timings = {}
        for name, compute in (
            ("gan_lab Evaluator", lambda: evaluator.evaluate(generator)["fid"]),
            (
                "torch-fidelity calculate_metrics",
                lambda: torch_fidelity_fid(generator, reference, args, weights, cache, device),
            ),
        ):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            value = compute()
            timings[name] = (time.perf_counter() - start, value)
    print(
        f"FID of {args.num} generated 64x64 images against cached reference statistics, "
        f"{device} ({weights.source})"
    )
    for name, (seconds, value) in timings.items():
        print(f"{name:34} {seconds:8.1f} s {args.num / seconds:8.1f} images/s   FID {value:.3f}")
    ours, theirs = timings["gan_lab Evaluator"][0], timings["torch-fidelity calculate_metrics"][0]
    print(f"speed ratio gan_lab / torch-fidelity: {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
