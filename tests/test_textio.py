"""Kind 1 of issue 12: every text file soundaq reads takes UTF-8 with or without a byte-order mark
and CRLF, LF or CR line ends (giving the same result as the plain file), or is rejected in one line
naming file:line and the fix. One table of readers, each run over every encoding."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from input_builders import ENCODINGS, latin1, reencode, write_key, write_label_folder, write_norm_stats, write_predictions

from soundaq.base.errors import UserError
from soundaq.base.textio import TextFileError, clean_cell, read_json, read_lines, read_text


def _labels(tmp: Path) -> Path:
    return write_label_folder(tmp / "labels", per_split=4)


def _read_labels(folder: Path):
    from soundaq.models_zoo.data.labels import read_labels

    return read_labels(folder, "all")


def _read_key(path: Path):
    from soundaq.human_study.questionnaire import read_key

    return read_key(path).entries


def _read_predictions(path: Path):
    from soundaq.models_zoo.metrics import read_predictions, score

    data = read_predictions(path)
    return data.clips, score(data)


def _read_table(path: Path):
    from soundaq.base.predictions_table import read

    return read(path)


def _load_norm_stats(path: Path):
    from soundaq.models_zoo.data.normalisation import load_norm_stats

    return load_norm_stats(path)[0]


def _read_norm_file(path: Path):
    from soundaq.models_zoo.checkpoints import read_norm_file

    return read_norm_file(path, "log_mel")


def _read_record(path: Path):
    from soundaq.base.artifacts import read_record

    record, problem = read_record(path)
    assert problem is None
    return record


#: reader name -> (make a plain UTF-8/LF input under tmp -> (path to re-encode, what to read),
#:                 read -> comparable result)
READERS = {
    "ARAUS label files": (lambda t: ((p := _labels(t)) / "test_set_audio_file_ids.txt", p), _read_labels),
    "ARAUS label files (events)": (lambda t: ((p := _labels(t)) / "training_set_audio_event_labels.txt", p),
                                   _read_labels),
    "ARAUS label files (ratings)": (lambda t: ((p := _labels(t)) / "validation_set_PAQ_8D_AQs.txt", p),
                                    _read_labels),
    "jury key": (lambda t: (p := write_key(t / "key.csv", [("P1", "D1", "4.flac", 1, "a"),
                                                            ("P1", "D1", "4.flac", 2, "b")]), p), _read_key),
    "predictions table (metrics)": (lambda t: (p := write_predictions(_labels(t), t / "p.csv"), p), _read_predictions),
    "predictions table (the one reader)": (lambda t: (p := write_predictions(_labels(t), t / "p.csv"), p), _read_table),
    "normalisation statistics": (lambda t: (p := write_norm_stats(t / "stats.json"), p), _load_norm_stats),
    "release statistics JSON": (lambda t: (p := write_norm_stats(t / "stats.json"), p), _read_norm_file),
    "run record (done.json)": (lambda t: (p := write_norm_stats(t / "done.json"), p), _read_record),
}


def _equal(a, b) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, tuple):
        for x, y in zip(a, b):
            _equal(x, y)
    elif isinstance(a, dict) and any(isinstance(v, float) and np.isnan(v) for v in a.values()):
        assert a.keys() == b.keys() and all(x == y or (np.isnan(x) and np.isnan(y)) for x, y in
                                            zip(a.values(), b.values()))
    else:
        assert a == b


@pytest.mark.parametrize("how", [h for h in ENCODINGS if h != "lf"])
@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_takes_bom_and_any_line_end(tmp_path, reader, how):
    make, read = READERS[reader]
    for sub in ("plain", "spoilt"):
        (tmp_path / sub).mkdir()
    _plain_file, plain_input = make(tmp_path / "plain")
    want = read(plain_input)
    spoilt_file, spoilt_input = make(tmp_path / "spoilt")
    reencode(spoilt_file, how)
    _equal(want, read(spoilt_input))


@pytest.mark.parametrize("reader", [r for r in READERS if r != "run record (done.json)"])
def test_every_reader_names_file_line_and_fix_for_latin1(tmp_path, reader):
    make, read = READERS[reader]
    path, target = make(tmp_path)
    latin1(path, line=2)
    with pytest.raises((UserError, ValueError)) as err:
        read(target)
    msg = str(err.value)
    assert f"{path}:2: not UTF-8 text" in msg and "fix:" in msg and len(msg.splitlines()) == 1


def test_read_text_normalises_and_rejects(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"\xef\xbb\xbfa\r\nb\rc\nd")
    assert read_text(p) == "a\nb\nc\nd" and read_lines(p) == ["a", "b", "c", "d"]
    p.write_bytes("a\nb\n".encode("utf-16"))
    with pytest.raises(TextFileError, match=r"t\.txt:1: UTF-16 text .*; fix: save it as UTF-8"):
        read_text(p)
    p.write_bytes("ab\ncd\n".encode("utf-16-le"))
    with pytest.raises(TextFileError, match="UTF-16 text without a byte-order mark"):
        read_text(p)
    p.write_bytes(b"ok\nstill ok\r\nbad \xff here\n")
    with pytest.raises(TextFileError, match=r"t\.txt:3: not UTF-8 text \(byte 0xff at column 5\)"):
        read_text(p)
    with pytest.raises(TextFileError, match="file not found"):
        read_text(tmp_path / "none.txt")
    with pytest.raises(TextFileError, match="is a folder"):
        read_text(tmp_path)
    p.write_text('{"a": 1,\n "b": }\n')
    with pytest.raises(TextFileError, match=r"t\.txt:2: not valid JSON"):
        read_json(p)


def test_binary_files_say_what_they_look_like(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.save(tmp_path / "book.csv")
    with pytest.raises(TextFileError, match=r"book\.csv: not a text file \(it looks like an \.xlsx workbook\)"):
        read_text(tmp_path / "book.csv")
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(TextFileError, match=r"it looks like a NumPy \.npy array"):
        read_text(tmp_path / "a.npy")


def test_clean_cell_drops_what_prints_as_nothing():
    assert clean_cell("\ufeff3.wav") == "3.wav"
    assert clean_cell(" Caption\u00a01\u200b ") == "Caption 1"
    assert clean_cell("two\r\nlines") == "two lines"


def test_label_ids_with_invisible_characters_are_the_same_clips(tmp_path):
    from soundaq.models_zoo.data.labels import read_labels

    folder = write_label_folder(tmp_path / "l", per_split=3)
    want = read_labels(folder, "test")
    ids = folder / "test_set_audio_file_ids.txt"
    lines = ids.read_text().splitlines()
    ids.write_text("\n".join(["\u200b" + lines[0], lines[1] + "\u00a0", "\ufeff" + lines[2]]) + "\n")
    pd.testing.assert_frame_equal(read_labels(folder, "test"), want)


def test_cli_one_line_for_a_latin1_label_file(tmp_path, capsys):
    from soundaq.benchmark.cli import main

    folder = write_label_folder(tmp_path / "l")
    latin1(folder / "validation_set_acoustic_scene_labels.txt", line=3)
    assert main(["data", "check", "--labels", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "validation_set_acoustic_scene_labels.txt:3: not UTF-8 text" in err[0]
    assert "fix:" in err[0]
