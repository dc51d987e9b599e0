"""Kind 5 of issue 12: what a file is, told from its content (soundaq.base.filekinds and the layers'
refinements), so a file in the role of another is named with the option that takes it."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from input_builders import noise_wav, write_features, write_key, write_label_folder, write_norm_stats, write_predictions

from soundaq.base.filekinds import WrongKind, expect, sniff, wrong_kind


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import openpyxl
    import torch

    r = tmp_path_factory.mktemp("kinds")
    labels = write_label_folder(r / "labels", per_split=2)
    out = {"label-folder": labels, "label-file": labels / "test_set_PAQ_8D_AQs.txt",
           "feature-folder": write_features(labels, r / "features"),
           "predictions-table": write_predictions(labels, r / "renamed.txt"),
           "jury-key": write_key(r / "k.csv", [("P1", "D1", "1.wav", 1, "a")]),
           "norm-stats": write_norm_stats(r / "stats.json"), "audio": noise_wav(r / "a.wav", seconds=0.1).rename(r / "a.dat"),
           "missing": r / "none", "empty": r / "empty.bin", "text": r / "notes.txt", "npz": r / "f.bin",
           "torch": r / "w.bin", "pickle": r / "p.bin", "xlsx": r / "book.bin", "npy": r / "a.npy",
           "zip": r / "cut.npz", "folder": r / "empty_folder"}
    out["empty"].write_bytes(b"")
    out["text"].write_text("hello\n")
    with open(out["npz"], "wb") as fh:
        np.savez(fh, mel=np.zeros(3))
    torch.save({"a": torch.zeros(2)}, out["torch"])
    out["pickle"].write_bytes(pickle.dumps({"mean": np.zeros(2)}))
    openpyxl.Workbook().save(out["xlsx"])
    np.save(out["npy"], np.zeros(3))
    out["zip"].write_bytes(out["npz"].read_bytes()[:40])
    out["folder"].mkdir()
    (r / "audio").mkdir()
    for i in range(3):
        noise_wav(r / "audio" / f"{i}.wav", seconds=0.1)
    out["audio-folder"] = r / "audio"
    return out


def test_sniff_tells_kinds_by_content_not_suffix(files):
    assert {kind: sniff(path) for kind, path in files.items()} == {kind: kind for kind in files}


def test_expect_lets_unsure_kinds_through_and_names_the_others(files):
    assert expect(files["text"], ("predictions-table",), "a table") == "text"
    with pytest.raises(WrongKind) as err:
        expect(files["torch"], ("predictions-table",), "a predictions table")
    assert str(err.value) == (f"{files['torch']}: this looks like a PyTorch file (torch.save), not a predictions "
                              "table; fix: checkpoints go to --checkpoint; release weights to "
                              "`soundaq import-original --weights`")
    assert "fix: save it as CSV" in str(wrong_kind(files["xlsx"], "xlsx", "a table", fix="save it as CSV"))


def test_layers_refine_workbooks_and_torch_files(tmp_path):
    import torch

    from soundaq.human_study.workbooks import workbook_kind
    from soundaq.models_zoo.checkpoints import torch_object_kind

    assert torch_object_kind({"w": torch.zeros(1)}) == "release-state-dict"
    assert torch_object_kind({"model": {"w": torch.zeros(1)}}) == "release-state-dict"
    assert torch_object_kind({"state_dict": {"net.w": torch.zeros(1)}, "soundaq": {}}) == "soundaq-checkpoint"
    assert torch_object_kind({"state_dict": {"w": torch.zeros(1)}, "pytorch-lightning_version": "2"}) == \
        "lightning-checkpoint"
    from input_builders import write_jury

    books, key = write_jury(tmp_path / "jury", participants=1, clips=2)
    assert workbook_kind(books[0]) == "questionnaire" and workbook_kind(key) == "jury-key"


def test_every_kind_is_declared_in_the_bottom_layer_whatever_was_imported():
    """A fresh process that imports only soundaq.base.filekinds knows the refined kinds the upper layers
    return (checkpoints, workbooks): what a message says does not depend on what was imported."""
    import subprocess
    import sys

    code = ("import sys; from soundaq.base import filekinds as f; "
            "print(sorted(k for k in ('soundaq-checkpoint', 'release-state-dict', 'questionnaire', 'jury-results') "
            "if k in f.KINDS)); print('soundaq.models_zoo.checkpoints' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "['jury-results', 'questionnaire', 'release-state-dict', 'soundaq-checkpoint']"
    assert out[1] == "False"
