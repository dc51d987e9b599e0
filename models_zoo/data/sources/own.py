"""``own``: your own data, a folder of audio plus one CSV of labels with whatever label groups it has.

For benchmarking the zoo on a listening test of your own. The CSV (UTF-8 with or without a byte-order
mark, any line ends, comma-, semicolon- or tab-separated: the separator of the header line is used)
has one row per clip and these columns, matched without regard to case:

``clip`` (required)
    the audio file in the folder: its name (``park_01.wav``) or its stem (``park_01``), or a path
    below the folder (``day1/park_01.wav``). Any format libsndfile reads, any length: a clip is served
    by its first 30-s window (a shorter one is padded with silence), as ARAUS audio is.
``split`` (optional)
    ``training``, ``validation`` or ``test`` (also ``train``, ``val``). Without the column, the split is
    drawn from the clip id: the first 8 hex digits of SHA-256(clip id) as a fraction of 2^32 put a clip
    in training below 0.70, validation below 0.85, test above (70/15/15, the same for the same id
    on every machine and in every run, whatever the other rows).
``scene`` (optional)
    one of ``public_square``, ``park``, ``street_traffic`` (spaces for underscores are fine).
events (optional), either
    one ``events`` column of event names separated by ``;`` or tabs (an empty cell: no event), or the
    15 event columns by name (``Bird`` or ``event_bird``), each 0 or 1.
qualities (optional)
    the 8 quality columns by name (``pleasant`` ... ``monotonous``, or soundscapy's ``PAQ1``...``PAQ8``),
    ratings from 1 to 5 (means over listeners may be fractional). ISOPleasant and ISOEventful are
    computed from them (ISO/TS 12913-3, :func:`soundaq.base.vocab.iso_coordinates`).

Other columns (participant, notes, ...) are not labels and are ignored (a warning names them). A row
that cannot be read, a clip listed twice, a label group with a column missing or a clip whose file is
not in the folder is refused with one line naming ``file:line`` and the fix: a clip with valid labels is
never dropped unnamed.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundaq.base.errors import SoundaqWarning
from soundaq.base.fileio import sha256_file
from soundaq.base.filekinds import AUDIO_SUFFIXES
from soundaq.base.textio import clean_cell, read_text
from soundaq.base.vocab import (
    EVENT_COLUMNS,
    EVENTS,
    LABEL_GROUPS,
    QUALITIES,
    RATING_MAX,
    RATING_MIN,
    SCENES,
    SOUNDSCAPY_PAQ,
    event_slug,
    iso_coordinates,
)
from soundaq.models_zoo.data.labels import SPLIT_ALIASES, SPLITS
from soundaq.models_zoo.data.sources.base import DataSource
from soundaq.models_zoo.data.sources.readers import AudioFolder, DataError

if TYPE_CHECKING:
    import pandas as pd

#: Where the hash split puts a clip: training below the first bound, validation below the second.
HASH_SPLIT = (0.70, 0.85)
#: Separators of the names in an ``events`` cell (tabs as in the ARAUS files; commas occur in a name).
EVENT_SEPARATORS = (";", "\t")
_DELIMITERS = (",", ";", "\t")


class LabelsCSVError(DataError):
    """A labels CSV that cannot be used: ``file:line: problem; fix: ...`` in one line."""

    def __init__(self, path: Path | str, line: int | None, problem: str, fix: str):
        self.path, self.line, self.problem, self.fix = Path(path), line, problem, fix
        super().__init__(f"{path}:{line}: {problem}; fix: {fix}" if line else f"{path}: {problem}; fix: {fix}")


class OwnDataWarning(SoundaqWarning):
    """Something in a labels CSV that soundaq does not read (extra columns)."""


def hash_split(clip: str) -> str:
    """The split of a clip without a ``split`` column: SHA-256 of the clip id, first 8 hex digits as a
    fraction of 2^32; below 0.70 training, below 0.85 validation, else test.
    """
    u = int(hashlib.sha256(clip.encode("utf-8")).hexdigest()[:8], 16) / 2 ** 32
    return "training" if u < HASH_SPLIT[0] else "validation" if u < HASH_SPLIT[1] else "test"


def _key(name: str) -> str:
    return clean_cell(name).lower().replace(" ", "_").replace("-", "_")


def _aliases() -> dict[str, tuple[str, str]]:
    """Header key -> (kind, canonical name) for every column the reader knows."""
    out: dict[str, tuple[str, str]] = {"clip": ("clip", "clip"), "split": ("split", "split"),
                                       "scene": ("scene", "scene"), "events": ("events", "events")}
    for event, column in zip(EVENTS, EVENT_COLUMNS):
        for alias in (event, column, event_slug(event)):
            out[_key(alias)] = ("event", column)
    for quality in QUALITIES:
        out[_key(quality)] = ("quality", quality)
    for paq, quality in SOUNDSCAPY_PAQ.items():
        out[_key(paq)] = ("quality", quality)
    return out


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


class _Columns:
    """Which header cell holds what (filled by :func:`_read_header`)."""

    def __init__(self):
        self.clip: int | None = None
        self.split: int | None = None
        self.scene: int | None = None
        self.events: int | None = None
        self.event: dict[str, int] = {}
        self.quality: dict[str, int] = {}
        self.fold: int | None = None          # an ARAUS fold per clip (not a label: --protocol araus, fold breakdown)
        self.ignored: list[str] = []

    @property
    def tasks(self) -> tuple[str, ...]:
        have = {"scene": self.scene is not None, "events": self.events is not None or bool(self.event),
                "qualities": bool(self.quality)}
        return tuple(g for g in LABEL_GROUPS if have[g])


def _fold_cell(path: Path, line: int, cell: str) -> int:
    """The ARAUS fold of a row's ``fold`` cell (a whole number >= 0)."""
    text = clean_cell(cell)
    if not text.isdigit():
        raise LabelsCSVError(path, line, f"fold {text!r} is not a fold number",
                             "write the clip's ARAUS fold as a whole number (0 = the test fold, 1-5), or drop the column")
    return int(text)


def _read_header(path: Path, header: list[str]) -> _Columns:
    known = _aliases()
    cols = _Columns()
    seen: dict[str, int] = {}
    for i, cell in enumerate(header):
        found = known.get(_key(cell))
        if found is None and _key(cell) == "fold" and cols.fold is None:
            cols.fold = i
            continue
        if found is None:
            if clean_cell(cell):
                cols.ignored.append(clean_cell(cell))
            continue
        kind, name = found
        if name in seen:
            raise LabelsCSVError(path, 1, f"columns {seen[name] + 1} and {i + 1} both hold {name!r}",
                                 "keep one of them")
        seen[name] = i
        if kind in ("clip", "split", "scene", "events"):
            setattr(cols, kind, i)
        else:
            getattr(cols, kind)[name] = i
    _check_columns(path, header, cols)
    return cols


def _check_columns(path: Path, header: list[str], cols: _Columns) -> None:
    """A clip column, one form of events, whole groups and at least one of them (LabelsCSVError otherwise)."""
    if cols.clip is None:
        shown = ", ".join(clean_cell(c) for c in header[:8]) or "(empty)"
        raise LabelsCSVError(path, 1, f"no 'clip' column (header: {shown})",
                             "name the column of audio file names 'clip'")
    if cols.events is not None and cols.event:
        raise LabelsCSVError(path, 1, "events are given twice, as an 'events' column and as event columns",
                             "keep one form: one 'events' column of names separated by ';', or the 15 event columns")
    for kind, names, whole in (("event", cols.event, EVENT_COLUMNS), ("quality", cols.quality, QUALITIES)):
        lacking = [n for n in whole if n not in names]
        if names and lacking:
            raise LabelsCSVError(path, 1, f"has {len(names)} of the {len(whole)} {kind} columns, not "
                                          f"{', '.join(lacking[:4])}{' ...' if len(lacking) > 4 else ''}",
                                 f"add the missing {kind} columns (or remove all of them)")
    if not cols.tasks:
        raise LabelsCSVError(path, 1, "no label columns (scene, events or the 8 qualities)",
                             "add at least one label group; docs/data.md ('Your own data') lists the columns")


def _number(path: Path, line: int, column: str, text: str, lo: float, hi: float, what: str, fix: str) -> float:
    try:
        # a decimal comma ("3,5", what a spreadsheet in many locales writes to a ';'-separated CSV) is read
        # as the decimal mark it is, as the jury reader does
        value = float(text.replace(",", ".", 1) if re.fullmatch(r"[+-]?\d+,\d+", text.strip()) else text)
    except ValueError:
        raise LabelsCSVError(path, line, f"{column} is {text!r}, not a number",
                             "write a number there (a dot or a comma as the decimal mark)") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise LabelsCSVError(path, line, f"{what} {text} of {column} is outside {lo:g}-{hi:g}", fix)
    return value


def _split_cell(path: Path, line: int, text: str) -> str:
    split = SPLIT_ALIASES.get(text.lower())
    if split is None:
        raise LabelsCSVError(path, line, f"unknown split {text!r}", "write training, validation or test (or train, val)")
    return split


def _scene_cell(path: Path, line: int, text: str) -> str:
    scene = _key(text)
    if scene not in SCENES:
        raise LabelsCSVError(path, line, f"unknown scene {text!r}", f"use one of {', '.join(SCENES)}")
    return scene


def _events_cell(path: Path, line: int, text: str) -> dict[str, int]:
    """The 15 event columns (0/1) of an ``events`` cell: names separated by ';' or tabs."""
    known = {_key(a): c for e, c in zip(EVENTS, EVENT_COLUMNS) for a in (e, c, event_slug(e))}
    out = {c: 0 for c in EVENT_COLUMNS}
    for sep in EVENT_SEPARATORS[1:]:
        text = text.replace(sep, EVENT_SEPARATORS[0])
    for name in (clean_cell(n) for n in text.split(EVENT_SEPARATORS[0])):
        if name and _key(name) not in known:
            raise LabelsCSVError(path, line, f"unknown event {name!r}",
                                 "use the 15 event names (soundaq.base.vocab.EVENTS), separated by ';'")
        if name:
            out[known[_key(name)]] = 1
    return out


def _event_flag(path: Path, line: int, column: str, text: str) -> int:
    value = _number(path, line, column, text, 0, 1, "event label", "write 0 or 1")
    if value not in (0.0, 1.0):
        raise LabelsCSVError(path, line, f"{column} is {text!r}", "write 0 or 1")
    return int(value)


def _row_labels(path: Path, line: int, cells: list[str], cols: _Columns) -> dict:
    """One row's labels as the tidy table holds them (raises LabelsCSVError naming the line)."""
    def cell(i: int) -> str:
        return clean_cell(cells[i]) if i < len(cells) else ""

    row: dict = {}
    if cols.split is not None:
        row["split"] = _split_cell(path, line, cell(cols.split))
    if cols.scene is not None:
        row["scene"] = _scene_cell(path, line, cell(cols.scene))
    if cols.events is not None:   # the raw cell: tabs separate names, clean_cell would turn them into spaces
        row.update(_events_cell(path, line, cells[cols.events] if cols.events < len(cells) else ""))
    row.update({column: _event_flag(path, line, column, cell(i)) for column, i in cols.event.items()})
    row.update({q: _number(path, line, q, cell(i), RATING_MIN, RATING_MAX, "rating",
                           f"ratings lie between {RATING_MIN:g} and {RATING_MAX:g}") for q, i in cols.quality.items()})
    return row


def _audio_index(folder: Path) -> dict[str, list[Path]]:
    """Stem -> audio files directly in ``folder`` (for clip ids given without a suffix)."""
    index: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES:
            index.setdefault(p.stem, []).append(p)
    return index


def _resolve_clip(path: Path, line: int, text: str, folder: Path, index: dict[str, list[Path]]) -> tuple[str, Path]:
    """``(clip id, audio file)`` of a ``clip`` cell: a file name, a stem or a path below the folder."""
    if not text:
        raise LabelsCSVError(path, line, "empty clip", "write the audio file's name")
    rel = Path(text.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise LabelsCSVError(path, line, f"clip {text!r} is not inside the audio folder",
                             f"write the file's name relative to {folder}")
    direct = folder / rel
    if direct.is_file():
        clip = rel.with_suffix("") if rel.suffix.lower() in AUDIO_SUFFIXES else rel
        return clip.as_posix(), direct
    candidates = (index.get(rel.name, []) if len(rel.parts) == 1 else
                  [p for p in sorted(direct.parent.glob(f"{rel.name}.*")) if p.suffix.lower() in AUDIO_SUFFIXES]
                  if direct.parent.is_dir() else [])
    if len(candidates) > 1:
        raise LabelsCSVError(path, line, f"clip {text!r} matches {', '.join(p.name for p in candidates)}",
                             "write the file name with its suffix")
    if not candidates:
        raise LabelsCSVError(path, line, f"clip {text!r}: no such audio file in {folder}",
                             "correct the name in the CSV, or add the file to the folder")
    return rel.as_posix(), candidates[0]


def read_labels_csv(path: Path | str, audio_dir: Path | str) -> tuple[pd.DataFrame, dict[str, Path], dict[str, Any]]:
    """Read and check a labels CSV against its audio folder.

    Args:
        path: the CSV (see the module docstring for its columns).
        audio_dir: the folder its ``clip`` cells name files in.

    Returns:
        ``(table, files, info)``: the tidy label table (``clip``, ``split`` and the columns of the groups
        present; one row per clip in file order), ``{clip id: audio file}``, and
        ``{"tasks", "split_from", "ignored_columns"}``.

    Raises:
        LabelsCSVError: one line naming ``file:line`` and the fix (see the module docstring);
        TextFileError: not UTF-8 text.
    """
    import pandas as pd

    path, folder = Path(path).expanduser(), Path(audio_dir).expanduser()
    text = read_text(path, fix="save it as UTF-8 (Excel: Save As 'CSV UTF-8')")
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))
    header = next(reader, None)
    if header is None or not any(clean_cell(c) for c in header):
        raise LabelsCSVError(path, 1, "the file is empty", "write a header line (clip,scene,...) and one row per clip")
    cols = _read_header(path, header)
    index = _audio_index(folder)
    rows: list[dict[str, Any]] = []
    files: dict[str, Path] = {}
    first_line: dict[str, int] = {}
    delimiter = _delimiter(first)
    clip_col = cols.clip
    assert clip_col is not None  # _read_header refuses a header without a clip column
    for cells in reader:
        line = reader.line_num
        if not any(clean_cell(c) for c in cells):
            continue
        extra = [c for c in cells[len(header):] if clean_cell(c)]
        if extra:
            raise LabelsCSVError(path, line, f"{len(cells)} fields but the header has {len(header)} (a cell holding "
                                 f"the delimiter {delimiter!r} splits in two)",
                                 f"quote such cells (\"Bird{delimiter}Speech\"), or save the file with commas "
                                 "between its columns")
        clip, audio = _resolve_clip(path, line, clean_cell(cells[clip_col]) if clip_col < len(cells) else "",
                                    folder, index)
        if clip in first_line:
            raise LabelsCSVError(path, line, f"clip {clip!r} is listed twice (first on line {first_line[clip]})",
                                 "keep one row per clip (average the ratings of several listeners first)")
        first_line[clip] = line
        labels = _row_labels(path, line, cells, cols)
        labels.setdefault("split", hash_split(clip))
        if cols.fold is not None:
            labels["fold"] = _fold_cell(path, line, cells[cols.fold] if cols.fold < len(cells) else "")
        rows.append({"clip": clip, **labels})
        files[clip] = audio
    if not rows:
        raise LabelsCSVError(path, None, "no clip rows under the header", "write one row per clip")
    if cols.ignored:
        warnings.warn(f"{path}: columns {', '.join(cols.ignored)} are not labels soundaq reads and are ignored "
                      "(docs/data.md, 'Your own data')", OwnDataWarning, stacklevel=3)
    group_cols = {"scene": ["scene"], "events": list(EVENT_COLUMNS), "qualities": list(QUALITIES)}
    columns = ["clip", "split", *[c for g in cols.tasks for c in group_cols[g]], *(["fold"] if cols.fold is not None
                                                                                    else [])]
    table = pd.DataFrame(rows, columns=columns)
    if "qualities" in cols.tasks:
        table["isop"], table["isoe"] = iso_coordinates(*(table[q].to_numpy(float) for q in QUALITIES))
    info = {"tasks": list(cols.tasks), "split_from": "column" if cols.split is not None else "hash of the clip id",
            "ignored_columns": cols.ignored}
    return table, files, info


class OwnSource(DataSource):
    """A folder of audio plus one CSV of labels (see the module docstring).

    Args:
        labels_dir: the labels CSV file (the data module's keyword, shared with ARAUS's label folder;
            ``--labels LABELS.csv``).
        audio_dir: the folder the CSV's ``clip`` cells name files in (``--audio DIR``).
        cache_dir, calibration: the feature cache and the audio's level calibration (as ARAUS audio).

    Raises:
        DataError: a missing CSV or folder (one line); the CSV itself is read by :meth:`prepare`.
    """

    name = "own"
    description = "your own data: --labels LABELS.csv and --audio DIR (docs/data.md, 'Your own data')"
    needs = "labels_dir (--labels LABELS.csv) and audio_dir (--audio DIR)"
    in_memory = True

    def __init__(self, labels_dir=None, audio_dir=None, cache_dir=None, calibration=None, progress: bool = False):
        if labels_dir is None or audio_dir is None:
            raise DataError(f"source='own' needs {self.needs}; fix: pass both")
        self.labels_path = Path(labels_dir).expanduser()
        self.audio_dir = Path(audio_dir).expanduser()
        if self.labels_path.is_dir():
            raise DataError(f"{self.labels_path}: is a folder; fix: pass the labels CSV file with --labels")
        if not self.labels_path.is_file():
            raise DataError(f"{self.labels_path}: labels CSV not found; fix: check the path")
        if not self.audio_dir.is_dir():
            raise DataError(f"{self.audio_dir}: audio folder not found; fix: pass the folder the CSV's clips are in")
        self.cache_dir = cache_dir
        self.calibration = calibration
        self._table: pd.DataFrame | None = None
        self._files: dict[str, Path] = {}
        self._info: dict = {}
        self._reader: AudioFolder | None = None

    def prepare(self) -> None:
        """Read and check the CSV and that every clip's file is in the folder (once)."""
        if self._table is None:
            self._table, self._files, self._info = read_labels_csv(self.labels_path, self.audio_dir)

    def _loaded(self) -> pd.DataFrame:
        """The label table of every split, read on first use."""
        self.prepare()
        assert self._table is not None
        return self._table

    @property
    def tasks(self) -> tuple[str, ...]:
        """The label groups the CSV has columns for (read on first use)."""
        self.prepare()
        return tuple(self._info["tasks"])

    def splits(self) -> tuple[str, ...]:
        """The splits with at least one clip (the CSV's split column, or the 70/15/15 split by clip id)."""
        present = set(self._loaded()["split"])
        return tuple(s for s in SPLITS if s in present)

    def labels(self, split: str):
        """The tidy label table of ``split`` from the CSV.

        Raises:
            LabelsCSVError: the CSV or a clip's file is unusable (one line naming the row and the fix).
        """
        table = self._loaded()
        return table[table["split"] == split].reset_index(drop=True)

    def reader(self) -> AudioFolder:
        """The reader of the clips' audio files (features computed and cached)."""
        if self._reader is None:
            self.prepare()
            self._reader = AudioFolder(self.audio_dir, self.cache_dir, self.calibration, files=self._files)
        return self._reader

    def data_label(self) -> str:
        """The data column: ``own data (<CSV name>, <n> clips)``."""
        return f"own data ({self.labels_path.name}, {len(self._loaded())} clips)"

    def identity(self) -> str:
        """The CSV's path and digest and the audio reader's identity."""
        return f"own:{self.labels_path.resolve()}:{sha256_file(self.labels_path)[:16]}|{self.reader().identity()}"

    def describe(self) -> dict:
        """The CSV (path, digest, clips, what was read from it) and the audio folder, for provenance."""
        table = self._loaded()
        return {"labels_dir": str(self.labels_path), "features_dir": None, "audio_dir": str(self.audio_dir),
                "own": {"labels_file": str(self.labels_path), "sha256": sha256_file(self.labels_path),
                        "clips": len(table), **self._info}}

    def missing_split(self, split: str) -> DataError:
        """The one-line error for a split with no clips, saying how to give the CSV some."""
        table = self._loaded()
        how = ("add rows with split=" + split if self._info.get("split_from") == "column" else
               f"add a split column (the 70/15/15 split by clip id gave no {split} clips of "
               f"{len(table)})")
        return LabelsCSVError(self.labels_path, None, f"no {split} clips", how)
