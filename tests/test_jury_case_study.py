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
