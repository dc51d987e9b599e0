"""The third tier's figure: two soundscapes on the ISOPleasant x ISOEventful circumplex, with the move.

Drawn with soundscapy's own ``scatter`` (its circumplex axes, grid and diagonal quadrant lines) so it
looks the way soundscape researchers know; the arrow goes from A to B. Written as PNG and PDF by
:func:`soundaq.evaluation.figures.save` (atomically).
"""
from __future__ import annotations

from pathlib import Path

from soundaq.evaluation.figures import FONT, save

#: Colours of A and B (soundscapy's default "colorblind" palette, first two).
COLOURS = ("#0173b2", "#de8f05")


def circumplex_move(a: tuple[float, float], b: tuple[float, float], label_a: str, label_b: str,
                    title: str = "", note: str = ""):
    """A matplotlib figure of A and B at (ISOPleasant, ISOEventful) with an arrow from A to B.

    Args:
        a: A's (ISOPleasant, ISOEventful), each in [-1, 1] (ISO/TS 12913-3).
        b: B's (ISOPleasant, ISOEventful).
        label_a: A's name in the legend.
        label_b: B's name in the legend.
        title: figure title.
        note: a small caption line below the axes.

    Returns:
        The matplotlib Figure (the caller saves and closes it).
    """
    import matplotlib.pyplot as plt
    import pandas as pd
    from soundscapy import plotting as sspy_plot  # soundscapy.__init__.pyi hides its re-exports from mypy

    frame = pd.DataFrame({"isop": [a[0], b[0]], "isoe": [a[1], b[1]], "which": [label_a, label_b]})
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(4.6, 5.3))
        sspy_plot.scatter(frame, ax=ax, x="isop", y="isoe", hue="which", palette=list(COLOURS), s=60, zorder=3,
                     title=None, xlabel="ISOPleasant", ylabel="ISOEventful", legend="brief")
        ax.annotate("", xy=b, xytext=a, zorder=4,
                    arrowprops=dict(arrowstyle="-|>", color="0.15", lw=1.4, shrinkA=6, shrinkB=6))
        for (x, y), text, colour in ((a, "A", COLOURS[0]), (b, "B", COLOURS[1])):
            ax.annotate(text, (x, y), xytext=(6, 6), textcoords="offset points", color=colour, fontsize=9,
                        fontweight="bold", zorder=5)
        for (x, y), name in (((0.95, 0.95), "vibrant"), ((-0.95, 0.95), "chaotic"),
                             ((-0.95, -0.95), "monotonous"), ((0.95, -0.95), "calm")):
            ax.text(x, y, name, ha="right" if x > 0 else "left", va="top" if y > 0 else "bottom",
                    fontsize=7, color="0.45", style="italic", zorder=2)
        ax.set_aspect("equal")
        if ax.get_legend() is not None:   # below the axes, clear of the points and the quadrant names
            handles, labels = ax.get_legend_handles_labels()
            ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, frameon=False,
                      fontsize=7.5)
        if title:
            ax.set_title(title, fontsize=9, pad=6)
        if note:
            fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=6.5, color="0.3", wrap=True)
        fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
    return fig


def write_circumplex_move(out: Path | str, a, b, label_a: str, label_b: str, title: str = "", note: str = "",
                          name: str = "circumplex_move") -> list[Path]:
    """Draw :func:`circumplex_move` and write ``out/<name>.png`` and ``.pdf``; returns their paths."""
    return save(circumplex_move(a, b, label_a, label_b, title, note), Path(out) / name)
