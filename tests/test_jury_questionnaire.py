"""Reading filled questionnaires, the key and the published averages (human_study)."""
from __future__ import annotations

import pandas as pd
import pytest
from jury_builders import (
    RATED,
    copy_template,
    expected_tidy,
    fill_template,
    make_jury,
    template_clips,
    write_key,
    write_moved_layout,
)

from soundaq.human_study.issues import IssueLog
from soundaq.human_study.published import read_published
from soundaq.human_study.questionnaire import JuryKeyError, read_key, read_questionnaires, read_workbook

PUBLISHED = "SoundSCaper_expert_evaluation_results.xlsx"
TEMPLATE = "questionnaire_template_P1_excel.xlsx"
COLS = ["participant", "dataset", "clip", "system", "dimension", "score"]


@pytest.fixture(scope="module")
def template(expert_jury_dir):
    return expert_jury_dir / TEMPLATE


@pytest.fixture(scope="module")
def base(template, tmp_path_factory):
    """The template rebuilt cell by cell (fast to fill); the slow test fills the original."""
    return copy_template(template, tmp_path_factory.mktemp("jury") / "template_copy.xlsx")


@pytest.fixture(scope="module")
def jury(template):
    participants = ["P1", "P2"]
    clips, order, ratings = make_jury(template, participants, seed=3)
    return participants, clips, order, ratings


def _sorted(frame):
    return frame[COLS].sort_values(COLS[:5]).reset_index(drop=True)


def test_blank_template_structure(template):
    """The blank template: 120 caption rows in two sections, every rating cell reported missing,
    the Example sheet's worked ratings ignored, nothing excluded."""
    log = IssueLog()
    items = read_workbook(template, log)
    assert len(items) == 120
    assert {it.sheet for it in items} == {"Assessment"}
    d1 = {it.clip for it in items if it.section == "Dataset 1"}
    d2 = {it.clip for it in items if it.section == "Dataset 2"}
    # the template's "Dataset 1" section holds the external .wav clips, "Dataset 2" the ARAUS .flac clips
    assert len(d1) == len(d2) == 30 and all(c.endswith(".wav") for c in d1) and all(c.endswith(".flac") for c in d2)
    assert {it.section for it in items} == {"Dataset 1", "Dataset 2"}
    assert {it.caption for it in items} == {1, 2}
    assert len(log) == 600 and {i.kind for i in log.items} == {"missing"}
    assert sum(i.excluded for i in log.items) == 0
    first = next(i for i in log.items)
    assert (first.workbook, first.sheet, first.cell) == (TEMPLATE, "Assessment", "E6")


def test_filled_template_and_moved_layout_give_the_exact_ratings(tmp_path, base, jury):
    participants, clips, order, ratings = jury
    key = read_key(write_key(tmp_path / "key.csv", clips, order, participants))
    fill_template(base, tmp_path / "P1_excel.xlsx", "P1", order, ratings)
    write_moved_layout(tmp_path / "P2.xlsx", clips, "P2", order, ratings, merge_ids=False)
    log = IssueLog()
    tidy = pd.DataFrame(read_questionnaires([tmp_path / "P1_excel.xlsx", tmp_path / "P2.xlsx"], key, log))
    assert len(log) == 0, [i.line() for i in log.items]
    expected = expected_tidy(clips, participants, ratings)
    pd.testing.assert_frame_equal(_sorted(tidy), _sorted(expected), check_dtype=False)
    # the section of the template is kept for traceability, the dataset comes from the key
    p1 = tidy[tidy["participant"] == "P1"]
    assert set(p1.loc[p1["section"] == "Dataset 2", "dataset"]) == {"D1"}
    cells = p1[(p1["clip"] == "3.wav") & (p1["dimension"] == "precision")].sort_values("caption")["cell"].tolist()
    assert cells == ["E6", "E7"]


def test_merged_record_ids_and_layout_variants(tmp_path, template, jury):
    participants, clips, order, ratings = jury
    key = read_key(write_key(tmp_path / "key.csv", clips, order, participants))
    write_moved_layout(tmp_path / "P1.xlsx", clips, "P1", order, ratings, merge_ids=True, top_rows=0,
                       col_offset=0, blank_between=False, reverse_sections=False, sheet="Assessment")
    log = IssueLog()
    tidy = pd.DataFrame(read_questionnaires([tmp_path / "P1.xlsx"], key, log))
    # every clip of P1 read; the key's other participant has no workbook: one warning, nothing excluded
    assert [(i.kind, i.severity, i.excluded) for i in log.items] == [("no_workbook", "warning", 0)]
    assert "P2" in log.items[0].message
    exp = expected_tidy(clips, ["P1"], ratings)
    pd.testing.assert_frame_equal(_sorted(tidy), _sorted(exp), check_dtype=False)


def test_malformed_cells_are_reported_with_cell_and_excluded(tmp_path, base, jury):
    participants, clips, order, ratings = jury
    key_path = write_key(tmp_path / "key.csv", clips, order, participants)
    # drop one clip from the key for P1
    lines = key_path.read_text().splitlines()
    key_path.write_text("\n".join(row for row in lines if not row.startswith("P1,D1,26.flac,")) + "\n")
    key = read_key(key_path)
    bad = {("3.wav", 1, "precision"): 6, ("3.wav", 2, "fluency"): 1, ("42.wav", 1, "recall"): "good",
           ("42.wav", 2, "conciseness"): None, ("37.wav", 1, "irrelevance"): " -1 "}
    path = fill_template(base, tmp_path / "P1.xlsx", "P1", order, ratings, overrides=bad)
    import openpyxl

    wb = openpyxl.load_workbook(path)
    ws = wb["Assessment"]
    ws["B60"] = "3.wav"          # clip 28 (34.wav) relabelled as a duplicate of clip 1
    ws["E140"] = 4               # a rating below the table without a caption label
    wb.save(path)
    log = IssueLog()
    tidy = pd.DataFrame(read_questionnaires([path], key, log))
    by = {(i.kind, i.cell): i for i in log.items}
    assert ("out_of_range", "E6") in by and "6 is outside [1, 5]" in by[("out_of_range", "E6")].message
    assert ("out_of_range", "G7") in by
    assert ("not_a_number", "F8") in by and "'good'" in by[("not_a_number", "F8")].message
    assert ("missing", "H9") in by and by[("missing", "H9")].excluded == 0
    assert ("number_as_text", "I10") in by and by[("number_as_text", "I10")].severity == "warning"
    assert ("duplicate_clip", "B60") in by
    assert ("unlabelled_ratings", "E140") in by
    assert any(i.kind == "not_in_key" and "26.flac" in i.message for i in log.items)
    assert all(i.workbook == "P1.xlsx" for i in log.items if i.kind != "no_workbook")
    # duplicates: both occurrences of 3.wav (2 rows each, 10 values, 2 already invalid -> 8 + 10 = 18)
    dup = by[("duplicate_clip", "B60")]
    assert dup.excluded == 18
    assert tidy[tidy["clip"] == "3.wav"].empty and tidy[tidy["clip"] == "34.wav"].empty
    assert tidy[tidy["clip"] == "26.flac"].empty
    # the number typed as text is kept, the cells next to bad ones are kept
    row = tidy[(tidy["clip"] == "37.wav") & (tidy["dimension"] == "irrelevance") & (tidy["caption"] == 1)]
    assert row["score"].tolist() == [-1.0]
    r42 = tidy[tidy["clip"] == "42.wav"]
    assert set(r42.loc[r42["caption"] == 1, "dimension"]) == {"precision", "fluency", "conciseness", "irrelevance"}
    assert "overall" not in set(r42["dimension"])    # both captions lost a rating
    # counting: every rating is either in the table or accounted for by an issue
    rated = tidy[tidy["dimension"] != "overall"]
    excluded = sum(i.excluded for i in log.items)
    missing = sum(1 for i in log.items if i.kind == "missing")
    assert len(rated) + excluded + missing == 600 + 1     # + the unlabelled stray rating


def test_unreadable_and_foreign_workbooks_do_not_stop_the_batch(tmp_path, base, jury):
    participants, clips, order, ratings = jury
    key = read_key(write_key(tmp_path / "key.csv", clips, order, participants))
    (tmp_path / "P2.xlsx").write_bytes(b"this is not a zip file")
    good = fill_template(base, tmp_path / "P1.xlsx", "P1", order, ratings)
    stranger = fill_template(base, tmp_path / "P9.xlsx", "P1", order, ratings)
    log = IssueLog()
    tidy = pd.DataFrame(read_questionnaires([tmp_path / "P2.xlsx", stranger, good], key, log))
    kinds = {i.kind: i for i in log.items}
    assert "unreadable" in kinds and kinds["unreadable"].workbook == "P2.xlsx"
    assert "unknown_participant" in kinds and kinds["unknown_participant"].excluded == 600
    assert set(tidy["participant"]) == {"P1"} and len(tidy) == 720


def test_participant_matching_by_file_name_tokens(tmp_path):
    (tmp_path / "k.csv").write_text("participant,dataset,clip,caption,system\n"
                                    "P1,D1,4.flac,1,a\nP1,D1,4.flac,2,b\nP10,D1,4.flac,1,b\nP10,D1,4.flac,2,a\n")
    key = read_key(tmp_path / "k.csv")
    assert key.participant_for(tmp_path / "P1_excel.xlsx") == "P1"
    assert key.participant_for(tmp_path / "P10_excel.xlsx") == "P10"
    assert key.participant_for(tmp_path / "jury-p10.xlsx") == "P10"
    assert key.participant_for(tmp_path / "P2_excel.xlsx") is None


@pytest.mark.parametrize("text, fragment", [
    ("participant,clip,caption,system\nP1,4.flac,1,a\n", "lacks column(s) dataset"),
    ("participant,dataset,clip,caption,system\nP1,D1,4.flac,1,a\nP1,D1,4.flac,1,b\n", ":3: participant P1"),
    ("participant,dataset,clip,caption,system\nP1,D1,4.flac,1,a\nP1,D1,4.flac,2,a\n", "both name system a"),
    ("participant,dataset,clip,caption,system\nP1,D1,4.flac,first,a\n", ":2: caption 'first'"),
    ("participant,dataset,clip,caption,system\nP1,D1,4.flac,1,\n", ":2: empty system"),
    ("participant,dataset,clip,caption,system\nP1,D1,4.flac,1,a\nP2,D2,4.flac,1,a\n", "a clip belongs to one dataset"),
])
def test_key_errors_name_the_line(tmp_path, text, fragment):
    path = tmp_path / "key.csv"
    path.write_text(text)
    with pytest.raises(JuryKeyError) as err:
        read_key(path)
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_key_accepts_caption_labels_and_bom(tmp_path):
    path = tmp_path / "key.csv"
    path.write_bytes("\ufeffParticipant,Dataset,Clip,Caption,System\nP1,D1, 4.flac ,Caption 2,a\n".encode())
    key = read_key(path)
    assert key.entries[("p1", "4.flac", 2)] == ("P1", "D1", "4.flac", "a")


def test_published_workbook(expert_jury_dir):
    """Independent pandas read of the published file vs the reader; the formula holds on every row
    but one, which is reported; the one positive fluency average is reported and excluded."""
    path = expert_jury_dir / PUBLISHED
    log = IssueLog()
    tidy = pd.DataFrame(read_published(path, log))
    assert {(i.kind, i.sheet, i.cell) for i in log.items} == {("out_of_range", "Dataset_D1", "E32"),
                                                               ("formula_mismatch", "Dataset_D2", "H38")}
    assert len(tidy) == 2 * 60 * 6 - 1
    ref_cols = {"precision": "Precision_Avg", "recall": "Recall_Avg", "fluency": "Fluency_Avg",
                "conciseness": "Conciseness_Avg", "irrelevance": "Irrelevance_Avg", "overall": "OverallScore_Avg"}
    for sheet, dataset in (("Dataset_D1", "D1"), ("Dataset_D2", "D2")):
        ref = pd.read_excel(path, sheet_name=sheet)
        ref["system"] = ref["Caption"].str.replace("Caption by ", "", regex=False)
        formula = (ref.Precision_Avg + ref.Recall_Avg) / 2 + ref.Fluency_Avg + ref.Conciseness_Avg + ref.Irrelevance_Avg
        assert ((formula - ref.OverallScore_Avg).abs() < 1e-9).sum() == 60 - (dataset == "D2")
        for dim, col in ref_cols.items():
            got = tidy[(tidy["dataset"] == dataset) & (tidy["dimension"] == dim)].set_index(["clip", "system"])["score"]
            want = ref.set_index(["Audio ID", "system"])[col]
            if dim == "fluency" and dataset == "D1":
                want = want.drop(("4.flac", "SoundSCaper"))
            pd.testing.assert_series_equal(got.sort_index(), want.sort_index().astype(float), check_names=False)


def test_copy_of_template_reads_like_the_template(template, base):
    """The rebuilt copy holds the same cells as the template: the reader sees the same rows."""
    items = [(it.sheet, it.section, it.row, it.clip, it.caption) for it in read_workbook(template, IssueLog())]
    assert items == [(it.sheet, it.section, it.row, it.clip, it.caption) for it in read_workbook(base, IssueLog())]


@pytest.mark.slow
def test_filled_original_template(tmp_path, template, jury):
    """Fill the original template itself (a normal openpyxl load: minutes) and read it back."""
    participants, clips, order, ratings = jury
    key = read_key(write_key(tmp_path / "key.csv", clips, order, participants))
    fill_template(template, tmp_path / "P1.xlsx", "P1", order, ratings)
    log = IssueLog()
    tidy = pd.DataFrame(read_questionnaires([tmp_path / "P1.xlsx"], key, log))
    assert [i.kind for i in log.items] == ["no_workbook"]
    pd.testing.assert_frame_equal(_sorted(tidy), _sorted(expected_tidy(clips, ["P1"], ratings)), check_dtype=False)


def test_template_clips_builder_matches_reader(template):
    """The builder's view of the template agrees with the reader (so the builder tests mean something)."""
    log = IssueLog()
    items = read_workbook(template, log)
    clips = template_clips(template)
    assert [c.clip for c in clips] == [it.clip for it in items if it.caption == 1]
    assert RATED == ("precision", "recall", "fluency", "conciseness", "irrelevance")
