"""The predictions table: its one reader, its one writer and its one error class.

A predictions table is what ``soundaq predict --out FILE.csv`` and ``soundaq leaderboard``
(``predictions/<model>.csv``) write: one row per clip with :data:`~soundaq.base.vocab.PREDICTION_COLUMNS`
(``clip``, ``model``, the predicted ``scene``, 3 ``scene_prob_*``, 15 ``event_prob_*``, the 8 qualities,
``isop``, ``isoe``), then, when the labels are known, :data:`~soundaq.base.vocab.TRUTH_COLUMNS`
(``true_*``; all empty for a label group the data lack), and optional extras: ``data`` (the data set's
label), and from ``soundaq predict`` ``window`` (``mean`` for the whole clip, else 0, 1, ...),
``start_s``/``end_s`` (seconds), ``ratings``, ``out_of_scale``. ``soundaq predict REC... --out DIR``
writes the same columns with ``recording`` for ``clip`` (``timeseries.csv``: one row per window;
``recordings.csv``: one row per recording).

Every command that takes such a table goes through here: scoring (:func:`score_arrays`, used by
``soundaq.models_zoo.metrics``), captions (:func:`prediction_rows`), ``soundaq correlate``
(:func:`numbers`, :func:`require`) and the leaderboard's re-reads (:func:`read`). Bad input raises
:class:`PredictionTableError` (a :class:`~soundaq.base.errors.UserError`, exit code 2) with one line
naming the file, the row (and CSV line, clip, window), the column, the value and the fix.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from soundaq.base.errors import UserError, one_line
from soundaq.base.vocab import (
    EVENT_COLUMNS,
    EVENT_PROB_COLUMNS,
    PREDICTION_COLUMNS,
    QUALITIES,
    SCENE_PROB_COLUMNS,
    SCENES,
    SOUNDSCAPY_PAQ,
    TRUE_EVENT_COLUMNS,
    TRUE_QUALITY_COLUMNS,
    TRUTH_COLUMNS,
    TRUTH_GROUP_COLUMNS,
)

if TYPE_CHECKING:
    import pandas as pd

#: The fix every message about a malformed table ends with.
FIX = "write the table again with `soundaq predict` or `soundaq leaderboard`"
PARQUET_SUFFIXES = (".parquet", ".pq")
#: How the leaderboard writes floats (6 significant digits; it then scores what the file holds).
LEADERBOARD_FLOATS = "%.6g"
#: ``window`` of a whole-clip row as captions name it.
WHOLE = "all"
#: ``window`` values that mean "the whole clip" (``soundaq predict`` writes "mean").
WHOLE_ALIASES = frozenset({"", "all", "mean", "nan", "none"})
#: Columns scoring needs: the predicted values (not ``model``/``scene``: the scene is the argmax) and
#: every ground-truth column.
SCORING_COLUMNS: tuple[str, ...] = ("clip", *SCENE_PROB_COLUMNS, *EVENT_PROB_COLUMNS, *QUALITIES, "isop", "isoe",
                                    *TRUTH_COLUMNS)


class PredictionTableError(UserError):
    """A predictions table that cannot be used; the message names file, row, column and the fix."""


# --------------------------------------------------------------------------------------------------
# the file
# --------------------------------------------------------------------------------------------------
def read(path: Path | str) -> pd.DataFrame:
    """Read a predictions table file: CSV (any line ends, optional BOM), or Parquet by suffix.

    CSV floats are parsed with ``float_precision="round_trip"``: the floats the writer had, to the last
    bit (pandas' default parser can be 1 ulp off, which can split or merge near-ties and change scores
    and rho in the last digits), so re-scoring a file gives the numbers the leaderboard printed.

    Raises:
        PredictionTableError: a missing path, a folder, a file of another kind (an .xlsx workbook, a
            checkpoint, ...), text that is not UTF-8 (naming file:line), an empty file, or any parser
            failure, each as one line with the fix.
    """
    import pandas as pd

    from soundaq.base.filekinds import expect, sniff
    from soundaq.base.textio import read_csv

    path = Path(path)
    if not path.exists():
        raise PredictionTableError(f"{path}: file not found; fix: pass the predictions table written by "
                                   "`soundaq predict` or `soundaq leaderboard`")
    fix = "save the predictions sheet as CSV" if sniff(path) == "xlsx" else None
    try:
        expect(path, ("predictions-table",), "a predictions table (.csv or .parquet)", fix=fix)
    except UserError as err:
        raise PredictionTableError(str(err), err.exit_code) from None
    if path.is_dir():
        raise PredictionTableError(f"{path}: is a folder; fix: pass a predictions .csv file "
                                   "(a label folder goes to --labels DIR)")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        return read_csv(path, float_precision="round_trip")
    except UserError as err:   # not UTF-8, a binary file: already one line naming file:line and the fix
        raise PredictionTableError(str(err), err.exit_code) from None
    except pd.errors.EmptyDataError:
        raise PredictionTableError(f"{path}: the file is empty; fix: pass a predictions table with a header "
                                   "and one row per clip") from None
    except Exception as exc:  # noqa: BLE001 - parser errors of every kind become one line
        raise PredictionTableError(f"{path}: cannot be read as a table ({one_line(exc)}); "
                                   "fix: write it as CSV with a header row, or as Parquet") from None


def write(frame: pd.DataFrame, path: Path | str, float_format: str | None = None) -> Path:
    """Write a predictions table (or ``soundaq predict``'s per-window tables) as CSV, atomically.

    Args:
        frame: the table, columns in the order above.
        path: the ``.csv`` file; replaced only once it is complete (soundaq.base.fileio.atomic_path).
        float_format: ``None`` writes every float to the last bit (``soundaq predict``); the leaderboard
            passes :data:`LEADERBOARD_FLOATS` (6 significant digits) and scores what the file then holds.

    Returns:
        ``path``.

    Raises:
        soundaq.base.fileio.WriteFailed: the folder cannot take the file.
    """
    from soundaq.base.fileio import write_csv

    return write_csv(frame, path, float_format)


# --------------------------------------------------------------------------------------------------
# where a cell is
# --------------------------------------------------------------------------------------------------
def row_name(i: int, lines: bool | Sequence[str] = False) -> str:
    """How messages name row ``i`` alone: ``row 3`` or the caller's name for it (``item 2 window 1``)."""
    return lines[i] if isinstance(lines, (list, tuple)) else f"row {i + 1}"


def where(frame: pd.DataFrame, i: int, lines: bool | Sequence[str] = False) -> str:
    """Where row ``i`` is: ``row 3, line 4 (clip 'x', window 1)``.

    ``lines``: True when ``frame`` was read from a CSV file (header = line 1), so the line is given too;
    a list names each row instead (``item 2 window 1 (clip 'x')`` of a JSON file).
    """
    clip = str(frame["clip"].iloc[i]) if "clip" in frame.columns else "?"
    if isinstance(lines, (list, tuple)):
        return f"{lines[i]} (clip {clip!r})"
    line = f", line {i + 2}" if lines else ""
    window = ""
    if "window" in frame.columns and str(frame["window"].iloc[i]).strip().lower() not in WHOLE_ALIASES:
        window = f", window {frame['window'].iloc[i]}"
    return f"row {i + 1}{line} (clip {clip!r}{window})"


def cell_error(source: str, place: str, column: str, value, problem: str, fix: str) -> PredictionTableError:
    """``FILE: row 3 (clip 'x'), column C: 'value' problem; fix: ...`` (no value shown when it is None)."""
    value = value.item() if hasattr(value, "item") else value
    cell = f"column {column}" if value is None else f"column {column}: {value!r}"
    return PredictionTableError(f"{source}: {place}, {cell} {problem}; fix: {fix}")


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() in ("", "nan")


def _blank_cells(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``[rows, len(columns)]`` bool: the cell is empty (NaN, None or only spaces)."""
    mask = frame[list(columns)].isna().to_numpy(dtype=bool)
    for j, c in enumerate(columns):
        if frame[c].dtype == object:
            mask[:, j] |= frame[c].astype(str).str.strip().isin(("", "nan")).to_numpy()
    return mask


# --------------------------------------------------------------------------------------------------
# columns and cells
# --------------------------------------------------------------------------------------------------
def _missing_hint(columns) -> str:
    cols = set(columns)
    if set(SOUNDSCAPY_PAQ) <= cols:
        return " (found soundscapy's PAQ1..PAQ8: rename them with soundaq.base.vocab.from_soundscapy)"
    lower = {c.lower(): c for c in cols if isinstance(c, str)}
    wrong = [lower[q] for q in QUALITIES if q in lower and lower[q] != q]
    if wrong:
        return f" (found {', '.join(wrong)}: quality columns are lower case)"
    if all(c in cols for c in EVENT_COLUMNS) and not any(c in cols for c in EVENT_PROB_COLUMNS):
        return " (this looks like a label table, not predictions: use --labels DIR for ground truth)"
    return ""


def require(frame: pd.DataFrame, columns: Sequence[str], source: str, fix: str = FIX) -> pd.DataFrame:
    """Check that ``frame`` has rows and ``columns``; returns it, with ``recording`` renamed ``clip``
    (``soundaq predict --out DIR``'s timeseries.csv and recordings.csv) when there is no ``clip``.

    Raises:
        PredictionTableError: no rows, or missing columns (the first five named, with a hint when the
            table has soundscapy's PAQ names, capitalised qualities or label columns).
    """
    if len(frame.columns) == 0 or len(frame) == 0:
        raise PredictionTableError(f"{source}: the table has no rows; fix: pass a predictions table "
                                   "with one row per clip")
    if "clip" not in frame.columns and "recording" in frame.columns:
        frame = frame.rename(columns={"recording": "clip"})
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise PredictionTableError(f"{source}: missing column(s) {', '.join(missing[:5])}{more}"
                                   f"{_missing_hint(frame.columns)}; fix: {fix}")
    return frame


def numbers(frame: pd.DataFrame, columns: Sequence[str], source: str, lines: bool | Sequence[str] = False,
            empty_ok: bool = False) -> np.ndarray:
    """The cells of ``columns`` as a float64 ``[rows, len(columns)]`` matrix.

    Args:
        frame: the table as read (cells as text or numbers).
        columns: the columns to convert, in the matrix's column order.
        source: the file named in the error message.
        lines: how the message places a row (:func:`where`): True adds the CSV line, a list names each row.
        empty_ok: empty cells become NaN (``soundaq correlate`` drops such pairs); otherwise an empty or
            non-finite cell is an error.

    Raises:
        PredictionTableError: the first bad cell: ``FILE: row 5, line 6 (clip 'x'), column calm: 'high'
            is not a finite number; fix: ...``.
    """
    import pandas as pd

    block = frame[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(block) if empty_ok else ~np.isfinite(block)
    if empty_ok:
        bad &= ~_blank_cells(frame, columns)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raw = frame[columns[j]].iloc[i]
        empty = _blank(raw)
        raise cell_error(source, where(frame, i, lines), columns[j], None if empty else raw,
                         "is empty" if empty else "is not a finite number",
                         f"rewrite that cell or drop the clip; {FIX}")
    return block


def group_empty(frame: pd.DataFrame, columns: Sequence[str]) -> bool:
    """True when ``frame`` has every one of ``columns`` and all their cells are empty (NaN or blank):
    the data lack that label group (the leaderboard leaves its ``true_*`` columns empty), so the head
    predicting it was not trained.
    """
    columns = list(columns)
    if not all(c in frame.columns for c in columns):
        return False
    return bool(_blank_cells(frame, columns).all())


def is_synthetic(frame: pd.DataFrame) -> bool:
    """True when a ``data`` column says the rows come from the embedded synthetic set."""
    if "data" not in frame.columns:
        return False
    return bool(frame["data"].astype(str).str.contains("synthetic", case=False, na=False).any())


# --------------------------------------------------------------------------------------------------
# what scoring reads
# --------------------------------------------------------------------------------------------------
def score_arrays(frame: pd.DataFrame, source: str = "predictions table", lines: bool = False) -> dict:
    """The arrays ``soundaq.models_zoo.eval_data.EvalData`` takes, from a predictions table with
    :data:`SCORING_COLUMNS`.

    Returns:
        ``{"scene_prob" [N, 3], "event_prob" [N, 15], "quality_pred" [N, 8], "iso_pred" [N, 2], "clips",
        and for each labelled group "scene_true" [N] (index into SCENES), "event_true" [N, 15] (0/1),
        "quality_true" [N, 8] with "iso_true" [N, 2]}``, float64/int64 in vocabulary order. A label group
        whose ``true_*`` columns are all empty (:data:`~soundaq.base.vocab.TRUTH_GROUP_COLUMNS`) is left out.
        ``lines``: see :func:`where` (True for a table read from a CSV file).

    Raises:
        PredictionTableError: no rows, missing columns, a repeated clip, an empty or non-number cell
            in a labelled group, an unknown ``true_scene``, an event label other than 0/1.
    """
    frame = require(frame, SCORING_COLUMNS, source,
                    fix=f"{FIX}, with ground-truth columns (true_*) for scoring")
    clips = frame["clip"].astype(str)
    dup = clips.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise PredictionTableError(f"{source}: {where(frame, i, lines)}: clip {clips.iloc[i]!r} appears more than once; "
                                   "fix: keep one row per clip")
    out = {"scene_prob": numbers(frame, SCENE_PROB_COLUMNS, source, lines),
           "event_prob": numbers(frame, EVENT_PROB_COLUMNS, source, lines),
           "quality_pred": numbers(frame, QUALITIES, source, lines),
           "iso_pred": numbers(frame, ("isop", "isoe"), source, lines), "clips": clips.tolist()}
    if not group_empty(frame, TRUTH_GROUP_COLUMNS["scene"]):
        names = frame["true_scene"].astype(str).str.strip()
        unknown = ~names.isin(SCENES)
        if unknown.any():
            i = int(np.flatnonzero(unknown.to_numpy())[0])
            raw = frame["true_scene"].iloc[i]
            raise cell_error(source, where(frame, i, lines), "true_scene", None if _blank(raw) else raw,
                             "is empty" if _blank(raw) else "is not a known scene", f"use one of {', '.join(SCENES)}")
        out["scene_true"] = names.map({s: i for i, s in enumerate(SCENES)}).to_numpy(np.int64)
    if not group_empty(frame, TRUE_EVENT_COLUMNS):
        events = numbers(frame, TRUE_EVENT_COLUMNS, source, lines)
        bad = (events != 0) & (events != 1)
        if bad.any():
            i, j = map(int, np.argwhere(bad)[0])
            raise cell_error(source, where(frame, i, lines), TRUE_EVENT_COLUMNS[j], float(events[i, j]),
                             "is not an event label", "event labels must be 0 or 1")
        out["event_true"] = events
    if not group_empty(frame, TRUTH_GROUP_COLUMNS["qualities"]):
        out["quality_true"] = numbers(frame, TRUE_QUALITY_COLUMNS, source, lines)
        out["iso_true"] = numbers(frame, ("true_isop", "true_isoe"), source, lines)
    return out


# --------------------------------------------------------------------------------------------------
# what captions read: every row, windows included
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rows:
    """A validated predictions table, row by row (``N`` rows, table order).

    ``clips``, ``windows`` (``"all"`` or ``"START-END"`` in seconds), ``spans`` ((start_s, end_s) or
    (None, None)), ``model`` (the one model), ``scenes`` (predicted scene names), ``probabilities``
    ``[N, 18]`` (scene_prob_* then event_prob_*), ``ratings`` ``[N, 8]``, ``iso`` ``[N, 2]``, ``data``
    (the ``data`` column, "" without one) and ``names`` (how messages name each row).
    """

    clips: list[str]
    windows: list[str]
    spans: list[tuple[float | None, float | None]]
    model: str
    scenes: list[str]
    probabilities: np.ndarray
    ratings: np.ndarray
    iso: np.ndarray
    data: list[str]
    names: list[str]


def window_label(start_s: float, end_s: float) -> str:
    """``"START-END"`` in seconds, at most 3 decimals and no trailing zeros: ``window_label(30, 60) == "30-60"``."""
    def num(x: float) -> str:
        return f"{round(float(x), 3):g}"

    return f"{num(start_s)}-{num(end_s)}"


def rows(frame: pd.DataFrame, source: str = "predictions table", lines: bool | Sequence[str] = False) -> Rows:
    """Validate a predictions table row by row (``soundaq caption``/``compare``).

    Args:
        frame: :data:`~soundaq.base.vocab.PREDICTION_COLUMNS` (+ optional ``window``, ``start_s``,
            ``end_s``, ``data``, ``true_*``); ``recording`` stands for ``clip``.
        source: the file name for messages.
        lines: see :func:`where`.

    Raises:
        PredictionTableError: no rows, a missing column, an empty clip id or model, several models, an
            unknown scene, a NaN/non-number, a probability outside [0, 1], a window row without a span,
            a repeated (clip, window).
    """
    frame = require(frame, PREDICTION_COLUMNS, source)
    clips = frame["clip"]
    empty = clips.isna() | (clips.astype(str).str.strip() == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise cell_error(source, row_name(i, lines), "clip", clips.iloc[i], "is empty", "give every row a clip id")
    model = str(one_model(frame, source, lines))
    scenes = frame["scene"].astype(str).str.strip()
    unknown = ~scenes.isin(SCENES)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise cell_error(source, where(frame, i, lines), "scene", frame["scene"].iloc[i], "is not a known scene",
                         f"use one of {', '.join(SCENES)}")
    columns = (*SCENE_PROB_COLUMNS, *EVENT_PROB_COLUMNS)
    probs = numbers(frame, columns, source, lines)
    outside = (probs < 0.0) | (probs > 1.0)
    if outside.any():
        i, j = map(int, np.argwhere(outside)[0])
        raise cell_error(source, where(frame, i, lines), columns[j], float(probs[i, j]),
                         "is outside [0, 1]", "probabilities lie in [0, 1]; " + FIX)
    ratings = numbers(frame, QUALITIES, source, lines)
    iso = numbers(frame, ("isop", "isoe"), source, lines)
    windows, spans = _windows(frame, source, lines)
    keys = list(zip(clips.astype(str).str.strip(), windows))
    seen: dict[tuple[str, str], int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            raise PredictionTableError(
                f"{source}: {where(frame, i, lines)} repeats {row_name(seen[key], lines)} (same clip and window); "
                "fix: keep one row per clip (and window)")
        seen[key] = i
    data = frame["data"].astype(str).where(frame["data"].notna(), "").tolist() if "data" in frame.columns \
        else [""] * len(frame)
    return Rows(clips=[k[0] for k in keys], windows=windows, spans=spans, model=model, scenes=scenes.tolist(),
                probabilities=probs, ratings=ratings, iso=iso, data=data,
                names=[row_name(i, lines) for i in range(len(frame))])


def one_model(frame: pd.DataFrame, source: str, lines: bool | Sequence[str] = False, required: bool = True,
              fix: str = "caption each model's predictions separately (one --out each)") -> str | None:
    """The one model the ``model`` column names (None when the column is absent or empty and not
    ``required``).

    Raises:
        PredictionTableError: a ``required`` model missing or empty in a row; rows of several models
            (naming the first row of another model, the count and the models).
    """
    if "model" not in frame.columns and not required:
        return None
    models = frame["model"].astype(str).str.strip()
    missing = (models == "") | frame["model"].isna()
    if missing.any() and required:
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise cell_error(source, where(frame, i, lines), "model", frame["model"].iloc[i], "is empty",
                         "name the acoustic model in every row")
    named = models[~missing]
    if named.empty:
        return None
    others = np.flatnonzero((models != named.iloc[0]).to_numpy() & ~missing.to_numpy())
    if others.size:
        i, first = int(others[0]), int(np.flatnonzero(~missing.to_numpy())[0])
        kinds = list(dict.fromkeys(named))
        raise PredictionTableError(
            f"{source}: {where(frame, i, lines)}, column model: {models.iloc[i]!r} but {row_name(first, lines)} is "
            f"{models.iloc[first]!r}: a mix of models ({len(kinds)} models: {', '.join(kinds[:4])}); fix: {fix}")
    return str(named.iloc[0])


def _windows(frame: pd.DataFrame, source: str, lines) -> tuple[list[str], list[tuple[float | None, float | None]]]:
    """Window label and span of each row; rows without a ``window`` column are whole clips."""
    import pandas as pd

    n = len(frame)
    if "window" not in frame.columns:
        return [WHOLE] * n, [(None, None)] * n
    whole = frame["window"].astype(str).str.strip().str.lower().isin(WHOLE_ALIASES) | frame["window"].isna()
    nan = pd.Series([np.nan] * n)
    starts = pd.to_numeric(frame["start_s"], errors="coerce") if "start_s" in frame.columns else nan
    ends = pd.to_numeric(frame["end_s"], errors="coerce") if "end_s" in frame.columns else nan
    labels: list[str] = []
    spans: list[tuple[float | None, float | None]] = []
    for i in range(n):
        a, b = float(starts.iloc[i]), float(ends.iloc[i])
        known = math.isfinite(a) and math.isfinite(b)
        if whole.iloc[i]:
            labels.append(WHOLE)
            spans.append((a, b) if known else (None, None))
            continue
        if not known or not 0 <= a < b:
            col = "start_s" if not math.isfinite(a) else "end_s"
            raise cell_error(source, where(frame, i, lines), col,
                             frame[col].iloc[i] if col in frame.columns else None,
                             "is not a window span (need 0 <= start_s < end_s)",
                             "a window row needs start_s and end_s in seconds, as `soundaq predict` writes them")
        labels.append(window_label(a, b))
        spans.append((a, b))
    return labels, spans
