"""Reading and validating the paper's ARAUS annotation (one folder of per-split text files).

Line i of every file of a split describes clip i. Files are read by :mod:`soundaq.base.textio`:
UTF-8 with or without a byte-order mark, CRLF, LF or CR line ends; invisible characters around a
clip id, scene or event name (a BOM, zero-width spaces) are dropped, so a Notepad-saved file names
the same clips as the release's. Every problem is raised as :class:`LabelError`, whose message
names the file, the line and the fix, so that the CLI can print one line and exit 2.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soundaq.base.errors import UserError
from soundaq.base.filekinds import sniff, wrong_kind
from soundaq.base.textio import TextFileError, clean_cell, read_lines
from soundaq.base.vocab import EVENT_COLUMNS, EVENTS, QUALITIES, RATING_MAX, RATING_MIN, SCENES

SPLITS: tuple[str, ...] = ("training", "validation", "test")
SPLIT_ALIASES = {"train": "training", "training": "training", "val": "validation",
                 "validation": "validation", "test": "test"}
#: Split sizes of the paper's annotation.
PAPER_SPLIT_SIZES = {"training": 19152, "validation": 2520, "test": 3576}

#: The five files of a split, by role.
FILE_PATTERNS = {
    "ids": "{split}_set_audio_file_ids.txt",
    "scene": "{split}_set_acoustic_scene_labels.txt",
    "events": "{split}_set_audio_event_labels.txt",
    "aq": "{split}_set_PAQ_8D_AQs.txt",
    "iso": "{split}_set_ISOP_ISOE.txt",
}


class LabelError(UserError, ValueError):
    """A malformed label file: the message names the file, the line and the fix."""

    def __init__(self, path: Path | str, line: int | None, problem: str, fix: str):
        self.path, self.line, self.problem, self.fix = Path(path), line, problem, fix
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {problem}; fix: {fix}")


@dataclass(frozen=True)
class SplitFiles:
    """The five label files of one split: ``paths`` maps each role (ids, scene, events, AQs, ISO) to its file."""
    split: str
    paths: dict[str, Path]


def check_label_folder(folder: Path | str) -> None:
    """Raise :class:`~soundaq.base.filekinds.WrongKind` when ``folder`` is recognisably not a label folder
    (one label file, a feature or audio folder, a predictions table, ...): one line saying what it
    looks like and which option takes it. A missing or unrecognised folder is left to the reader.
    """
    folder = Path(folder)
    kind = sniff(folder)
    if kind == "label-file":
        raise wrong_kind(folder, kind, "a label folder", fix=f"pass the folder holding it, --labels {folder.parent}")
    if kind not in ("label-folder", "folder", "missing"):
        fix = None
        if kind == "text" and folder.suffix.lower() in (".csv", ".tsv", ".txt"):
            fix = (f"for your own listening test's labels CSV, add --data own (with --audio DIR): "
                   f"`soundaq data prepare --data own --labels {folder} --audio DIR` checks it")
        raise wrong_kind(folder, kind, "an ARAUS label folder (*_set_*.txt files)", fix=fix)


def split_files(folder: Path | str, split: str) -> SplitFiles:
    """The label files of ``split`` (an alias such as ``train`` is resolved) in ``folder``; none need exist.

    Args:
        folder: the ARAUS label folder.
        split: ``training``, ``validation`` or ``test`` (or an alias of :data:`SPLIT_ALIASES`).

    Returns:
        The split's canonical name and the path of each file role of :data:`FILE_PATTERNS`.
    """
    split = SPLIT_ALIASES.get(split, split)
    folder = Path(folder)
    return SplitFiles(split, {role: folder / pat.format(split=split) for role, pat in FILE_PATTERNS.items()})


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise LabelError(path, None, "file is missing",
                         "download the labels with `soundaq data download --labels-to DIR`")
    try:
        lines = read_lines(path, fix="save it as UTF-8, or replace it with the original release file")
    except TextFileError as err:
        raise LabelError(err.path, err.line, err.problem, err.fix) from None
    while lines and lines[-1].strip() == "":
        lines.pop()
    if not lines:
        raise LabelError(path, None, "file is empty", "replace it with the original release file")
    return lines


def _numbers(path: Path, lines: list[str], width: int, lo: float, hi: float) -> np.ndarray:
    out = np.empty((len(lines), width), dtype=np.float64)
    for i, line in enumerate(lines):
        parts = clean_cell(line).split()
        if len(parts) != width:
            raise LabelError(path, i + 1, f"expected {width} space-separated numbers, found {len(parts)}",
                             f"write {width} numbers on this line")
        for j, tok in enumerate(parts):
            try:
                v = float(tok)
            except ValueError:
                raise LabelError(path, i + 1, f"{tok!r} is not a number", "write a decimal number") from None
            if not math.isfinite(v):
                raise LabelError(path, i + 1, f"{tok!r} is not a finite number", "write a finite number")
            if not (lo <= v <= hi):
                raise LabelError(path, i + 1, f"rating {v:g} is outside {lo:g}-{hi:g}",
                                 f"ratings must lie between {lo:g} and {hi:g}")
            out[i, j] = v
    return out


def read_split(folder: Path | str, split: str) -> pd.DataFrame:
    """One split as a tidy table: clip, split, scene, 15 event columns (0/1), 8 qualities, isop, isoe."""
    files = split_files(folder, split)
    lines = {role: _read_lines(p) for role, p in files.paths.items()}
    n = len(lines["ids"])
    for role, ls in lines.items():
        if len(ls) != n:
            raise LabelError(files.paths[role], min(len(ls), n) + 1,
                             f"has {len(ls)} lines but {files.paths['ids'].name} has {n}",
                             "every file of a split needs one line per clip, in the same order")
    ids = [clean_cell(s) for s in lines["ids"]]
    for i, cid in enumerate(ids):
        if not cid:
            raise LabelError(files.paths["ids"], i + 1, "empty clip id", "write the ARAUS clip id")
    scenes = []
    for i, s in enumerate(lines["scene"]):
        s = clean_cell(s)
        if s not in SCENES:
            raise LabelError(files.paths["scene"], i + 1, f"unknown scene {s!r}",
                             f"use one of {', '.join(SCENES)}")
        scenes.append(s)
    events = np.zeros((n, len(EVENTS)), dtype=np.int8)
    index = {e: k for k, e in enumerate(EVENTS)}
    for i, line in enumerate(lines["events"]):
        for name in line.split("\t"):  # tabs only: "Outside, rural or natural" has a comma
            name = clean_cell(name)
            if not name:
                continue
            if name not in index:
                raise LabelError(files.paths["events"], i + 1, f"unknown event {name!r}",
                                 "use the 15 event names, separated by tabs")
            events[i, index[name]] = 1
    aq = _numbers(files.paths["aq"], lines["aq"], len(QUALITIES), RATING_MIN, RATING_MAX)
    iso = _numbers(files.paths["iso"], lines["iso"], 2, -1.0, 1.0)
    frame = pd.DataFrame({"clip": ids, "split": files.split, "scene": scenes})
    frame = pd.concat([frame, pd.DataFrame(events, columns=list(EVENT_COLUMNS)),
                       pd.DataFrame(aq, columns=list(QUALITIES)),
                       pd.DataFrame(iso, columns=["isop", "isoe"])], axis=1)
    return frame


def read_labels(folder: Path | str, splits=SPLITS) -> pd.DataFrame:
    """All requested splits stacked, in the paper's order."""
    if isinstance(splits, str):
        splits = SPLITS if splits == "all" else (splits,)
    frames = [read_split(folder, s) for s in splits]
    frame = pd.concat(frames, ignore_index=True)
    dup = frame["clip"].duplicated()
    if dup.any():
        first = frame[dup].iloc[0]
        raise LabelError(Path(folder) / FILE_PATTERNS["ids"].format(split=first["split"]), None,
                         f"clip id {first['clip']!r} appears more than once", "each clip id must be unique")
    return frame


def summarise(frame: pd.DataFrame) -> dict:
    """Counts per split, per scene and per event, for `soundaq data check`."""
    out: dict[str, Any] = {"clips": len(frame), "splits": {}}
    for split, part in frame.groupby("split", sort=False):
        out["splits"][split] = {
            "clips": len(part),
            "scenes": {s: int((part["scene"] == s).sum()) for s in SCENES},
            "events": {e: int(part[c].sum()) for e, c in zip(EVENTS, EVENT_COLUMNS)},
        }
    return out


#: ARAUS clip ids carry the clip's ARAUS fold: ``fold_<k>_participant_<p>_stimulus_<s>`` (ARAUS builds
#: every stimulus of fold k from fold k's base recordings and maskers; folds 1-5 are its cross-validation
#: folds, fold 0 its independent test set of new recordings and maskers, Ooi et al. 2023).
FOLD_ID = re.compile(r"^fold_(\d+)_", re.IGNORECASE)


def clip_folds(frame: pd.DataFrame) -> pd.Series | None:
    """The ARAUS fold of each clip (int, or <NA> where unknown): a ``fold`` column where the table has
    one (own-data CSVs), else the ``fold_<k>_`` prefix of the clip id; None when no clip has a fold.
    """
    if "fold" in frame.columns:
        folds = pd.to_numeric(frame["fold"], errors="coerce").astype("Int64")
    else:
        folds = frame["clip"].astype(str).str.extract(FOLD_ID)[0].astype("Int64")
    return None if folds.isna().all() else folds


def fold_breakdown(frame: pd.DataFrame) -> dict | None:
    """Per split the ARAUS folds it draws from and how many of its clips share a fold with the training split.

    ``frame``: stacked label tables with ``clip`` and ``split`` (and optionally ``fold``). Returns
    ``{"training_folds": [k...], "splits": {split: {"clips", "folds": {k: clips}, "unknown",
    "in_training_folds", "unseen_folds"}}}``, or None when the clips carry no folds. A clip whose fold
    also feeds training shares ARAUS base recordings and maskers with training clips.
    """
    folds = clip_folds(frame)
    if folds is None:
        return None
    training = sorted(int(k) for k in folds[frame["split"] == "training"].dropna().unique())
    out: dict = {"training_folds": training, "splits": {}}
    for split in frame["split"].drop_duplicates():
        part = folds[frame["split"] == split]
        counts = part.dropna().astype(int).value_counts().sort_index()
        seen = int(part.dropna().isin(training).sum())
        out["splits"][str(split)] = {"clips": len(part), "folds": {int(k): int(v) for k, v in counts.items()},
                                     "unknown": int(part.isna().sum()), "in_training_folds": seen,
                                     "unseen_folds": int(part.notna().sum()) - seen}
    return out
