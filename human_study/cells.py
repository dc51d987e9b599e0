"""Reading rating tables out of worksheets by their content, not by fixed cell addresses."""
from __future__ import annotations

import re
from dataclasses import dataclass

from soundaq.human_study.dimensions import RANGES, in_range

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-"})


@dataclass
class Parsed:
    value: float | None          # None: not usable
    kind: str | None = None      # issue kind, None when clean
    detail: str = ""


def parse_rating(raw, dimension: str) -> Parsed:
    """Turn one cell's content into a rating of ``dimension``, or say why it is not one."""
    lo, hi = RANGES[dimension]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Parsed(None, "missing", "empty cell")
    as_text = False
    if isinstance(raw, bool):
        return Parsed(None, "not_a_number", f"{raw!r} is not a number")
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip().translate(_MINUS)
        try:
            value = float(text)
        except ValueError:
            return Parsed(None, "not_a_number", f"text {raw.strip()[:40]!r} is not a number")
        as_text = True
    else:
        return Parsed(None, "not_a_number", f"{type(raw).__name__} value {str(raw)[:40]!r} is not a number")
    if not in_range(dimension, value):
        return Parsed(None, "out_of_range", f"{value:g} is outside [{lo:g}, {hi:g}]")
    if as_text:
        return Parsed(value, "number_as_text", f"number {raw.strip()!r} stored as text; read as {value:g}")
    return Parsed(value)


def sheet_values(ws) -> dict[tuple[int, int], object]:
    """Non-empty cell values of a worksheet keyed by (row, column).

    Works on read-only worksheets (``load_workbook(read_only=True)``), the only practical way to
    open the questionnaire template: its title rows are merged over all 16384 columns, which a
    normal load turns into about 230,000 cell objects (minutes). Merged ranges are not expanded:
    only a range's top-left cell holds its value, which is why a ``Caption 2`` row without a record
    id is attached to the clip of the row above it (see :mod:`soundaq.human_study.questionnaire`).
    """
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()   # read-only: ignore a stored dimension such as A1:XFD267
    values: dict[tuple[int, int], object] = {}
    for r, row in enumerate(ws.iter_rows(values_only=True), start=1):
        for c, v in enumerate(row, start=1):
            if v is None or (isinstance(v, str) and not v.strip()):
                continue
            values[(r, c)] = v
    return values


def col_letter(col: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(col)


def coord(row: int, col: int) -> str:
    return f"{col_letter(col)}{row}"


CAPTION_LABEL = re.compile(r"^\s*caption\s*#?\s*(\d+)\s*$", re.IGNORECASE)
SECTION = re.compile(r"^\s*dataset[\s_:-]*([A-Za-z]?\d+)\b", re.IGNORECASE)
CLIP_HEADER = re.compile(r"record\s*id|audio\s*id|\bclip\b|file\s*name|\bfile\b", re.IGNORECASE)


def clip_text(raw) -> str | None:
    """Normalise a clip id cell (``' 4.flac '`` -> ``'4.flac'``, ``4.0`` -> ``'4'``)."""
    if raw is None:
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw).strip()
    return text or None
