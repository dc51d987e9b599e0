"""The case study of `soundaq jury` (human_study/case_study.py): ranking, texts, the section without captions,
bad --captions. The run on the reference workbooks is in test_jury_cli.py (the published run, with --captions)."""
from __future__ import annotations

import pandas as pd

from soundaq.benchmark.cli import main

PUBLISHED = "SoundSCaper_expert_evaluation_results.xlsx"
TEMPLATE = "questionnaire_template_P1_excel.xlsx"


def test_without_captions_the_gaps_stay_and_the_report_says_how():
    from soundaq.human_study.case_study import largest_gaps, markdown_section

    rows = [{"source": "published", "dataset": "D1", "clip": c, "system": s, "dimension": "overall", "score": v}
            for c, s, v in (("1.wav", "human expert", 3.0), ("1.wav", "SoundSCaper", 2.0))]
    cases = largest_gaps(pd.DataFrame(rows), "human expert", None)
    assert list(cases["gap"]) == [1.0] and list(cases["system_caption"]) == [""]
    text = "\n".join(markdown_section(cases, 3, None))
    assert "pass `--captions`" in text and "| 1 | 1.wav | 3.000 | 2.000 | +1.000 | (no text) | (no text) |" in text
    assert "**D1 (published): SoundSCaper's caption scored higher**\n\nNo clip." in text


def test_a_captions_workbook_no_key_fits_is_one_line(expert_jury_dir, tmp_path, capsys):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["nothing to see"])
    other = tmp_path / "other.xlsx"
    wb.save(other)
    for bad in (other, tmp_path / "absent.xlsx"):
        rc = main(["jury", "--published", str(expert_jury_dir / PUBLISHED), "--captions", str(bad),
                   "--out", str(tmp_path / "o"), "--resamples", "0", "--no-figures"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and str(bad.name) in err, err
        assert not (tmp_path / "o").exists()


def test_largest_gaps_ranks_ties_and_short_sides():
    """Per-clip scores made by hand: ties go by clip name, a side with fewer clips lists what there is, clips
    scored for one system only are left out."""
    from soundaq.human_study.case_study import largest_gaps

    scores = {"a.wav": (3.0, 1.0), "b.wav": (3.0, 1.0), "c.wav": (2.0, 1.5), "d.wav": (1.0, 2.5), "e.wav": (2.0, None)}
    rows = []
    for clip, (expert, system) in scores.items():
        for name, value in (("human expert", expert), ("SoundSCaper", system)):
            if value is not None:
                rows.append({"source": "published", "dataset": "D1", "clip": clip, "system": name,
                             "dimension": "overall", "score": value})
        rows.append({"source": "published", "dataset": "D1", "clip": clip, "system": "human expert",
                     "dimension": "precision", "score": 9.0})       # other dimensions are ignored
    cases = largest_gaps(pd.DataFrame(rows), "human expert", {("a.wav", "SoundSCaper"): "ours"}, n=3)
    experts = cases[cases["higher"] == "human expert"]
    assert list(experts["clip"]) == ["a.wav", "b.wav", "c.wav"] and list(experts["gap"]) == [2.0, 2.0, 0.5]
    ours = cases[cases["higher"] == "SoundSCaper"]
    assert list(ours["clip"]) == ["d.wav"] and list(ours["gap"]) == [-1.5] and list(ours["rank"]) == [1]
    assert list(cases["system_caption"]) == ["ours", "", "", ""]


def test_captions_from_a_questionnaire_and_its_key(expert_jury_dir):
    from soundaq.human_study.case_study import captions_from
    from soundaq.human_study.public_key import public_key_for

    template = expert_jury_dir / TEMPLATE
    texts = captions_from([template], public_key_for([template]))
    assert len(texts) == 120          # 60 clips x (expert, SoundSCaper)
    assert {system for _, system in texts} == {"human expert", "SoundSCaper"}
    assert texts[("28.flac", "human expert")].startswith("Immediately, there is a siren")


def test_the_published_workbook_as_captions_points_to_the_questionnaire(expert_jury_dir, tmp_path, capsys):
    """Fault K (trial 25): the published averages hold no caption text, so `--captions` given them must say to pass
    the questionnaire (and where the file goes), not that it "needs --key"."""
    published = expert_jury_dir / PUBLISHED
    rc = main(["jury", "--published", str(published), "--captions", str(published), "--out", str(tmp_path / "o"),
               "--resamples", "0", "--no-figures"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "--captions" in err and "no caption texts" in err and TEMPLATE in err and "--published" in err
    assert "--key" not in err
    assert not (tmp_path / "o").exists()


def test_rows_on_a_partial_or_ambiguous_key_pairing_are_flagged(expert_jury_dir, tmp_path, capsys):
    """Fault M (trial 25): the shipped key marks 52.wav `nearest` (ambiguous) and 32.flac `partial`, and promises to
    say so wherever it is used; with --case-study 30 both clips are listed, so their rows must carry it: the
    `key_pairing` column of case_study.csv and of the xlsx sheet, a marked clip with a footnote in report.md, and a
    note on the captions input."""
    from soundaq.human_study.public_key import pairing_grade, read_public_key_rows

    out = tmp_path / "o"
    rc = main(["jury", "--published", str(expert_jury_dir / PUBLISHED), "--captions", str(expert_jury_dir / TEMPLATE),
               "--out", str(out), "--resamples", "0", "--no-figures", "--case-study", "30"])
    capsys.readouterr()
    assert rc == 1      # the published file's own out-of-range cell
    grades = {r["clip"]: pairing_grade(r["evidence"]) for r in read_public_key_rows()}
    assert grades["52.wav"] == "ambiguous" and grades["32.flac"] == "partial"
    cases = pd.read_csv(out / "case_study.csv", keep_default_na=False)
    sheet = pd.read_excel(out / "jury_results.xlsx", sheet_name="case_study", keep_default_na=False)
    for table in (cases, sheet):
        assert {"52.wav", "32.flac"} <= set(table["clip"])
        assert all(r["key_pairing"] == grades[r["clip"]] for _, r in table.iterrows())
    report = (out / "report.md").read_text(encoding="utf-8")
    for clip, grade in (("52.wav", "ambiguous"), ("32.flac", "partial")):
        assert f"| {clip} † |" in report
        assert any(line.startswith(f"† {clip}:") and f"is {grade} (" in line for line in report.splitlines())
    marked = [line for line in report.splitlines() if line.startswith("| ") and " † |" in line]
    assert len(marked) == 2         # the exact pairings carry no mark
    note = next(line for line in report.splitlines() if TEMPLATE in line and line.startswith("- "))
    assert "**Note**" in note and "52.wav ambiguous" in note and "32.flac partial" in note


def test_a_key_csv_pairing_is_the_authors_word():
    """largest_gaps/markdown_section: no shipped-key evidence (a key CSV, or no texts) gives an empty key_pairing,
    no mark and no column; evidence gives the grade, and a non-exact one a mark and a footnote."""
    from soundaq.human_study.case_study import largest_gaps, markdown_section

    rows = [{"source": "published", "dataset": "D2", "clip": c, "system": s, "dimension": "overall", "score": v}
            for c, s, v in (("52.wav", "human expert", 3.5), ("52.wav", "SoundSCaper", 3.0),
                            ("3.wav", "human expert", 3.0), ("3.wav", "SoundSCaper", 1.0))]
    plain = largest_gaps(pd.DataFrame(rows), "human expert", None)
    assert list(plain["key_pairing"]) == ["", ""]
    assert "†" not in "\n".join(markdown_section(plain, 3, None))
    evidence = {"52.wav": "nearest: no order reproduces the metrics; ambiguous", "3.wav": "exact: all 5 agree"}
    keyed = largest_gaps(pd.DataFrame(rows), "human expert", None, pairing=evidence)
    assert list(keyed["key_pairing"]) == ["exact", "ambiguous"]
    text = "\n".join(markdown_section(keyed, 3, None, evidence))
    assert "| 2 | 52.wav † |" in text and "| 1 | 3.wav |" in text and "| key pairing |" in text
    assert "† 52.wav: the shipped public questionnaire key's pairing of this clip's two captions is ambiguous " \
           "(no order reproduces the metrics; ambiguous)" in text
