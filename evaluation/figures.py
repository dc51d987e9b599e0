"""Figures of the event x affective-quality analysis, sized for a printed page (7.5 in wide).

* :func:`heatmap`: Spearman's rho, events x qualities (circumplex order, then ISOPleasant and
  ISOEventful), diverging colour map centred at 0, significance stars in the cells;
* :func:`bars`: one panel per quality, rho of every event as a bar, stars at the bar ends;
* :func:`radar`: mean of the 8 qualities per group (scene or location), soundscapy's PAQ radar look;
* :func:`circumplex`: ISOPleasant x ISOEventful scatter with density contours per group, drawn by
  soundscapy's own ``density``/``scatter`` so it looks the way soundscape researchers know.

Every figure names its source in the title (and says SYNTHETIC DATA when it is). :func:`draw_all`
writes each as PNG and PDF, atomically, and carries on past a figure that fails.
"""
from __future__ import annotations

import logging
import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize

from soundaq.base.errors import one_line
from soundaq.base.fileio import atomic_path
from soundaq.base.vocab import CIRCUMPLEX_ORDER
from soundaq.evaluation.correlation import ALL, QUALITY_LABELS, Source, matrix

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

PAGE_WIDTH = 7.5  # inches: a full-width figure on A4/Letter
CMAP = "RdBu_r"
#: Font sizes (points) of the printed-page figures, and TrueType fonts in PDFs (editable text).
FONT: dict[RcKeyType, Any] = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7.5,
        "ytick.labelsize": 7.5, "legend.fontsize": 7.5, "figure.titlesize": 10, "pdf.fonttype": 42}
STAR_NOTE = "* p<0.05, ** p<0.01, *** p<0.001 (adjusted)"
DENSITY_MIN = 30  # soundscapy's recommended minimum sample for a density estimate
#: Soundscapy's radar layout: PAQ1..PAQ8 at 0, 45, ..., 315 degrees (the circumplex order).
RADAR_ANGLES = np.deg2rad(np.arange(0, 360, 45))

logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def _title(fig, text: str, source: Source, top: float = 0.985) -> None:
    full = f"{text}\n{source.label}"
    fig.suptitle("\n".join(textwrap.fill(line, 95) for line in full.split("\n")), y=top,
                 fontsize=FONT["figure.titlesize"],
                 color="#b00020" if source.synthetic else "black")


def _caption(fig, text: str) -> int:
    """Small print at the bottom of the figure; returns its number of lines (for :func:`_layout`)."""
    wrapped = textwrap.fill(text, 130)
    fig.text(0.5, 0.005, wrapped, ha="center", va="bottom", fontsize=6.5, color="#333333")
    return wrapped.count("\n") + 1


def _layout(fig, caption_lines: int, left: float = 0.0, right: float = 1.0) -> None:
    """tight_layout leaving exactly the caption's height free at the bottom.

    matplotlib's tight_layout already keeps room for the suptitle, so the top of the rect stays 1
    (reserving it again left an empty band under the title).
    """
    height = fig.get_size_inches()[1]
    bottom = (caption_lines * 6.5 * 1.3 / 72 + 0.08) / height
    fig.tight_layout(rect=(left, bottom, right, 1.0))


def _scale(values) -> tuple[float, Normalize]:
    """The colour scale of rho, symmetric about 0: ``(vmax, norm)`` with vmax the largest |rho| rounded up
    to the next tenth (at least 0.1; NaN ignored) and norm mapping [-vmax, vmax] to [0, 1].
    """
    vals = np.abs(np.asarray(values, dtype=float))
    vals = vals[np.isfinite(vals)]
    top = float(vals.max()) if vals.size else 0.0
    vmax = max(0.1, math.ceil(top * 10 - 1e-9) / 10)
    return vmax, Normalize(-vmax, vmax)


def _group_rho(table: pd.DataFrame, group: str) -> tuple[pd.DataFrame, pd.DataFrame, float, Normalize]:
    """One group's rho and stars (events x qualities, :func:`~soundaq.evaluation.correlation.matrix`) and
    the :func:`_scale` of its rho: ``(rho, stars, vmax, norm)``.
    """
    rho = matrix(table, "rho", group)
    vmax, norm = _scale(rho.to_numpy())
    return rho, matrix(table, "stars", group), vmax, norm


def _where(source: Source, group: str) -> str:
    """The rows a figure of ``group`` shows, for its title."""
    return "all rows" if group == ALL else f"{source.group_name} {group}"


def _qlabels(qualities) -> list[str]:
    return [QUALITY_LABELS.get(q, q) for q in qualities]


def _correction_text(table: pd.DataFrame) -> str:
    c = str(table["correction"].iloc[0]) if len(table) else "none"
    return {"fdr_bh": "Benjamini-Hochberg FDR", "bonferroni": "Bonferroni", "none": "no correction"}[c]


# --------------------------------------------------------------------------------------------

def _annotate_cells(ax, rho: np.ndarray, star: np.ndarray, norm, fontsize: float) -> None:
    """Write rho and its stars in every cell (white on dark cells); "n/a" where there is no rho."""
    for i in range(rho.shape[0]):
        for j in range(rho.shape[1]):
            r = rho[i, j]
            if not np.isfinite(r):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=fontsize - 0.3, color="#555555")
                continue
            dark = abs(norm(r) - 0.5) > 0.33
            ax.text(j, i, f"{r:+.2f}{star[i, j]}", ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")


def _cell_grid(ax, qualities: list[str], nrow: int, grid_width: float, iso_width: float) -> None:
    """Quality tick labels, white lines between cells, a black line before the ISO coordinates."""
    ax.set_xticks(range(len(qualities)), _qlabels(qualities), rotation=35, ha="right")
    ax.set_xticks(np.arange(-0.5, len(qualities)), minor=True)
    ax.set_yticks(np.arange(-0.5, nrow), minor=True)
    ax.grid(which="minor", color="white", linewidth=grid_width)
    ax.tick_params(which="minor", length=0)
    if "isop" in qualities:
        ax.axvline(qualities.index("isop") - 0.5, color="black", linewidth=iso_width)


def heatmap(table: pd.DataFrame, source: Source, group: str = ALL):
    """Events x qualities heatmap of rho with stars; grey cells have no rho (see the report)."""
    rho, star, _, norm = _group_rho(table, group)
    n = matrix(table, "n", group)
    events, qualities = list(rho.index), list(rho.columns)
    cmap = plt.get_cmap(CMAP)
    height = 1.6 + 0.34 * len(events)
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, max(3.2, height)))
        data = np.ma.masked_invalid(rho.to_numpy(dtype=float))
        cmap_nan = cmap.with_extremes(bad="#d9d9d9")
        im = ax.imshow(data, cmap=cmap_nan, norm=norm, aspect="auto")
        _annotate_cells(ax, rho.to_numpy(dtype=float), star.to_numpy(dtype=object), norm, 6.8)
        ax.set_yticks(range(len(events)), events)
        _cell_grid(ax, qualities, len(events), 0.8, 1.2)
        cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cbar.set_label("Spearman's \u03c1")
        ax.set_xlabel("affective quality (circumplex order) and ISO coordinates")
        ax.set_ylabel(source.x_name)
        _title(fig, f"Spearman's \u03c1: {source.x_name} x affective quality ({_where(source, group)})", source)
        nmin, nmax = int(np.nanmin(n.to_numpy())), int(np.nanmax(n.to_numpy()))
        ns = f"n = {nmin:,}" if nmin == nmax else f"n = {nmin:,}-{nmax:,}"
        lines = _caption(fig, f"{ns}; {STAR_NOTE}, {_correction_text(table)} over the "
                      f"{rho.size} tests of this table; grey n/a: no rho (constant column, see report.md).")
        _layout(fig, lines)
    return fig


def heatmap_by_group(table: pd.DataFrame, source: Source, max_rows: int = 48):
    """One stacked heatmap: a block of event rows per group (scene or location), largest groups first.

    Groups are added while the figure stays within ``max_rows`` rows (one printed page).
    """
    groups = source.groups()
    per = len(source.x)
    keep = groups[: max(1, max_rows // max(per, 1))]
    blocks = [(g, matrix(table, "rho", g), matrix(table, "stars", g)) for g in keep]
    qualities = list(blocks[0][1].columns)
    rho = np.vstack([b[1].to_numpy(dtype=float) for b in blocks])
    star = np.vstack([b[2].to_numpy(dtype=object) for b in blocks])
    labels = [e for b in blocks for e in b[1].index]
    _, norm = _scale(rho)
    cmap = plt.get_cmap(CMAP).with_extremes(bad="#d9d9d9")
    nrow = len(labels)
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 2.2 + 0.19 * nrow))
        im = ax.imshow(np.ma.masked_invalid(rho), cmap=cmap, norm=norm, aspect="auto")
        _annotate_cells(ax, rho, star, norm, 5.8)
        ax.set_yticks(range(nrow), labels, fontsize=6.5)
        _cell_grid(ax, qualities, nrow, 0.6, 1.0)
        for k, (g, _, _) in enumerate(blocks):
            top = k * per - 0.5
            if k:
                ax.axhline(top, color="black", linewidth=1.4)
            n = len(source.group_frame(g))
            ax.text(len(qualities) - 0.35, top + per / 2, f"{g}\n(n={n:,})", ha="left", va="center",
                    fontsize=6.5, fontweight="bold")
        cbar = fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.025, pad=0.09, aspect=50)
        cbar.set_label("Spearman's \u03c1")
        _title(fig, f"Spearman's \u03c1 per {source.group_name}: {source.x_name} x affective quality", source)
        more = f"; {len(groups) - len(keep)} smaller {source.group_name}s in spearman.csv only" \
            if len(groups) > len(keep) else ""
        lines = _caption(fig, f"{STAR_NOTE}, {_correction_text(table)} within each {source.group_name} "
                      f"({per * len(qualities)} tests each){more}.")
        _layout(fig, lines, right=0.86)
    return fig


def bars(table: pd.DataFrame, source: Source, group: str = ALL):
    """One panel per quality: rho of each event as a horizontal bar, stars beyond the bar end."""
    rho, star, vmax, norm = _group_rho(table, group)
    events, qualities = list(rho.index), list(rho.columns)
    cmap = plt.get_cmap(CMAP)
    ncols = 5 if len(events) > 6 else 2  # many events: 2 rows of 5 panels fits one page
    nrows = math.ceil(len(qualities) / ncols)
    panel_h = 0.55 + 0.16 * len(events)
    # room beyond the longest bar for "***": narrow panels (5 a row) need more of the axis for it
    reach = 1.6 if ncols > 2 else 1.3
    with plt.rc_context(FONT):
        fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 1.3 + panel_h * nrows),
                                 sharex=True, sharey=True, squeeze=False)
        y = np.arange(len(events))
        for k, q in enumerate(qualities):
            ax = axes[k // ncols][k % ncols]
            vals = rho[q].to_numpy(dtype=float)
            shown = np.nan_to_num(vals, nan=0.0)
            ax.barh(y, shown, color=[cmap(norm(v)) if np.isfinite(v) else "#d9d9d9" for v in vals],
                    edgecolor="#333333", linewidth=0.4, height=0.75)
            for i, v in enumerate(vals):
                if not np.isfinite(v):
                    ax.text(0.02 * vmax, i, "n/a", va="center", ha="left", fontsize=6, color="#555555")
                elif star[q].iat[i]:
                    ax.text(v + (0.02 if v >= 0 else -0.02) * vmax * 2, i, star[q].iat[i], va="center",
                            ha="left" if v >= 0 else "right", fontsize=7)
            ax.axvline(0, color="black", linewidth=0.8)
            ax.set_title(QUALITY_LABELS.get(q, q), pad=3)
            ax.set_xlim(-vmax * reach, vmax * reach)
            ax.set_xticks([-vmax, 0.0, vmax], [f"{-vmax:.1f}".replace("-", "\u2212"), "0", f"{vmax:.1f}"])
            if ncols > 2:
                ax.tick_params(axis="x", labelsize=6.5)
            ax.grid(axis="x", color="#cccccc", linewidth=0.5)
            ax.set_axisbelow(True)
        axes[0][0].set_yticks(y, events)
        axes[0][0].invert_yaxis()
        for ax in axes.flat[len(qualities):]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel("Spearman's \u03c1")
        _title(fig, f"Spearman's \u03c1 per quality: {source.x_name} ({_where(source, group)})", source)
        lines = _caption(fig, f"{STAR_NOTE}, {_correction_text(table)}; grey n/a: no rho (constant column).")
        _layout(fig, lines)
    return fig


def _radar_axes(ax, lo: float, hi: float) -> None:
    ax.set_xticks(RADAR_ANGLES, [q.capitalize() for q in CIRCUMPLEX_ORDER])
    ax.tick_params(axis="x", pad=6)
    ax.set_rlabel_position(22.5)
    ticks = list(range(int(math.floor(lo)), int(math.ceil(hi)) + 1))
    ax.set_yticks(ticks, [str(t) for t in ticks], color="grey", fontsize=6.5)
    ax.set_ylim(lo, hi)


def _closed(values) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=float)
    return np.append(RADAR_ANGLES, RADAR_ANGLES[0]), np.append(v, v[0])


def quality_means(source: Source, groups: list[str]) -> pd.DataFrame:
    """Mean of each quality (circumplex order) per group; index = group, plus a column ``n``."""
    rows = {}
    for g in groups:
        part = source.group_frame(g)
        rows[g] = {**{q: float(part[q].mean()) for q in CIRCUMPLEX_ORDER}, "n": len(part)}
    return pd.DataFrame.from_dict(rows, orient="index")


def radar(source: Source, max_groups: int = 12):
    """Mean qualities per group on a radar (1-5 scale); overlaid when there are few groups."""
    import seaborn as sns

    groups = source.groups()
    shown = groups[: max(1, max_groups - 1)]
    means = quality_means(source, [ALL, *shown])
    n_of = {g: int(n) for g, n in means["n"].items()}
    vals = means[list(CIRCUMPLEX_ORDER)].to_numpy(dtype=float)
    lo = min(1.0, math.floor(np.nanmin(vals))) if np.isfinite(vals).any() else 1.0
    hi = max(5.0, math.ceil(np.nanmax(vals))) if np.isfinite(vals).any() else 5.0
    colours = sns.color_palette("colorblind", max(3, len(shown)))
    overlay = len(shown) <= 4
    with plt.rc_context(FONT):
        if overlay:
            fig = plt.figure(figsize=(PAGE_WIDTH * 0.72, PAGE_WIDTH * 0.82))
            ax = fig.add_subplot(111, polar=True)
            _radar_axes(ax, lo, hi)
            a, v = _closed(means.loc[ALL, list(CIRCUMPLEX_ORDER)])
            ax.plot(a, v, color="black", linestyle="--", linewidth=1.2, label=f"all (n={n_of[ALL]:,})")
            for c, g in zip(colours, shown):
                a, v = _closed(means.loc[g, list(CIRCUMPLEX_ORDER)])
                ax.plot(a, v, color=c, linewidth=1.5, label=f"{g} (n={n_of[g]:,})")
                ax.fill(a, v, color=c, alpha=0.2)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, frameon=False)
            rect = (0.02, 0.08, 0.98, 0.93)
        else:
            ncols = 4
            nrows = math.ceil((len(shown) + 1) / ncols)
            fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 0.6 + 2.2 * nrows),
                                     subplot_kw={"polar": True}, squeeze=False)
            for k, g in enumerate([ALL, *shown]):
                ax = axes.flat[k]
                _radar_axes(ax, lo, hi)
                ax.tick_params(axis="x", labelsize=6, pad=1)
                a, v = _closed(means.loc[ALL, list(CIRCUMPLEX_ORDER)])
                ax.plot(a, v, color="black", linestyle="--", linewidth=0.9)
                if g != ALL:
                    c = colours[(k - 1) % len(colours)]
                    a, v = _closed(means.loc[g, list(CIRCUMPLEX_ORDER)])
                    ax.plot(a, v, color=c, linewidth=1.3)
                    ax.fill(a, v, color=c, alpha=0.25)
                ax.set_title(f"{g} (n={n_of[g]:,})", fontsize=7.5, pad=10)
            for ax in axes.flat[len(shown) + 1:]:
                ax.set_visible(False)
            rect = (0, 0.03, 1, 0.92)
        by = source.group_name
        _title(fig, f"Mean affective qualities per {by}", source)
        more = f"; {len(groups) - len(shown)} smaller {by}s not shown" if len(groups) > len(shown) else ""
        lines = _caption(fig, f"Mean rating per quality (1-5), soundscapy's PAQ radar layout; dashed black: all rows{more}.")
        _layout(fig, lines, left=rect[0], right=rect[2])
    return fig


def circumplex(source: Source, max_groups: int = 12, seed: int = 0, max_points: int = 3000):
    """ISOPleasant x ISOEventful per group: soundscapy scatter + density contours (when n >= 30)."""
    from soundscapy import plotting as sspy_plot  # soundscapy.__init__.pyi hides its re-exports from mypy

    groups = source.groups()
    panels = [ALL, *groups[: max(0, max_groups - 1)]]
    ncols = 2 if len(panels) <= 4 else (3 if len(panels) <= 9 else 4)
    nrows = math.ceil(len(panels) / ncols)
    size = PAGE_WIDTH / ncols
    rng = np.random.default_rng(seed)
    notes = []
    with plt.rc_context(FONT):
        fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 0.9 + size * nrows * 1.02), squeeze=False)
        for k, g in enumerate(panels):
            ax = axes.flat[k]
            part = source.group_frame(g)[["isop", "isoe"]].dropna()
            n = len(part)
            if n > max_points:
                part = part.iloc[np.sort(rng.choice(n, size=max_points, replace=False))]
                notes.append(f"{g}: {max_points:,} of {n:,} points")
            title = f"{g} (n={n:,})"
            style: dict[str, Any] = dict(x="isop", y="isoe", title=None, xlabel="ISOPleasant",
                                         ylabel="ISOEventful", legend=False)
            if n >= DENSITY_MIN:
                sspy_plot.density(part, ax=ax, density_type="full", incl_scatter=True,
                             scatter_kws={"s": 4, "linewidth": 0, "alpha": 0.35}, **style)
            elif n > 0:
                sspy_plot.scatter(part, ax=ax, s=8, **style)
                notes.append(f"{g}: no density (n < {DENSITY_MIN})")
            ax.set_title(title, fontsize=8, pad=3)
            ax.set_aspect("equal")
            lab = 7 if ncols <= 2 else 6
            ax.xaxis.label.set_fontsize(lab)
            ax.yaxis.label.set_fontsize(lab)
            ax.tick_params(labelsize=lab - 0.5)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        _title(fig, f"ISOPleasant x ISOEventful per {source.group_name}", source)
        shown = "" if len(groups) <= len(panels) - 1 else f"; {len(groups) - len(panels) + 1} smaller " \
                                                              f"{source.group_name}s not shown"
        sub = f"; points subsampled (seed {seed}): " + ", ".join(notes) if notes else ""
        lines = _caption(fig, "ISO/TS 12913-3 coordinates; density: Gaussian KDE (soundscapy.density, 10 levels)"
                      f"{shown}{sub}.")
        _layout(fig, lines)
    return fig


# --------------------------------------------------------------------------------------------

def save(fig, target: Path | str, *, dpi: int = 200, formats: tuple[str, ...] = ("png", "pdf"),
         tight_layout: bool = False, bbox_inches: str | None = None) -> list[Path]:
    """The one figure saver of soundaq: write ``fig`` as ``target`` with each suffix of ``formats``
    (``target``'s own suffix, if any, is replaced), atomically, and close the figure.

    Args:
        fig: a matplotlib figure.
        target: the path without (or with any) suffix, e.g. ``out / "leaderboard"``.
        dpi: resolution of raster formats (PNG); vector formats keep their text and lines as vectors.
        formats: file formats, in writing order.
        tight_layout: call ``fig.tight_layout()`` first.
        bbox_inches: passed to ``savefig`` (``"tight"`` crops to the drawn area).

    Returns:
        The written paths, in the order of ``formats``.

    Raises:
        OSError: a file cannot be written (nothing half-written is left under its name).
    """
    target = Path(target)
    paths = []
    try:
        if tight_layout:
            fig.tight_layout()
        for ext in formats:
            path = target.with_suffix(f".{ext}")
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches=bbox_inches)
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def draw_all(source: Source, table: pd.DataFrame, out: Path | str, max_groups: int = 12, seed: int = 0,
             max_points: int = 3000) -> tuple[list[str], list[str]]:
    """Draw every figure; returns (names written, one-line problems for figures that failed)."""
    jobs = [("heatmap", lambda: heatmap(table, source)),
            ("bars", lambda: bars(table, source))]
    if source.group_col and source.groups():
        jobs.append((f"heatmap_by_{_slug(source.group_name)}", lambda: heatmap_by_group(table, source)))
    jobs += [("radar", lambda: radar(source, max_groups)),
             ("circumplex", lambda: circumplex(source, max_groups, seed, max_points))]
    made, problems = [], []
    for name, make in jobs:
        try:
            save(make(), Path(out) / name)
            made.append(name)
        except Exception as exc:  # noqa: BLE001 - one bad figure must not cost the others
            plt.close("all")
            problems.append(f"{name}: {one_line(exc)}")
    return made, problems


def _slug(text: str) -> str:
    s = "".join(c.lower() if c.isalnum() else "_" for c in str(text))
    while "__" in s:
        s = s.replace("__", "_")
    return s.strip("_") or "group"
