"""Figures of runs' metrics: the loss curves of the anime write-up's tables, FID over epochs."""

from __future__ import annotations

from matplotlib.figure import Figure

# The three curves the anime write-up (001) shows per run.
LOSS_CURVES = {"g_loss": "G loss", "d_loss_real": "D real loss", "d_loss_fake": "D fake loss"}


def loss_curves(
    history: dict[str, list[tuple[int, float]]],
    title: str = "",
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """G loss, D real loss and D fake loss against the training step; `ylim` puts several runs'
    figures on one scale. The legend sits under the axes, where it hides no curve."""
    # matplotlib.figure.Figure needs no pyplot and no display backend, so it is safe in workers.
    figure = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for key, label in LOSS_CURVES.items():
        points = sorted(history.get(key, []))
        if points:
            axes.plot([s for s, _ in points], [v for _, v in points], label=label, linewidth=1)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    if ylim is not None:
        axes.set_ylim(*ylim)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False)
    axes.grid(alpha=0.3)
    return figure


def metric_over_epochs(runs: dict[str, list[tuple[int, float]]], metric: str) -> Figure:
    """One line per run (labelled with its name: what the sweep varies): `metric` (FID, say)
    against whole epochs, 900 pixels wide. Save it with bbox_inches="tight": the legend sits
    outside the axes."""
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(9.0, 4.5), dpi=100)
    axes = figure.add_subplot()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
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
