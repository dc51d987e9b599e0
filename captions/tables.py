"""Predictions to caption: reading and validating the tables and JSON that soundaq writes.

Accepted inputs (all hold :data:`soundaq.base.vocab.PREDICTION_COLUMNS` or the equivalent JSON keys):

* the leaderboard's ``predictions/<model>.csv``: one row per clip (extra ``true_*`` and ``data``
  columns are allowed and ignored, except that a ``data`` naming the synthetic set marks the output);
* ``soundaq predict --out FILE.csv``: one ``window = mean`` row per clip, plus one row per 30-s window
  (``window`` = 0, 1, ..., with ``start_s`` and ``end_s``) for clips with several windows;
* ``soundaq predict --out FILE.json`` (or its stdout): a list of clip objects with a ``windows`` list;
* :func:`soundaq.models_zoo.predict.predict_files` results, the same objects in memory.

Each becomes a list of :class:`Prediction`: the whole clip (``window = "all"``), then each window of a
clip with several (``window = "START-END"`` in seconds, e.g. ``"0-30"``). Bad input raises
:class:`PredictionTableError` (a :class:`~soundaq.base.errors.UserError`, exit 2) with one line that
names the file, the row and the column, before anything is written.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from soundaq.base.errors import UserError
from soundaq.base.vocab import EVENT_PROB_COLUMNS, EVENTS, PREDICTION_COLUMNS, QUALITIES, SCENE_PROB_COLUMNS, SCENES

#: ``window`` of a whole-clip row in captions.csv.
WHOLE = "all"
#: ``window`` values that mean "the whole clip" in predictions tables (``soundaq predict`` writes "mean").
WHOLE_ALIASES = frozenset({"", "all", "mean", "nan", "none"})
TABLE_SUFFIXES = (".csv", ".json")
_PROBABILITY_COLUMNS = (*SCENE_PROB_COLUMNS, *EVENT_PROB_COLUMNS)
_FIX_TABLE = "write the table again with `soundaq predict` or `soundaq leaderboard`"


class PredictionTableError(UserError):
    """A predictions table or JSON that cannot be captioned; the message names file, row and column."""


@dataclass(frozen=True)
class Prediction:
    """One clip (or one window of a long recording) as the acoustic model predicted it.

    Attributes:
        clip: clip id (file stem).
        window: ``"all"`` (the whole clip) or ``"START-END"`` in seconds.
        model: the acoustic model that predicted it (e.g. ``AD_CNN``).
        scene: the predicted scene, one of :data:`~soundaq.base.vocab.SCENES`.
        scene_probabilities, events: scene -> probability, event -> probability (0-1).
        qualities: quality -> predicted rating (1-5 scale).
        isop, isoe: ISOPleasant and ISOEventful (ISO/TS 12913-3, -1 to 1).
        start_s, end_s: the window's span in seconds (None when unknown).
        source: where it was read (file and row).
        data: the table's ``data`` column (e.g. the synthetic set's label), else "".
    """

    clip: str
    window: str
    model: str
    scene: str
    scene_probabilities: dict[str, float]
    events: dict[str, float]
    qualities: dict[str, float]
    isop: float
    isoe: float
    start_s: float | None = None
    end_s: float | None = None
    source: str = ""
    data: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.clip, self.window

    @property
    def label(self) -> str:
        return self.clip if self.window == WHOLE else f"{self.clip} [{self.window} s]"

    def to_dict(self) -> dict:
        return asdict(self)


def window_label(start_s: float, end_s: float) -> str:
    """``"START-END"`` in seconds, at most 3 decimals and no trailing zeros: ``window_label(30, 60) == "30-60"``."""
    def num(x: float) -> str:
        return f"{round(float(x), 3):g}"

    return f"{num(start_s)}-{num(end_s)}"


def parse_window(text: str) -> tuple[float, float]:
    """``"30-60"`` -> ``(30.0, 60.0)``; raises ValueError unless 0 <= start < end."""
    start, sep, end = str(text).strip().partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not START-END in seconds (e.g. 30-60)")
    a, b = float(start), float(end)
    if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
        raise ValueError(f"{text!r}: need 0 <= START < END seconds")
    return a, b


# --------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------
def _missing_hint(columns) -> str:
    cols = set(columns)
    if {f"PAQ{i}" for i in range(1, 9)} <= cols:
        return " (found soundscapy's PAQ1..PAQ8: rename them with soundaq.base.vocab.from_soundscapy)"
    if any(c.startswith("event_") and not c.startswith("event_prob_") for c in cols) and \
            not any(c.startswith("event_prob_") for c in cols):
        return " (this looks like a label table, not predictions)"
    return ""


def _fail(source: str, where: str, column: str, value, problem: str, fix: str) -> PredictionTableError:
    """``FILE: row 3 (clip 'x'), column C: 'value' problem; fix: ...`` (no value shown when it is None)."""
    value = value.item() if hasattr(value, "item") else value
    cell = f"column {column}" if value is None else f"column {column}: {value!r}"
    return PredictionTableError(f"{source}: {where}, {cell} {problem}; fix: {fix}")


def _short(i: int, csv_lines) -> str:
    return csv_lines[i] if isinstance(csv_lines, (list, tuple)) else f"row {i + 1}"


def _row_where(frame, i: int, csv_lines) -> str:
    """Where row ``i`` is: ``row 3, line 4 (clip 'x')``; ``csv_lines`` may instead be a list of row names."""
    clip = str(frame["clip"].iloc[i]) if "clip" in frame.columns else "?"
    if isinstance(csv_lines, (list, tuple)):
        return f"{csv_lines[i]} (clip {clip!r})"
    line = f", line {i + 2}" if csv_lines else ""
    window = ""
    if "window" in frame.columns and str(frame["window"].iloc[i]).strip().lower() not in WHOLE_ALIASES:
        window = f", window {frame['window'].iloc[i]}"
    return f"row {i + 1}{line} (clip {clip!r}{window})"


def _numeric_block(frame, columns: Sequence[str], source: str, csv_lines: bool) -> np.ndarray:
    import pandas as pd

    block = frame[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(block)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raw = frame[columns[j]].iloc[i]
        empty = raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw).strip() in ("", "nan")
        raise _fail(source, _row_where(frame, i, csv_lines), columns[j], None if empty else raw,
                    "is empty" if empty else "is not a finite number",
                    f"rewrite that cell or drop the clip; {_FIX_TABLE}")
    return block


def predictions_from_frame(frame, source: str = "predictions table", csv_lines: bool | Sequence[str] = False
                           ) -> list[Prediction]:
    """Validate a predictions table and turn it into :class:`Prediction` rows.

    Args:
        frame: a DataFrame with :data:`~soundaq.base.vocab.PREDICTION_COLUMNS` (+ optional ``window``,
            ``start_s``, ``end_s`` as ``soundaq predict`` writes them, ``data``, ``true_*``); a
            ``recording`` column stands for ``clip`` (``soundaq predict --out DIR``'s CSV tables).
        source: the file name for messages.
        csv_lines: True: also give the CSV line number of a bad row (header = line 1); a list: the
            name of each row in messages (e.g. ``item 2 window 1`` of a JSON file).

    Returns:
        One :class:`Prediction` per row, in table order.

    Raises:
        PredictionTableError: no rows, a missing column, a NaN/non-number, a probability outside [0, 1],
            an unknown scene, several models, an empty clip id, a repeated (clip, window).
    """
    if len(frame.columns) == 0 or len(frame) == 0:
        raise PredictionTableError(f"{source}: the table has no rows; fix: pass a predictions table with one row per clip")
    if "clip" not in frame.columns and "recording" in frame.columns:
        # `soundaq predict REC... --out DIR` names its rows by recording: timeseries.csv (one row per
        # window) and recordings.csv (one row per recording, the means over its windows)
        frame = frame.rename(columns={"recording": "clip"})
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise PredictionTableError(f"{source}: missing column(s) {', '.join(missing[:5])}{more}"
                                   f"{_missing_hint(frame.columns)}; fix: {_FIX_TABLE}")
    clips = frame["clip"]
    empty = clips.isna() | (clips.astype(str).str.strip() == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise _fail(source, _short(i, csv_lines), "clip", clips.iloc[i], "is empty", "give every row a clip id")
    models = frame["model"].astype(str).str.strip()
    if (models == "").any() or frame["model"].isna().any():
        i = int(np.flatnonzero(((models == "") | frame["model"].isna()).to_numpy())[0])
        raise _fail(source, _row_where(frame, i, csv_lines), "model", frame["model"].iloc[i], "is empty",
                    "name the acoustic model in every row")
    first_other = np.flatnonzero((models != models.iloc[0]).to_numpy())
    if first_other.size:
        i = int(first_other[0])
        raise PredictionTableError(
            f"{source}: {_row_where(frame, i, csv_lines)}, column model: {models.iloc[i]!r} but {_short(0, csv_lines)} is "
            f"{models.iloc[0]!r}: a mix of models; fix: caption each model's predictions separately (one --out each)")
    scenes = frame["scene"].astype(str).str.strip()
    unknown = ~scenes.isin(SCENES)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise _fail(source, _row_where(frame, i, csv_lines), "scene", frame["scene"].iloc[i], "is not a known scene",
                    f"use one of {', '.join(SCENES)}")
    probs = _numeric_block(frame, _PROBABILITY_COLUMNS, source, csv_lines)
    outside = (probs < 0.0) | (probs > 1.0)
    if outside.any():
        i, j = map(int, np.argwhere(outside)[0])
        raise _fail(source, _row_where(frame, i, csv_lines), _PROBABILITY_COLUMNS[j], float(probs[i, j]),
                    "is outside [0, 1]", "probabilities lie in [0, 1]; " + _FIX_TABLE)
    ratings = _numeric_block(frame, QUALITIES, source, csv_lines)
    iso = _numeric_block(frame, ("isop", "isoe"), source, csv_lines)
    windows, spans = _windows(frame, source, csv_lines)
    keys = list(zip(clips.astype(str).str.strip(), windows))
    seen: dict[tuple[str, str], int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            raise PredictionTableError(
                f"{source}: {_row_where(frame, i, csv_lines)} repeats {_short(seen[key], csv_lines)} (same clip and window); "
                "fix: keep one row per clip (and window)")
        seen[key] = i
    data = frame["data"].astype(str).where(frame["data"].notna(), "") if "data" in frame.columns else None
    n_scene = len(SCENE_PROB_COLUMNS)
    out = []
    for i, (clip, window) in enumerate(keys):
        out.append(Prediction(
            clip=clip, window=window, model=models.iloc[i], scene=scenes.iloc[i],
            scene_probabilities={s: float(probs[i, k]) for k, s in enumerate(SCENES)},
            events={e: float(probs[i, n_scene + k]) for k, e in enumerate(EVENTS)},
            qualities={q: float(ratings[i, k]) for k, q in enumerate(QUALITIES)},
            isop=float(iso[i, 0]), isoe=float(iso[i, 1]), start_s=spans[i][0], end_s=spans[i][1],
            source=f"{source} {_short(i, csv_lines)}", data=str(data.iloc[i]) if data is not None else ""))
    return out


def _windows(frame, source: str, csv_lines: bool) -> tuple[list[str], list[tuple[float | None, float | None]]]:
    """Window label and span of each row; rows without a ``window`` column are whole clips."""
    import pandas as pd

    n = len(frame)
    if "window" not in frame.columns:
        return [WHOLE] * n, [(None, None)] * n
    raw = frame["window"].astype(str).str.strip()
    whole = raw.str.lower().isin(WHOLE_ALIASES) | frame["window"].isna()
    starts = pd.to_numeric(frame["start_s"], errors="coerce") if "start_s" in frame.columns else pd.Series([np.nan] * n)
    ends = pd.to_numeric(frame["end_s"], errors="coerce") if "end_s" in frame.columns else pd.Series([np.nan] * n)
    labels, spans = [], []
    for i in range(n):
        a, b = float(starts.iloc[i]), float(ends.iloc[i])
        known = math.isfinite(a) and math.isfinite(b)
        if whole.iloc[i]:
            labels.append(WHOLE)
            spans.append((a, b) if known else (None, None))
            continue
        if not known or not 0 <= a < b:
            col = "start_s" if not math.isfinite(a) else "end_s"
            raise _fail(source, _row_where(frame, i, csv_lines), col,
                        frame[col].iloc[i] if col in frame.columns else None,
                        "is not a window span (need 0 <= start_s < end_s)",
                        "a window row needs start_s and end_s in seconds, as `soundaq predict` writes them")
        labels.append(window_label(a, b))
        spans.append((a, b))
    return labels, spans


# --------------------------------------------------------------------------------------------------
# JSON (soundaq predict) and predict_files results
# --------------------------------------------------------------------------------------------------
def _check_record(rec, where: str, source: str) -> None:
    if not isinstance(rec, Mapping):
        raise PredictionTableError(f"{source}: {where} is {type(rec).__name__}, not an object; fix: {_FIX_TABLE}")
    for key, names in (("scene_probabilities", SCENES), ("events", EVENTS), ("qualities", QUALITIES)):
        block = rec.get(key)
        if not isinstance(block, Mapping):
            raise PredictionTableError(f"{source}: {where} has no {key!r} object; fix: {_FIX_TABLE}")
        missing = [n for n in names if n not in block]
        if missing:
            raise PredictionTableError(f"{source}: {where}, {key}: no {missing[0]!r}"
                                       f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; "
                                       f"fix: {_FIX_TABLE}")
    for key in ("scene", "isop", "isoe"):
        if key not in rec:
            raise PredictionTableError(f"{source}: {where} has no {key!r}; fix: {_FIX_TABLE}")


def _flat(rec: Mapping, clip, model, window, start, end) -> dict:
    row = {"clip": clip, "model": model, "scene": rec["scene"]}
    row.update({c: rec["scene_probabilities"][s] for c, s in zip(SCENE_PROB_COLUMNS, SCENES)})
    row.update({c: rec["events"][e] for c, e in zip(EVENT_PROB_COLUMNS, EVENTS)})
    row.update({q: rec["qualities"][q] for q in QUALITIES})
    row.update({"isop": rec["isop"], "isoe": rec["isoe"], "window": window, "start_s": start, "end_s": end})
    return row


def predictions_from_results(results: Iterable[Mapping], source: str = "predictions") -> list[Prediction]:
    """:class:`Prediction` rows of ``soundaq predict`` JSON objects / ``predict_files`` results.

    Each object holds ``clip``, ``model``, ``scene``, ``scene_probabilities``, ``events``,
    ``qualities``, ``isop``, ``isoe`` and optionally ``windows`` (objects with the same keys plus
    ``start_s``/``end_s``). Windows are listed when there are two or more.

    Raises:
        PredictionTableError: a missing key, a bad value (as :func:`predictions_from_frame`).
    """
    import pandas as pd

    rows, where = [], []
    for k, rec in enumerate(results):
        item = f"item {k + 1}"
        _check_record(rec, item, source)
        for key in ("clip", "model"):
            if not str(rec.get(key) or "").strip():
                raise PredictionTableError(f"{source}: {item} has no {key!r}; fix: {_FIX_TABLE}")
        wins = rec.get("windows") or []
        if not isinstance(wins, list):
            raise PredictionTableError(f"{source}: {item}, windows: not a list; fix: {_FIX_TABLE}")
        rows.append(_flat(rec, rec["clip"], rec["model"], WHOLE, wins[0].get("start_s") if wins else None,
                          wins[-1].get("end_s") if wins else None))
        where.append(item)
        if len(wins) > 1:
            for w, win in enumerate(wins):
                _check_record(win, f"{item} window {w + 1}", source)
                rows.append(_flat(win, rec["clip"], rec["model"], str(win.get("index", w)),
                                  win.get("start_s"), win.get("end_s")))
                where.append(f"{item} window {w + 1}")
    if not rows:
        raise PredictionTableError(f"{source}: no clips; fix: pass the JSON that `soundaq predict` writes")
    return predictions_from_frame(pd.DataFrame(rows), source, csv_lines=where)


# --------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------
def is_table(path: Path) -> bool:
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def read_predictions_file(path: Path | str) -> list[Prediction]:
    """Read one predictions CSV or ``soundaq predict`` JSON (see the module docstring).

    Raises:
        PredictionTableError: missing/unreadable file or any problem :func:`predictions_from_frame` names.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        from soundaq.base.textio import TextFileError, read_json

        try:
            data = read_json(path, fix="pass the JSON that `soundaq predict --out FILE.json` writes")
        except TextFileError as err:
            raise PredictionTableError(str(err)) from None
        return predictions_from_results(data if isinstance(data, list) else [data], str(path))
    from soundaq.evaluation.correlation import CorrelationError, read_table

    try:
        frame = read_table(path)
    except CorrelationError as err:
        raise PredictionTableError(str(err)) from None
    return predictions_from_frame(frame, str(path), csv_lines=True)


def audio_suffixes() -> frozenset[str]:
    """File suffixes of the audio formats this libsndfile reads (``.wav``, ``.flac``, ``.ogg``, ...)."""
    import soundfile as sf

    names = {f".{name.lower()}" for name in sf.available_formats()}
    return frozenset(names | {".aif", ".oga", ".opus"})


def split_inputs(inputs: Sequence[Path | str]) -> tuple[list[Path], list[Path]]:
    """``(tables, audio files)`` of the command line's INPUTs; folders give their audio files (sorted).

    Raises:
        UserError: a missing path, a folder without audio files.
    """
    tables, audio = [], []
    suffixes = audio_suffixes()
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise UserError(f"{item}: a folder without audio files; fix: pass audio files, a folder of them, "
                                "or a predictions table (.csv/.json)")
            audio.extend(found)
        elif not item.exists():
            raise UserError(f"{item}: file not found; fix: check the path")
        elif is_table(item):
            tables.append(item)
        else:
            audio.append(item)
    return tables, audio


def check_one_model(predictions: Sequence[Prediction]) -> str:
    """The one acoustic model of ``predictions``.

    Raises:
        PredictionTableError: a mix of models (naming where each comes from).
    """
    first = predictions[0]
    for p in predictions:
        if p.model != first.model:
            raise PredictionTableError(
                f"{p.source}: model {p.model!r} but {first.source} is {first.model!r}: a mix of models; "
                "fix: caption each model's predictions separately (one --out each)")
    return first.model

