"""The field cases of ../shared/field-cases (F2-13, F2-14, F2-19) through the current code, each with
its right value (README there). The inputs are read in place, never copied into the project."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import lightning  # noqa: F401 - imported at collection: its log handler must not bind to a test's captured stderr
import pandas as pd
import pytest
from input_builders import write_features

from soundaq.base.artifacts import RebuiltWarning
from soundaq.benchmark.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------------------------------- F2-19
def test_f2_19_bom_label_file_keeps_every_clip(field_cases_dir, tmp_path, capsys):
    """A UTF-8 BOM (and CRLF) in test_set_audio_file_ids.txt: the first id is read without it and the
    data module serves all 4 test clips (it served 3, silently)."""
    from soundaq.models_zoo.data.clip_dataset import SkippedClipWarning
    from soundaq.models_zoo.data.datamodule import SoundscapeDataModule
    from soundaq.models_zoo.data.labels import read_labels

    labels = field_cases_dir / "F2-19" / "labels"
    assert (labels / "test_set_audio_file_ids.txt").read_bytes()[:3] == b"\xef\xbb\xbf"   # the case holds
    test = read_labels(labels, "test")
    assert test["clip"].iloc[0] == "fold_0_participant_10001_stimulus_02"
    assert all(c.isprintable() and c == c.strip() for c in read_labels(labels, "all")["clip"])
    rc, out, _ = _cli(capsys, "data", "check", "--labels", labels, "--json")
    assert rc == 0 and json.loads(out)["splits"]["test"]["clips"] == 4
    feats = write_features(labels, tmp_path / "features")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedClipWarning)   # no clip may be left out
        dm = SoundscapeDataModule("araus", labels_dir=labels, features_dir=feats, batch_size=2,
                                  cache_dir=tmp_path / "cache")
        dm.prepare_data()
        dm.setup("test")
    assert dm.describe()["split_sizes"]["test"] == 4
    assert dm.dataset("test").clips == test["clip"].tolist()


def test_a_clip_left_out_is_named(field_cases_dir, tmp_path):
    """The invariant behind F2-19: a clip whose labels are valid is never dropped without a line naming it."""
    from soundaq.models_zoo.data.clip_dataset import SkippedClipWarning
    from soundaq.models_zoo.data.datamodule import SoundscapeDataModule

    labels = field_cases_dir / "F2-19" / "labels"
    feats = write_features(labels, tmp_path / "features")
    (feats / "Feature_log_mel" / "fold_0_participant_10001_stimulus_03.npy").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm = SoundscapeDataModule("araus", labels_dir=labels, features_dir=feats, batch_size=2,
                                  cache_dir=tmp_path / "cache")
        dm.setup("test")
    lines = [str(w.message) for w in caught if issubclass(w.category, SkippedClipWarning)]
    assert len(lines) == 1 and "fold_0_participant_10001_stimulus_03" in lines[0] and "fix:" in lines[0]
    assert dm.describe()["left_out_clips"] == {"test": ["fold_0_participant_10001_stimulus_03"]}


# ---------------------------------------------------------------------------------------- F2-13
def test_f2_13_formula_without_stored_value_is_named(field_cases_dir, tmp_path, capsys):
    """P2's E6 (=2+2) and F7 (=AVERAGE(3,5)) hold formulas without results: each is named as such with
    the fix, never as an empty cell; every other rating is read exactly as in the same workbook with
    the two values typed in."""
    import openpyxl

    case = field_cases_dir / "F2-13"
    rc, _out, err = _cli(capsys, "jury", case, "--key", case / "key.csv", "--out", tmp_path / "formula",
                        "--no-figures", "--resamples", "0")
    assert rc == 1, err                 # two input errors; the analysis of the rest is complete
    lines = [line for line in err.splitlines() if "P2_excel.xlsx" in line]
    assert len(lines) == 2 and "empty" not in err.lower() and "Traceback" not in err
    for cell, formula in (("E6", "=2+2"), ("F7", "=AVERAGE(3,5)")):
        line = next(line for line in lines if f"P2_excel.xlsx Assessment!{cell}:" in line)
        assert f"formula {formula} has no stored result" in line
        assert "fix: open and save the workbook in a spreadsheet program" in line and "or type the value" in line
    issues = pd.read_csv(tmp_path / "formula" / "issues.csv")
    assert sorted(zip(issues["cell"], issues["kind"])) == [("E6", "formula_without_value"),
                                                          ("F7", "formula_without_value")]
    # the right value: the same workbooks with the formulas' results typed in
    typed = tmp_path / "typed"
    typed.mkdir()
    shutil.copy(case / "P1_excel.xlsx", typed / "P1_excel.xlsx")
    wb = openpyxl.load_workbook(case / "P2_excel.xlsx")
    wb["Assessment"]["E6"], wb["Assessment"]["F7"] = 4, 4      # =2+2 and =AVERAGE(3,5)
    wb.save(typed / "P2_excel.xlsx")
    for p in typed.glob("*.xlsx"):
        p.chmod(0o644)
    rc, _, err = _cli(capsys, "jury", typed, "--key", case / "key.csv", "--out", tmp_path / "typed_out",
                      "--no-figures", "--resamples", "0")
    assert rc == 0 and not err.strip(), err
    cols = ["participant", "dataset", "clip", "system", "dimension", "score", "cell"]
    a = pd.read_csv(tmp_path / "formula" / "ratings.csv")[cols]
    b = pd.read_csv(tmp_path / "typed_out" / "ratings.csv")[cols]
    assert len(b) == len(a) + 4                     # the two ratings and the two captions' overall scores
    typed_only = b.merge(a, how="left", indicator=True).query("_merge == 'left_only'")
    assert sorted(typed_only["cell"]) == ["E6", "E6:I6", "E7:I7", "F7"]
    assert set(typed_only.loc[typed_only["dimension"] != "overall", "score"]) == {4.0}
    assert len(a.merge(b, how="left", indicator=True).query("_merge == 'left_only'")) == 0


# ---------------------------------------------------------------------------------------- F2-14
def _train_args(labels, feats, out, epochs, cache):
    return ["train", "--model", "Baseline_CNN", "--data", "araus", "--labels", labels, "--features", feats,
            "--out", out, "--batch-size", "2", "--limit-train-batches", "1", "--limit-val-batches", "1",
            "--accelerator", "cpu", "--no-progress", "--max-epochs", epochs, "--cache-dir", cache]


def _best_state(run: Path):
    import torch

    record = json.loads((run / "train.json").read_text())
    ckpt = torch.load(record["best_checkpoint"], map_location="cpu", weights_only=False)
    return record, ckpt["state_dict"]


@pytest.fixture(scope="module")
def f2_14(field_cases_dir, tmp_path_factory):
    """The F2-14 label folder with random features, and an uninterrupted 2-epoch run (the right value)."""
    root = tmp_path_factory.mktemp("f2_14")
    labels = field_cases_dir / "F2-14" / "labels"
    feats = write_features(labels, root / "features")
    assert main([str(a) for a in _train_args(labels, feats, root / "whole", 2, root / "cache")]) == 0
    return labels, feats, root


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_f2_14_damaged_last_checkpoint_resumes(f2_14, tmp_path, capsys, damage):
    """last.ckpt cut short by a kill (4,000,000 bytes) or never written (0 bytes) while train.json is
    absent: one line names the checkpoint, training resumes from the newest whole checkpoint and ends
    where the uninterrupted run ends (same best score, metrics and weights); no traceback."""
    import torch

    labels, feats, root = f2_14
    run = tmp_path / "run"
    assert main([str(a) for a in _train_args(labels, feats, run, 1, root / "cache")]) == 0
    (run / "train.json").unlink()
    last = run / "checkpoints" / "last.ckpt"
    with open(last, "r+b") as fh:
        fh.truncate(min(4_000_000, last.stat().st_size // 2) if damage == "truncated" else 0)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RebuiltWarning)
        rc, _, err = _cli(capsys, *_train_args(labels, feats, run, 2, root / "cache"))
    assert rc == 0 and "Traceback" not in err
    named = [str(w.message) for w in caught if issubclass(w.category, RebuiltWarning)]
    assert len(named) == 1 and "last.ckpt: damaged" in named[0] and "resuming from best-000.ckpt" in named[0]
    assert (run / "checkpoints" / "last.ckpt.damaged").exists()
    got, got_state = _best_state(run)
    want, want_state = _best_state(root / "whole")
    assert got["epochs"] == want["epochs"] == 2 and got["best_score"] == want["best_score"]
    assert got["metrics"] == want["metrics"]
    assert got_state.keys() == want_state.keys()
    assert all(torch.equal(got_state[k], want_state[k]) for k in want_state)


def test_f2_14_damaged_best_checkpoint_of_a_finished_run(f2_14, tmp_path, capsys):
    """A finished run whose best checkpoint is damaged is trained again (same seed: same weights),
    with one line naming the file, instead of a zip-reader traceback."""
    import torch

    labels, feats, root = f2_14
    run = tmp_path / "run"
    shutil.copytree(root / "whole", run)
    record = json.loads((run / "train.json").read_text())
    record["best_checkpoint"] = str(run / "checkpoints" / Path(record["best_checkpoint"]).name)
    record["last_checkpoint"] = str(run / "checkpoints" / "last.ckpt")
    (run / "train.json").write_text(json.dumps(record))
    best = Path(record["best_checkpoint"])
    best.write_bytes(best.read_bytes()[:1000])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RebuiltWarning)
        rc, _, err = _cli(capsys, *_train_args(labels, feats, run, 2, root / "cache"))
    assert rc == 0 and "Traceback" not in err
    assert any(best.name in str(w.message) and "trained again" in str(w.message) for w in caught)
    got, got_state = _best_state(run)
    want, want_state = _best_state(root / "whole")
    assert got["best_score"] == want["best_score"]
    assert all(torch.equal(got_state[k], want_state[k]) for k in want_state)
