r"""Reading the text files people hand to soundaq: one reader for label files, keys, predictions
tables, statistics and manifests, so that every one of them takes the same encodings.

Accepted: UTF-8 with or without a byte-order mark (Windows Notepad and Excel's "CSV UTF-8" write
one), and CRLF, LF or CR line ends, mixed in any way. Rejected with one line naming ``file:line``
and the fix (a :class:`TextFileError`, exit 2): another encoding (Latin-1, UTF-16), a binary file
(an .xlsx workbook, a checkpoint, ...: :mod:`soundaq.base.filekinds` says which), an unreadable path.
Text *cells* (CSV fields, workbook cells) go through :func:`clean_cell`, which drops the
invisible characters a copy-paste brings along (a BOM, zero-width spaces) that would otherwise
make ``"\\ufeff3.wav"`` a different clip from ``"3.wav"``.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

from soundaq.base.errors import UserError

#: The fix for text in another encoding.
UTF8_FIX = ("save it as UTF-8 (Excel: Save As 'CSV UTF-8'; an editor: encoding UTF-8; "
            "or `iconv -f latin1 -t utf-8 FILE`)")
#: The fix for a binary file where text was wanted.
NOT_TEXT_FIX = "pass the text file this option takes (see the command's --help)"
#: Characters that print as nothing: a byte-order mark inside text, zero-width space/joiners, word joiner.
INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"
_DROP_INVISIBLE = str.maketrans("", "", INVISIBLE)
_SPACES = str.maketrans({"\u00a0": " ", "\u2007": " ", "\u202f": " ", "\t": " "})


class TextFileError(UserError):
    """A text file that cannot be read as UTF-8 text; the message names ``file:line`` and the fix.

    ``path``, ``line`` (None when the whole file is concerned), ``problem`` and ``fix`` are kept, so a
    reader with its own error type (e.g. :class:`soundaq.models_zoo.data.labels.LabelError`) can re-raise it.
    """

    def __init__(self, path: Path | str, line: int | None, problem: str, fix: str):
        self.path, self.line, self.problem, self.fix = Path(path), line, problem, fix
        super().__init__(f"{path}:{line}: {problem}; fix: {fix}" if line else f"{path}: {problem}; fix: {fix}")


def _line_of(data: bytes, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a byte offset, counting CRLF, LF and CR line ends."""
    before = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    line = before.count(b"\n") + 1
    return line, len(before) - (before.rfind(b"\n") + 1) + 1


def decode(data: bytes, path: Path | str, fix: str = UTF8_FIX) -> str:
    """UTF-8 text of ``data`` (a leading BOM dropped), line ends as read; raises :class:`TextFileError`."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise TextFileError(path, 1, "UTF-32 text, not UTF-8", fix)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TextFileError(path, 1, "UTF-16 text (Excel's 'Unicode Text'), not UTF-8", fix)
    sample = data[:4096]
    if b"\x00" in sample and len(sample) >= 4 and (sample[1::2].count(0) > 0.8 * len(sample[1::2])
                                                  or sample[0::2].count(0) > 0.8 * len(sample[0::2])):
        raise TextFileError(path, 1, "UTF-16 text without a byte-order mark, not UTF-8", fix)
    if b"\x00" in sample:
        from soundaq.base.filekinds import KINDS, sniff, sniff_bytes

        kind = sniff_bytes(data[:4096]) or sniff(path)
        known = kind in KINDS and kind not in ("text", "binary", "missing")
        raise TextFileError(path, None, f"not a text file (it looks like {KINDS[kind].looks_like if known else 'binary data'})",
                            KINDS[kind].goes_to if known else NOT_TEXT_FIX)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _line_of(data, exc.start)
        if data[:4] == b"PK\x03\x04":
            from soundaq.base.filekinds import KINDS, sniff

            zipped = KINDS[sniff(path)]
            raise TextFileError(path, None, f"not a text file (it looks like {zipped.looks_like})",
                                zipped.goes_to) from None
        raise TextFileError(path, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {col})", fix) from None


def normalise_newlines(text: str) -> str:
    """CRLF and CR line ends as LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path | str, fix: str = UTF8_FIX) -> str:
    r"""The text of ``path``: UTF-8 with or without BOM, every line end turned into ``\\n``.

    Raises:
        TextFileError: missing or unreadable file, another encoding, a binary file (one line, file:line, fix).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise TextFileError(path, None, "is a folder", "pass a file") from None
    except FileNotFoundError:
        raise TextFileError(path, None, "file not found", "check the path") from None
    except OSError as err:
        raise TextFileError(path, None, f"cannot be read ({err.strerror or type(err).__name__})",
                            "check the file's permissions") from None
    return normalise_newlines(decode(data, path, fix))


def read_lines(path: Path | str, fix: str = UTF8_FIX) -> list[str]:
    """The lines of ``path`` without their line ends (see :func:`read_text`); a final line end adds no line."""
    text = read_text(path, fix)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_json(path: Path | str, fix: str = "write it again as valid JSON") -> object:
    """Parse a JSON file read by :func:`read_text`; a syntax error names ``file:line`` and ``fix``."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise TextFileError(path, err.lineno, f"not valid JSON ({err.msg} at column {err.colno})", fix) from None


def csv_rows(path: Path | str) -> list[list[str]]:
    """Rows of a CSV file read by :func:`read_text` (any line ends, optional BOM)."""
    return list(csv.reader(io.StringIO(read_text(path), newline="")))


def read_csv(path: Path | str, **kwargs):
    r"""``pandas.read_csv`` of a file read by :func:`read_text` (any line ends, optional BOM).

    A header cell with a stray BOM or zero-width character is cleaned, so ``"\\ufeffclip"`` is ``clip``.
    """
    import pandas as pd

    frame = pd.read_csv(io.StringIO(read_text(path)), **kwargs)
    frame.columns = [clean_cell(c) if isinstance(c, str) else c for c in frame.columns]
    return frame


def clean_cell(text: str) -> str:
    """A text cell as meant: invisible characters dropped, no-break/figure spaces and tabs as spaces,
    line ends inside the cell as spaces, surrounding spaces stripped.
    """
    text = str(text).translate(_DROP_INVISIBLE).translate(_SPACES)
    return " ".join(normalise_newlines(text).split("\n")).strip()
