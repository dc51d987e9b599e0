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
        rc = main(["jury", *map(str, argv), "--out", str(out), "--resamples", "50", "--no-figures"])
        _, err = capsys.readouterr()
        assert rc == 0, err
        assert ("public questionnaire's layout" in err) == (len(argv) == 1)
        tidy = pd.read_csv(out / "ratings.csv")
        part = tidy[(tidy["source"] == "participants") & (tidy["dimension"] == "precision")]
        assert len(part) == 120 and set(part["participant"]) == {"P1"}
        for _, r in part.iterrows():
            assert r["score"] == ratings[("P1", r["clip"], r["system"])]["precision"]
        assert set(part["dataset"]) == {"D1", "D2"}


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
