"""Scoring generators against one data set's cached reference features.

The reference features of the real images are computed once per (data set cache key, feature
extractor, number of images, seed), written atomically to the cache folder and reused by every
later run and every job of a sweep. Evaluation samples come from fixed latent vectors, so the
same generator always gets the same scores.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gan_lab.config import MetricsConfig
from gan_lab.files import atomic_write
from gan_lab.metrics import scores
from gan_lab.metrics.inception import InceptionFeatures, find_weights
from gan_lab.sampling import generate

log = logging.getLogger(__name__)

REFERENCE_FORMAT = 1


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> uint8, as saving to PNG quantises them."""
    return images.mul(255).round_().clamp_(0, 255).to(torch.uint8)


@torch.no_grad()
def extract(
    extractor: nn.Module, batches: Iterable[torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (and logits, when the extractor has them) of uint8 batches, on the CPU."""
    features, logits = [], []
    for batch in batches:
        f, lg = extractor(batch.to(device))
        features.append(f.float().cpu())
        if lg is not None:
            logits.append(lg.float().cpu())
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


class Evaluator:
    """Scores generators against one data set: the metrics named in metrics.compute."""

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
        self.count = min(cfg.num_samples, len(images))
        if extractor is None:
            extractor = InceptionFeatures(find_weights(cfg.inception_weights, cache))
        self.extractor = extractor.to(device).eval()
        if "is" in cfg.compute and not extractor.has_logits:
            log.warning(
                "metrics: no Inception Score: these Inception weights lack the classifier "
                "layer; torch-fidelity's weights file has it (see metrics.inception_weights)"
            )
        if "fid" in cfg.compute:
            scores.warn_if_few(self.count)
        key = f"{REFERENCE_FORMAT}-{data_key}-{extractor.name}-{self.count}-{cfg.seed}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        path = cache / "metrics" / f"reference-{digest}.npz"
        self.reference = Reference.load_or_compute(
            path,
            lambda: extract(
                self.extractor, real_batches(images, self.count, cfg.batch_size, cfg.seed), device
            )[0],
        )

    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        cfg = self.cfg
        images = generate(generator, self.count, cfg.seed, cfg.batch_size)
        features, logits = extract(self.extractor, map(to_uint8, images), self.device)
        return self.score(features, logits)

    def score(self, features: torch.Tensor, logits: torch.Tensor | None) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in self.cfg.compute:
            out.update(scores.METRICS[name](features, logits, self.reference, self.cfg))
        return out
