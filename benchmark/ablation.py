"""SoundAQnet's ablation studies of the SoundSCaper release, re-run: ``soundaq ablation STUDY``.

Each study trains its variants (or, for ``loss-weighting``, SoundAQnet under each weighting) as one
leaderboard run (:func:`soundaq.benchmark.leaderboard.run_leaderboard`: same data, schedule, budget and
seed for all; resumable) in ``OUT/<study>`` (``OUT/loss-weighting/<scheme>``), then writes
``OUT/ablation_<study>.md`` and ``.csv``: one row per row of the paper's table, in its order, with the
paper's columns in the release's order (:data:`soundaq.models_zoo.variants.PAPER_COLUMNS`), each score
as ours then the paper's (``paper ...``; ours is ``mean ± sd`` over the seeds of a ``--seeds`` run), our
trainable parameters and our multiply-accumulates per 30-s clip in billions (``ours gmacs``:
:func:`soundaq.models_zoo.cost.net_macs`, torch's ``FlopCounterMode``). The paper's numbers are its
ARAUS test-set results; ours are on the chosen data (on the embedded synthetic set they are not
comparable with the paper's: the table says so).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundaq.base.fileio import atomic_write_text
from soundaq.models_zoo.registry import get_spec
from soundaq.models_zoo.variants import FAMILY, PAPER_ABLATIONS, PAPER_COLUMNS, RELEASE_VARIANTS

STUDIES = ("kernels", "blocks", "dilation", "loss-weighting")
#: Paper columns that name the row (copied as they are).
_DESCRIPTORS = {"kernel_sizes", "sub_branches", "nodes", "blocks", "conv2d_layers", "dilation", "scheme", "lambdas"}
#: Paper score column -> (our row's metric, factor).
_SCORES = {"scene_acc_pct": ("scene_acc", 100.0), "event_auc": ("event_auc", 1.0), "aq_mse_mean": ("aq_mse_mean", 1.0),
           **{f"mse_{q}": (f"mse_{q}", 1.0) for q in ("pleasant", "eventful", "chaotic", "vibrant", "uneventful",
                                                       "calm", "annoying", "monotonous")}}


def study_runs(study: str) -> list[tuple[str, list[str], str | None]]:
    """``(subfolder, models, loss weighting)`` of each leaderboard run a study makes."""
    if study == "loss-weighting":
        return [(f"loss-weighting/{scheme}", [FAMILY], scheme) for scheme in PAPER_ABLATIONS[study]]
    return [(study, list(PAPER_ABLATIONS[study]), None)]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, tuple):
        return " ".join(f"{v:g}" for v in value)
    return str(value)


@dataclass(frozen=True)
class _Ours:
    """One of our scores: the value (the mean over seeds in a ``--seeds`` run) and its sd over seeds."""

    mean: float | None
    sd: float | None = None


def _ours(mine: dict, metric: str, factor: float) -> _Ours:
    got = mine.get(metric)
    if got is None:
        return _Ours(None)
    sd = (mine.get("summary") or {}).get("sd", {}).get(metric) if (mine.get("n_seeds") or 1) > 1 else None
    return _Ours(float(got) * factor, None if sd is None else float(sd) * factor)


def table_rows(study: str, ours: dict[str, dict]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a study's table: the paper's rows in order, ``ours`` keyed like
    :data:`PAPER_ABLATIONS` (model name, or scheme for loss weighting) holding leaderboard rows (a
    ``macs`` entry, when present, fills ``ours gmacs``). Our scores are :class:`_Ours` cells, the rest
    plain values (None: blank).
    """
    header = ["model"]
    for column in PAPER_COLUMNS[study]:
        if column in _DESCRIPTORS:
            header.append(column)
        elif column in _SCORES:
            header += [f"ours {column}", f"paper {column}"]
        else:
            header.append(f"paper {column}")
    header += ["ours params", *(["release class params"] if study == "kernels" else []), "ours gmacs"]
    rows = []
    for key, paper in PAPER_ABLATIONS[study].items():
        mine = ours.get(key) or {}
        usable = mine.get("status") in ("ok", "diverged")
        cells: list[Any] = [mine.get("model", key) if study == "loss-weighting" else key]
        for column, value in zip(PAPER_COLUMNS[study], paper):
            if column in _SCORES:
                metric, factor = _SCORES[column]
                cells += [_ours(mine, metric, factor) if usable else _Ours(None), value]
            else:
                cells.append(value)
        cells.append(int(mine["params"]) if mine.get("params") else None)
        if study == "kernels":      # the release's subset classes build all four branches (docs/ablations.md)
            cells.append(RELEASE_VARIANTS[key][1] if key in RELEASE_VARIANTS else get_spec(key).params)
        cells.append(float(f"{mine['macs'] / 1e9:.3g}") if mine.get("macs") else None)
        rows.append(cells)
    return header, rows


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    """The table as CSV that other tools read as numbers: each of our scores a column, its sd over seeds
    (when any row has one) the next column ``<name> sd``; integers without separators.
    """
    with_sd = {i for row in rows for i, c in enumerate(row) if isinstance(c, _Ours) and c.sd is not None}
    names: list[str] = []
    for i, name in enumerate(header):
        names += [name, f"{name} sd"] if i in with_sd else [name]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        out: list[str] = []
        for i, c in enumerate(row):
            if isinstance(c, _Ours):
                out += [_fmt(c.mean), _fmt(c.sd)] if i in with_sd else [_fmt(c.mean)]
            else:
                out.append(_fmt(c))
        writer.writerow(out)
    return buffer.getvalue()


def _markdown_cell(cell: Any) -> str:
    if isinstance(cell, _Ours):
        return _fmt(cell.mean) if cell.sd is None else f"{_fmt(cell.mean)} ± {_fmt(cell.sd)}"
    return f"{cell:,}" if isinstance(cell, int) else _fmt(cell)


def write_table(study: str, ours: dict[str, dict], out: Path, data_label: str, synthetic: bool,
                seeds: str = "") -> Path:
    """Write ``out/ablation_<study>.md`` and ``.csv`` (atomically); returns the Markdown path.

    ``seeds`` names the training seeds of a ``--seeds`` run (``0-4``): the note says our cells are their
    mean ± sd.
    """
    header, rows = table_rows(study, ours)
    atomic_write_text(out / f"ablation_{study}.csv", _csv(header, rows))
    over = (f"; each of our scores is the mean ± sd (n - 1) over the training seeds {seeds} (the CSV gives the sd in "
            "a column `<name> sd`)" if seeds else "")
    note = (f"Ours: {data_label}" + (" (synthetic: not comparable with the paper's ARAUS scores)" if synthetic else "")
            + over + "; `paper ...`: the SoundSCaper paper's ablation table (ARAUS test set; its full SoundAQnet row "
            "is the ablation's own runs, so it differs from the paper's main table, e.g. 95.31 against 96.09 % "
            "scene accuracy). `ours gmacs`: multiply-accumulates per 30-s clip, billions. Failed runs are blank.")
    lines = [f"# SoundAQnet ablation: {study}", "", note, "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows]
    return atomic_write_text(out / f"ablation_{study}.md", "\n".join(lines) + "\n")


def run_study(study: str, make_settings: Callable[[list[str], Path, str | None], Any], out: Path,
              runner: Callable | None = None, macs: Callable[[str], int] | None = None) -> tuple[Path, list[str]]:
    """Run (or resume) every leaderboard run of ``study`` and write its table.

    Args:
        study: the study's name (one of ``STUDIES``).
        make_settings: ``(models, folder, loss_weighting) -> Settings`` of one run.
        out: the study's folder: one leaderboard run per variant under it, and ``ablation_<study>.csv``/``.md``.
        runner: the leaderboard runner (default :func:`run_leaderboard`; tests pass a stub).
        macs: model name -> MACs per 30-s clip (default :func:`soundaq.models_zoo.cost.net_macs`).

    Returns:
        the table's path and the models (or schemes) whose runs failed.
    """
    from soundaq.benchmark.leaderboard import run_leaderboard
    from soundaq.models_zoo.cost import net_macs

    runner = runner or run_leaderboard
    counted: dict[str, int] = {}
    ours: dict[str, dict] = {}
    failed: list[str] = []
    data_label, synthetic, seeds = "", False, ""
    for folder, models, scheme in study_runs(study):
        outcome = runner(make_settings(models, out / folder, scheme))
        seeds = outcome.seeds or seeds       # "0-4" for a --seeds grid, "" for one seed
        for row in outcome.rows:
            if row.get("status") == "reference":
                continue
            data_label, synthetic = row.get("data") or data_label, bool(row.get("synthetic"))
            if row["model"] not in counted:
                counted[row["model"]] = (macs or net_macs)(row["model"])
            ours[scheme or row["model"]] = {**row, "macs": counted[row["model"]]}
        failed += [scheme or m for m in outcome.failed]
    return write_table(study, ours, out, data_label, synthetic, seeds), failed
