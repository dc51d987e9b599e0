"""The whole Spearman analysis of one source, written to a folder: ``spearman.csv``, the figures,
``report.md`` and ``provenance.json`` (``soundaq correlate`` and the leaderboard call it).

The statistics live in :mod:`soundaq.evaluation.correlation` and the drawings in
:mod:`soundaq.evaluation.figures`; this module puts them together (it imports both, neither imports it).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import pandas as pd

from soundaq.evaluation.correlation import (
    PERMUTATION_BELOW,
    QUALITY_LABELS,
    CorrelationError,
    Source,
    agreement,
    predictions_source,
    spearman_table,
    strongest_pairs,
    truth_source,
)


def _versions() -> dict:
    import importlib.metadata as md
    out = {}
    for pkg in ("soundaq", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "soundscapy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def run(source: Source, out: Path | str, correction: str = "fdr_bh", figures: bool = True,
        max_groups: int = 12, top: int = 5, seed: int = 0, max_points: int = 3000) -> dict:
    """Write ``spearman.csv``, the figures (PNG and PDF) and ``report.md`` into ``out``.

    Returns a summary dict (paths, counts, figure problems). Every file is written atomically; a
    figure that fails is recorded in the report and the others still get drawn.
    """
    import datetime as dt

    from soundaq.base.fileio import atomic_write_json, atomic_write_text, output_folder, write_csv

    out = output_folder(out, error=CorrelationError)
    table = spearman_table(source, correction)
    write_csv(table, out / "spearman.csv")  # shortest round-trip repr: reads back bit-identical
    agreed = None
    truth = truth_source(source) if source.kind == "predictions" else None
    if truth is not None:
        truth_table = spearman_table(truth, correction, by_group=False)
        write_csv(truth_table, out / "spearman_labels.csv")
        agreed = agreement(table, truth_table)
    made: list[str] = []
    problems: list[str] = []
    if figures:
        from soundaq.evaluation import figures as figs

        made, problems = figs.draw_all(source, table, out, max_groups=max_groups, seed=seed,
                                       max_points=max_points)
    summary = {
        "source": source.kind, "label": source.label, "synthetic": source.synthetic,
        "correction": correction, "rows": len(source.frame), "groups": source.groups(),
        "tested_pairs": int(table["rho"].notna().sum()), "untested_pairs": int(table["rho"].isna().sum()),
        "significant_pairs": int((table["stars"] != "").sum()), "figures": made, "figure_problems": problems,
        "details": source.details, "notes": list(source.notes), "seed": seed, "versions": _versions(),
        "agreement_with_labels": agreed,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    atomic_write_text(out / "report.md", render_report(source, table, summary, top=top))
    atomic_write_json(out / "provenance.json", summary)
    return summary


def correlate_predictions(predictions, out: Path | str, *, synthetic: bool = False, correction: str = "fdr_bh",
                          figures: bool = True, group_by: str | None = "scene", max_groups: int = 12, top: int = 5,
                          seed: int = 0, max_points: int = 3000) -> dict:
    """The whole analysis for one model's predictions table, written into the folder ``out``.

    ``predictions`` is a path (CSV/Parquet) or a DataFrame with the columns
    :data:`soundaq.base.vocab.PREDICTION_COLUMNS` (extra columns such as the ``true_*`` ones of
    :data:`~soundaq.base.vocab.TRUTH_COLUMNS` are ignored); a ``data`` column containing "synthetic", or
    ``synthetic=True``, marks every figure and the report as synthetic. Writes ``spearman.csv``,
    ``report.md``, ``provenance.json`` and the figures (PNG+PDF) and returns :func:`run`'s summary.
    This is what ``soundaq correlate --predictions`` and the leaderboard call.

    Returns:
        :func:`run`'s summary dict (counts of significant cells, strongest pairs, ``agreement`` with the
        labels when the table holds them, ``figure_problems``).

    Raises:
        CorrelationError: unusable input (one line); a figure that fails is listed in
            ``summary["figure_problems"]`` instead of raising.
    """
    source = predictions_source(predictions, synthetic=synthetic, group_by=group_by)
    return run(source, out, correction=correction, figures=figures, max_groups=max_groups, top=top,
               seed=seed, max_points=max_points)


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return ""
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def _pairs_md(rows: pd.DataFrame) -> list[str]:
    if rows.empty:
        return ["(none)", ""]
    lines = ["| event | quality | rho | p (adjusted) | stars | n |", "|---|---|---:|---:|:---:|---:|"]
    for r in rows.itertuples():
        # pandas-stubs type an itertuples field as any cell value; these columns are str and float
        quality, p_adjusted = str(r.quality), cast(float, r.p_adjusted)
        lines.append(f"| {r.event} | {QUALITY_LABELS.get(quality, quality)} | {r.rho:+.3f} | "
                     f"{_fmt_p(p_adjusted)} | {r.stars} | {r.n} |")
    return [*lines, ""]


def _pair_cell(r) -> tuple[str, str]:
    """A strongest pair as two Markdown cells: "event / quality" and "+0.612**"."""
    return f"{r.event} / {QUALITY_LABELS.get(r.quality, r.quality)}", f"{r.rho:+.3f}{r.stars}"


def render_report(source: Source, table: pd.DataFrame, summary: dict, top: int = 5) -> str:
    """The Markdown report: source and provenance, figures, strongest pairs, untested pairs."""
    corr = {"fdr_bh": "Benjamini-Hochberg FDR", "bonferroni": "Bonferroni", "none": "no correction"}
    lines = [f"# Spearman correlation: {source.x_name} x affective quality", ""]
    if source.synthetic:
        lines += ["> **SYNTHETIC DATA.** These rows come from the embedded synthetic data set; the numbers "
                  "say nothing about real soundscapes.", ""]
    lines += [f"> **Note.** {note}" for note in source.notes] + ([""] if source.notes else [])
    lines += [f"- Source: {source.label}",
              f"- Rows: {summary['rows']:,}" + (f"; groups ({source.group_name}): {len(source.groups())}"
                                                if source.group_col else ""),
              f"- Test: Spearman's rho (scipy.stats.spearmanr, average ranks for ties), two-sided p "
              f"(a permutation test below {PERMUTATION_BELOW} pairs: exact up to 8, 9,999 orders above); "
              f"p adjusted with {corr[summary['correction']]} within each group "
              f"({len(source.x)} x {len(source.y)} = {len(source.x) * len(source.y)} tests per group); "
              "stars on the adjusted p: * < 0.05, ** < 0.01, *** < 0.001",
              f"- Pairs tested: {summary['tested_pairs']:,}; significant: {summary['significant_pairs']:,}; "
              f"not testable: {summary['untested_pairs']:,}",
              f"- Made: {summary['time']}; seed {summary['seed']}; "
              + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()), ""]
    for key, val in source.details.items():
        if val not in (None, [], ""):
            lines.append(f"- {key}: {val}")
    lines.append("")
    agreed = summary.get("agreement_with_labels")
    if agreed:
        lines += ["## Does the predicted structure describe the data?", "",
                  f"Rank correlation (Spearman) between this table's {agreed['cells']} event x quality rho "
                  f"and those of the labels of the same clips (spearman_labels.csv): "
                  f"**{agreed['spearman']:+.3f}** (Pearson {agreed['pearson']:+.3f}; mean |difference| "
                  f"{agreed['mean_abs_difference']:.3f}). Cells with |rho| > {agreed['strong_threshold']:g}: "
                  f"{agreed['strong_predicted']} predicted, {agreed['strong_labels']} in the labels. "
                  "A net that has learnt little moves all its outputs along one axis: many strong predicted "
                  "cells and a low rank correlation.", ""]
    lines += [f"## Strongest pairs over all rows ({source.label})", "", "### Positive", ""]
    pos, neg = strongest_pairs(table, top)
    lines += [*_pairs_md(pos), "### Negative", "", *_pairs_md(neg)]
    if source.group_col:
        lines += [f"## Strongest pair per {source.group_name}", "",
                  f"| {source.group_name} | n | most positive | rho | most negative | rho |",
                  "|---|---:|---|---:|---|---:|"]
        for g in source.groups():
            p, n_ = strongest_pairs(table, 1, g)
            size = len(source.group_frame(g))
            a = _pair_cell(next(p.itertuples())) if len(p) else ("", "")
            b = _pair_cell(next(n_.itertuples())) if len(n_) else ("", "")
            lines.append(f"| {g} | {size:,} | {a[0]} | {a[1]} | {b[0]} | {b[1]} |")
        lines.append("")
    if summary["figures"]:
        lines += ["## Figures", ""]
        for name in summary["figures"]:
            lines += [f"### {name}", "", f"![{name} ({source.label})]({name}.png)", "",
                      f"PDF: [{name}.pdf]({name}.pdf)", ""]
    if summary["figure_problems"]:
        lines += ["## Figures not drawn", ""] + [f"- {p}" for p in summary["figure_problems"]] + [""]
    untested = table[table["rho"].isna()]
    if not untested.empty:
        lines += ["## Pairs without a rho", "", "| group | event | qualities | reason |", "|---|---|---|---|"]
        for (group, e, reason), part in untested.groupby(["group", "event", "reason"], sort=False):
            qs = ", ".join(QUALITY_LABELS.get(q, q) for q in part["quality"])
            lines.append(f"| {group} | {e} | {qs} | {reason} |")
        lines.append("")
    lines += ["Full table: [spearman.csv](spearman.csv) (one row per group, event and quality).", ""]
    return "\n".join(lines)
