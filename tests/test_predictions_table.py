"""The predictions table has one owner (soundaq/base/predictions_table.py): scoring, captions and
correlate read a table through it and say the same thing about the same bad cell."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from input_builders import write_label_folder, write_predictions

from soundaq.base import predictions_table as pt
from soundaq.base.errors import UserError
from soundaq.base.vocab import TRUE_EVENT_COLUMNS
from soundaq.captions.tables import read_predictions_file
from soundaq.evaluation.correlation import predictions_source
from soundaq.models_zoo.metrics import read_predictions

#: Every command's way into a predictions file.
READERS = {"scoring": read_predictions, "correlate": predictions_source, "caption/compare": read_predictions_file}


@pytest.fixture
def table_path(tmp_path):
    return write_predictions(write_label_folder(tmp_path / "labels"), tmp_path / "p.csv")


def _spoil(path, column: str, row: int, value) -> str:
    frame = pd.read_csv(path)
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)
    return str(frame["clip"].iloc[row])


@pytest.mark.parametrize("value, problem", [("high", "'high' is not a finite number"), (np.nan, "is empty")])
def test_every_command_names_the_same_cell_the_same_way(table_path, value, problem):
    clip = _spoil(table_path, "calm", 2, value)
    want = f"{table_path}: row 3, line 4 (clip {clip!r}), column calm"
    for name, read in READERS.items():
        if name == "correlate" and not isinstance(value, str):     # correlate drops pairs with an empty cell
            assert predictions_source(table_path).details["rows"] == 4
            continue
        with pytest.raises(pt.PredictionTableError) as err:
            read(table_path)
        text = str(err.value)
        assert text.startswith(want) and problem in text and "fix:" in text and "\n" not in text, (name, text)
        assert isinstance(err.value, UserError) and err.value.exit_code == 2


def test_every_command_says_the_same_about_a_missing_file_a_folder_and_missing_columns(tmp_path, table_path):
    for target, said in ((tmp_path / "none.csv", "none.csv: file not found; fix:"),
                         (tmp_path / "labels", "labels: this looks like an ARAUS label folder")):
        messages = set()
        for read in READERS.values():
            with pytest.raises(pt.PredictionTableError) as err:
                read(target)
            messages.add(str(err.value))
        assert len(messages) == 1 and said in messages.pop()
    pd.read_csv(table_path).drop(columns=["calm"]).to_csv(table_path, index=False)
    for read in READERS.values():
        with pytest.raises(pt.PredictionTableError, match=r"missing column\(s\) calm; fix: write the table again"):
            read(table_path)


def test_write_then_read_is_bit_identical_and_recordings_read_as_clips(tmp_path, table_path):
    frame = pt.read(table_path)
    again = pt.read(pt.write(frame, tmp_path / "again.csv"))
    pd.testing.assert_frame_equal(frame, again, check_exact=True)
    short = pt.read(pt.write(frame, tmp_path / "short.csv", float_format=pt.LEADERBOARD_FLOATS))
    assert np.array_equal(short["calm"], frame["calm"].map(lambda v: float(f"{v:.6g}")))
    # soundaq predict --out DIR names its rows by recording (timeseries.csv, recordings.csv)
    rows = pt.rows(frame.rename(columns={"clip": "recording"}), "recordings.csv")
    assert rows.clips == frame["clip"].astype(str).tolist() and rows.windows == [pt.WHOLE] * len(frame)


def test_an_all_empty_label_group_is_unlabelled(table_path):
    frame = pt.read(table_path)
    frame[list(TRUE_EVENT_COLUMNS)] = np.nan
    arrays = pt.score_arrays(frame, "t")
    assert "event_true" not in arrays and "scene_true" in arrays and "quality_true" in arrays
    assert pt.group_empty(frame, TRUE_EVENT_COLUMNS) and not pt.group_empty(frame, ("true_scene",))
    frame.loc[0, list(TRUE_EVENT_COLUMNS)] = 0.0     # one clip labelled: so is the group, its empty cells are errors
    with pytest.raises(pt.PredictionTableError, match=r"row 2 \(clip .*\), column true_event_silence is empty"):
        pt.score_arrays(frame, "t")
