"""The analysis folder of ``soundaq predict --out DIR``: a soundscape over time, as tables, a report and figures.

Written (atomically; a rerun replaces them)::

    DIR/timeseries.csv        one row per 30-s window of every recording (see timeseries())
    DIR/timeseries.parquet    the same, when pyarrow is installed (the report says when it is not)
    DIR/recordings.csv        one row per recording: means over its windows, duration, windows, flags
    DIR/predictions.json      the clip objects of `soundaq predict` (every window included)
    DIR/summary.json          settings, per-recording summaries, out-of-scale counts, files
    DIR/report.md             the same for people
    DIR/figures/<recording>_{trajectory,qualities,events,density}.png|.pdf   (recordings of 2+ windows)
    DIR/figures/sites.png|.pdf                                                 (2+ recordings)
"""
from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from soundaq.base import predictions_table
from soundaq.base.fileio import atomic_path, atomic_write_json, atomic_write_text, output_folder, sha256_file
from soundaq.base.vocab import EVENT_PROB_COLUMNS, EVENTS, QUALITIES, SCENES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The outputs checked against their scales, in report order.
SCALED = (*QUALITIES, "isop", "isoe")


def timeseries(results: Sequence[Mapping]) -> pd.DataFrame:
    """One row per window of every recording: ``recording``, ``window`` (0, 1, ...), ``start_s``,
    ``end_s``, ``model``, ``scene``, the scene and event probabilities, the 8 qualities, ``isop``,
    ``isoe``, ``ratings``, ``out_of_scale`` and, when clamped, the ``raw_*`` columns.
    """
    from soundaq.models_zoo.predict import flat_record, table_columns

    rows = [flat_record(r, w, int(w["index"]), w["start_s"], w["end_s"]) for r in results for w in r["windows"]]
    cols = ["recording", "window", "start_s", "end_s",
            *[c for c in table_columns(results) if c not in ("clip", "window", "start_s", "end_s")]]
    frame = pd.DataFrame(rows).rename(columns={"clip": "recording"})
    return frame.reindex(columns=cols)


def out_of_scale_counts(frame: pd.DataFrame) -> dict[str, dict]:
    """Per output (8 qualities, isop, isoe): windows whose raw value left the scale, and the raw range."""
    out = {}
    for name in SCALED:
        raw = frame[f"raw_{name}"] if f"raw_{name}" in frame else frame[name]
        lo, hi = (-1.0, 1.0) if name in ("isop", "isoe") else (1.0, 5.0)
        values = raw.to_numpy(dtype=float)
        n = int(((values < lo) | (values > hi)).sum())
        out[name] = {"windows": n, "min": float(np.min(values)), "max": float(np.max(values)), "scale": [lo, hi]}
    return out


def recording_summary(frame: pd.DataFrame, result: Mapping) -> dict:
    """Summary of one recording from its windows (``frame``) and its clip object (``result``)."""
    share = frame["scene"].value_counts(normalize=True)
    top = frame[list(EVENT_PROB_COLUMNS)].mean().sort_values(ascending=False)
    names = dict(zip(EVENT_PROB_COLUMNS, EVENTS))
    return {
        "recording": result["clip"], "windows": len(frame),
        "duration_s": float(frame["end_s"].max()),
        "scene": result["scene"], "scene_share": {s: round(float(share.get(s, 0.0)), 4) for s in SCENES},
        "top_events": {names[str(c)]: round(float(v), 4) for c, v in top.head(5).items()},
        "isop_mean": float(result["isop"]), "isoe_mean": float(result["isoe"]),
        "isop_range": [float(frame["isop"].min()), float(frame["isop"].max())],
        "isoe_range": [float(frame["isoe"].min()), float(frame["isoe"].max())],
        "qualities_mean": {q: float(result["qualities"][q]) for q in QUALITIES},
        "out_of_scale_windows": int((frame["out_of_scale"].fillna("") != "").sum()),
        "out_of_scale_outputs": [n for n in SCALED if any(n in str(f).split(";") for f in frame["out_of_scale"])],
        "out_of_scale": out_of_scale_counts(frame),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "recording"


def _write_parquet(frame: pd.DataFrame, target: Path) -> str | None:
    """Write Parquet when an engine is installed; else the reason it was not written."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "timeseries.parquet not written: pyarrow is not installed (pip install pyarrow, or soundaq[parquet])"
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return None


def _figures(frame: pd.DataFrame, out: Path) -> tuple[list[str], list[str]]:
    from soundaq.base.errors import first_line
    from soundaq.evaluation import timeseries_figures as tf
    from soundaq.evaluation.figures import save

    jobs: list[tuple[str, Callable[[], Figure]]] = []
    counts = frame.groupby("recording", sort=False).size()
    for name in dict.fromkeys(frame["recording"]):
        if counts[name] < 2:  # a single window has no course over time: it appears in the sites figure
            continue
        slug = _slug(name)
        jobs += [(f"{slug}_trajectory", partial(tf.trajectory, frame, name)),
                 (f"{slug}_qualities", partial(tf.qualities_over_time, frame, name)),
                 (f"{slug}_events", partial(tf.event_timeline, frame, name)),
                 (f"{slug}_density", partial(tf.density, frame, name))]
    if frame["recording"].nunique() > 1:
        jobs.append(("sites", lambda: tf.sites(frame)))
    made, problems = [], []
    for name, make in jobs:
        try:
            save(make(), Path(out) / name)
            made.append(name)
        except Exception as exc:  # noqa: BLE001 - one bad figure must not cost the others (or the tables)
            import matplotlib.pyplot as plt

            plt.close("all")
            problems.append(f"figure {name} failed: {type(exc).__name__}: {first_line(exc)}")
    return made, problems


def write_analysis(results: Sequence[Mapping], out: Path | str, *, checkpoint: Path | str | None = None,
                   hop_s: float = 30.0, clamp: bool = False, calibration: str | None = None,
                   skipped: Sequence[str] = (), figures: bool = True) -> dict:
    """Write the analysis folder (module docstring) for ``soundaq predict`` results.

    Args:
        results: clip objects from :func:`soundaq.models_zoo.predict.predict_files`.
        out: the folder (created).
        checkpoint: the checkpoint used (its name and sha256 are recorded).
        hop_s: seconds between window starts.
        clamp: whether the ratings were clamped (recorded; the results say it too).
        calibration: how the audio levels were calibrated (recorded).
        skipped: one-line messages of the inputs that could not be predicted.
        figures: draw the figures.

    Returns:
        ``{"windows", "report", "figures", "notes"}``: the window count, the report path, the figures
        written and notes for the user (Parquet not written, a figure that failed).
    """
    out = output_folder(out)
    frame = timeseries(results)
    notes = []
    predictions_table.write(frame, out / "timeseries.csv")
    parquet_note = _write_parquet(frame, out / "timeseries.parquet")
    if parquet_note:
        notes.append(parquet_note)
    per = [recording_summary(frame[frame["recording"] == r["clip"]], r) for r in results]
    from soundaq.models_zoo.predict import results_frame

    means = results_frame(results)
    means = means[means["window"] == "mean"].drop(columns=["window"]).rename(columns={"clip": "recording"})
    means.insert(1, "windows", [p["windows"] for p in per])
    means.insert(2, "duration_s", [p["duration_s"] for p in per])
    predictions_table.write(means, out / "recordings.csv")
    atomic_write_json(out / "predictions.json", list(results))
    made, problems = _figures(frame, out / "figures") if figures else ([], [])
    notes.extend(problems)
    summary = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": results[0]["model"] if results else None,
        "checkpoint": None if checkpoint is None else {"file": Path(checkpoint).name,
                                                       "sha256": sha256_file(checkpoint)},
        "hop_s": hop_s, "window_s": 30.0, "ratings": "clamped" if clamp else "raw",
        "iso_coordinates": "the net's ISOP/ISOE outputs" + (", clamped to [-1, 1]" if clamp else ", raw"),
        "calibration": calibration, "windows": len(frame),
        "out_of_scale": out_of_scale_counts(frame) if len(frame) else {},
        "recordings": per, "skipped": list(skipped),
        "files": {"timeseries_csv": "timeseries.csv",
                  "timeseries_parquet": None if parquet_note else "timeseries.parquet",
                  "recordings_csv": "recordings.csv", "predictions_json": "predictions.json",
                  "figures": [f"figures/{m}.png" for m in made]},
        "notes": notes,
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", render_report(summary))
    return {"windows": len(frame), "report": str(out / "report.md"), "figures": made, "notes": notes}


def _fmt_range(lo: float, hi: float) -> str:
    return f"{lo:.2f} to {hi:.2f}"


def render_report(summary: Mapping) -> str:
    """report.md from :func:`write_analysis`'s summary."""
    clamp = summary["ratings"] == "clamped"
    lines = [f"# Soundscape over time: {len(summary['recordings'])} recording(s), {summary['model']}", "",
             f"- checkpoint: {summary['checkpoint']['file'] if summary['checkpoint'] else '-'}"
             + (f" (sha256 {summary['checkpoint']['sha256'][:16]})" if summary["checkpoint"] else ""),
             f"- windows: 30 s every {summary['hop_s']:g} s; {summary['windows']} in all",
             f"- calibration: {summary['calibration'] or '-'}",
             f"- ratings: **{summary['ratings']}**"
             + (" (qualities clipped to 1-5, ISOP/ISOE to [-1, 1]; raw values in the raw_* columns)" if clamp
                else " (the net's outputs as they are; out-of-scale values flagged, `--clamp` clips them)"),
             f"- ISOPleasant/ISOEventful: {summary['iso_coordinates']}", "",
             "| recording | duration | windows | scene (share of windows) | top events (mean probability) "
             "| ISOP mean (range) | ISOE mean (range) | windows out of scale: outputs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["recordings"]:
        share = ", ".join(f"{s} {v:.0%}" for s, v in sorted(r["scene_share"].items(), key=lambda kv: -kv[1]) if v)
        events = ", ".join(f"{e} {p:.2f}" for e, p in list(r["top_events"].items())[:3])
        isop, isoe = f"{r['isop_mean']:+.2f}", f"{r['isoe_mean']:+.2f}"
        if r["windows"] > 1:
            isop += f" ({_fmt_range(*r['isop_range'])})"
            isoe += f" ({_fmt_range(*r['isoe_range'])})"
        flags = f"{r['out_of_scale_windows']}" + (f": {', '.join(r['out_of_scale_outputs'])}"
                                                 if r["out_of_scale_outputs"] else "")
        lines.append(f"| {r['recording']} | {r['duration_s']:.0f} s | {r['windows']} | {share} | {events} "
                     f"| {isop} | {isoe} | {flags} |")
    lines += ["", "## Values outside the scale (raw outputs)", "",
              "| output | scale | windows outside | raw min | raw max |", "|---|---|---|---|---|"]
    for name, c in summary["out_of_scale"].items():
        lines.append(f"| {name} | {c['scale'][0]:g} to {c['scale'][1]:g} | {c['windows']} | {c['min']:.2f} "
                     f"| {c['max']:.2f} |")
    if summary["files"]["figures"]:
        lines += ["", "## Figures", ""] + [f"- [{Path(f).stem}]({f})" for f in summary["files"]["figures"]]
    if summary["skipped"]:
        lines += ["", "## Skipped inputs", ""] + [f"- {s}" for s in summary["skipped"]]
    if summary["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


__all__ = ["out_of_scale_counts", "recording_summary", "render_report", "timeseries", "write_analysis"]
