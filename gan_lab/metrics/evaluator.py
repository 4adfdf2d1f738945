"""Scoring generators against one data set's cached reference features.

The reference features of the real images are computed once per (data set cache key, feature
extractor, number of images, seed), written atomically to the cache folder and reused by every
later run and every job of a sweep. Evaluation samples come from fixed latent vectors, so the
same generator always gets the same scores.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from gan_lab.config import MetricsConfig
from gan_lab.config.choices import MetricsPrecision
from gan_lab.devices import best_precision, native_bf16
from gan_lab.files import atomic_write
from gan_lab.metrics import scores
from gan_lab.metrics.inception import EXTRACTOR_NAME, find_weights, shared_network
from gan_lab.sampling import generate

log = logging.getLogger(__name__)

REFERENCE_FORMAT = 1


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> uint8, as saving to PNG quantises them."""
    return images.mul(255).round_().clamp_(0, 255).to(torch.uint8)


# metrics.num_samples and metrics.batch_size left null take what fits the device: a CPU scores
# a few hundred samples in about a minute (FID then is for comparing runs, not for publishing),
# a GPU the 10,000 that published FIDs use. Inception runs fastest on this project's CPU in fp32
# in batches of 16 (its activations stay in cache), in bf16 (AVX-512 BF16) in batches of 64
# (17.4 images/s against 5.8 in batches of 16, on 2 busy cores), on a GPU in large ones.
SAMPLES = {"cpu": 512, "cuda": 10_000}
FP32, BF16 = MetricsPrecision.FP32, MetricsPrecision.BF16
BATCH = {("cpu", FP32): 16, ("cpu", BF16): 64, ("cuda", FP32): 250, ("cuda", BF16): 250}


def sizes(cfg: MetricsConfig, device: torch.device, precision: str) -> tuple[int, int]:
    """(samples, batch size) of an evaluation on `device` in `precision` (fp32 or bf16)."""
    kind = "cuda" if device.type == "cuda" else "cpu"
    return cfg.num_samples or SAMPLES[kind], cfg.batch_size or BATCH[kind, precision]


@torch.no_grad()
def extract(
    extractor: nn.Module,
    batches: Iterable[torch.Tensor],
    device: torch.device,
    count: int,
    what: str,
    precision: str = MetricsPrecision.FP32.value,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (and logits, when the extractor has them) of `count` uint8 images in batches, on
    the CPU, with a progress bar (quiet when the output is not a terminal)."""
    features, logits = [], []
    dtype = torch.bfloat16 if precision == MetricsPrecision.BF16 else None
    with tqdm(total=count, desc=what, unit="img", disable=None) as bar:
        for batch in batches:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                f, lg = extractor(batch.to(device))
            features.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
            bar.update(len(batch))
    return torch.cat(features), (torch.cat(logits) if logits else None)


def real_batches(images: torch.Tensor, count: int, batch_size: int, seed: int):
    """`count` real images, the same ones for a seed, in batches."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count]
    for start in range(0, count, batch_size):
        yield images[order[start : start + batch_size].to(images.device)]


class Reference:
    """Features and FID statistics of the real images, cached on disk."""

    def __init__(self, features: torch.Tensor, stats: dict[str, np.ndarray]) -> None:
        self.features, self.stats = features, stats
        self._manifolds: dict[int, scores.RealManifold] = {}

    def manifold(self, k: int) -> scores.RealManifold:
        """The real images' k-NN manifold: the same at every evaluation, so computed once."""
        if k not in self._manifolds:
            self._manifolds[k] = scores.real_manifold(self.features, k)
        return self._manifolds[k]

    @classmethod
    def load_or_compute(cls, path: Path, compute: Callable[[], torch.Tensor]) -> Reference:
        if path.exists():
            with np.load(path) as saved:
                log.info("metrics: reference statistics from the cache %s", path)
                stats = {"mu": saved["mu"], "sigma": saved["sigma"]}
                return cls(torch.from_numpy(saved["features"]), stats)
        features = compute()
        stats = scores.statistics(features)

        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez(f, features=features.numpy(), **stats)

        atomic_write(path, write)
        log.info(
            "metrics: reference statistics of %d real images cached in %s", len(features), path
        )
        return cls(features, stats)


def own_rng(device: torch.device):
    """Scoring leaves the training's random streams where they were: building the Inception
    network initialises its layers from the global RNG before loading its weights, and it is
    built at the first evaluation or not at all (cached reference), so a run would otherwise
    train differently after a first evaluation, by whether a cache existed, or on resume."""
    devices = [device] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices, device_type=device.type)


class Evaluator:
    """Scores generators against one data set: the metrics named in metrics.compute. The
    Inception network is built when first needed: a run whose reference statistics are cached
    starts training without it."""

    def __init__(
        self,
        cfg: MetricsConfig,
        images: torch.Tensor,
        data_key: str,
        device: torch.device,
        cache: Path,
        extractor: nn.Module | None = None,
    ) -> None:
        self.cfg, self.device = cfg, device
        # metrics.compute null: every registered metric
        self.compute = list(scores.METRICS.names()) if cfg.compute is None else list(cfg.compute)
        self.precision = cfg.precision
        if cfg.precision == MetricsPrecision.AUTO:
            self.precision = best_precision(device)
        elif cfg.precision == MetricsPrecision.BF16 and not native_bf16(device):
            log.warning("metrics.precision=bf16: this %s emulates bf16, slower than fp32", device)
        samples, self.batch_size = sizes(cfg, device, self.precision)
        self.count = min(samples, len(images))
        self.weights = None if extractor else find_weights(cfg.inception_weights, cache)
        self._extractor = extractor
        has_logits = extractor.has_logits if extractor else self.weights.has_classifier
        if "is" in self.compute and not has_logits:
            log.warning(
                "metrics: no Inception Score: these Inception weights lack the classifier "
                "layer; torch-fidelity's weights file has it (see metrics.inception_weights)"
            )
        if "fid" in self.compute:
            scores.warn_if_few(self.count)
        name = extractor.name if extractor else EXTRACTOR_NAME
        key = f"{REFERENCE_FORMAT}-{data_key}-{name}-{self.count}-{cfg.seed}"
        if self.precision != MetricsPrecision.FP32:
            key += f"-{self.precision}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        path = cache / "metrics" / f"reference-{digest}.npz"
        self.seconds_per_image: float | None = None
        real = real_batches(images, self.count, self.batch_size, cfg.seed)
        with own_rng(device):
            self.reference = Reference.load_or_compute(
                path, lambda: self._features(real, self.count, "reference images")[0]
            )
        self._probe = images[: self.batch_size]  # times the network when nothing else has

    @property
    def extractor(self) -> nn.Module:
        if self._extractor is None:
            self._extractor = shared_network(self.weights, str(self.device))
        return self._extractor

    def _features(self, batches, count: int, what: str):
        start = time.perf_counter()
        features, logits = extract(
            self.extractor, batches, self.device, count, what, self.precision
        )
        self.seconds_per_image = (time.perf_counter() - start) / len(features)
        return features, logits

    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        with own_rng(self.device):
            return self._evaluate(generator)

    def _evaluate(self, generator: nn.Module) -> dict[str, float]:
        if self.seconds_per_image is None:  # the reference came from the cache
            self._features([self._probe], len(self._probe), "warm-up")
        log.info(
            "metrics: scoring %d generated images against %d real ones, about %.0f s",
            self.count,
            self.count,
            self.count * self.seconds_per_image,
        )
        images = generate(generator, self.count, self.cfg.seed, self.batch_size)
        return self.score(*self._features(map(to_uint8, images), self.count, "generated images"))

    def score(self, features: torch.Tensor, logits: torch.Tensor | None) -> dict[str, float]:
        """The metrics of metrics.compute, and how many generated and real images they rest
        on (eval_samples, eval_reference_images)."""
        out: dict[str, float] = {
            scores.SAMPLES: float(len(features)),
            scores.REFERENCE: float(len(self.reference.features)),
        }
        for name in self.compute:
            out.update(scores.METRICS[name](features, logits, self.reference, self.cfg))
        return out
