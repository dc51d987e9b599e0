"""Spearman correlation between sound events (or perceived sound sources) and affective qualities.

One table shape serves three sources, so the same code runs on a model's predictions, on the
paper's human labels and on the International Soundscape Database (see :mod:`soundaq.evaluation.isd`):

* a :class:`Source` holds a tidy frame, the "event" columns (x), the quality columns (y, in
  circumplex order, then ISOPleasant and ISOEventful) and an optional grouping column (scene or
  location);
* :func:`spearman_table` gives one row per (group, event, quality): ``rho`` and ``p`` exactly as
  :func:`scipy.stats.spearmanr` returns them, ``p_adjusted`` within each group
  (Benjamini-Hochberg, Bonferroni or none), ``stars`` on the adjusted p and ``n``; a pair that
  cannot be tested (a constant column, too few values) gets empty numbers and a ``reason``;
* :func:`run` writes ``spearman.csv``, the figures and ``report.md`` into a folder;
  :func:`correlate_predictions` does all of it for one predictions table (the leaderboard's entry).

Bad input raises :class:`CorrelationError` with a one-line message naming the file and the fix.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from soundaq.base.errors import first_line
from soundaq.base.filekinds import expect, sniff
from soundaq.base.textio import TextFileError, read_csv
from soundaq.base.vocab import (
    CIRCUMPLEX_ORDER,
    EVENT_COLUMNS,
    EVENT_PROB_COLUMNS,
    EVENTS,
    QUALITIES,
    SCENES,
    SOUNDSCAPY_PAQ,
    iso_coordinates,
)

#: Correction methods for multiple comparisons (``--correction``).
CORRECTIONS: tuple[str, ...] = ("fdr_bh", "bonferroni", "none")
#: Significance stars on the adjusted p, as in the paper's figure: strictly below each level.
STAR_LEVELS: tuple[tuple[float, str], ...] = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
#: The group label of the analysis over all rows.
ALL = "all"
#: Quality columns of every analysis: the 8 qualities in circumplex order, then the ISO coordinates.
QUALITY_ORDER: tuple[str, ...] = (*CIRCUMPLEX_ORDER, "isop", "isoe")
QUALITY_LABELS: dict[str, str] = {**{q: q.capitalize() for q in CIRCUMPLEX_ORDER},
                                  "isop": "ISOPleasant", "isoe": "ISOEventful"}
TABLE_COLUMNS: tuple[str, ...] = ("group", "event", "quality", "rho", "p", "p_adjusted", "stars", "n",
                                  "correction", "reason")
MIN_PAIRS = 3


class CorrelationError(ValueError):
    """Input the analysis cannot use; the message names the file and the fix."""


@dataclass
class Source:
    """What to correlate: ``frame[x[event]]`` against ``frame[y[quality]]``, overall and per group.

    ``kind`` is ``predictions``, ``labels`` or ``isd``; ``title`` names the source in every figure
    (with "synthetic" appended when ``synthetic``); ``x_name`` says what the x variables are
    ("event probability", "event label", "perceived source dominance").
    """

    kind: str
    title: str
    frame: pd.DataFrame
    x: dict[str, str]
    y: dict[str, str]
    x_name: str
    group_col: str | None = None
    group_name: str = "scene"
    synthetic: bool = False
    details: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The source as figures and reports name it, saying "synthetic" when it is."""
        return f"{self.title} [SYNTHETIC DATA]" if self.synthetic else self.title

    def groups(self) -> list[str]:
        """Group values: scenes in vocab order; anything else (locations) largest first, then by name."""
        if not self.group_col:
            return []
        counts = self.frame[self.group_col].dropna().astype(str).value_counts()
        if set(counts.index) <= set(SCENES):
            return [s for s in SCENES if s in counts.index]
        return sorted(counts.index, key=lambda g: (-int(counts[g]), g))

    def group_frame(self, group: str) -> pd.DataFrame:
        if group == ALL or not self.group_col:
            return self.frame
        return self.frame[self.frame[self.group_col].astype(str) == group]


# --------------------------------------------------------------------------------------------
# statistics

def spearman_pair(x, y) -> tuple[float, float, int, str]:
    """Spearman's rho and its two-sided p for one pair, dropping rows where either is missing.

    Returns ``(rho, p, n, reason)``; rho and p come straight from :func:`scipy.stats.spearmanr`
    (average ranks for ties). When the test is undefined, rho and p are NaN and ``reason`` says why.
    """
    from scipy.stats import spearmanr

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(keep.sum())
    if n < MIN_PAIRS:
        return math.nan, math.nan, n, f"only {n} paired values (need at least {MIN_PAIRS})"
    if np.all(x == x[0]):
        return math.nan, math.nan, n, _constant_reason("event", x[0])
    if np.all(y == y[0]):
        return math.nan, math.nan, n, _constant_reason("quality", y[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    if not math.isfinite(rho):
        return math.nan, math.nan, n, "rank correlation undefined for these values"
    return rho, p, n, ""


def _constant_reason(what: str, value: float) -> str:
    if what == "event" and value == 0:
        return "event never occurs here (constant 0)"
    if what == "event" and value == 1:
        return "event occurs in every row here (constant 1)"
    return f"{what} is constant ({value:g}) here"


def adjust_pvalues(p, method: str = "fdr_bh") -> np.ndarray:
    """Adjust p-values for multiple comparisons; NaN entries stay NaN and do not count.

    ``fdr_bh``: Benjamini-Hochberg step-up, ``p_(i) * m / i`` made monotone from the largest down
    and capped at 1; ``bonferroni``: ``min(1, p * m)``; ``none``: p unchanged.
    """
    if method not in CORRECTIONS:
        raise CorrelationError(f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}")
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    vals = p[ok]
    m = vals.size
    if m == 0:
        return out
    if method == "none":
        adj = vals.copy()
    elif method == "bonferroni":
        adj = np.minimum(vals * m, 1.0)
    else:
        order = np.argsort(vals, kind="mergesort")
        ranked = vals[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(ranked, 1.0)
    out[ok] = adj
    return out


def stars(p_adjusted: float) -> str:
    """``***``, ``**``, ``*`` for an adjusted p below 0.001, 0.01, 0.05; empty otherwise or when NaN."""
    if p_adjusted is None or not math.isfinite(p_adjusted):
        return ""
    for level, mark in STAR_LEVELS:
        if p_adjusted < level:
            return mark
    return ""


def spearman_table(source: Source, correction: str = "fdr_bh", by_group: bool = True) -> pd.DataFrame:
    """One row per (group, event, quality); the first group is ``all`` (every row).

    The correction runs within each group over the pairs that could be tested, so each group is
    one family of ``len(events) * len(qualities)`` tests.
    """
    if correction not in CORRECTIONS:
        raise CorrelationError(f"unknown correction {correction!r}; use one of {', '.join(CORRECTIONS)}")
    groups = [ALL] + (source.groups() if by_group else [])
    rows = []
    for group in groups:
        part = source.group_frame(group)
        block = []
        for event, xcol in source.x.items():
            xv = part[xcol].to_numpy(dtype=np.float64)
            for quality, ycol in source.y.items():
                rho, p, n, reason = spearman_pair(xv, part[ycol].to_numpy(dtype=np.float64))
                block.append({"group": group, "event": event, "quality": quality, "rho": rho, "p": p,
                              "n": n, "reason": reason})
        adj = adjust_pvalues([r["p"] for r in block], correction)
        for r, pa in zip(block, adj):
            r["p_adjusted"] = float(pa)
            r["stars"] = stars(pa)
            r["correction"] = correction
        rows.extend(block)
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table["n"] = table["n"].astype(int)
    return table


def strongest_pairs(table: pd.DataFrame, k: int = 5, group: str = ALL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` most positive and ``k`` most negative rho of one group (tested pairs only)."""
    part = table[(table["group"] == group) & table["rho"].notna()]
    pos = part[part["rho"] > 0].sort_values("rho", ascending=False, kind="mergesort").head(k)
    neg = part[part["rho"] < 0].sort_values("rho", ascending=True, kind="mergesort").head(k)
    return pos, neg


def matrix(table: pd.DataFrame, value: str = "rho", group: str = ALL) -> pd.DataFrame:
    """A group's table as an events x qualities matrix (rows and columns in table order)."""
    part = table[table["group"] == group]
    events = list(dict.fromkeys(part["event"]))
    qualities = list(dict.fromkeys(part["quality"]))
    return part.pivot(index="event", columns="quality", values=value).loc[events, qualities]


# --------------------------------------------------------------------------------------------
# sources

def _where(path) -> str:
    return str(path) if path is not None else "the predictions table"


def _numeric(frame: pd.DataFrame, columns, where: str) -> None:
    """Coerce columns to float in place; a non-number names its row and column."""
    for col in columns:
        if pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col]):
            frame[col] = frame[col].astype(np.float64)
            continue
        conv = pd.to_numeric(frame[col], errors="coerce")
        bad = conv.isna() & frame[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise CorrelationError(
                f"{where}: column {col!r} row {i + 1} holds {frame[col].iloc[i]!r}, not a number; "
                "fix that cell or regenerate the table")
        frame[col] = conv.astype(np.float64)


def _quality_name_hint(columns) -> str:
    cols = set(columns)
    if set(SOUNDSCAPY_PAQ) <= cols:
        return " (found soundscapy's PAQ1..PAQ8: rename them with soundaq.base.vocab.from_soundscapy)"
    lower = {c.lower(): c for c in cols}
    wrong = [lower[q] for q in QUALITIES if q in lower and lower[q] != q]
    if wrong:
        return f" (found {', '.join(wrong)}: quality columns are lower case)"
    return ""


def is_synthetic(frame: pd.DataFrame) -> bool:
    """True when a ``data`` column says the rows come from the embedded synthetic set."""
    if "data" not in frame.columns:
        return False
    return bool(frame["data"].astype(str).str.contains("synthetic", case=False, na=False).any())


def _table_fix(path: Path) -> str | None:
    """The fix for a file of another kind given as a predictions table (None: that kind's usual one)."""
    if sniff(path) == "xlsx":
        return "save the predictions sheet as CSV"
    return None


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a predictions table (CSV, or Parquet by suffix), turning read failures into one line."""
    path = Path(path)
    if not path.exists():
        raise CorrelationError(f"{path}: file not found; pass the predictions table written by `soundaq predict`")
    expect(path, ("predictions-table",), "a predictions table (.csv)", fix=_table_fix(path))
    if path.is_dir():
        raise CorrelationError(f"{path}: is a folder; pass a predictions .csv file "
                               "(for a label folder use --labels)")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            # round_trip: the floats the writer had, to the last bit (pandas' default parser can be 1 ulp
            # off, which can split or merge near-ties and change rho in the last digits)
            frame = read_csv(path, float_precision="round_trip")
    except TextFileError as exc:   # not UTF-8, a binary file: already one line naming file:line and the fix
        raise CorrelationError(str(exc)) from None
    except pd.errors.EmptyDataError:
        raise CorrelationError(f"{path}: the file is empty; pass a predictions table with a header "
                               "and one row per clip") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, ImportError) as exc:
        raise CorrelationError(f"{path}: cannot read the table ({first_line(exc)}); "
                               "write it as CSV with a header row") from None
    return frame


def predictions_source(table, path: Path | str | None = None, synthetic: bool = False,
                       group_by: str | None = "scene") -> Source:
    """A model's predictions table: event probabilities against predicted qualities (as the paper).

    ``table`` is a DataFrame or a path. Required columns: the 15 ``event_prob_<slug>`` and the 8
    quality names; ``isop``/``isoe`` are computed from the qualities when absent; ``group_by``
    (default ``scene``, the predicted scene) is used when present.
    """
    if not isinstance(table, pd.DataFrame):
        path = Path(table)
        table = read_table(path)
    where = _where(path)
    frame = table.copy()
    if frame.empty or len(frame.columns) == 0:
        raise CorrelationError(f"{where}: the table has no rows; pass a predictions table with one row per clip")
    missing_q = [q for q in QUALITIES if q not in frame.columns]
    if missing_q:
        raise CorrelationError(
            f"{where}: missing quality column(s) {', '.join(missing_q)}{_quality_name_hint(frame.columns)}; "
            f"the table needs the columns {', '.join(QUALITIES)}")
    missing_e = [c for c in EVENT_PROB_COLUMNS if c not in frame.columns]
    if missing_e:
        hint = ""
        if all(c in frame.columns for c in EVENT_COLUMNS):
            hint = " (this looks like a label table: use --labels DIR for ground truth)"
        raise CorrelationError(
            f"{where}: missing event column(s) {', '.join(missing_e[:3])}"
            f"{' and %d more' % (len(missing_e) - 3) if len(missing_e) > 3 else ''}{hint}; "
            "write one event_prob_<event> column per event (soundaq.base.vocab.EVENT_PROB_COLUMNS)")
    models = frame["model"].dropna().astype(str).unique() if "model" in frame.columns else []
    if len(models) > 1:
        raise CorrelationError(f"{where}: holds predictions of {len(models)} models ({', '.join(models[:4])}); "
                               "pass one model's table (filter the rows by the model column)")
    _numeric(frame, [*EVENT_PROB_COLUMNS, *QUALITIES], where)
    derived = [c for c in ("isop", "isoe") if c not in frame.columns]
    if derived:
        isop, isoe = iso_coordinates(*(frame[q] for q in QUALITIES))
        frame["isop"], frame["isoe"] = isop, isoe
    else:
        _numeric(frame, ["isop", "isoe"], where)
    valid = frame[[*EVENT_PROB_COLUMNS, *QUALITIES]].notna().any(axis=1)
    if not valid.any():
        raise CorrelationError(f"{where}: every event and quality value is empty; regenerate the predictions")
    group_col = group_by if group_by and group_by in frame.columns else None
    if group_by and group_by != "scene" and group_col is None:
        raise CorrelationError(f"{where}: no column {group_by!r} to group by; pick an existing column with --group-by")
    model = models[0] if len(models) else None
    title = "Predictions" + (f" of {model}" if model else "") + (f" ({Path(path).name})" if path else "")
    synthetic = bool(synthetic or is_synthetic(frame))
    details = {"path": str(path) if path else None, "model": model, "rows": int(len(frame)),
               "derived_iso": derived, "grouped_by": group_col}
    if path is not None:
        from soundaq.base.fileio import sha256_file
        details["sha256"] = sha256_file(path)
    return Source(kind="predictions", title=title, frame=frame,
                  x={e: c for e, c in zip(EVENTS, EVENT_PROB_COLUMNS)},
                  y={q: q for q in QUALITY_ORDER}, x_name="predicted event probability",
                  group_col=group_col, group_name="predicted scene" if group_col == "scene" else str(group_col),
                  synthetic=synthetic, details=details)


def labels_source(folder: Path | str, split: str = "test", synthetic: bool = False,
                  group_by: str | None = "scene") -> Source:
    """The paper's human labels: binary event labels against mean ratings (ground truth)."""
    from soundaq.models_zoo.data.labels import SPLIT_ALIASES, check_label_folder, read_labels

    folder = Path(folder)
    check_label_folder(folder)
    if not folder.is_dir():
        raise CorrelationError(f"{folder}: not a folder; pass the folder holding the *_set_*.txt label files")
    if split != "all" and split not in SPLIT_ALIASES:
        raise CorrelationError(f"unknown split {split!r}; use test, train, validation or all")
    frame = read_labels(folder, split)
    if frame.empty:
        raise CorrelationError(f"{folder}: the {split} split has no clips; check the label files")
    split_name = "all splits" if split == "all" else f"{SPLIT_ALIASES[split]} split"
    group_col = group_by if group_by and group_by in frame.columns else None
    if group_by and group_col is None:
        raise CorrelationError(f"{folder}: no column {group_by!r} to group by; use --group-by scene")
    details = {"folder": str(folder), "split": split, "rows": int(len(frame)), "grouped_by": group_col}
    return Source(kind="labels", title=f"ARAUS human labels, {split_name}", frame=frame,
                  x={e: c for e, c in zip(EVENTS, EVENT_COLUMNS)},
                  y={q: q for q in QUALITY_ORDER}, x_name="event label (0/1)",
                  group_col=group_col, group_name="scene" if group_col == "scene" else str(group_col),
                  synthetic=synthetic or is_synthetic(frame), details=details)


# --------------------------------------------------------------------------------------------
# the whole analysis

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

    from soundaq.base.fileio import atomic_path, atomic_write_json, atomic_write_text

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CorrelationError(f"{out}: exists and is not a folder; pass a folder for --out")
    out.mkdir(parents=True, exist_ok=True)
    table = spearman_table(source, correction)
    with atomic_path(out / "spearman.csv") as tmp:
        table.to_csv(tmp, index=False)  # shortest round-trip repr: reads back bit-identical
    made: list[str] = []
    problems: list[str] = []
    if figures:
        from soundaq.evaluation import figures as figs

        made, problems = figs.draw_all(source, table, out, max_groups=max_groups, seed=seed,
                                       max_points=max_points)
    summary = {
        "source": source.kind, "label": source.label, "synthetic": source.synthetic,
        "correction": correction, "rows": int(len(source.frame)), "groups": source.groups(),
        "tested_pairs": int(table["rho"].notna().sum()), "untested_pairs": int(table["rho"].isna().sum()),
        "significant_pairs": int((table["stars"] != "").sum()), "figures": made, "figure_problems": problems,
        "details": source.details, "seed": seed, "versions": _versions(),
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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
    Raises :class:`CorrelationError` (one line) on unusable input; a figure that fails is listed in
    ``summary["figure_problems"]`` instead of raising. This is what ``soundaq correlate --predictions``
    and the leaderboard call.
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
        lines.append(f"| {r.event} | {QUALITY_LABELS.get(r.quality, r.quality)} | {r.rho:+.3f} | "
                     f"{_fmt_p(r.p_adjusted)} | {r.stars} | {r.n} |")
    return lines + [""]


def render_report(source: Source, table: pd.DataFrame, summary: dict, top: int = 5) -> str:
    """The Markdown report: source and provenance, figures, strongest pairs, untested pairs."""
    corr = {"fdr_bh": "Benjamini-Hochberg FDR", "bonferroni": "Bonferroni", "none": "no correction"}
    lines = [f"# Spearman correlation: {source.x_name} x affective quality", ""]
    if source.synthetic:
        lines += ["> **SYNTHETIC DATA.** These rows come from the embedded synthetic data set; the numbers "
                  "say nothing about real soundscapes.", ""]
    lines += [f"- Source: {source.label}",
              f"- Rows: {summary['rows']:,}" + (f"; groups ({source.group_name}): {len(source.groups())}"
                                                if source.group_col else ""),
              f"- Test: Spearman's rho (scipy.stats.spearmanr, average ranks for ties), two-sided p; "
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
    lines += [f"## Strongest pairs over all rows ({source.label})", "", "### Positive", ""]
    pos, neg = strongest_pairs(table, top)
    lines += _pairs_md(pos) + ["### Negative", ""] + _pairs_md(neg)
    if source.group_col:
        lines += [f"## Strongest pair per {source.group_name}", "",
                  f"| {source.group_name} | n | most positive | rho | most negative | rho |",
                  "|---|---:|---|---:|---|---:|"]
        for g in source.groups():
            p, n_ = strongest_pairs(table, 1, g)
            size = len(source.group_frame(g))
            cell = lambda r: (f"{r.event} / {QUALITY_LABELS.get(r.quality, r.quality)}", f"{r.rho:+.3f}{r.stars}")
            a = cell(next(p.itertuples())) if len(p) else ("", "")
            b = cell(next(n_.itertuples())) if len(n_) else ("", "")
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
        for (g, e, reason), part in untested.groupby(["group", "event", "reason"], sort=False):
            qs = ", ".join(QUALITY_LABELS.get(q, q) for q in part["quality"])
            lines.append(f"| {g} | {e} | {qs} | {reason} |")
        lines.append("")
    lines += ["Full table: [spearman.csv](spearman.csv) (one row per group, event and quality).", ""]
    return "\n".join(lines)
