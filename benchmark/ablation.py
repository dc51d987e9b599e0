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


def _score(mine: dict, metric: str, factor: float) -> str:
    """Our cell of one score: the value, or ``mean ± sd`` over seeds when the row summarises several."""
    got = mine.get(metric)
    if got is None:
        return ""
    sd = (mine.get("summary") or {}).get("sd", {}).get(metric) if (mine.get("n_seeds") or 1) > 1 else None
    text = _fmt(float(got) * factor)
    return text if sd is None else f"{text} ± {_fmt(float(sd) * factor)}"


def table_rows(study: str, ours: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a study's table: the paper's rows in order, ``ours`` keyed like
    :data:`PAPER_ABLATIONS` (model name, or scheme for loss weighting) holding leaderboard rows (a
    ``macs`` entry, when present, fills ``ours gmacs``).
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
        cells = [mine.get("model", key) if study == "loss-weighting" else key]
        for column, value in zip(PAPER_COLUMNS[study], paper):
            if column in _SCORES:
                metric, factor = _SCORES[column]
                cells += [_score(mine, metric, factor) if usable else "", _fmt(value)]
            else:
                cells.append(_fmt(value))
        cells.append(f"{int(mine['params']):,}" if mine.get("params") else "")
        if study == "kernels":      # the release's subset classes build all four branches (docs/ablations.md)
            cells.append(f"{RELEASE_VARIANTS[key][1]:,}" if key in RELEASE_VARIANTS else f"{get_spec(key).params:,}")
        cells.append(f"{mine['macs'] / 1e9:.3g}" if mine.get("macs") else "")
        rows.append(cells)
    return header, rows


def write_table(study: str, ours: dict[str, dict], out: Path, data_label: str, synthetic: bool) -> Path:
    """Write ``out/ablation_<study>.md`` and ``.csv`` (atomically); returns the Markdown path."""
    header, rows = table_rows(study, ours)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(out / f"ablation_{study}.csv", buffer.getvalue())
    note = (f"Ours: {data_label}" + (" (synthetic: not comparable with the paper's ARAUS scores)" if synthetic else "")
            + "; `paper ...`: the SoundSCaper paper's table (ARAUS test set). Failed runs are blank.")
    lines = [f"# SoundAQnet ablation: {study}", "", note, "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
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
    data_label, synthetic = "", False
    for folder, models, scheme in study_runs(study):
        outcome = runner(make_settings(models, out / folder, scheme))
        for row in outcome.rows:
            if row.get("status") == "reference":
                continue
            data_label, synthetic = row.get("data") or data_label, bool(row.get("synthetic"))
            if row["model"] not in counted:
                counted[row["model"]] = (macs or net_macs)(row["model"])
            ours[scheme or row["model"]] = {**row, "macs": counted[row["model"]]}
        failed += [scheme or m for m in outcome.failed]
    return write_table(study, ours, out, data_label, synthetic), failed
