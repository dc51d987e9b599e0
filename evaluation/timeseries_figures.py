"""Figures of a soundscape over time, from the window time series of ``soundaq predict --out DIR``.

Input: a time-series table, one row per 30-s window (:func:`soundaq.evaluation.recording_report.timeseries`):
``recording``, ``start_s``, ``end_s``, ``scene``, ``p_<scene>``, the 15 event probabilities, the 8
qualities, ``isop``, ``isoe``, ``ratings`` ("raw" or "clamped") and ``out_of_scale``.

* :func:`trajectory`: ISOPleasant x ISOEventful path of one recording on soundscapy's circumplex axes,
  coloured by time, start and end marked;
* :func:`qualities_over_time`: the 8 qualities (circumplex order) against time, the 1-5 scale shaded,
  out-of-scale values marked;
* :func:`event_timeline`: heatmap of the 15 event probabilities against time, with the predicted
  scene as a strip above;
* :func:`density`: soundscapy's circumplex density (Gaussian KDE) of one recording's windows, as
  soundscapy draws a location's survey responses (scatter only below 30 windows);
* :func:`sites`: several recordings (sites) on one circumplex: density per site when each has at least
  30 windows, else their windows as points, and each site's mean.

Every figure says in its caption whether ISOP/ISOE are the net's raw outputs or clamped to [-1, 1].
Figures are written by :func:`soundaq.evaluation.figures.save` (PNG and PDF, atomically).
"""
from __future__ import annotations

import math
import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from soundaq.base.vocab import CIRCUMPLEX_ORDER, EVENTS, SCENES
from soundaq.evaluation.figures import DENSITY_MIN, FONT, PAGE_WIDTH, _layout

#: Colours of the three scenes in strips and legends (colour-blind safe).
SCENE_COLOURS = {"public_square": "#0072B2", "park": "#009E73", "street_traffic": "#D55E00"}


def time_unit(seconds: float) -> tuple[float, str]:
    """``(divisor, label)`` for a time axis of ``seconds``: s up to 3 min, min up to 3 h, then h."""
    if seconds <= 180:
        return 1.0, "s"
    if seconds <= 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _mid(frame: pd.DataFrame) -> np.ndarray:
    return ((frame["start_s"] + frame["end_s"]) / 2.0).to_numpy(dtype=float)


def _ratings_note(frame: pd.DataFrame) -> str:
    clamped = (frame["ratings"] == "clamped").any() if "ratings" in frame else False
    if clamped:
        return "ISOP/ISOE and qualities clamped to their scales ([-1, 1], 1-5; raw values in the time series)"
    outside = int(((frame["isop"].abs() > 1) | (frame["isoe"].abs() > 1)).sum())
    return ("ISOP/ISOE: the net's raw outputs" + (f", {outside} window(s) outside [-1, 1]" if outside else ""))


def _chars(fig) -> int:
    """Characters per line that fit the figure's width at the title/caption font sizes."""
    return max(40, int(130 * fig.get_size_inches()[0] / PAGE_WIDTH))


def _title(fig, text: str, sub: str) -> None:
    width = int(_chars(fig) * 0.7)
    fig.suptitle("\n".join(textwrap.fill(t, width) for t in (text, sub) if t), fontsize=FONT["figure.titlesize"])


def _finish(fig, caption: str, right: float = 1.0) -> None:
    """Caption in small print at the bottom, wrapped to the figure's width, then a tight layout around it."""
    wrapped = textwrap.fill(caption, _chars(fig))
    fig.text(0.5, 0.005, wrapped, ha="center", va="bottom", fontsize=6.5, color="#333333")
    _layout(fig, wrapped.count("\n") + 1, right=right)


def _circumplex_limits(ax, data: pd.DataFrame) -> None:
    """Square axes from -1 to 1, widened to show raw ISOP/ISOE values beyond the scale."""
    values = np.abs(data.to_numpy(dtype=float))
    reach = float(np.nanmax(values)) if values.size else 1.0
    lim = max(1.0, math.ceil(reach * 10) / 10 + 0.05)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")


def _circumplex_axes(ax, frame: pd.DataFrame) -> None:
    """Soundscapy's circumplex look (grid, axis labels), on :func:`_circumplex_limits`."""
    from soundscapy import plotting as sspy_plot  # soundscapy.__init__.pyi hides its re-exports from mypy

    sspy_plot.scatter(frame.iloc[:0], ax=ax, x="isop", y="isoe", title=None, xlabel="ISOPleasant", ylabel="ISOEventful",
                 legend=False)
    _circumplex_limits(ax, frame[["isop", "isoe"]])


def trajectory(frame: pd.DataFrame, recording: str):
    """ISOPleasant x ISOEventful of one recording's windows in time order, coloured by time."""
    from matplotlib.collections import LineCollection

    part = frame[frame["recording"] == recording].sort_values("start_s")
    t = _mid(part)
    div, unit = time_unit(float(part["end_s"].max()))
    xy = part[["isop", "isoe"]].to_numpy(dtype=float)
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.68, PAGE_WIDTH * 0.62))
        _circumplex_axes(ax, part)
        norm = plt.Normalize(t.min() / div, max(t.max() / div, t.min() / div + 1e-9))
        if len(xy) > 1:
            segments = np.stack([xy[:-1], xy[1:]], axis=1)
            lines = LineCollection(list(segments), cmap="viridis", norm=norm, linewidths=1.2, alpha=0.8)
            lines.set_array(t[:-1] / div)
            ax.add_collection(lines)
        points = ax.scatter(xy[:, 0], xy[:, 1], c=t / div, cmap="viridis", norm=norm, s=14, zorder=3,
                            edgecolors="none")
        ax.scatter(xy[0, 0], xy[0, 1], marker="o", s=70, facecolors="none", edgecolors="black", zorder=4, label="start")
        ax.scatter(xy[-1, 0], xy[-1, 1], marker="s", s=60, facecolors="none", edgecolors="black", zorder=4, label="end")
        ax.legend(loc="upper right", frameon=False, fontsize=7)
        fig.colorbar(points, ax=ax, shrink=0.75, label=f"time ({unit}, window centre)")
        _title(fig, f"Soundscape trajectory: {recording}", f"{part['model'].iloc[0]}, {len(part)} windows")
        _finish(fig, f"ISO/TS 12913-3 circumplex; one point per 30-s window, joined in time order. "
                     f"{_ratings_note(part)}.")
    return fig


def qualities_over_time(frame: pd.DataFrame, recording: str):
    """The 8 qualities of one recording against time (circumplex order), scale 1-5 shaded."""
    import seaborn as sns

    part = frame[frame["recording"] == recording].sort_values("start_s")
    t = _mid(part)
    div, unit = time_unit(float(part["end_s"].max()))
    values = part[list(CIRCUMPLEX_ORDER)].to_numpy(dtype=float)
    lo = min(1.0, math.floor(np.nanmin(values) * 2) / 2)
    hi = max(5.0, math.ceil(np.nanmax(values) * 2) / 2)
    colours = sns.color_palette("colorblind", len(CIRCUMPLEX_ORDER))
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, PAGE_WIDTH * 0.45))
        ax.axhspan(1, 5, color="#f2f2f2", zorder=0)
        for q, c in zip(CIRCUMPLEX_ORDER, colours):
            y = part[q].to_numpy(dtype=float)
            ax.plot(t / div, y, color=c, linewidth=1.2, marker="o" if len(t) < 40 else None, markersize=2.5, label=q)
            out = (y < 1) | (y > 5)
            if out.any():
                ax.scatter(t[out] / div, y[out], marker="x", color="#b00020", s=22, zorder=4, linewidths=1)
        ax.set_ylim(lo - 0.1, hi + 0.1)
        ax.set_xlim(0, max(float(part["end_s"].max()) / div, 1e-9))
        ax.set_xlabel(f"time ({unit}, window centre)")
        ax.set_ylabel("predicted rating")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        n_out = int(((values < 1) | (values > 5)).sum())
        _title(fig, f"Perceived affective qualities over time: {recording}", f"{part['model'].iloc[0]}")
        clamped = (part["ratings"] == "clamped").any()
        note = ("clamped to 1-5 (raw values in the time series)" if clamped else
                f"raw net outputs; {n_out} value(s) outside the 1-5 scale, marked x" if n_out else "raw net outputs")
        _finish(fig, f"Grey band: the 1-5 rating scale; one point per 30-s window; {note}.", right=0.86)
    return fig


def _edges(mid: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    if len(mid) == 1:
        return np.array([start[0], end[0]])
    inner = (mid[:-1] + mid[1:]) / 2.0
    return np.concatenate([[max(start[0], mid[0] - (inner[0] - mid[0]))], inner,
                           [mid[-1] + (mid[-1] - inner[-1])]])


def event_timeline(frame: pd.DataFrame, recording: str):
    """Heatmap of the 15 event probabilities against time, the predicted scene as a strip above."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from soundaq.base.vocab import EVENT_PROB_COLUMNS

    part = frame[frame["recording"] == recording].sort_values("start_s")
    div, unit = time_unit(float(part["end_s"].max()))
    edges = _edges(_mid(part), part["start_s"].to_numpy(float), part["end_s"].to_numpy(float)) / div
    probs = part[list(EVENT_PROB_COLUMNS)].to_numpy(dtype=float).T
    scenes = np.array([[SCENES.index(s) for s in part["scene"]]])
    with plt.rc_context(FONT):
        fig, (top, ax) = plt.subplots(2, 1, figsize=(PAGE_WIDTH, PAGE_WIDTH * 0.62), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 12]})
        top.pcolormesh(edges, [0, 1], scenes, cmap=ListedColormap([SCENE_COLOURS[s] for s in SCENES]),
                       vmin=-0.5, vmax=len(SCENES) - 0.5)
        top.set_yticks([])
        top.set_ylabel("scene", rotation=0, ha="right", va="center")
        top.legend(handles=[Patch(color=SCENE_COLOURS[s], label=s) for s in SCENES], loc="lower left",
                   bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, fontsize=7)
        mesh = ax.pcolormesh(edges, np.arange(len(EVENTS) + 1), probs, cmap="magma", vmin=0, vmax=1)
        ax.set_yticks(np.arange(len(EVENTS)) + 0.5)
        ax.set_yticklabels(EVENTS)
        ax.invert_yaxis()
        ax.set_xlabel(f"time ({unit})")
        _title(fig, f"Sound events over time: {recording}", f"{part['model'].iloc[0]}, {len(part)} windows")
        caption = textwrap.fill("Each column: one 30-s window, drawn around its centre (overlapping windows share the "
                                "time between their centres); event probabilities are the net's sigmoid outputs.",
                                _chars(fig))
        fig.text(0.5, 0.005, caption, ha="center", va="bottom", fontsize=6.5, color="#333333")
        fig.subplots_adjust(left=0.25, right=0.86, top=0.84, bottom=0.1 + 0.025 * caption.count("\n"), hspace=0.06)
        box = ax.get_position()
        cax = fig.add_axes((0.88, box.y0, 0.015, box.height))
        fig.colorbar(mesh, cax=cax, label="event probability")
    return fig


def density(frame: pd.DataFrame, recording: str):
    """Soundscapy's circumplex density of one recording's windows (scatter below 30 windows)."""
    from soundscapy import plotting as sspy_plot  # soundscapy.__init__.pyi hides its re-exports from mypy

    part = frame[frame["recording"] == recording]
    data = part[["isop", "isoe"]].dropna()
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.58, PAGE_WIDTH * 0.62))
        style: dict[str, Any] = dict(x="isop", y="isoe", title=None, xlabel="ISOPleasant", ylabel="ISOEventful",
                                     legend=False)
        if len(data) >= DENSITY_MIN:
            sspy_plot.density(data, ax=ax, density_type="full", incl_scatter=True,
                         scatter_kws={"s": 6, "linewidth": 0, "alpha": 0.5}, **style)
            how = "Gaussian KDE (soundscapy.density, 10 levels) over the windows"
        else:
            sspy_plot.scatter(data, ax=ax, s=14, **style)
            how = f"windows as points: no density below {DENSITY_MIN} windows"
        _circumplex_limits(ax, data)
        _title(fig, f"Circumplex density: {recording}", f"{part['model'].iloc[0]}, {len(data)} windows")
        _finish(fig, f"{how}. {_ratings_note(part)}.")
    return fig


def sites(frame: pd.DataFrame):
    """Several recordings (sites) on one circumplex: per-site density (or points) and each site's mean."""
    import seaborn as sns
    from soundscapy import plotting as sspy_plot  # soundscapy.__init__.pyi hides its re-exports from mypy

    names = list(dict.fromkeys(frame["recording"]))
    data = frame[["recording", "isop", "isoe"]].dropna()
    counts = data.groupby("recording").size()
    n_of = counts.to_dict()
    palette = dict(zip(names, sns.color_palette("colorblind", len(names))))
    with plt.rc_context(FONT):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.85, PAGE_WIDTH * 0.62))
        style: dict[str, Any] = dict(x="isop", y="isoe", hue="recording", palette=palette, title=None,
                                     xlabel="ISOPleasant", ylabel="ISOEventful", legend=False)
        if len(counts) and counts.min() >= DENSITY_MIN:
            sspy_plot.density(data, ax=ax, density_type="simple", incl_scatter=True,
                         scatter_kws={"s": 5, "linewidth": 0, "alpha": 0.4}, **style)
            how = "density per site: soundscapy's simple density (Gaussian KDE, 50% and 5% contours)"
        else:
            sspy_plot.scatter(data, ax=ax, s=10, alpha=0.6, **style)
            how = f"windows as points (a density needs {DENSITY_MIN} windows per site)"
        means = data.groupby("recording", sort=False)[["isop", "isoe"]].mean()
        for name, row in means.iterrows():
            ax.scatter(row["isop"], row["isoe"], marker="D", s=55, color=palette[name], edgecolors="black",
                       linewidths=0.8, zorder=5, label=f"{name} (n={n_of[name]})")
        _circumplex_limits(ax, data[["isop", "isoe"]])
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=7)
        model = ", ".join(dict.fromkeys(frame["model"]))
        _title(fig, "Sites on the circumplex", f"{len(names)} recordings, {model}")
        _finish(fig, f"{how}; diamonds: each site's mean over its 30-s windows. {_ratings_note(frame)}.")
    return fig
