"""Reading rating tables out of worksheets by their content, not by fixed cell addresses.

A cell is not always what it looks like in a spreadsheet program. :func:`parse_rating` reads or
names each kind, with the fix a rater can apply:

=========================  ==========================================================  ===========
cell                        what soundaq does                                           issue kind
=========================  ==========================================================  ===========
``4``, ``4.0``              the rating                                                   (none)
``'4'``, ``' 3.5 '``,       read as the number it shows (warning)                        number_as_text
``'3,5'``, ``'−1'``         (text, surrounding spaces, decimal comma, Unicode minus)
``=2+2`` never calculated   named: a formula without a stored result; fix: open and      formula_without_value
                            save the workbook in a spreadsheet program, or type the value
``=1/0`` -> ``#DIV/0!``     named: the formula's error                                   formula_error
a date or time              named: the spreadsheet turned the typed rating into a date   date
``TRUE``/``FALSE``          named: a yes/no cell, not a rating                           boolean
merged over a rating cell   named with its range: one value for several ratings          merged_cells
empty                       named: empty cell                                            missing
=========================  ==========================================================  ===========

A formula cell's stored result is what openpyxl reads (``data_only=True``); a workbook written by a
script (openpyxl, pandas) holds formulas without results, which read as empty. :func:`read_sheets`
therefore also reads the sheets' XML for formulas without a stored value and for merged ranges
(openpyxl's fast read-only mode exposes neither).

A questionnaire's rating table is walked once, here, for every reader of it (the ratings of
:mod:`soundaq.human_study.questionnaire`, the caption texts of :mod:`soundaq.human_study.caption_texts`):
:func:`table_rows` finds the header rows (:func:`rating_header`), the ``Dataset N`` sections, each row's
``Caption N`` label and its clip (a ``Caption 2`` row without one takes the clip of the row above).
"""
from __future__ import annotations

import datetime as _dt
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from soundaq.base.errors import one_line
from soundaq.base.textio import clean_cell
from soundaq.base.xlsx import WorkbookError
from soundaq.human_study.dimensions import RANGES, RATED, dimension_of_header, in_range

if TYPE_CHECKING:
    from soundaq.human_study.issues import IssueLog

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-"})
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_EXCEL_ERROR = re.compile(r"^#(?:DIV/0!|N/A|NAME\?|NULL!|NUM!|REF!|VALUE!|SPILL!|CALC!|GETTING_DATA)$", re.I)

#: The fix of each kind of unusable cell.
FIXES: dict[str, str] = {
    "missing": "fill in the cell",
    "not_a_number": "type the rating as a number",
    "out_of_range": "type a rating within the scale",
    "formula_without_value": "open and save the workbook in a spreadsheet program (Excel, LibreOffice) so it "
                             "stores the formula's result, or type the value",
    "formula_error": "correct the formula or type the value",
    "date": "format the rating columns as Number (or Text) and type the rating again",
    "boolean": "type the rating as a number",
    "merged_cells": "unmerge the cells and type one rating in each",
}


@dataclass(frozen=True)
class FormulaWithoutValue:
    """A formula cell whose workbook holds no stored result (written by a program that does not calculate)."""

    formula: str

    def __str__(self) -> str:
        return f"={self.formula}" if self.formula else "a formula"


@dataclass
class Parsed:
    """One rating cell read: the value (None when not usable) and, when it is not clean, the issue kind and its detail."""

    value: float | None          # None: not usable
    kind: str | None = None      # issue kind, None when clean
    detail: str = ""

    @property
    def fix(self) -> str:
        """What to do about the cell's issue, for its message (a generic fix for unknown kinds)."""
        return FIXES.get(self.kind or "", "fix the cell")


def parse_rating(raw, dimension: str) -> Parsed:
    """Turn one cell's content into a rating of ``dimension``, or say why it is not one."""
    lo, hi = RANGES[dimension]
    if raw is None or (isinstance(raw, str) and not clean_cell(raw)):
        return Parsed(None, "missing", "empty cell")
    if isinstance(raw, FormulaWithoutValue):
        return Parsed(None, "formula_without_value",
                      f"formula {raw} has no stored result (the workbook was saved by a program that does "
                      "not calculate formulas)")
    if isinstance(raw, bool):
        return Parsed(None, "boolean", f"{'TRUE' if raw else 'FALSE'} is a yes/no value, not a rating")
    if isinstance(raw, (_dt.datetime, _dt.date, _dt.time)):
        shown = raw.strftime("%H:%M" if isinstance(raw, _dt.time) else "%Y-%m-%d")
        what = "time" if isinstance(raw, _dt.time) else "date"
        return Parsed(None, "date", f"the spreadsheet turned the typed rating into the {what} {shown}")
    as_text, note = False, ""
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        text = clean_cell(raw).translate(_MINUS)
        if _EXCEL_ERROR.match(text):
            return Parsed(None, "formula_error", f"the cell's formula gives the error {text}")
        if _DECIMAL_COMMA.match(text):
            text, note = text.replace(",", "."), " with a decimal comma"
        try:
            value = float(text)
        except ValueError:
            return Parsed(None, "not_a_number", f"text {clean_cell(raw)[:40]!r} is not a number")
        as_text = True
    else:
        return Parsed(None, "not_a_number", f"{type(raw).__name__} value {str(raw)[:40]!r} is not a number")
    if not in_range(dimension, value):
        return Parsed(None, "out_of_range", f"{value:g} is outside [{lo:g}, {hi:g}]")
    if as_text:
        return Parsed(value, "number_as_text", f"number {clean_cell(raw)!r} stored as text{note}; read as {value:g}")
    return Parsed(value)


@dataclass
class Sheet:
    """One worksheet's non-empty cells by (row, column), with what the fast reader cannot see."""

    title: str
    values: dict[tuple[int, int], object]
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)   # (min_row, min_col, max_row, max_col)

    def merged_range(self, row: int, col: int) -> str | None:
        """``"E6:E7"`` when (row, col) lies in a merged range of more than one cell, else None."""
        for r0, c0, r1, c1 in self.merged:
            if r0 <= row <= r1 and c0 <= col <= c1:
                return f"{coord(r0, c0)}:{coord(r1, c1)}"
        return None

    def rating(self, row: int, col: int, dimension: str) -> Parsed:
        """:func:`parse_rating` of a cell, naming a merged range over it first."""
        ref = self.merged_range(row, col)
        if ref is not None:
            return Parsed(None, "merged_cells", f"the cell lies in the merged range {ref}: one value for "
                                                "several ratings")
        return parse_rating(self.values.get((row, col)), dimension)


def sheet_values(ws, formulas: dict[tuple[int, int], str] | None = None,
                 raw_text: bool = False) -> dict[tuple[int, int], object]:
    """Non-empty cell values of a worksheet keyed by (row, column).

    Works on read-only worksheets (``load_workbook(read_only=True)``), the only practical way to
    open the questionnaire template: its title rows are merged over all 16384 columns, which a
    normal load turns into about 230,000 cell objects (minutes). Merged ranges are not expanded:
    only a range's top-left cell holds its value, which is why a ``Caption 2`` row without a record
    id is attached to the clip of the row above it (see :mod:`soundaq.human_study.questionnaire`).
    Text is cleaned (:func:`soundaq.base.textio.clean_cell`) unless ``raw_text`` (caption texts,
    which the caption metrics must see exactly as written: a trailing space changes the ``rouge``
    package's scores, and the release scored them verbatim); ``formulas`` (from the sheet's XML)
    fill cells whose formula has no stored result with a :class:`FormulaWithoutValue`.
    """
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()   # read-only: ignore a stored dimension such as A1:XFD267
    values: dict[tuple[int, int], object] = {}
    for r, row in enumerate(ws.iter_rows(values_only=True), start=1):
        for c, v in enumerate(row, start=1):
            if isinstance(v, str) and not raw_text:
                v = clean_cell(v)
            if v is None or (isinstance(v, str) and not v.strip()):
                continue
            values[(r, c)] = v
    for rc, formula in (formulas or {}).items():
        values.setdefault(rc, FormulaWithoutValue(formula))
    return values


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _sheet_xml(path: Path) -> dict[str, tuple[dict[tuple[int, int], str], list[tuple[int, int, int, int]]]]:
    """Per sheet title: formulas without a stored result ({(row, col): text}) and merged ranges,
    read from the workbook's XML (streamed: the template's 16384-column merges cost nothing).
    """
    from openpyxl.utils.cell import coordinate_to_tuple, range_boundaries

    out: dict[str, tuple[dict[tuple[int, int], str], list[tuple[int, int, int, int]]]] = {}
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        rels = {r.get("Id"): r.get("Target", "") for r in ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))}
        for sheet in ET.fromstring(zf.read("xl/workbook.xml")).iter():
            if _local(sheet.tag) != "sheet":
                continue
            rid = next((v for k, v in sheet.attrib.items() if _local(k) == "id"), None)
            target = rels.get(rid, "")
            member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            if member not in names:
                continue
            formulas: dict[tuple[int, int], str] = {}
            merged: list[tuple[int, int, int, int]] = []
            with zf.open(member) as fh:
                for _, el in ET.iterparse(fh):
                    tag = _local(el.tag)
                    if tag == "c":
                        kids = {_local(k.tag): k for k in el}
                        if "f" in kids and not ("v" in kids and (kids["v"].text or "") != ""):
                            formulas[coordinate_to_tuple(el.get("r"))] = kids["f"].text or ""
                        el.clear()
                    elif tag == "row":
                        el.clear()
                    elif tag == "mergeCell":
                        c0, r0, c1, r1 = range_boundaries(el.get("ref"))
                        merged.append((r0, c0, r1, c1))
            out[sheet.get("name", "")] = (formulas, merged)
    return out


def read_sheets(path: Path | str) -> list[Sheet]:
    """Every worksheet of an .xlsx workbook with its values (formulas without a stored result
    marked), its merged ranges and cleaned text.

    Raises:
        WorkbookError: not an .xlsx workbook (:func:`soundaq.base.xlsx.open_workbook`:
            what the file is and the fix); callers report it as one issue. A workbook whose XML is
            damaged past opening raises what zipfile/ElementTree raise.
    """
    from soundaq.base.xlsx import open_workbook

    path = Path(path)
    wb = open_workbook(path)                   # WorkbookError: what the file is, and the fix
    try:
        extras = _sheet_xml(path)
    except BaseException:
        wb.close()
        raise
    try:
        sheets = []
        for ws in wb.worksheets:
            formulas, merged = extras.get(ws.title, ({}, []))
            merged = [m for m in merged if (m[2] - m[0]) + (m[3] - m[1]) > 0]
            sheets.append(Sheet(ws.title, sheet_values(ws, formulas), merged))
    finally:
        wb.close()
    return sheets


def read_sheets_logged(path: Path | str, log: IssueLog, fix: str) -> list[Sheet] | None:
    """:func:`read_sheets`, a workbook that cannot be read becoming one ``unreadable`` issue of ``log``.

    Args:
        path: the workbook.
        log: where the issue goes (named by the file's name, no sheet or cell).
        fix: what the user should do with a file that is no .xlsx openpyxl can read at all (a file
            :func:`soundaq.base.xlsx.open_workbook` recognises, encrypted, .xls, .ods, cut short...,
            carries its own fix).

    Returns:
        The sheets, or None when the workbook is unreadable (then the issue is logged).
    """
    name = Path(path).name
    try:
        return read_sheets(path)
    except WorkbookError as err:              # encrypted, .xls, .ods, cut short, ...: what it is and the fix
        log.add(name, "", "", "unreadable", err.detail)
    except Exception as err:  # noqa: BLE001 - any unreadable file becomes one issue
        log.add(name, "", "", "unreadable",
                f"cannot open as an .xlsx workbook ({one_line(err)[:160]}); fix: {fix}")
    return None


def col_letter(col: int) -> str:
    """Excel's column letters of 1-based column ``col`` (1 -> ``A``, 27 -> ``AA``)."""
    from openpyxl.utils import get_column_letter

    return get_column_letter(col)


def coord(row: int, col: int) -> str:
    """Excel's coordinate of a 1-based row and column (``coord(5, 2)`` -> ``B5``)."""
    return f"{col_letter(col)}{row}"


CAPTION_LABEL = re.compile(r"^\s*caption\s*#?\s*(\d+)\s*$", re.IGNORECASE)
SECTION = re.compile(r"^\s*dataset[\s_:-]*([A-Za-z]?\d+)\b", re.IGNORECASE)
CLIP_HEADER = re.compile(r"record\s*id|audio\s*id|\bclip\b|file\s*name|\bfile\b", re.IGNORECASE)


def clip_text(raw) -> str | None:
    """Normalise a clip id cell (``' 4.flac '`` -> ``'4.flac'``, ``4.0`` -> ``'4'``, a stray BOM or
    zero-width space dropped).
    """
    if raw is None or isinstance(raw, FormulaWithoutValue):
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = clean_cell(str(raw))
    return text or None


# --------------------------------------------------------------------------------------------------
# a questionnaire's rating table: rows, sections and header rows
# --------------------------------------------------------------------------------------------------
def cells_by_row(values: Mapping[tuple[int, int], object]) -> dict[int, dict[int, object]]:
    """A sheet's non-empty cells (``{(row, column): value}``, :func:`sheet_values`) as ``{row: {column: value}}``."""
    rows: dict[int, dict[int, object]] = {}
    for (r, c), v in values.items():
        rows.setdefault(r, {})[c] = v
    return rows


def section_of(row_vals: Mapping[int, object]) -> str | None:
    """``"Dataset N"`` when the row's first cell opens a section of a questionnaire (``Dataset 1``,
    ``Dataset_D2:`` ...; :data:`SECTION`), else None.
    """
    first = row_vals[min(row_vals)]
    m = SECTION.match(first) if isinstance(first, str) else None
    return f"Dataset {m.group(1)}" if m is not None else None


@dataclass(frozen=True)
class RatingHeader:
    """A questionnaire's header row: the column of each rated dimension named in it (the first, when one is
    named twice), the record-id (clip) column and the ``Caption`` column (None where the row has none).
    """

    dims: dict[str, int]
    clip_col: int | None
    caption_col: int | None

    @property
    def first_rating(self) -> int:
        """The leftmost rating column (caption labels and texts stand left of it)."""
        return min(self.dims.values())

    def caption_label(self, row_vals: Mapping[int, object]) -> tuple[int, int] | None:
        """``(column, N)`` of a row's ``Caption N`` label (:data:`CAPTION_LABEL`): the cell in the Caption
        column, else the first one left of the ratings that reads so; None when the row has no label.
        """
        cols = [self.caption_col] if self.caption_col else []
        cols += [c for c in sorted(row_vals) if c < self.first_rating and c not in cols]
        for c in cols:
            v = row_vals.get(c)
            m = CAPTION_LABEL.match(v) if isinstance(v, str) else None
            if m:
                return c, int(m.group(1))
        return None


def rating_header(row_vals: Mapping[int, object]) -> RatingHeader | None:
    """The row as a questionnaire's header (:class:`RatingHeader`): it names at least three of the rated
    dimensions (:func:`~soundaq.human_study.dimensions.dimension_of_header`); else None. The clip and
    caption columns are the first text cells, not naming a dimension, that match :data:`CLIP_HEADER`
    and start with ``Caption``.
    """
    dims: dict[str, int] = {}
    for col, val in row_vals.items():
        dim = dimension_of_header(val)
        if dim in RATED and dim not in dims:
            dims[dim] = col
    if len(dims) < 3:
        return None
    clip_col = caption_col = None
    for col, val in sorted(row_vals.items()):
        if not isinstance(val, str) or dimension_of_header(val):
            continue
        if clip_col is None and CLIP_HEADER.search(val):
            clip_col = col
        elif caption_col is None and val.strip().lower().startswith("caption"):
            caption_col = col
    return RatingHeader(dims, clip_col, caption_col)


@dataclass(frozen=True)
class TableRow:
    """A row of a questionnaire's rating table, at or below a header row (:func:`table_rows`).

    Attributes:
        row: the 1-based row number.
        cells: its non-empty cells by column.
        section: the ``Dataset N`` section it lies in ("" before the first).
        header: the header row in force (this row's own when ``is_header``).
        is_header: the row is a header row.
        caption: N of its ``Caption N`` label (None: no label, and always on a header row).
        label_col: the label's column (None without a label).
        clip: the labelled row's record id; a ``Caption 2``, ``3``... row without one (an empty or merged
            cell) takes the clip of the caption row above it in the same section and table (None: neither).
        clip_cell: the cell ``clip`` stands in ("" when the table has no clip column).
    """

    row: int
    cells: dict[int, object]
    section: str
    header: RatingHeader
    is_header: bool = False
    caption: int | None = None
    label_col: int | None = None
    clip: str | None = None
    clip_cell: str = ""


def table_rows(values: Mapping[tuple[int, int], object]) -> Iterator[TableRow]:
    """The rating tables of one questionnaire sheet (``{(row, column): value}``, :func:`sheet_values`), row
    by row: every header row (:func:`rating_header`) and every row below one, in sheet order. A row whose
    first cell opens a section (:func:`section_of`) is not yielded; it names the section of the rows after
    it. Rows above the first header row are passed over.
    """
    rows = cells_by_row(values)
    header: RatingHeader | None = None
    section = ""
    last: tuple[str, str] | None = None   # (clip, clip cell) of the caption row above, in this block
    for r in sorted(rows):
        cells = rows[r]
        opened = section_of(cells)
        if opened is not None:
            section, last = opened, None
            continue
        found = rating_header(cells)
        if found is not None:
            header, last = found, None
            yield TableRow(r, cells, section, header, is_header=True)
            continue
        if header is None:
            continue
        label = header.caption_label(cells)
        if label is None:
            yield TableRow(r, cells, section, header)
            continue
        label_col, caption = label
        clip_col = header.clip_col
        clip = clip_text(cells.get(clip_col)) if clip_col else None
        clip_cell = coord(r, clip_col) if clip_col else ""
        if clip is None and caption > 1 and last is not None:
            clip, clip_cell = last
        if clip is not None:
            last = (clip, clip_cell)
        yield TableRow(r, cells, section, header, False, caption, label_col, clip, clip_cell)
