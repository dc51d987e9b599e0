"""The figure of ``soundaq caption-metrics``: per metric, each system's mean with its bootstrap CI."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from soundaq.evaluation.figures import save

_PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def metrics_figure(summary, target: Path, title: str = "") -> list[Path]:
    """One panel per labelled metric (``paper/BLEU`` ...), one bar per system: the mean of per-clip
    values with its percentile bootstrap CI; the corpus-level value (standard flavour) as a cross.

    Args:
        summary: table of :func:`soundaq.evaluation.captions.scoring.summary`.
        target: path of the PNG; the PDF goes beside it.
        title: the figure's title (none when empty).

    Returns:
        The PNG and PDF paths.
    """
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(summary["metric"]))
    systems = sorted(summary["system"].unique())
    ncols = min(4, max(1, len(metrics)))
    nrows = int(np.ceil(len(metrics) / ncols)) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.9 * nrows + 0.4), squeeze=False)
    x = np.arange(len(systems))
    for ax, metric in zip(axes.flat, metrics):
        g = summary[summary["metric"] == metric].set_index("system").reindex(systems)
        mean = g["mean"].to_numpy(float)
        err = np.vstack([mean - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - mean])
        ax.bar(x, mean, color=[_PALETTE[i % len(_PALETTE)] for i in range(len(systems))], alpha=0.8,
               yerr=np.nan_to_num(err), capsize=3, ecolor="black", error_kw={"linewidth": 0.9})
        corpus = g["value"].to_numpy(float)
        if not np.allclose(corpus, mean, equal_nan=True):
            ax.scatter(x, corpus, marker="x", color="black", zorder=3, s=28, label="corpus-level")
            ax.legend(fontsize=7, frameon=False, loc="upper right")
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(systems, rotation=30, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(title or "caption metrics: mean per clip with 95% bootstrap CI", fontsize=10)
    return save(fig, target, dpi=150, tight_layout=True)
