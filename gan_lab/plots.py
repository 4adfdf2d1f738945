"""Figures of runs' metrics: the loss curves of the anime write-up's tables, FID over epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure

if TYPE_CHECKING:
    from gan_lab.tracking import History

# The three curves the anime write-up (001) shows per run.
LOSS_CURVES = {"g_loss": "G loss", "d_loss_real": "D real loss", "d_loss_fake": "D fake loss"}


def loss_curves(history: History, title: str = "") -> Figure:
    """G loss, D real loss and D fake loss against the training step."""
    # matplotlib.figure.Figure needs no pyplot and no display backend, so it is safe in workers.
    figure = Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for key, label in LOSS_CURVES.items():
        points = sorted(history.get(key, []))
        if points:
            axes.plot([s for s, _ in points], [v for _, v in points], label=label, linewidth=1)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)
    return figure


def metric_over_epochs(runs: dict[str, list[tuple[int, float]]], metric: str) -> Figure:
    """One line per run: `metric` (FID, say) against the epoch. Save it with
    bbox_inches="tight": the legend sits outside the axes."""
    figure = Figure(figsize=(7.2, 4.0), dpi=100)
    axes = figure.add_subplot()
    for name, points in runs.items():
        points = sorted(points)
        if points:
            axes.plot([s for s, _ in points], [v for _, v in points], marker="o", label=name)
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    if any(runs.values()):
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure
