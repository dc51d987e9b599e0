"""Spearman correlation between sound events (or perceived sound sources) and affective qualities.

One table shape serves three sources, so the same code runs on a model's predictions, on the
paper's human labels and on the International Soundscape Database (see :mod:`soundaq.evaluation.isd`):

* a :class:`Source` holds a tidy frame, the "event" columns (x), the quality columns (y, in
  circumplex order, then ISOPleasant and ISOEventful) and an optional grouping column (scene or
  location);
* :func:`spearman_table` gives one row per (group, event, quality): ``rho`` and ``p`` exactly as
  :func:`scipy.stats.spearmanr` returns them (below :data:`PERMUTATION_BELOW` pairs, ``p`` of a
  permutation test instead: spearmanr's t approximation calls rho = 1 on 4 pairs p = 0, where the
  exact p is 1/12), ``p_adjusted`` within each group
  (Benjamini-Hochberg, Bonferroni or none), ``stars`` on the adjusted p and ``n``; a pair that
  cannot be tested (a constant column, too few values) gets empty numbers and a ``reason``;
* :func:`run` writes ``spearman.csv``, the figures and ``report.md`` into a folder;
  :func:`correlate_predictions` does all of it for one predictions table (the leaderboard's entry).

Bad input raises :class:`CorrelationError` with a one-line message naming the file and the fix; a
predictions table is read and checked by its one parser, :mod:`soundaq.base.predictions_table`
(:class:`~soundaq.base.predictions_table.PredictionTableError`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from soundaq.base import predictions_table
from soundaq.base.errors import UserError
from soundaq.base.predictions_table import is_synthetic
from soundaq.base.vocab import (
    CIRCUMPLEX_ORDER,
    EVENT_COLUMNS,
    EVENT_PROB_COLUMNS,
    EVENTS,
    QUALITIES,
    SCENES,
    TRUE_EVENT_COLUMNS,
    TRUE_QUALITY_COLUMNS,
    iso_coordinates,
)

#: Said when a predictions table's labels show that its net's scene head was not trained.
UNTRAINED_SCENE_NOTE = ("Not grouped by the predicted scene: the table's true_scene column is empty (the data have "
                        "no scene labels), so the net's scene head was not trained and its scene says nothing.")
#: Said when they show that its event head was not trained.
UNTRAINED_EVENTS_NOTE = ("The event probabilities come from an event head that was not trained (the table's "
                         "true_event_* columns are empty: the data have no event labels); their rho describe that "
                         "untrained head, not the sounds.")

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
#: Below this many pairs p comes from a permutation test (scipy.stats.permutation_test, pairings): exact
#: up to 8 pairs (8! = 40,320 orders), else 9,999 random orders with a fixed seed. From 10 pairs on,
#: spearmanr's t approximation is used (the usual rule of thumb for it; scipy's docs suggest permutation
#: tests for small samples).
PERMUTATION_BELOW = 10


class CorrelationError(UserError, ValueError):
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
    #: what a reader must know about the rows (e.g. a grouping left out and why); the report opens with them
    notes: list[str] = field(default_factory=list)

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
        """The rows of one group (:data:`ALL`, or a source without groups: every row)."""
        if group == ALL or not self.group_col:
            return self.frame
        return self.frame[self.frame[self.group_col].astype(str) == group]


# --------------------------------------------------------------------------------------------
# statistics

def spearman_pair(x, y) -> tuple[float, float, int, str]:
    """Spearman's rho and its two-sided p for one pair, dropping rows where either is missing.

    Returns ``(rho, p, n, reason)``; rho and p come straight from :func:`scipy.stats.spearmanr`
    (average ranks for ties), p from :func:`permutation_p` below :data:`PERMUTATION_BELOW` pairs. When
    the test is undefined, rho and p are NaN and ``reason`` says why.
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
    if n < PERMUTATION_BELOW:
        p = permutation_p(x, y)
    return rho, p, n, ""


def permutation_p(x, y, seed: int = 0) -> float:
    """Two-sided p of Spearman's rho by permuting the pairing of x [n] and y [n]
    (:func:`scipy.stats.permutation_test`, ``permutation_type="pairings"``, as scipy's documentation
    shows for Spearman): every order when n <= 8, else 9,999 random orders drawn with ``seed``. Ties keep
    their average ranks, so the null distribution is the one of these very values.
    """
    from scipy.stats import permutation_test, rankdata

    rx, ry = rankdata(x), rankdata(y)
    ry = (ry - ry.mean()) / np.sqrt(((ry - ry.mean()) ** 2).sum())

    def statistic(a, axis=-1):
        a = a - a.mean(axis=axis, keepdims=True)
        return (a * ry).sum(axis=axis) / np.sqrt((a * a).sum(axis=axis))

    orders = math.factorial(len(rx))
    # n_resamples at least the number of orders makes scipy enumerate them all (exact)
    res = permutation_test((rx,), statistic, permutation_type="pairings", vectorized=True,
                           n_resamples=orders if orders <= 40320 else 9999, alternative="two-sided",
                           rng=np.random.default_rng(seed))
    return min(1.0, float(res.pvalue))


def _constant_reason(what: str, value: float) -> str:
    if what == "event" and value == 0:
        return "event never occurs here (constant 0)"
    if what == "event" and value == 1:
        return "event occurs in every row here (constant 1)"
    return f"{what} is constant ({value:g}) here"


def adjust_pvalues(p, method: str = "fdr_bh") -> np.ndarray:
    """Adjust p-values for multiple comparisons; NaN entries stay NaN and do not count.

    Args:
        p: p-values of one family (any shape); NaN marks a pair that could not be tested.
        method: one of :data:`CORRECTIONS`: ``fdr_bh`` (Benjamini-Hochberg step-up,
            ``p_(i) * m / i`` made monotone from the largest down and capped at 1),
            ``bonferroni`` (``min(1, p * m)``) or ``none`` (p unchanged).

    Returns:
        float64 array of ``p``'s shape: ``pingouin.multicomp``'s adjusted p-values, which adjusts
        the non-NaN entries as one family (m = their number; BH through
        ``scipy.stats.false_discovery_control``) and keeps NaN in place.

    Raises:
        CorrelationError: ``method`` is not one of :data:`CORRECTIONS`.
    """
    import pingouin as pg

    if method not in CORRECTIONS:
        raise CorrelationError(f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}")
    return pg.multicomp(np.asarray(p, dtype=np.float64), method=method)[1]


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


def predictions_source(table, path: Path | str | None = None, synthetic: bool = False,
                       group_by: str | None = "scene") -> Source:
    """A model's predictions table: event probabilities against predicted qualities (as the paper).

    ``table`` is a DataFrame or a path. Required columns: the 15 ``event_prob_<slug>`` and the 8
    quality names; ``isop``/``isoe`` are computed from the qualities when absent; ``group_by``
    (default ``scene``, the predicted scene) is used when present, except that the predicted scene is
    never used when the table's labels show that the scene head was not trained (a ``true_scene``
    column that is present and empty, as the leaderboard writes for data without scene labels, e.g.
    own data labelled with the qualities only): the rows are then not grouped and
    :attr:`Source.notes` says why (so does an untrained event head, whose rows are kept).
    """
    from_file = not isinstance(table, pd.DataFrame)
    if from_file:
        path = Path(table)
        table = predictions_table.read(path)
    where = _where(path)
    # rows, columns and cells are checked by the table's one parser (soundaq.base.predictions_table)
    frame = predictions_table.require(table.copy(), [*QUALITIES, *EVENT_PROB_COLUMNS], where)
    model = predictions_table.one_model(frame, where, required=False,
                                        fix="pass one model's table (filter the rows by the model column)")
    derived = [c for c in ("isop", "isoe") if c not in frame.columns]
    columns = [*EVENT_PROB_COLUMNS, *QUALITIES, *(() if derived else ("isop", "isoe"))]
    frame[columns] = predictions_table.numbers(frame, columns, where, lines=from_file, empty_ok=True)
    if derived:
        isop, isoe = iso_coordinates(*(frame[q] for q in QUALITIES))
        frame["isop"], frame["isoe"] = isop, isoe
    valid = frame[[*EVENT_PROB_COLUMNS, *QUALITIES]].notna().any(axis=1)
    if not valid.any():
        raise CorrelationError(f"{where}: every event and quality value is empty; regenerate the predictions")
    group_col = group_by if group_by and group_by in frame.columns else None
    if group_by and group_by != "scene" and group_col is None:
        raise CorrelationError(f"{where}: no column {group_by!r} to group by; pick an existing column with --group-by")
    notes = []
    if group_col == "scene" and predictions_table.group_empty(frame, ("true_scene",)):
        group_col = None
        notes.append(UNTRAINED_SCENE_NOTE)
    if predictions_table.group_empty(frame, TRUE_EVENT_COLUMNS):
        notes.append(UNTRAINED_EVENTS_NOTE)
    title = "Predictions" + (f" of {model}" if model else "") + (f" ({Path(path).name})" if path else "")
    synthetic = bool(synthetic or is_synthetic(frame))
    details = {"path": str(path) if path else None, "model": model, "rows": len(frame),
               "derived_iso": derived, "grouped_by": group_col}
    if path is not None:
        from soundaq.base.fileio import sha256_file
        details["sha256"] = sha256_file(path)
    return Source(kind="predictions", title=title, frame=frame,
                  x={e: c for e, c in zip(EVENTS, EVENT_PROB_COLUMNS)},
                  y={q: q for q in QUALITY_ORDER}, x_name="predicted event probability",
                  group_col=group_col, group_name="predicted scene" if group_col == "scene" else str(group_col),
                  synthetic=synthetic, details=details, notes=notes)


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
    details = {"folder": str(folder), "split": split, "rows": len(frame), "grouped_by": group_col}
    return Source(kind="labels", title=f"ARAUS human labels, {split_name}", frame=frame,
                  x={e: c for e, c in zip(EVENTS, EVENT_COLUMNS)},
                  y={q: q for q in QUALITY_ORDER}, x_name="event label (0/1)",
                  group_col=group_col, group_name="scene" if group_col == "scene" else str(group_col),
                  synthetic=synthetic or is_synthetic(frame), details=details)


def truth_source(predictions: Source) -> Source | None:
    """The labels of the same clips, from a predictions table's ``true_*`` columns (the leaderboard and
    ``soundaq predict`` on a labelled split write them): binary event labels against rated qualities.
    None when the table has no complete set of truth columns (absent, or empty: data without event or
    quality labels).
    """
    frame = predictions.frame
    needed = [*TRUE_EVENT_COLUMNS, *TRUE_QUALITY_COLUMNS]
    if not all(c in frame.columns for c in needed) or frame[needed].isna().any().any():
        return None
    frame = frame.copy()
    if "true_isop" not in frame.columns or "true_isoe" not in frame.columns:
        frame["true_isop"], frame["true_isoe"] = iso_coordinates(*(frame[f"true_{q}"] for q in QUALITIES))
    y = {q: f"true_{q}" for q in QUALITY_ORDER}
    return Source(kind="labels", title="Labels of the same clips", frame=frame,
                  x={e: c for e, c in zip(EVENTS, TRUE_EVENT_COLUMNS)}, y=y, x_name="event label (0/1)",
                  synthetic=predictions.synthetic, details={"from": "true_* columns of the predictions table"})


def agreement(predicted: pd.DataFrame, labelled: pd.DataFrame, group: str = ALL,
              strong: float = 0.9) -> dict:
    """How well a model's event x quality correlation structure matches the labels' (one number a user
    can check on any trained model).

    Args:
        predicted: :func:`spearman_table` output of the predictions.
        labelled: :func:`spearman_table` output of the labels of the same clips (same events and
            qualities).
        group: the group to compare (default: all rows).
        strong: threshold of the "strong cells" counts.

    Returns:
        ``{"cells", "spearman", "spearman_p", "pearson", "mean_abs_difference", "strong_predicted",
        "strong_labels"}``: Spearman's (and Pearson's) correlation between the two matrices' rho over
        the cells where both are defined (scipy.stats), the mean absolute difference of the rhos,
        and how many cells of each have ``|rho| > strong``. An undertrained net that moves all its
        outputs along one axis shows many strong predicted cells and a low ``spearman``.
    """
    from scipy import stats as st

    a, b = matrix(predicted, "rho", group), matrix(labelled, "rho", group)
    a, b = a.loc[b.index.intersection(a.index), b.columns.intersection(a.columns)], b
    b = b.loc[a.index, a.columns]
    x, y = a.to_numpy(dtype=np.float64).ravel(), b.to_numpy(dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    out = {"cells": int(ok.sum()), "strong_threshold": strong,
           "strong_predicted": int((np.abs(x[np.isfinite(x)]) > strong).sum()),
           "strong_labels": int((np.abs(y[np.isfinite(y)]) > strong).sum())}
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return {**out, "spearman": math.nan, "spearman_p": math.nan, "pearson": math.nan,
                "mean_abs_difference": float(np.abs(x[ok] - y[ok]).mean()) if ok.any() else math.nan}
    r = st.spearmanr(x[ok], y[ok])
    return {**out, "spearman": float(r.statistic), "spearman_p": float(r.pvalue),
            "pearson": float(np.corrcoef(x[ok], y[ok])[0, 1]),
            "mean_abs_difference": float(np.abs(x[ok] - y[ok]).mean())}
