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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soundaq.base import predictions_table
from soundaq.base.errors import UserError
from soundaq.base.predictions_table import FIX as _FIX_TABLE
from soundaq.base.predictions_table import WHOLE, PredictionTableError
from soundaq.base.vocab import EVENT_PROB_COLUMNS, EVENTS, QUALITIES, SCENE_PROB_COLUMNS, SCENES

TABLE_SUFFIXES = (".csv", ".json")


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
        """``(clip, window)``: what identifies the prediction among a run's inputs."""
        return self.clip, self.window

    @property
    def label(self) -> str:
        """The prediction's name in messages: the clip, with ``[START-END s]`` for a window."""
        return self.clip if self.window == WHOLE else f"{self.clip} [{self.window} s]"

    def to_dict(self) -> dict:
        """Every field, as a plain dict (``Prediction(**p.to_dict())`` makes it again)."""
        return asdict(self)


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
# tables (read and checked by soundaq.base.predictions_table, the one owner of the format)
# --------------------------------------------------------------------------------------------------
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
        PredictionTableError: as :func:`soundaq.base.predictions_table.rows` (no rows, a missing column,
            a NaN/non-number, a probability outside [0, 1], an unknown scene, several models, an empty
            clip id, a repeated (clip, window)).
    """
    got = predictions_table.rows(frame, source, csv_lines)
    n_scene = len(SCENE_PROB_COLUMNS)
    probs = got.probabilities
    return [Prediction(
        clip=clip, window=got.windows[i], model=got.model, scene=got.scenes[i],
        scene_probabilities={s: float(probs[i, k]) for k, s in enumerate(SCENES)},
        events={e: float(probs[i, n_scene + k]) for k, e in enumerate(EVENTS)},
        qualities={q: float(got.ratings[i, k]) for k, q in enumerate(QUALITIES)},
        isop=float(got.iso[i, 0]), isoe=float(got.iso[i, 1]), start_s=got.spans[i][0], end_s=got.spans[i][1],
        source=f"{source} {got.names[i]}", data=got.data[i]) for i, clip in enumerate(got.clips)]


# --------------------------------------------------------------------------------------------------
# JSON (soundaq predict) and predict_files results
# --------------------------------------------------------------------------------------------------
def _check_record(rec: object, where: str, source: str) -> Mapping[str, Any]:
    """``rec`` itself once it is an object with every block and key a prediction needs."""
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
    return rec


def _flat(rec: Mapping, clip, model, window, start, end) -> dict:
    row = {"clip": clip, "model": model, "scene": rec["scene"]}
    row.update({c: rec["scene_probabilities"][s] for c, s in zip(SCENE_PROB_COLUMNS, SCENES)})
    row.update({c: rec["events"][e] for c, e in zip(EVENT_PROB_COLUMNS, EVENTS)})
    row.update({q: rec["qualities"][q] for q in QUALITIES})
    row.update({"isop": rec["isop"], "isoe": rec["isoe"], "window": window, "start_s": start, "end_s": end})
    return row


def predictions_from_results(results: Iterable[object], source: str = "predictions") -> list[Prediction]:
    """:class:`Prediction` rows of ``soundaq predict`` JSON objects / ``predict_files`` results.

    Each object holds ``clip``, ``model``, ``scene``, ``scene_probabilities``, ``events``,
    ``qualities``, ``isop``, ``isoe`` and optionally ``windows`` (objects with the same keys plus
    ``start_s``/``end_s``). Windows are listed when there are two or more.

    Raises:
        PredictionTableError: a missing key, a bad value (as :func:`predictions_from_frame`).
    """
    import pandas as pd

    rows, where = [], []
    for k, given in enumerate(results):
        item = f"item {k + 1}"
        rec = _check_record(given, item, source)
        for key in ("clip", "model"):
            if not str(rec.get(key) or "").strip():
                raise PredictionTableError(f"{source}: {item} has no {key!r}; fix: {_FIX_TABLE}")
        wins = rec.get("windows") or []
        if not isinstance(wins, list):
            raise PredictionTableError(f"{source}: {item}, windows: not a list; fix: {_FIX_TABLE}")
        for w, win in enumerate(wins):       # before any is read: a window that is not an object is one line
            if not isinstance(win, Mapping):
                raise PredictionTableError(f"{source}: {item} window {w + 1} is {type(win).__name__}, not an "
                                           f"object; fix: {_FIX_TABLE}")
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
    """Whether ``path`` names a predictions table by its suffix (:data:`TABLE_SUFFIXES`), not audio."""
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
    return predictions_from_frame(predictions_table.read(path), str(path), csv_lines=True)


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

