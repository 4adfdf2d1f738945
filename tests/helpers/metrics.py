"""A small, fixed feature extractor for tests where the Inception network is not the point."""

from __future__ import annotations

from pathlib import Path

import torch

import gan_lab.metrics.evaluator
from gan_lab.metrics.inception import Weights


class StandIn(torch.nn.Module):
    """4x4 average colours (48 features) and 10 logits. Never the default: Evaluator loads the
    real Inception network unless given one."""

    name = "stand-in"
    has_logits = True

    def __init__(self) -> None:
        super().__init__()
        self.classifier = torch.nn.Linear(48, 10)
        torch.nn.init.normal_(self.classifier.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, images):
        x = images.float().expand(-1, 3, -1, -1) / 255
        features = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return features, self.classifier(features)


def stand_in_metrics(monkeypatch) -> None:
    """Every Evaluator built during the test uses StandIn, and caches its reference features
    under StandIn's name (never where the Inception network's are looked for)."""
    weights = Weights(Path("stand-in"), "a test's stand-in", has_classifier=True)
    monkeypatch.setattr(gan_lab.metrics.evaluator, "shared_network", lambda *args: StandIn())
    monkeypatch.setattr(gan_lab.metrics.evaluator, "EXTRACTOR_NAME", StandIn.name)
    monkeypatch.setattr(gan_lab.metrics.evaluator, "find_weights", lambda *args: weights)
