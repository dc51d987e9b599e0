"""Test-data builders for the jury tests: filled questionnaires made programmatically from the blank
template (never copies of reference files), in the template's own layout or in a moved one."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATED = ("precision", "recall", "fluency", "conciseness", "irrelevance")
SYSTEMS = ("human expert", "SoundSCaper")
HEADER = ["No.", "Record ID", "Caption", "", "Precision ( [1, 5] )", "Recall   ( [1, 5] )",
          "Fluency (negative) ( [-2, 0] )", "Conciseness (negative)  ( [-2, 0] )",
          "Irrelevance (negative) ( [-2, 0] )", "Is this audio synthesized? (yes/no)", "Comments"]


@dataclass
class TemplateClip:
    section: str      # "Dataset 1" / "Dataset 2" as written in the template
    clip: str
    row: int          # row of "Caption 1"


def _template_values(template: Path) -> dict[str, dict[tuple[int, int], object]]:
    """Every non-empty cell of every sheet of the template, read in openpyxl's read-only mode (a
    normal load takes minutes: the template merges its title rows over all 16384 columns)."""
    import openpyxl

    wb = openpyxl.load_workbook(template, read_only=True)
    out = {}
    for ws in wb.worksheets:
        ws.reset_dimensions()
        out[ws.title] = {(r, c): v for r, row in enumerate(ws.iter_rows(values_only=True), start=1)
                         for c, v in enumerate(row, start=1) if v is not None}
    wb.close()
    return out


def template_clips(template: Path) -> list[TemplateClip]:
    """Clips of the template's Assessment sheet in order, with their section."""
    cells = _template_values(template)["Assessment"]
    out, section = [], ""
    for r in sorted({r for r, _ in cells}):
        a = cells.get((r, 1))
        if isinstance(a, str) and a.lower().startswith("dataset"):
            section = " ".join(a.split(":")[0].split())
        if cells.get((r, 3)) == "Caption 1":
            out.append(TemplateClip(section, str(cells[(r, 2)]).strip(), r))
    return out


def copy_template(template: Path, out: Path) -> Path:
    """The template rebuilt with openpyxl cell by cell: same sheets, same values at the same
    addresses, 'No.' and 'Record ID' merged over each clip's two caption rows as in the template;
    without the styles and the 16384-column merges, so filling it takes milliseconds."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, cells in _template_values(template).items():
        ws = wb.create_sheet(title)
        for (r, c), v in cells.items():
            ws.cell(row=r, column=c, value=v)
        for (r, c), v in cells.items():
            if c == 3 and v == "Caption 1" and cells.get((r + 1, 3)) == "Caption 2":
                for col in (1, 2):
                    ws.merge_cells(start_row=r, start_column=col, end_row=r + 1, end_column=col)
    wb.save(out)
    return out


def dataset_of(clip: str) -> str:
    """The paper's dataset of a template clip: ARAUS .flac clips are D1, the external .wav clips D2."""
    return "D1" if clip.endswith(".flac") else "D2"


def make_jury(template: Path, participants: list[str], seed: int = 0, system_effect: float = -0.3,
              clip_sd: float = 0.6, noise: float = 0.4):
    """Random but plausible ratings with a clip effect (shared by raters), a system effect and rater
    noise, on the scales' grids (P/R integers 1-5, penalties in 0.5 steps -2..0).

    Returns (clips, order, ratings): ``order[(p, clip)]`` is the system behind caption 1 and 2;
    ``ratings[(p, clip, system)]`` is a dict of the five ratings.
    """
    rng = np.random.default_rng(seed)
    clips = template_clips(template)
    quality = {c.clip: rng.normal(0, clip_sd) for c in clips}
    order, ratings = {}, {}
    for p in participants:
        bias = rng.normal(0, 0.2)
        for c in clips:
            systems = list(SYSTEMS) if rng.random() < 0.5 else list(SYSTEMS[::-1])
            order[(p, c.clip)] = systems
            for s in SYSTEMS:
                q = 3.7 + quality[c.clip] + bias + (system_effect if s == "SoundSCaper" else 0.0)
                pr = [int(np.clip(np.rint(q + rng.normal(0, noise)), 1, 5)) for _ in range(2)]
                pen = [float(np.clip(np.rint(2 * rng.normal(-0.2 + 0.1 * (q - 3.7), 0.3)) / 2, -2, 0))
                       for _ in range(3)]
                ratings[(p, c.clip, s)] = dict(zip(RATED, [*pr, *pen]))
    return clips, order, ratings


def write_key(path: Path, clips, order, participants) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["participant", "dataset", "clip", "caption", "system"])
        for p in participants:
            for c in clips:
                for n, s in enumerate(order[(p, c.clip)], start=1):
                    w.writerow([p, dataset_of(c.clip), c.clip, n, s])
    return path


def fill_template(template: Path, out: Path, participant: str, order, ratings, overrides=None) -> Path:
    """A template (the original, slow to load, or a :func:`copy_template` copy) with this
    participant's ratings typed into its rating cells (E..I) of the Assessment sheet.

    ``overrides[(clip, caption, dimension)] = value`` replaces single cells (malformed input tests).
    """
    import openpyxl

    overrides = overrides or {}
    wb = openpyxl.load_workbook(template)
    ws = wb["Assessment"]
    clip = None
    for row in ws.iter_rows(min_row=1, max_row=ws.max_row, max_col=11):
        label = row[2].value
        if label == "Caption 1":
            clip = str(row[1].value).strip()
        m = re.fullmatch(r"Caption (\d)", label) if isinstance(label, str) else None
        if not m:
            continue
        n = int(m.group(1))
        system = order[(participant, clip)][n - 1]
        for k, dim in enumerate(RATED):
            value = ratings[(participant, clip, system)][dim]
            row[4 + k].value = overrides.get((clip, n, dim), value)
    wb.save(out)
    return out


def write_moved_layout(out: Path, clips, participant: str, order, ratings, *, top_rows: int = 4,
                       col_offset: int = 2, blank_between: bool = True, reverse_sections: bool = True,
                       merge_ids: bool = False, sheet: str = "Ratings") -> Path:
    """The same answers in another layout: extra rows on top, columns shifted right, a blank row
    between clips, sections in the other order, record ids only on the 'Caption 1' row (or merged)."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ex = wb.create_sheet("Example")          # must be ignored by the reader
    ex.append(HEADER)
    ex.append([1, "Example.flac", "Caption 1", "text", 4, 4, 0, 0, 0])
    r = 1
    for _ in range(top_rows):
        ws.cell(row=r, column=1, value="Please wear headphones." if r == 1 else None)
        r += 1
    sections = list(dict.fromkeys(c.section for c in clips))
    if reverse_sections:
        sections = sections[::-1]
    for section in sections:
        ws.cell(row=r, column=1, value=f"{section}: 30 audio clips")
        r += 2
        for k, h in enumerate(HEADER):
            if h:
                ws.cell(row=r, column=1 + col_offset + k, value=h)
        r += 1
        ws.cell(row=r, column=1, value="A note inside the table that is not a rating row.")
        r += 1
        for no, c in enumerate([c for c in clips if c.section == section], start=1):
            for n in (1, 2):
                system = order[(participant, c.clip)][n - 1]
                ws.cell(row=r, column=1 + col_offset, value=no if n == 1 else None)
                if n == 1 or merge_ids:
                    ws.cell(row=r, column=2 + col_offset, value=c.clip if n == 1 else None)
                ws.cell(row=r, column=3 + col_offset, value=f"Caption {n}")
                ws.cell(row=r, column=4 + col_offset, value="caption text")
                for k, dim in enumerate(RATED):
                    ws.cell(row=r, column=5 + col_offset + k, value=ratings[(participant, c.clip, system)][dim])
                r += 1
            if merge_ids:
                ws.merge_cells(start_row=r - 2, start_column=2 + col_offset, end_row=r - 1, end_column=2 + col_offset)
            if blank_between:
                r += 1
        r += 3
    ws.cell(row=r, column=1, value="Thank you for evaluating the 60 audio clips.")
    wb.save(out)
    return out


def expected_tidy(clips, participants, ratings):
    """The tidy ratings the reader should produce, computed here independently (incl. overall)."""
    import pandas as pd

    rows = []
    for p in participants:
        for c in clips:
            for s in SYSTEMS:
                r = ratings[(p, c.clip, s)]
                for dim in RATED:
                    rows.append((p, dataset_of(c.clip), c.clip, s, dim, float(r[dim])))
                overall = (r["precision"] + r["recall"]) / 2 + r["fluency"] + r["conciseness"] + r["irrelevance"]
                rows.append((p, dataset_of(c.clip), c.clip, s, "overall", float(overall)))
    return pd.DataFrame(rows, columns=["participant", "dataset", "clip", "system", "dimension", "score"])


def build_jury_folder(template: Path, out_dir: Path, n_participants: int = 16, seed: int = 0,
                      malformed: bool = True, system_effect: float = -0.3):
    """A whole synthetic jury in ``out_dir``: ``key.csv`` and one workbook per participant.

    Most workbooks are filled copies of the template; every fourth uses the moved layout (rows on
    top, shifted columns, sections in the other order; every eighth with merged record ids). With
    ``malformed``, participant P2's workbook gets a rating out of range (3.wav caption 1 precision = 7,
    cell E6), text in a rating cell (42.wav caption 2 recall = 'n/a', F9) and an empty cell
    (36.wav caption 1 fluency, G12); and the key lacks P3's clip 26.flac.

    Returns (workbooks, key path, ratings, order, clips, problems) where ``problems`` lists the
    (workbook, sheet, cell, kind) the reader must report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    participants = [f"P{i}" for i in range(1, n_participants + 1)]
    clips, order, ratings = make_jury(template, participants, seed=seed, system_effect=system_effect)
    key = write_key(out_dir / "key.csv", clips, order, participants)
    base = copy_template(template, out_dir / "_template_copy.xlsx")
    problems = []
    paths = []
    for i, p in enumerate(participants, start=1):
        overrides = {}
        if malformed and p == "P2":
            overrides = {("3.wav", 1, "precision"): 7, ("42.wav", 2, "recall"): "n/a",
                         ("36.wav", 1, "fluency"): None}
            problems += [(f"{p}_excel.xlsx", "Assessment", "E6", "out_of_range"),
                         (f"{p}_excel.xlsx", "Assessment", "F9", "not_a_number"),
                         (f"{p}_excel.xlsx", "Assessment", "G12", "missing")]
        if i % 4 == 0:
            path = write_moved_layout(out_dir / f"{p}_excel.xlsx", clips, p, order, ratings,
                                      merge_ids=(i % 8 == 0), top_rows=i % 5, col_offset=i % 3)
        else:
            path = fill_template(base, out_dir / f"{p}_excel.xlsx", p, order, ratings, overrides)
        paths.append(path)
    base.unlink()
    if malformed:
        lines = key.read_text().splitlines()
        key.write_text("\n".join(row for row in lines if not row.startswith("P3,D1,26.flac,")) + "\n")
        problems.append(("P3_excel.xlsx", "Assessment", "B134", "not_in_key"))
    return paths, key, ratings, order, clips, problems
