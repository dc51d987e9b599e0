"""What a file is, told from its bytes: so that a file given in the role of another gets one line
saying what it looks like and which option takes it, instead of a parser's error.

:func:`sniff` reads at most a few kilobytes (and a zip's member list) and returns a kind name
(``"xlsx"``, ``"torch"``, ``"npz"``, ``"audio"``, ``"text"``, a folder kind, ...). The upper layers
refine a kind where only they can (:func:`soundaq.human_study.workbooks.workbook_kind` tells the
published results workbook from a questionnaire, :func:`soundaq.models_zoo.checkpoints.torch_file_kind`
a soundaq checkpoint from a release state dict); every kind, refined ones included, is declared here in
:data:`KINDS` (what it looks like and where it goes), so what a message says does not depend on which
modules were imported, and every command words it the same way (:func:`wrong_kind`).
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from soundaq.base.errors import UserError

#: Entries of a folder looked at to tell an audio folder from others.
FOLDER_SAMPLE = 200
#: Audio file suffixes soundaq reads (libsndfile's formats and mp3).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus", ".w64", ".caf")


@dataclass(frozen=True)
class Kind:
    """What a kind of file looks like to a user, and the option that takes it."""

    looks_like: str
    goes_to: str


#: Kind name -> description: every kind sniff() and the layers' refinements return.
KINDS: dict[str, Kind] = {
    "missing": Kind("a path that does not exist", "check the path"),
    "empty": Kind("an empty file", "write or download it again"),
    "folder": Kind("a folder", "pass a file inside it"),
    "label-folder": Kind("an ARAUS label folder (*_set_audio_file_ids.txt ...)",
                         "it goes to --labels DIR (soundaq train/leaderboard/data check, soundaq correlate --labels)"),
    "feature-folder": Kind("a feature folder (Feature_log_mel/, Feature_loudness_ISO532_1/)",
                           "it goes to --features DIR (soundaq train/leaderboard/data prepare)"),
    "audio-folder": Kind("a folder of audio files", "it goes to --audio DIR, or to `soundaq features DIR`"),
    "workbook-folder": Kind("a folder of .xlsx workbooks", "it goes to `soundaq jury DIR --key KEY.csv`"),
    "xlsx": Kind("an .xlsx workbook", "workbooks go to `soundaq jury`"),
    "zip": Kind("a zip archive", "unpack it first"),
    "torch": Kind("a PyTorch file (torch.save)",
                  "checkpoints go to --checkpoint; release weights to `soundaq import-original --weights`"),
    "npz": Kind("a NumPy .npz archive", "features .npz files go to `soundaq predict FILE --checkpoint CKPT`"),
    "npy": Kind("a NumPy .npy array", "per-clip features go in a --features DIR folder"),
    "pickle": Kind("a Python pickle", "normalisation pickles go to `soundaq import-original --norm-mel/--norm-loudness`"),
    "audio": Kind("an audio file", "audio goes to `soundaq features` or `soundaq predict`"),
    "pdf": Kind("a PDF document", "soundaq reads none"),
    "png": Kind("a PNG image", "soundaq reads none"),
    "text": Kind("a text file", "see the command's --help for what it takes"),
    "json": Kind("a JSON file", "see the command's --help for what it takes"),
    "predictions-table": Kind("a predictions table (event_prob_* columns)",
                              "it goes to `soundaq correlate --predictions FILE`"),
    "jury-key": Kind("a jury key (participant,dataset,clip,caption,system)", "it goes to `soundaq jury ... --key FILE`"),
    "label-file": Kind("one ARAUS label file", "pass the folder holding it with --labels DIR"),
    "norm-stats": Kind("normalisation statistics (log_mel and loudness mean/std)",
                       "they go to --norm-stats FILE (soundaq train) or --norm-mel FILE (soundaq import-original)"),
    "binary": Kind("a binary file of unknown type", "see the command's --help for what it takes"),
    # refined by soundaq.models_zoo.checkpoints.torch_file_kind (a torch.load-able file's content)
    "soundaq-checkpoint": Kind("a soundaq checkpoint (from `soundaq train` or `soundaq import-original`)",
                               "it goes to `soundaq predict --checkpoint FILE` or `soundaq leaderboard --checkpoints DIR`"),
    "lightning-checkpoint": Kind("a Lightning checkpoint of another program (no soundaq entry)",
                                 "train with `soundaq train`, or import release weights with `soundaq import-original`"),
    "release-state-dict": Kind("a release state dict (tensors only, e.g. AD_CNN_final_model.pth)",
                               "turn it into a checkpoint with `soundaq import-original --weights FILE`"),
    # refined by soundaq.human_study.workbooks.workbook_kind (an .xlsx workbook's sheets)
    "questionnaire": Kind("a filled questionnaire workbook ('Caption 1'/'Caption 2' rows)",
                          "questionnaires go to `soundaq jury FILE... --key KEY.csv`"),
    "published-results": Kind("the published per-clip averages workbook (Precision_Avg ... columns)",
                              "it goes to `soundaq jury --published FILE`"),
    "jury-results": Kind("soundaq jury's own results workbook (jury_results.xlsx)",
                         "it is an output: pass the filled questionnaires, or the published workbook with --published"),
}


class WrongKind(UserError):
    """A file given in the role of another: says what it looks like and where it goes (exit 2)."""


def wrong_kind(path: Path | str, kind: str, expected: str, fix: str | None = None) -> WrongKind:
    """The one-line error for ``path`` (of ``kind``) passed where ``expected`` was wanted; ``fix``
    replaces the kind's usual destination when the command knows better.
    """
    k = KINDS.get(kind, KINDS["binary"])
    return WrongKind(f"{path}: this looks like {k.looks_like}, not {expected}; fix: {fix or k.goes_to}")


#: Kinds :func:`expect` lets through to the reader: they say too little to be sure of a wrong role
#: (the reader then reports what it cannot parse).
UNSURE = ("missing", "empty", "text", "json", "binary", "zip", "folder")


def expect(path: Path | str, accepted: tuple[str, ...], expected: str, fix: str | None = None) -> str:
    """The kind of ``path`` when it is one of ``accepted`` or unsure (:data:`UNSURE`); otherwise raise
    :func:`wrong_kind` (one line: what it looks like, not ``expected``, and which option takes it).
    """
    kind = sniff(path)
    if kind in accepted or kind in UNSURE:
        return kind
    raise wrong_kind(path, kind, expected, fix)


def describe(kind: str) -> str:
    """What a kind looks like, e.g. ``"an .xlsx workbook"``."""
    return KINDS.get(kind, KINDS["binary"]).looks_like


_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x93NUMPY", 0, "npy"), (b"%PDF", 0, "pdf"), (b"\x89PNG", 0, "png"),
    (b"fLaC", 0, "audio"), (b"OggS", 0, "audio"), (b"ID3", 0, "audio"), (b".snd", 0, "audio"),
    (b"caff", 0, "audio"), (b"riff\x2e\x91\xcf\x11", 0, "audio"),
)


def sniff_bytes(head: bytes) -> str | None:
    """A kind from the first bytes of a file, or None when they say nothing (zip and text included)."""
    if not head:
        return "empty"
    for magic, at, kind in _MAGIC:
        if head[at:at + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return "audio"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio"
    if len(head) > 1 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:   # MPEG audio frame sync
        return "audio"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:        # pickle protocol 2-5
        return "pickle"
    return None


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "zip"   # a damaged zip: still a zip (what it was meant to be is in the suffix)
    if any(n == "xl/workbook.xml" for n in names):
        return "xlsx"
    if any(n.endswith("data.pkl") for n in names):
        return "torch"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return "zip"


def _folder_kind(path: Path) -> str:
    try:
        entries = list(path.iterdir())
    except OSError:
        return "folder"
    names = {p.name for p in entries}
    if any(n.endswith("_set_audio_file_ids.txt") for n in names):
        return "label-folder"
    if "Feature_log_mel" in names or "Feature_loudness_ISO532_1" in names:
        return "feature-folder"
    files = [p for p in entries[:FOLDER_SAMPLE] if p.is_file()]   # a 25,000-clip folder: a sample says enough
    if files and sum(p.suffix.lower() in AUDIO_SUFFIXES for p in files) >= max(1, len(files) // 2):
        return "audio-folder"
    if any(p.suffix.lower() == ".xlsx" for p in files):
        return "workbook-folder"
    return "folder"


def sniff(path: Path | str) -> str:
    """The kind of ``path``: a folder kind, a format told by its magic bytes or zip members, or
    ``"text"``/``"binary"``. Reads at most 4 KiB and a zip's member list; never raises.
    """
    path = Path(path)
    try:
        if not path.exists():
            return "missing"
        if path.is_dir():
            return _folder_kind(path)
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return "missing"
    kind = sniff_bytes(head)
    if kind is not None:
        return kind
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(path)
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary"
    return _text_kind(path, head)


_LABEL_FILE = re.compile(r"_set_(audio_file_ids|acoustic_scene_labels|audio_event_labels|PAQ_8D_AQs|ISOP_ISOE)"
                         r"\.txt$")
_KEY_COLUMNS = {"participant", "clip", "caption", "system"}


def _text_kind(path: Path, head: bytes) -> str:
    """A text file told by its first line (or its name, for an ARAUS label file)."""
    if _LABEL_FILE.search(path.name):
        return "label-file"
    text = head.decode("utf-8-sig", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "norm-stats" if '"log_mel"' in text and '"loudness"' in text else "json"
    first = stripped.replace("\r", "\n").split("\n", 1)[0]
    if "event_prob_" in first:
        return "predictions-table"
    fields = {f.strip().strip('"').lower() for f in first.split(",")}
    if _KEY_COLUMNS <= fields:
        return "jury-key"
    return "text"
