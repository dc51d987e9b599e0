"""`soundaq jury` with the key of the public questionnaire shipped with soundaq."""
from __future__ import annotations

import pandas as pd
from jury_builders import copy_template, fill_template, make_jury

from soundaq.benchmark.cli import main
from soundaq.human_study.public_key import read_public_key_rows

TEMPLATE = "questionnaire_template_P1_excel.xlsx"


def test_jury_unblinds_a_public_layout_workbook_with_the_shipped_key(expert_jury_dir, tmp_path, capsys):
    template = copy_template(expert_jury_dir / TEMPLATE, tmp_path / "template.xlsx")
    _clips, _, ratings = make_jury(template, ["P1"], seed=4)
    order = {}
    for r in read_public_key_rows():
        order.setdefault(("P1", r["clip"]), [None, None])[int(r["caption"]) - 1] = r["system"]
    wb = fill_template(template, tmp_path / "expert_P1.xlsx", "P1", order, ratings)
    for argv in ([wb], [wb, "--key", "public"]):
        out = tmp_path / f"out{len(argv)}"
        rc = main(["jury", *map(str, argv), "--out", str(out), "--resamples", "50", "--no-figures",
                   "--case-study", "30"])
        _, err = capsys.readouterr()
        assert rc == 0, err
        assert ("public questionnaire's layout" in err) == (len(argv) == 1)
        assert ("not exact for 32.flac partial, 52.wav ambiguous" in err) == (len(argv) == 1)
        tidy = pd.read_csv(out / "ratings.csv")
        part = tidy[(tidy["source"] == "participants") & (tidy["dimension"] == "precision")]
        assert len(part) == 120 and set(part["participant"]) == {"P1"}
        for _, r in part.iterrows():
            assert r["score"] == ratings[("P1", r["clip"], r["system"])]["precision"]
        assert set(part["dataset"]) == {"D1", "D2"}
        _assert_pairings_flagged(out, expected=True)


def _assert_pairings_flagged(out, expected: bool) -> None:
    """Fault M (trial 25): the ratings and texts of 52.wav (nearest: ambiguous) and 32.flac (partial) rest on the
    shipped key's pairing; the report's key input says so and their case-study rows carry it. A key CSV's
    pairings are its author's word: no note, no grade."""
    report = (out / "report.md").read_text(encoding="utf-8")
    key_line = next(line for line in report.splitlines() if line.startswith("- ") and "key" in line)
    assert ("52.wav ambiguous" in key_line and "32.flac partial" in key_line) == expected, key_line
    for table in ("ratings", "clip_scores"):       # the questionnaire's ratings rest on the pairing too
        frame = pd.read_csv(out / f"{table}.csv", keep_default_na=False)
        if expected:
            part = frame[frame["source"] == "participants"]
            assert set(part.loc[part["clip"] == "52.wav", "key_pairing"]) == {"ambiguous"}
            assert set(part.loc[part["clip"] == "32.flac", "key_pairing"]) == {"partial"}
            assert set(part.loc[~part["clip"].isin(["52.wav", "32.flac"]), "key_pairing"]) == {"exact"}
        else:
            assert "key_pairing" not in frame.columns
    cases = pd.read_csv(out / "case_study.csv", keep_default_na=False)
    grades = dict(zip(cases["clip"], cases["key_pairing"]))
    assert {"52.wav", "32.flac"} <= set(grades)
    if expected:
        assert grades["52.wav"] == "ambiguous" and grades["32.flac"] == "partial"
        assert {g for c, g in grades.items() if c not in ("52.wav", "32.flac")} == {"exact"}
        assert "| 52.wav † |" in report and "| 32.flac † |" in report
    else:
        assert set(grades.values()) == {""} and "†" not in report


def test_a_key_csv_with_the_same_pairings_is_not_flagged(expert_jury_dir, tmp_path, capsys):
    template = copy_template(expert_jury_dir / TEMPLATE, tmp_path / "template.xlsx")
    _clips, _, ratings = make_jury(template, ["P1"], seed=4)
    order = {}
    rows = read_public_key_rows()
    for r in rows:
        order.setdefault(("P1", r["clip"]), [None, None])[int(r["caption"]) - 1] = r["system"]
    wb = fill_template(template, tmp_path / "expert_P1.xlsx", "P1", order, ratings)
    key = tmp_path / "key.csv"
    pd.DataFrame(rows)[["participant", "dataset", "clip", "caption", "system"]].to_csv(key, index=False)
    from soundaq.human_study.public_key import public_key_path

    # the shipped key CSV given by path keeps its evidence column, so its caveats
    for key_csv, flagged in ((key, False), (public_key_path(), True)):
        out = tmp_path / f"out_{flagged}"
        rc = main(["jury", str(wb), "--key", str(key_csv), "--out", str(out), "--resamples", "0", "--no-figures",
                   "--case-study", "30"])
        _, err = capsys.readouterr()
        assert rc == 0, err
        _assert_pairings_flagged(out, expected=flagged)


def test_jury_refuses_the_public_key_for_another_layout(expert_jury_dir, tmp_path, capsys):
    import openpyxl

    template = copy_template(expert_jury_dir / TEMPLATE, tmp_path / "P2.xlsx")
    wb = openpyxl.load_workbook(template)
    ws = wb["Assessment"]
    ws["D6"], ws["D7"] = ws["D7"].value, ws["D6"].value          # another participant's order for 3.wav
    wb.save(template)
    rc = main(["jury", str(template), "--key", "public", "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert rc == 2 and "Assessment!D6" in err and "--key KEY.csv" in err and len(err.strip().splitlines()) == 1
    rc = main(["jury", str(template), "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert rc == 2 and "need --key" in err
