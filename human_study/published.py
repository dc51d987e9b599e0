"""The published per-clip averages workbook (``SoundSCaper_expert_evaluation_results.xlsx``).

One sheet per dataset (``Dataset_D1`` -> dataset ``D1``); a header row with the clip column
(``Audio ID``), the averaged dimensions (``Precision_Avg`` ... ``OverallScore_Avg``) and a
``Caption`` column naming the system (``Caption by SoundSCaper`` -> ``SoundSCaper``). Every value is
checked like a single rating (range, text, missing); the published overall score is kept as
published and compared with the formula of :mod:`soundaq.human_study.dimensions` (a mismatch is a warning).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from soundaq.human_study.cells import CLIP_HEADER, Sheet, cells_by_row, clip_text, coord, read_sheets_logged
from soundaq.human_study.dimensions import FORMULA_TEXT, OVERALL, RATED, dimension_of_header, overall_score
from soundaq.human_study.issues import ERROR, WARNING, IssueLog

PARTICIPANT = "average"
_SYSTEM_PREFIX = re.compile(r"^\s*caption\s+(?:by|from)\s+", re.IGNORECASE)


def dataset_of_sheet(title: str) -> str:
    """The dataset a sheet holds: ``Dataset_D1`` -> ``D1`` (the title, stripped, when it ends in no ``D<n>``)."""
    m = re.search(r"(D\d+)\s*$", title, re.IGNORECASE)
    return m.group(1).upper() if m else title.strip()


def system_name(text: str) -> str:
    """The system of a Caption cell: ``Caption by SoundSCaper`` -> ``SoundSCaper``."""
    return _SYSTEM_PREFIX.sub("", str(text)).strip()


def read_published(path: Path, log: IssueLog, tolerance: float = 1e-6) -> list[dict]:
    """Tidy records (participant ``average``) of every sheet; problems go to ``log``."""
    name = Path(path).name
    sheets = read_sheets_logged(path, log, "pass the published results .xlsx")
    if sheets is None:
        return []
    records: list[dict] = []
    for ws in sheets:
        records.extend(_read_sheet(ws, name, log, tolerance))
    if not records and not log.errors:
        log.add(name, "", "", "no_ratings", "no sheet with a header row naming the clip, the averaged "
                "dimensions and a Caption column; fix: pass the published results workbook (questionnaires go "
                "to `soundaq jury FILE --key KEY.csv`)")
    return records


def _header(rows: dict[int, dict[int, object]]) -> tuple[int, dict[str, int], int, int] | None:
    """The first row naming the clip, a Caption (system) column and at least three rated dimensions.

    Returns:
        ``(row, {dimension: column}, clip column, system column)``, or None when no row does.
    """
    for r in sorted(rows):
        dims: dict[str, int] = {}
        clip_col = system_col = None
        for c, v in sorted(rows[r].items()):
            dim = dimension_of_header(v)
            if dim and dim not in dims:
                dims[dim] = c
            elif isinstance(v, str) and v.strip().lower().startswith("caption") and system_col is None:
                system_col = c
            elif isinstance(v, str) and CLIP_HEADER.search(v) and clip_col is None:
                clip_col = c
        if len([d for d in dims if d in RATED]) >= 3 and clip_col and system_col:
            return r, dims, clip_col, system_col
    return None


def _read_items(ws: Sheet, rows: dict[int, dict[int, object]], header: tuple[int, dict[str, int], int, int],
                name: str, log: IssueLog) -> list[dict]:
    """One item per labelled row below the header: clip, system, checked values and cells by dimension."""
    header_row, dims, clip_col, system_col = header
    items: list[dict] = []
    for r in sorted(k for k in rows if k > header_row):
        row = rows[r]
        clip = clip_text(row.get(clip_col))
        system_raw = row.get(system_col)
        present = [d for d, c in dims.items() if row.get(c) is not None]
        if clip is None or system_raw is None:
            if present:
                log.add(name, ws.title, coord(r, clip_col if clip is None else system_col), "unlabelled_ratings",
                        f"row {r} has values but no {'clip id' if clip is None else 'Caption (system)'}; "
                        "fix: fill it in", excluded=len(present))
            continue
        item: dict[str, Any] = {"row": r, "clip": clip, "system": system_name(str(system_raw)),
                                "clip_cell": coord(r, clip_col), "values": {}, "cells": {}}
        for dim, col in dims.items():
            cell = coord(r, col)
            parsed = ws.rating(r, col, dim)
            item["values"][dim] = parsed.value
            item["cells"][dim] = cell
            if parsed.kind:
                ok = parsed.value is not None
                log.add(name, ws.title, cell, parsed.kind,
                        f"{dim} of {clip} ({item['system']}): {parsed.detail}"
                        + ("" if ok else f"; no value; fix: {parsed.fix}" if parsed.kind == "missing"
                           else f"; value excluded; fix: {parsed.fix}"),
                        severity=WARNING if ok else ERROR, excluded=0 if ok else int(parsed.kind != "missing"))
        items.append(item)
    return items


def _exclude_duplicates(items: list[dict], sheet: str, name: str, log: IssueLog) -> None:
    """Blank every value of a clip and system that appears twice in one sheet (logged, excluded)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for it in items:
        groups.setdefault((it["clip"].casefold(), it["system"].casefold()), []).append(it)
    for dups in groups.values():
        if len(dups) > 1:
            n = 0
            for it in dups:
                n += sum(v is not None for v in it["values"].values())
                it["values"] = {d: None for d in it["values"]}
            log.add(name, sheet, dups[1]["clip_cell"], "duplicate_clip",
                    f"clip {dups[1]['clip']} ({dups[1]['system']}) appears again (first at {dups[0]['clip_cell']}); "
                    f"all {n} values of it are excluded; fix: delete the extra row", excluded=n)


def _warn_unpaired(items: list[dict], sheet: str, name: str, log: IssueLog) -> None:
    """Warn about clips not rated for every system of the sheet (they leave the paired tests)."""
    systems = sorted({it["system"] for it in items})
    by_clip: dict[str, set[str]] = {}
    for it in items:
        by_clip.setdefault(it["clip"], set()).add(it["system"])
    for clip, have in by_clip.items():
        if len(systems) > 1 and have != set(systems):
            log.add(name, sheet, "", "unpaired",
                    f"clip {clip} has rows for {', '.join(sorted(have))} only; it is left out of the paired tests",
                    severity=WARNING)


def _overall(it: dict, has_overall: bool, sheet: str, name: str, log: IssueLog, tolerance: float) -> None:
    """Compute the overall score when the sheet has none; else check the published one against the formula."""
    vals = it["values"]
    if not has_overall and all(vals.get(d) is not None for d in RATED):
        vals[OVERALL] = float(overall_score(*(vals[d] for d in RATED)))
        it["cells"][OVERALL] = f"{it['cells'][RATED[0]]}:{it['cells'][RATED[-1]]}"
    elif has_overall and vals.get(OVERALL) is not None and all(vals.get(d) is not None for d in RATED):
        formula = float(overall_score(*(vals[d] for d in RATED)))
        if abs(formula - vals[OVERALL]) > tolerance:
            log.add(name, sheet, it["cells"][OVERALL], "formula_mismatch",
                    f"{it['clip']} ({it['system']}): published overall {vals[OVERALL]:.6g} but "
                    f"{FORMULA_TEXT} gives {formula:.6g} (difference {vals[OVERALL] - formula:+.4f}); "
                    "the published value is used", severity=WARNING)


def _read_sheet(ws: Sheet, name: str, log: IssueLog, tolerance: float) -> list[dict]:
    """Tidy records of one dataset's sheet; problems go to ``log`` (a sheet without a header is skipped)."""
    rows = cells_by_row(ws.values)
    header = _header(rows)
    if header is None:
        log.add(name, ws.title, "", "no_ratings",
                "no header row naming the clip (Audio ID), the averaged dimensions and Caption; sheet skipped",
                severity=WARNING)
        return []
    dataset = dataset_of_sheet(ws.title)
    items = _read_items(ws, rows, header, name, log)
    _exclude_duplicates(items, ws.title, name, log)
    _warn_unpaired(items, ws.title, name, log)
    records: list[dict] = []
    for it in items:
        _overall(it, OVERALL in header[1], ws.title, name, log, tolerance)
        for dim, v in it["values"].items():
            if v is None:
                continue
            records.append({"source": "published", "participant": PARTICIPANT, "dataset": dataset,
                            "clip": it["clip"], "system": it["system"], "dimension": dim, "score": float(v),
                            "workbook": name, "sheet": ws.title, "cell": it["cells"][dim], "section": ws.title,
                            "caption": ""})
    return records
