"""The caption texts of a questionnaire workbook (the template the experts received, or a filled copy).

The rating tables are found as :mod:`soundaq.human_study.questionnaire` finds them (a header row
naming at least three rating dimensions; ``Example*`` sheets skipped); in every ``Caption N`` row
the caption text is the first text cell after the ``Caption N`` label and before the first rating
column (column D in the public template, under the merged ``Caption`` header). A ``Caption 2`` row
without a record id belongs to the clip of the row above it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from soundaq.human_study.cells import coord, sheet_values, table_rows


@dataclass
class CaptionText:
    """One caption cell of a questionnaire workbook: which clip and caption number it is, its text and where it is
    (workbook, sheet, section, cell).
    """

    workbook: str
    sheet: str
    section: str
    clip: str
    caption: int          # N of "Caption N"
    text: str | None      # None: the caption cell is empty
    cell: str             # where the text is (or should be)


def fingerprint(text: str) -> str:
    """16 hex digits of the SHA-256 of the text with whitespace collapsed: identifies a caption
    without storing it (used to tell whether a workbook has the public questionnaire's layout).
    """
    return hashlib.sha256(" ".join(str(text).split()).encode("utf-8")).hexdigest()[:16]


def read_caption_texts(path: Path | str) -> list[CaptionText]:
    """Every ``Caption N`` row of a questionnaire workbook with its text.

    Raises:
        ValueError: the file cannot be opened as .xlsx or holds no rating table (message names the file).
    """
    from soundaq.base.xlsx import open_workbook

    path = Path(path)
    wb = open_workbook(path)        # WorkbookError (a ValueError): what the file is and the fix
    out: list[CaptionText] = []
    found = False
    try:
        for ws in wb.worksheets:
            if ws.title.strip().lower().startswith("example"):
                continue
            f, items = _sheet(ws, path.name)
            found |= f
            out.extend(items)
    finally:
        wb.close()
    if not found:
        raise ValueError(f"{path}: no questionnaire table (a header row with the rating columns Precision, "
                         "Recall, Fluency, ...) in any sheet")
    return out


def _sheet(ws, name: str) -> tuple[bool, list[CaptionText]]:
    found = False
    items: list[CaptionText] = []
    for row in table_rows(sheet_values(ws, raw_text=True)):   # texts as written (see below)
        found |= row.is_header
        if row.label_col is None or row.caption is None or row.clip is None:
            continue
        vals, label_col, first_rating = row.cells, row.label_col, row.header.first_rating
        text_col = next((c for c in sorted(vals) if label_col < c < first_rating
                         and isinstance(vals[c], str) and str(vals[c]).strip()), None)
        # kept as written but for trailing line breaks: the release scored texts read line by line, and
        # trailing spaces change the rouge package's sentence split
        text = str(vals[text_col]).rstrip("\r\n") if text_col is not None else None
        cell = coord(row.row, text_col if text_col is not None else label_col + 1)
        items.append(CaptionText(name, ws.title, row.section, row.clip, row.caption, text, cell))
    return found, items
