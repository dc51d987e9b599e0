"""`soundaq jury` end to end: the paper's numbers from the published workbook, a built 16-expert jury
with malformed cells, --strict, and one-line user errors."""
from __future__ import annotations

import openpyxl
import pandas as pd
import pytest
from jury_builders import build_jury_folder

from soundaq.benchmark.cli import main

PUBLISHED = "SoundSCaper_expert_evaluation_results.xlsx"
TEMPLATE = "questionnaire_template_P1_excel.xlsx"


def _cli(capsys, *argv):
    rc = main(["jury", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def published_run(expert_jury_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("jury_pub")
    rc = main(["jury", "--published", str(expert_jury_dir / PUBLISHED), "--out", str(out), "--resamples", "2000",
               "--captions", str(expert_jury_dir / TEMPLATE)])
    assert rc == 1      # the published file's out-of-range fluency average is an input error, left out
    return out


def test_published_reproduces_the_paper(published_run):
    tests = pd.read_csv(published_run / "tests.csv")
    ov = tests[tests["dimension"] == "overall"].set_index("dataset")
    assert set(ov["system_a"]) == {"SoundSCaper"} and set(ov["system_b"]) == {"human expert"}
    assert ov.loc["D1", "mean_diff"] == pytest.approx(-0.21, abs=0.005)
    assert ov.loc["D2", "mean_diff"] == pytest.approx(-0.257, abs=0.0005)
    assert ov.loc["D1", "p_t"] == pytest.approx(0.064, abs=0.0005)
    assert ov.loc["D2", "p_t"] == pytest.approx(0.120, abs=0.0005)
    assert ov.loc["D2", "p_wilcoxon"] == pytest.approx(0.0497, abs=0.00005)
    assert list(ov["n"]) == [30, 30]
    assert bool(ov.loc["D1", "tests_agree"]) and not bool(ov.loc["D2", "tests_agree"])
    report = (published_run / "report.md").read_text()
    assert "SoundSCaper's mean overall score is 0.213 below human expert's" in report
    assert "SoundSCaper's mean overall score is 0.257 below human expert's" in report
    assert "p = 0.0644" in report and "p = 0.120" in report
    d2 = next(line for line in report.splitlines() if line.startswith("On D2"))
    assert "**The tests disagree**" in d2 and "p = 0.0497 (significant)" in d2 and "0.120 (not significant)" in d2
    d1 = next(line for line in report.splitlines() if line.startswith("On D1"))
    assert "disagree" not in d1
    # the published file's own defects are reported with their cells
    issues = pd.read_csv(published_run / "issues.csv")
    assert set(zip(issues["sheet"], issues["cell"], issues["kind"])) == {
        ("Dataset_D1", "E32", "out_of_range"), ("Dataset_D2", "H38", "formula_mismatch")}


def _published_gaps(path) -> dict[str, pd.Series]:
    """Expert minus SoundSCaper overall score per clip, read straight from the workbook's cells."""
    gaps = {}
    for sheet, dataset in (("Dataset_D1", "D1"), ("Dataset_D2", "D2")):
        frame = pd.read_excel(path, sheet_name=sheet)
        wide = frame.pivot_table(index="Audio ID", columns="Caption", values="OverallScore_Avg")
        gaps[dataset] = wide["Caption by human expert"] - wide["Caption by SoundSCaper"]
    return gaps


def test_case_study_largest_gaps_each_way_with_both_captions(published_run, expert_jury_dir):
    """The case study (human_study/case_study.py, `--captions`): gaps from the published cells, texts from the
    public questionnaire."""
    from soundaq.human_study.caption_texts import fingerprint
    from soundaq.human_study.public_key import read_public_key_rows

    cases = pd.read_csv(published_run / "case_study.csv")
    assert len(cases) == 12          # 2 datasets x 2 sides x 3 clips
    want = _published_gaps(expert_jury_dir / PUBLISHED)
    key = {(r["clip"], r["system"]): r["text_sha256"] for r in read_public_key_rows()}
    for dataset, gap in want.items():
        d = cases[cases["dataset"] == dataset]
        experts = d[d["higher"] == "human expert"].sort_values("rank")
        ours = d[d["higher"] == "SoundSCaper"].sort_values("rank")
        assert list(experts["clip"]) == list(gap.sort_values(ascending=False).index[:3])
        assert list(ours["clip"]) == list(gap.sort_values().index[:3])
        for _, r in d.iterrows():
            assert r["gap"] == pytest.approx(gap[r["clip"]], abs=1e-9)
            assert r["gap"] == pytest.approx(r["reference_score"] - r["system_score"], abs=1e-9)
            assert fingerprint(r["system_caption"]) == key[(r["clip"], "SoundSCaper")]
            assert fingerprint(r["reference_caption"]) == key[(r["clip"], "human expert")]
    # the paper's D1 extreme: 28.flac, expert 3.484 against SoundSCaper 1.556
    top = cases[(cases["dataset"] == "D1") & (cases["higher"] == "human expert") & (cases["rank"] == 1)].iloc[0]
    assert top["clip"] == "28.flac" and top["gap"] == pytest.approx(1.928125)
    assert "siren" in top["reference_caption"]


def test_case_study_in_the_report(published_run):
    report = (published_run / "report.md").read_text()
    section = report.split("## Case study", 1)[1].split("\n## ", 1)[0]
    for heading in ("**D1 (published): human expert's caption scored higher**",
                    "**D1 (published): SoundSCaper's caption scored higher**",
                    "**D2 (published): human expert's caption scored higher**",
                    "**D2 (published): SoundSCaper's caption scored higher**"):
        assert heading in section
    assert "| 1 | 28.flac | 3.484 | 1.556 | +1.928 | Immediately, there is a siren" in section
    wb = openpyxl.load_workbook(published_run / "jury_results.xlsx", read_only=True)
    assert "case_study" in wb.sheetnames


def test_without_captions_the_gaps_stay_and_the_report_says_how(expert_jury_dir, tmp_path, capsys):
    rc = main(["jury", "--published", str(expert_jury_dir / PUBLISHED), "--out", str(tmp_path), "--resamples", "0",
               "--no-figures"])
    assert rc == 1
    assert "case study, published D1: largest gaps 28.flac +1.928 (human expert higher)" in capsys.readouterr().out
    cases = pd.read_csv(tmp_path / "case_study.csv", keep_default_na=False)
    assert len(cases) == 12 and set(cases["system_caption"]) == {""}
    assert "pass `--captions`" in (tmp_path / "report.md").read_text()


def test_published_tables_figures_and_xlsx(published_run):
    summary = pd.read_csv(published_run / "summary.csv")
    tests = pd.read_csv(published_run / "tests.csv")
    for col in ("dataset", "system", "dimension", "n", "mean", "sd", "ci_low", "ci_high", "boot_ci_low",
                "boot_ci_high"):
        assert col in summary.columns
    for col in ("dataset", "dimension", "system_a", "system_b", "n", "mean_diff", "t", "p_t", "w", "p_wilcoxon",
                "shapiro_p", "primary_test", "cohens_dz", "rank_biserial", "p_holm"):
        assert col in tests.columns
    assert len(summary) == 2 * 2 * 6 and len(tests) == 2 * 6
    ov = summary[(summary["dimension"] == "overall") & (summary["dataset"] == "D2")].set_index("system")
    assert ov.loc["SoundSCaper", "mean"] - ov.loc["human expert", "mean"] == pytest.approx(-0.257, abs=5e-4)
    tidy = pd.read_csv(published_run / "ratings.csv")
    assert set(tidy["participant"]) == {"average"}
    assert {"participant", "dataset", "clip", "system", "dimension", "score"} <= set(tidy.columns)
    assert not (published_run / "reliability.csv").exists()           # averages only: no raters
    wb = openpyxl.load_workbook(published_run / "jury_results.xlsx", read_only=True)
    assert {"ratings", "summary", "tests", "issues"} <= set(wb.sheetnames)
    wb.close()
    for name in ("ratings_published_D1.png", "ratings_published_D2.png", "paired_published.png"):
        assert (published_run / "figures" / name).stat().st_size > 10_000


@pytest.fixture(scope="module")
def built_jury(expert_jury_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("jury_built")
    return build_jury_folder(expert_jury_dir / TEMPLATE, folder, n_participants=16, seed=1)


def test_built_jury_end_to_end(built_jury, expert_jury_dir, tmp_path, capsys):
    paths, key, ratings, order, _clips, problems = built_jury
    out = tmp_path / "out"
    rc, stdout, err = _cli(capsys, *paths, "--key", key, "--published", expert_jury_dir / PUBLISHED,
                           "--out", out, "--resamples", "200", "--no-figures")
    assert rc == 1, err                                                 # planted input errors, analysis done
    # every planted problem is reported with workbook, sheet and cell
    issues = pd.read_csv(out / "issues.csv")
    got = set(zip(issues["workbook"], issues["sheet"], issues["cell"], issues["kind"]))
    for p in problems:
        assert p in got, p
    for wb, _, cell, _ in problems:
        assert f"{wb} Assessment!{cell}" in err
    # the counts in the report add up: 16 x 60 clips x 2 captions x 5 ratings
    tidy = pd.read_csv(out / "ratings.csv")
    part = tidy[(tidy["source"] == "participants") & (tidy["dimension"] != "overall")]
    excluded = int(issues["excluded"].sum()) - 1                       # minus the published file's one value
    missing = int((issues["kind"] == "missing").sum())
    assert len(part) + excluded + missing == 16 * 60 * 2 * 5
    assert excluded == 1 + 1 + 10                                      # range, text, P3's two rows of 26.flac
    report = (out / "report.md").read_text()
    assert f"{excluded + 1} rating(s) excluded in total" in report
    assert f"{excluded + 1} rating(s) excluded" in stdout
    # randomised caption order: the key's order differs between participants and the reader un-blinds it
    assert len({tuple(order[(p, "3.wav")]) for p in [f"P{i}" for i in range(1, 17)]}) == 2
    p5 = tidy[(tidy["participant"] == "P5") & (tidy["clip"] == "3.wav") & (tidy["dimension"] == "precision")]
    for _, r in p5.iterrows():
        assert r["score"] == ratings[("P5", "3.wav", r["system"])]["precision"]
        assert order[("P5", "3.wav")][int(r["caption"]) - 1] == r["system"]
    # moved-layout workbooks (P4, P8, ...) were read completely
    assert tidy[(tidy["participant"] == "P8") & (tidy["dimension"] == "overall")].shape[0] == 120
    # reliability: the two-way ICCs and alpha per dimension and system, per dataset
    rel = pd.read_csv(out / "reliability.csv")
    assert set(rel["measure"]) == {"ICC(A,1)", "ICC(A,k)", "ICC(C,1)", "ICC(C,k)", "Krippendorff alpha (interval)"}
    assert set(rel["system"]) == {"human expert", "SoundSCaper", "all"} and set(rel["dataset"]) == {"D1", "D2"}
    assert set(rel["dimension"]) == {"precision", "recall", "fluency", "conciseness", "irrelevance", "overall"}
    assert rel["value"].notna().all()
    icc = rel[(rel["dataset"] == "D1") & (rel["dimension"] == "precision") & (rel["system"] == "SoundSCaper")]
    assert icc.set_index("measure").loc["ICC(A,1)", "n_raters"] == 16
    # both sources are analysed side by side
    tests = pd.read_csv(out / "tests.csv")
    assert set(tests["source"]) == {"participants", "published"}
    sim = tests[(tests["source"] == "participants") & (tests["dimension"] == "overall")]
    assert (sim["mean_diff"] < 0).all()                                 # the builder's system effect is -0.3
    wb = openpyxl.load_workbook(out / "jury_results.xlsx", read_only=True)
    assert "reliability" in wb.sheetnames
    wb.close()


def test_strict_exits_2_and_writes_nothing(built_jury, tmp_path, capsys):
    paths, key, *_ = built_jury
    out = tmp_path / "strict"
    rc, _stdout, err = _cli(capsys, *paths[:3], "--key", key, "--out", out, "--strict", "--no-figures")
    assert rc == 2
    assert "P2_excel.xlsx Assessment!E6" in err and "P3_excel.xlsx Assessment!B134" in err
    assert "input error(s)" in err and "Traceback" not in err
    assert not (out / "tests.csv").exists()
    clean = [p for p in paths if p.name in ("P1_excel.xlsx", "P4_excel.xlsx")]
    rc, _, err = _cli(capsys, *clean, "--key", key, "--out", out, "--strict", "--no-figures", "--resamples", "50")
    assert rc == 0, err                                                 # warnings only (no_workbook)


@pytest.mark.parametrize("args, fragment", [
    (["--out", "{tmp}/o"], "nothing to read"),
    (["{tmp}/missing.xlsx", "--key", "{tmp}/k.csv", "--out", "{tmp}/o"], "no such file or folder"),
    (["{tmp}/w.xlsx", "--out", "{tmp}/o"], "need --key"),
    (["--published", "{tmp}/none.xlsx", "--out", "{tmp}/o"], "published workbook not found"),
    (["{tmp}/w.xlsx", "--key", "{tmp}/bad.csv", "--out", "{tmp}/o"], "bad.csv:1: key header lacks"),
])
def test_user_errors_are_one_line(tmp_path, capsys, args, fragment):
    (tmp_path / "w.xlsx").write_bytes(b"x")
    (tmp_path / "bad.csv").write_text("who,what\n")
    rc, _, err = _cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert rc == 2 and fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_garbage_published_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "results.xlsx"
    bad.write_bytes(b"not a workbook")
    rc, _, err = _cli(capsys, "--published", bad, "--out", tmp_path / "o")
    assert rc == 2 and "Traceback" not in err
    assert "results.xlsx: a text file (CSV?) with a workbook's name, not an .xlsx; fix: open it in Excel" in err


def test_the_docs_option_table_matches_the_command():
    """Fault L (trial 25): docs/jury.md lists every option of `soundaq jury --help` in its option table, with the
    special values the help names (`--key public`), and no longer says that every workbook without --key is refused."""
    import argparse
    import re
    from pathlib import Path

    from soundaq.benchmark.cli import build_parser

    parser = build_parser()
    jury = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "jury")[1]
    doc = (Path(__file__).resolve().parents[1] / "docs" / "jury.md").read_text(encoding="utf-8")
    usage = doc.split("## Usage", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(-[-\w]+|[A-Z]+)[^|]*\|.*$", usage, re.M)}
    for action in jury._actions:
        flag = next((f for f in action.option_strings if f.startswith("--")), None)   # the first long name
        if flag is not None and flag != "--help" and action.help != argparse.SUPPRESS:   # hidden: old names
            assert f"`{flag}" in usage, f"docs/jury.md's usage lacks {flag}"
    assert "`--key public`" in rows["--key"] and "Without `--key`" in rows["--key"]
    assert "--key KEY.csv|public" in usage
    assert "workbooks given\nwithout `--key`, or" not in usage
