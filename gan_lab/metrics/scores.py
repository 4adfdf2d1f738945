"""Scores from Inception features, each registered under its `metrics.compute` name.

torch-fidelity computes FID, KID, IS, precision and recall (imported when a score is computed:
it costs over a second to import); the realism score and the good/decent/poor rates are written
here (no library has them). A metric is a function (generated features, their logits or None,
the reference, the metrics config) -> {logged name: value}.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gan_lab.registry import Registry

if TYPE_CHECKING:  # torch is imported where a score is computed: the config checks import this
    import numpy as np
    import torch

    from gan_lab.config import MetricsConfig

log = logging.getLogger(__name__)

FEATURE_DIM = 2048
# Logged with every evaluation, so that a 500-sample FID is never read as a 10,000-sample one:
# how many generated images its scores rest on, and how many real reference images
SAMPLES = "eval_samples"
REFERENCE = "eval_reference_images"

# Below these sample counts a score says little, and reports show "too few samples" instead:
# FID's bias grows as 1/N and is large below a few hundred samples (with fewer than 2048 the
# covariance is singular, yet FIDs of 500 and more still rank runs scored alike); KID and the
# quality rates are unbiased, and from 100 samples a rate's standard error is at most 5 points.
MINIMUM_SAMPLES = {"fid": 500, "kid": 100, "quality": 100}

Metric = Callable[["torch.Tensor", "torch.Tensor | None", "RealFeatures", "MetricsConfig"], dict]
METRICS: Registry[Metric] = Registry("metrics.compute")


def statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """The mean and covariance of features, in float64 (FID's reference statistics)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    return fid_features_to_statistics(features.double())


def fid(generated: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """Fréchet distance of two feature distributions. torch-fidelity takes the trace of the
    matrix square root from eigenvalues and keeps the real part, so a singular covariance (fewer
    samples than 2048 features) gives a real number, never a complex one."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    return fid_statistics_to_metric(generated, reference, verbose=False)[
        "frechet_inception_distance"
    ]


def kid(
    generated: torch.Tensor, reference: torch.Tensor, subsets: int, subset_size: int
) -> tuple[float, float]:
    from torch_fidelity.metric_kid import kid_features_to_metric

    # Subsets of every sample would all be the same set (a spread of about 0): at most half
    size = max(2, min(subset_size, len(generated) // 2, len(reference) // 2))
    out = kid_features_to_metric(
        generated, reference, kid_subsets=subsets, kid_subset_size=size, verbose=False
    )
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    from torch_fidelity.metric_isc import isc_features_to_metric

    out = isc_features_to_metric(logits, splits=min(splits, len(logits)))
    return out["inception_score_mean"], out["inception_score_std"]


def precision_recall(
    generated: torch.Tensor, reference: torch.Tensor, k: int
) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: precision = share of generated samples inside the real k-NN
    manifold, recall = share of real samples inside the generated one (torch-fidelity)."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = prc_features_to_metric(
            generated,
            reference,
            prc_neighborhood=k,
            prc_batch_size=10000,
            save_cpu_ram=True,
            verbose=False,
        )
    return out["precision"], out["recall"]


@dataclass
class RealManifold:
    """The real images' k-NN manifold (Kynkäänniemi et al. 2019), computed once per reference:
    the half of the real samples with the smallest k-NN radii (outliers left out, as in the
    paper), their radii, and the median distance between a real sample and its nearest one."""

    features: torch.Tensor
    radii: torch.Tensor
    spacing: float


class RealFeatures(Protocol):
    """What a score reads of the real images: their features, FID statistics and k-NN manifold
    (the evaluator's cached Reference is one; scores know no cache)."""

    features: torch.Tensor
    stats: dict[str, np.ndarray]

    def manifold(self, k: int) -> RealManifold: ...


def real_manifold(reference: torch.Tensor, k: int) -> RealManifold:
    import torch

    reference = reference.float()
    distances = torch.cdist(reference, reference)
    nearest = distances.topk(k + 1, dim=1, largest=False).values  # [:, 0]: itself
    radii, spacing = nearest[:, k], nearest[:, 1].median().item()
    keep = radii <= radii.median()
    return RealManifold(reference[keep], radii[keep], spacing)


def realism(generated: torch.Tensor, manifold: RealManifold) -> torch.Tensor:
    """Per-sample realism score (Kynkäänniemi et al. 2019, eq. 3):
    R(g) = max over real r of radius_k(r) / |g - r|. R >= 1: g lies inside the estimated
    manifold of real images. Written here because torch-fidelity and torchmetrics compute only
    the aggregate precision and recall."""
    import torch

    scores = []
    for batch in generated.float().split(1000):
        distances = torch.cdist(batch, manifold.features).clamp_min(1e-12)
        scores.append((manifold.radii[None, :] / distances).max(dim=1).values)
    return torch.cat(scores)


def repeated(generated: torch.Tensor, spacing: float) -> torch.Tensor:
    """Which generated samples another generated sample nearly repeats: closer to it than half
    `spacing` (the median distance between a real image and its nearest real neighbour). A
    realism score judges each sample alone, so a generator that makes one flat colour or one
    image over and over can score as realistic; such samples count as poor (they show the same
    thing), and a collapsed generator gets no good or decent samples at all."""
    import torch

    generated = generated.float()
    nearest = []
    for start in range(0, len(generated), 1000):
        distances = torch.cdist(generated[start : start + 1000], generated)
        rows = torch.arange(len(distances))
        distances[rows, rows + start] = float("inf")  # not itself
        nearest.append(distances.min(dim=1).values)
    return torch.cat(nearest) < spacing / 2


def quality_rates(scores: torch.Tensor, good: float, decent: float) -> dict[str, float]:
    """The anime write-up's good / decent / poor sample rates, from realism scores."""
    return {
        "quality_good": (scores >= good).float().mean().item(),
        "quality_decent": ((scores >= decent) & (scores < good)).float().mean().item(),
        "quality_poor": (scores < decent).float().mean().item(),
    }


def warn_if_few(count: int) -> None:
    if count < FEATURE_DIM:
        log.warning(
            "FID on %d samples, fewer than the %d feature dimensions: the covariance is singular "
            "and the FID biased upwards; published FIDs use 10,000 or 50,000 samples",
            count,
            FEATURE_DIM,
        )


@METRICS.register("fid")
def _fid(features, logits, reference: RealFeatures, cfg: MetricsConfig) -> dict[str, float]:
    return {"fid": fid(statistics(features), reference.stats)}


@METRICS.register("kid")
def _kid(features, logits, reference: RealFeatures, cfg: MetricsConfig) -> dict[str, float]:
    mean, std = kid(features, reference.features, cfg.kid_subsets, cfg.kid_subset_size)
    return {"kid": mean, "kid_std": std}


@METRICS.register("is")
def _is(features, logits, reference: RealFeatures, cfg: MetricsConfig) -> dict[str, float]:
    if logits is None:  # weights without the classifier layer: warned about when loaded
        return {}
    mean, std = inception_score(logits)
    return {"is": mean, "is_std": std}


@METRICS.register("pr")
def _pr(features, logits, reference: RealFeatures, cfg: MetricsConfig) -> dict[str, float]:
    precision, recall = precision_recall(features, reference.features, cfg.neighborhood)
    return {"precision": precision, "recall": recall}


@METRICS.register("quality")
def _quality(features, logits, reference: RealFeatures, cfg: MetricsConfig) -> dict[str, float]:
    manifold = reference.manifold(cfg.neighborhood)
    scores = realism(features, manifold)
    repeats = repeated(features, manifold.spacing)
    scores[repeats] = 0.0
    rates = quality_rates(scores, *cfg.quality_thresholds)
    return {**rates, "quality_repeated": repeats.float().mean().item()}
