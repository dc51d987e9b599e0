"""The case study of `soundaq jury` (human_study/case_study.py): the largest gaps between the experts' and
SoundSCaper's overall scores per dataset, each way, with both captions, from the reference jury workbooks."""
from __future__ import annotations

import pandas as pd
import pytest

from soundaq.benchmark.cli import main
from soundaq.human_study.caption_texts import fingerprint
from soundaq.human_study.public_key import read_public_key_rows

PUBLISHED = "SoundSCaper_expert_evaluation_results.xlsx"
TEMPLATE = "questionnaire_template_P1_excel.xlsx"


@pytest.fixture(scope="module")
def case_run(expert_jury_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("jury_case")
    rc = main(["jury", "--published", str(expert_jury_dir / PUBLISHED), "--captions", str(expert_jury_dir / TEMPLATE),
               "--out", str(out), "--resamples", "0", "--no-figures", "--case-study", "2"])
    assert rc == 1      # the published file's out-of-range fluency average (an input error, left out)
    return out


def _published_gaps(path) -> dict[str, pd.Series]:
    """Expert minus SoundSCaper overall score per clip, read straight from the workbook's cells."""
    gaps = {}
    for sheet, dataset in (("Dataset_D1", "D1"), ("Dataset_D2", "D2")):
        frame = pd.read_excel(path, sheet_name=sheet)
        wide = frame.pivot_table(index="Audio ID", columns="Caption", values="OverallScore_Avg")
        gaps[dataset] = wide["Caption by human expert"] - wide["Caption by SoundSCaper"]
    return gaps


def test_largest_gaps_each_way_with_both_captions(case_run, expert_jury_dir):
    cases = pd.read_csv(case_run / "case_study.csv")
    assert len(cases) == 8           # 2 datasets x 2 sides x 2 clips
    want = _published_gaps(expert_jury_dir / PUBLISHED)
    key = {(r["clip"], r["system"]): r["text_sha256"] for r in read_public_key_rows()}
    for dataset, gap in want.items():
        d = cases[cases["dataset"] == dataset]
        experts = d[d["higher"] == "human expert"].sort_values("rank")
        ours = d[d["higher"] == "SoundSCaper"].sort_values("rank")
        assert list(experts["clip"]) == list(gap.sort_values(ascending=False).index[:2])
        assert list(ours["clip"]) == list(gap.sort_values().index[:2])
        for _, r in d.iterrows():
            assert r["gap"] == pytest.approx(gap[r["clip"]], abs=1e-9)
            assert r["gap"] == pytest.approx(r["reference_score"] - r["system_score"], abs=1e-9)
            assert fingerprint(r["system_caption"]) == key[(r["clip"], "SoundSCaper")]
            assert fingerprint(r["reference_caption"]) == key[(r["clip"], "human expert")]
    # the paper's D1 extreme: 28.flac, expert 3.484 against SoundSCaper 1.556
    top = cases[(cases["dataset"] == "D1") & (cases["higher"] == "human expert") & (cases["rank"] == 1)].iloc[0]
    assert top["clip"] == "28.flac" and top["gap"] == pytest.approx(1.928125)
    assert "siren" in top["reference_caption"]


def test_case_study_in_the_report(case_run):
    report = (case_run / "report.md").read_text()
    section = report.split("## Case study", 1)[1].split("\n## ", 1)[0]
    for heading in ("**D1 (published): human expert's caption scored higher**",
                    "**D1 (published): SoundSCaper's caption scored higher**",
                    "**D2 (published): human expert's caption scored higher**",
                    "**D2 (published): SoundSCaper's caption scored higher**"):
        assert heading in section
    assert "| 1 | 28.flac | 3.484 | 1.556 | +1.928 | Immediately, there is a siren" in section
    assert "jury_results.xlsx" not in section and (case_run / "jury_results.xlsx").is_file()


def test_without_captions_the_gaps_stay_and_the_report_says_how(expert_jury_dir, tmp_path, capsys):
    rc = main(["jury", "--published", str(expert_jury_dir / PUBLISHED), "--out", str(tmp_path), "--resamples", "0",
               "--no-figures"])
    assert rc == 1
    assert "case study, published D1: largest gaps 28.flac +1.928 (human expert higher)" in capsys.readouterr().out
    cases = pd.read_csv(tmp_path / "case_study.csv", keep_default_na=False)
    assert len(cases) == 12 and set(cases["system_caption"]) == {""}
    assert "pass `--captions`" in (tmp_path / "report.md").read_text()


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
