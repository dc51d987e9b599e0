"""Kind 4 of issue 12: spreadsheet cells that are not what they look like. Each kind is either read
correctly or named by workbook, sheet and cell with its own fix; workbooks are built with openpyxl."""
from __future__ import annotations

import datetime as dt

import openpyxl
import pandas as pd
import pytest
from jury_builders import HEADER, RATED

from soundaq.human_study.cells import FormulaWithoutValue, parse_rating, read_sheets
from soundaq.human_study.issues import IssueLog
from soundaq.human_study.published import read_published
from soundaq.human_study.questionnaire import read_key, read_questionnaires


@pytest.mark.parametrize("raw, dim, value, kind, fragment", [
    (4, "precision", 4.0, None, ""),
    ("4", "precision", 4.0, "number_as_text", "stored as text; read as 4"),
    (" 3.5 ", "recall", 3.5, "number_as_text", "read as 3.5"),
    ("3,5", "recall", 3.5, "number_as_text", "with a decimal comma; read as 3.5"),
    ("\u22121,5", "fluency", -1.5, "number_as_text", "read as -1.5"),
    ("\u00a0-1\u200b", "fluency", -1.0, "number_as_text", "read as -1"),
    (FormulaWithoutValue("2+2"), "precision", None, "formula_without_value", "formula =2+2 has no stored result"),
    ("#DIV/0!", "precision", None, "formula_error", "gives the error #DIV/0!"),
    (dt.datetime(2024, 5, 3), "precision", None, "date", "into the date 2024-05-03"),
    (dt.time(3, 30), "precision", None, "date", "into the time 03:30"),
    (True, "precision", None, "boolean", "TRUE is a yes/no value"),
    ("3,5,1", "precision", None, "not_a_number", "'3,5,1' is not a number"),
    (None, "precision", None, "missing", "empty cell"),
    ("\u200b", "precision", None, "missing", "empty cell"),
    (7, "precision", None, "out_of_range", "outside [1, 5]"),
])
def test_parse_rating_kinds(raw, dim, value, kind, fragment):
    p = parse_rating(raw, dim)
    assert (p.value, p.kind) == (value, kind) and fragment in p.detail
    if kind and value is None:
        assert p.fix and p.fix != "fix the cell"


def _questionnaire(path, rows):
    """A one-sheet questionnaire: header on row 2, clip 3.wav's two captions on rows 3 and 4."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Assessment"
    ws.cell(row=1, column=1, value="Dataset 2: audio clips")
    for k, h in enumerate(HEADER, start=1):
        if h:
            ws.cell(row=2, column=k, value=h)
    for r, (caption, values) in enumerate(rows, start=3):
        ws.cell(row=r, column=2, value="3.wav" if caption == 1 else None)
        ws.cell(row=r, column=3, value=f"Caption {caption}")
        for k, v in enumerate(values):
            ws.cell(row=r, column=5 + k, value=v)
    return wb, ws


def _key(tmp_path):
    path = tmp_path / "key.csv"
    path.write_text("participant,dataset,clip,caption,system\nP1,D2,3.wav,1,a\nP1,D2,3.wav,2,b\n")
    return read_key(path)


def test_questionnaire_cells_read_or_named(tmp_path):
    """One workbook holding every kind: the readable ones are read, the others named with cell and fix."""
    wb, ws = _questionnaire(tmp_path, [(1, ["=2+2", "3,5", dt.datetime(2024, 5, 3), True, -1]),
                                       (2, [4, 4, -1, -1, -1])])
    ws.merge_cells("H4:I4")                       # conciseness and irrelevance of caption 2 merged
    ws["B3"] = "\ufeff3.wav"                      # a pasted clip id with a byte-order mark
    ws["C4"] = "Caption\u00a02"
    wb.save(tmp_path / "P1.xlsx")
    log = IssueLog()
    tidy = pd.DataFrame(read_questionnaires([tmp_path / "P1.xlsx"], _key(tmp_path), log))
    by = {(i.cell, i.kind): i for i in log.items}
    assert set(by) == {("E3", "formula_without_value"), ("F3", "number_as_text"), ("G3", "date"),
                       ("H3", "boolean"), ("H4", "merged_cells"), ("I4", "merged_cells")}
    assert all(i.workbook == "P1.xlsx" and i.sheet == "Assessment" for i in log.items)
    assert "open and save the workbook in a spreadsheet program" in by[("E3", "formula_without_value")].message
    assert "format the rating columns as Number" in by[("G3", "date")].message
    assert "type the rating as a number" in by[("H3", "boolean")].message
    assert "merged range H4:I4" in by[("H4", "merged_cells")].message
    assert "unmerge the cells" in by[("I4", "merged_cells")].message
    assert "empty" not in " ".join(i.message for i in log.items)
    assert by[("F3", "number_as_text")].severity == "warning"
    got = {(r.caption, r.dimension): r.score for r in tidy.itertuples()}
    assert got == {(1, "recall"): 3.5, (1, "irrelevance"): -1.0, (2, "precision"): 4.0, (2, "recall"): 4.0,
                   (2, "fluency"): -1.0}
    assert set(tidy["clip"]) == {"3.wav"}
    excluded = sum(i.excluded for i in log.items)
    assert len(tidy) + excluded == 10                      # every rating accounted for


def test_read_sheets_finds_formulas_and_merges(tmp_path):
    wb, ws = _questionnaire(tmp_path, [(1, ["=2+2", "=AVERAGE(3,5)", 0, 0, 0])])
    ws.merge_cells("E5:F6")
    wb.save(tmp_path / "w.xlsx")
    sheet = read_sheets(tmp_path / "w.xlsx")[0]
    assert sheet.values[(3, 5)] == FormulaWithoutValue("2+2")
    assert sheet.values[(3, 6)] == FormulaWithoutValue("AVERAGE(3,5)")
    assert sheet.merged_range(6, 6) == "E5:F6" and sheet.merged_range(3, 5) is None


def _published(path, overall=None):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Dataset_D1"
    ws.append(["Audio ID", "Caption", "Precision_Avg", "Recall_Avg", "Fluency_Avg", "Conciseness_Avg",
               "Irrelevance_Avg", "OverallScore_Avg"])
    ws.append(["1.flac", "Caption by human expert", 4, 4, -0.5, -0.5, 0, overall if overall is not None else 3])
    ws.append(["1.flac", "Caption by SoundSCaper", "3,5", 4, -0.5, -0.5, 0, "=(C3+D3)/2+E3+F3+G3"])
    wb.save(path)
    return path


def test_published_workbook_cells_read_or_named(tmp_path):
    log = IssueLog()
    tidy = pd.DataFrame(read_published(_published(tmp_path / "pub.xlsx"), log))
    by = {(i.cell, i.kind): i for i in log.items}
    assert set(by) == {("C3", "number_as_text"), ("H3", "formula_without_value")}
    assert "open and save the workbook" in by[("H3", "formula_without_value")].message
    sc = tidy[tidy["system"] == "SoundSCaper"].set_index("dimension")["score"]
    assert sc["precision"] == 3.5 and "overall" not in sc.index


def test_jury_cli_names_formula_cells_of_a_script_written_workbook(tmp_path, capsys):
    """End to end: a questionnaire written by a script (openpyxl stores formulas without results)."""
    from soundaq.benchmark.cli import main

    wb, _ = _questionnaire(tmp_path, [(1, [4, 4, -1, -1, "=0-1"]), (2, [3, 3, 0, 0, 0])])
    wb.save(tmp_path / "P1.xlsx")
    (tmp_path / "key.csv").write_text("participant,dataset,clip,caption,system\nP1,D2,3.wav,1,a\nP1,D2,3.wav,2,b\n")
    rc = main(["jury", str(tmp_path / "P1.xlsx"), "--key", str(tmp_path / "key.csv"), "--out",
               str(tmp_path / "out"), "--no-figures", "--resamples", "0"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if "P1.xlsx" in line]
    assert len(lines) == 1 and "P1.xlsx Assessment!I3:" in lines[0]
    assert "formula =0-1 has no stored result" in lines[0] and "fix: open and save" in lines[0]
    assert RATED[-1] in lines[0]
