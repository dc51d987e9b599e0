"""ARAUS folds: `soundaq data check` shows the folds of each split, leaderboards split test scores by fold."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from soundaq.benchmark.leaderboard import folds
from soundaq.models_zoo.data.labels import clip_folds, fold_breakdown


def test_the_papers_split_tests_mostly_on_folds_that_feed_training(araus_labels):
    found = fold_breakdown(araus_labels)
    assert found["training_folds"] == [1, 2, 3, 4, 5]
    test = found["splits"]["test"]
    assert test["clips"] == 3576 and test["in_training_folds"] == 3528 and test["unseen_folds"] == 48
    assert test["folds"] == {0: 48, 1: 1764, 2: 462, 3: 336, 4: 588, 5: 378}
    assert found["splits"]["validation"]["folds"] == {1: 2520} and found["splits"]["training"]["clips"] == 19152


def test_data_check_prints_the_fold_breakdown(araus_labels_dir, capsys):
    from soundaq.benchmark.cli import main

    assert main(["data", "check", "--labels", str(araus_labels_dir)]) == 0
    out = capsys.readouterr().out
    assert "3,528 of 3,576" in out and "48 from unseen folds" in out and "fold 0" in out
    assert main(["data", "check", "--labels", str(araus_labels_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["folds"]["splits"]["test"]["in_training_folds"] == 3528


def test_folds_come_from_a_fold_column_or_the_clip_id_or_are_absent():
    ids = pd.DataFrame({"clip": ["fold_2_participant_1_stimulus_3", "FOLD_0_participant_9_stimulus_1"]})
    assert list(clip_folds(ids)) == [2, 0]
    own = pd.DataFrame({"clip": ["a", "b"], "fold": [3, None]})
    assert clip_folds(own).tolist()[0] == 3 and pd.isna(clip_folds(own).tolist()[1])
    assert clip_folds(pd.DataFrame({"clip": ["park_01", "street_02"]})) is None


class _Stub:
    """The two label tables a fold breakdown reads from a data module."""

    def __init__(self, train, test):
        self.tables = {"training": train, "test": test}

    def labels(self, split):
        return self.tables[split]


def test_leaderboard_rows_get_seen_and_unseen_fold_scores(tmp_path):
    from soundaq.base import vocab

    train = pd.DataFrame({"clip": [f"fold_{k}_participant_1_stimulus_{i}" for k in (1, 2) for i in range(3)]})
    test_ids = [f"fold_{k}_participant_2_stimulus_{i}" for k in (0, 0, 1, 1, 2, 2) for i in (0,)]
    test_ids = [f"{c}{j}" for j, c in enumerate(test_ids)]
    n = len(test_ids)
    table = pd.DataFrame({"clip": test_ids})
    for j, c in enumerate(vocab.SCENE_PROB_COLUMNS):
        table[c] = [1.0 if j == 0 else 0.0] * n
    table["true_scene"] = [vocab.SCENES[0]] * 2 + [vocab.SCENES[1]] * 4    # right on fold 0, wrong on 1-2
    for c, t in zip(vocab.EVENT_PROB_COLUMNS, vocab.TRUE_EVENT_COLUMNS):
        table[c], table[t] = np.linspace(0, 1, n), np.arange(n) % 2
    for q in vocab.QUALITIES:
        table[q], table[f"true_{q}"] = 3.0, 3.0
    for name in ("isop", "isoe"):
        table[name], table[f"true_{name}"] = 0.0, 0.0
    (tmp_path / "predictions").mkdir()
    table.to_csv(tmp_path / "predictions" / "Net.csv", index=False)
    rows = [{"model": "Net", "status": "ok"}, {"model": "Broken", "status": "failed"}]
    assert folds.add_fold_scores(rows, _Stub(train, table[["clip"]]), tmp_path / "predictions")
    net = rows[0]
    assert (net["seen_folds_clips"], net["unseen_folds_clips"]) == (4, 2)
    assert net["scene_acc_unseen_folds"] > 0.3 and net["scene_acc_seen_folds"] == 0.0   # (paper def.: macro over scenes)
    assert net["aq_mse_mean_seen_folds"] == 0.0 and "scene_acc_seen_folds" not in rows[1]
    text = "\n".join(folds.markdown(rows))
    assert "4 of 6 test clips" in text and "generalisation" in text and "| Net | 0.000 |" in text
    no_folds = _Stub(pd.DataFrame({"clip": ["a"]}), pd.DataFrame({"clip": ["b"]}))
    assert not folds.add_fold_scores([{"model": "Net", "status": "ok"}], no_folds, tmp_path / "predictions")
