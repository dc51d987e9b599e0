import shutil

import numpy as np
import pytest

from soundaq.base.vocab import EVENT_COLUMNS, EVENTS, QUALITIES, SOUNDSCAPY_PAQ, from_soundscapy, iso_from_matrix, to_soundscapy
from soundaq.benchmark.cli import main
from soundaq.models_zoo.data.labels import PAPER_SPLIT_SIZES, LabelError, read_split


def test_reads_all_splits_with_paper_sizes(araus_labels):
    sizes = araus_labels.groupby("split").size().to_dict()
    assert sizes == PAPER_SPLIT_SIZES
    assert list(araus_labels.columns) == ["clip", "split", "scene", *EVENT_COLUMNS, *QUALITIES, "isop", "isoe"]


def test_sample_clip_row(araus_labels):
    row = araus_labels.set_index("clip").loc["fold_1_participant_00056_stimulus_13"]
    assert row["scene"] == "park"
    present = {e for e, c in zip(EVENTS, EVENT_COLUMNS) if row[c] == 1}
    assert present == {"Human sounds", "Bird", "Speech", "Animal"}
    assert [row[q] for q in QUALITIES] == [4, 3, 2, 4, 3, 4, 2, 3]


def test_comma_event_is_one_label(araus_labels):
    col = EVENT_COLUMNS[EVENTS.index("Outside, rural or natural")]
    assert araus_labels[col].sum() > 0


def test_iso_reproduces_files_to_1e9(araus_labels):
    iso = iso_from_matrix(araus_labels[list(QUALITIES)].to_numpy())
    assert np.abs(iso - araus_labels[["isop", "isoe"]].to_numpy()).max() < 1e-9


def test_soundscapy_mapping_both_ways(araus_labels):
    ssid = pytest.importorskip("soundscapy.surveys.processing")
    sample = araus_labels.sample(500, random_state=0).reset_index(drop=True)
    paq = to_soundscapy(sample[list(QUALITIES)])
    assert list(paq.columns) == [f"PAQ{i}" for i in (1, 3, 4, 2, 7, 8, 5, 6)]
    assert from_soundscapy(paq).columns.tolist() == list(QUALITIES)
    out = ssid.add_iso_coords(paq[[f"PAQ{i}" for i in range(1, 9)]].copy())
    ours = iso_from_matrix(sample[list(QUALITIES)].to_numpy())
    assert np.allclose(out["ISOPleasant"], ours[:, 0], atol=1e-12)
    assert np.allclose(out["ISOEventful"], ours[:, 1], atol=1e-12)
    # and the mapping the other way: soundscapy names straight back to ours
    assert SOUNDSCAPY_PAQ["PAQ2"] == "vibrant" and SOUNDSCAPY_PAQ["PAQ8"] == "calm"


def _copy(src, dst):
    shutil.copytree(src, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


def _small_labels(tmp_path, araus_labels_dir):
    """A writable copy of the validation split only (fast to corrupt and re-read)."""
    dst = tmp_path / "labels"
    dst.mkdir()
    for p in araus_labels_dir.glob("validation_set_*.txt"):
        shutil.copy(p, dst / p.name)
        (dst / p.name).chmod(0o644)
    return dst


def _edit(path, lineno, new):
    lines = path.read_text().splitlines()
    lines[lineno - 1] = new
    path.write_text("\r\n".join(lines) + "\r\n")


@pytest.mark.parametrize("file,line,content,needle", [
    ("validation_set_acoustic_scene_labels.txt", 7, "beach", "unknown scene 'beach'"),
    ("validation_set_audio_event_labels.txt", 3, "Bird\tDragon", "unknown event 'Dragon'"),
    ("validation_set_PAQ_8D_AQs.txt", 5, "1 2 3 4 5 6 1 1", "outside 1-5"),
    ("validation_set_PAQ_8D_AQs.txt", 9, "1 2 three 4 5 1 1 1", "'three' is not a number"),
])
def test_malformed_file_names_file_and_line(tmp_path, araus_labels_dir, file, line, content, needle):
    folder = _small_labels(tmp_path, araus_labels_dir)
    _edit(folder / file, line, content)
    with pytest.raises(LabelError) as exc:
        read_split(folder, "validation")
    msg = str(exc.value)
    assert f"{file}:{line}" in msg and needle in msg and "fix:" in msg


def test_line_count_mismatch_empty_and_missing(tmp_path, araus_labels_dir):
    folder = _small_labels(tmp_path, araus_labels_dir)
    scene = folder / "validation_set_acoustic_scene_labels.txt"
    scene.write_text("\n".join(scene.read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(LabelError, match="has 2517 lines but"):
        read_split(folder, "validation")
    scene.write_text("")
    with pytest.raises(LabelError, match="file is empty"):
        read_split(folder, "validation")
    scene.unlink()
    with pytest.raises(LabelError, match="file is missing"):
        read_split(folder, "validation")


def test_cli_check_ok_and_malformed(tmp_path, araus_labels_dir, capsys):
    assert main(["data", "check", "--labels", str(araus_labels_dir), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"clips": 25248' in out
    folder = _small_labels(tmp_path, araus_labels_dir)
    _edit(folder / "validation_set_acoustic_scene_labels.txt", 2, "mall")
    assert main(["data", "check", "--labels", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "validation_set_acoustic_scene_labels.txt:2" in err[0]
    assert "Traceback" not in err[0]
