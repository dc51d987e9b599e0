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
    # the seen part holds one scene only: its scene accuracy is capped, and the report says so
    assert "the seen ARAUS fold part holds clips of 1 of the 3 scenes" in text and "cannot exceed 0.333" in text
    no_folds = _Stub(pd.DataFrame({"clip": ["a"]}), pd.DataFrame({"clip": ["b"]}))
    assert not folds.add_fold_scores([{"model": "Net", "status": "ok"}], no_folds, tmp_path / "predictions")


def _fold_folder(tmp_path, folds_of_split):
    """An ARAUS-layout label folder whose clip ids carry folds, with random features for every clip."""
    from input_builders import write_features, write_label_folder

    labels = write_label_folder(tmp_path / "labels", per_split=max(len(f) for f in folds_of_split.values()))
    for split, folds_here in folds_of_split.items():
        ids_file = labels / f"{split}_set_audio_file_ids.txt"
        n = len(ids_file.read_text().splitlines())
        ids = [f"fold_{folds_here[i % len(folds_here)]}_participant_{split}_stimulus_{i}" for i in range(n)]
        ids_file.write_text("\n".join(ids) + "\n")
    return labels, write_features(labels, tmp_path / "features")


def _fake(calls):
    def runner(s, run, model, datamodule, data_label):
        from soundaq.base.fileio import sha256_file
        from soundaq.models_zoo.metrics import score_table
        from soundaq.models_zoo.predict import add_truth, predictions_frame

        calls.append((s.rotation, model, sorted(set(datamodule.labels("test")["clip"].str[:6]))))
        labels = datamodule.labels("test")
        n = len(labels)
        rng = np.random.default_rng([len(model), s.rotation or 0])
        outputs = {"scene_probabilities": rng.dirichlet(np.ones(3), n), "event_probabilities": rng.random((n, 15)),
                   "qualities": rng.uniform(1, 5, (n, 8)), "isop": rng.uniform(-1, 1, n),
                   "isoe": rng.uniform(-1, 1, n)}
        table = add_truth(predictions_frame(outputs, model, labels["clip"].astype(str).tolist()), labels)
        path = run.root / "predictions" / f"{model}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        return {"model": model, "status": "ok", "params": 1, "scores": score_table(table), "ci": {}, "test_clips": n,
                "predictions": f"predictions/{model}.csv", "predictions_sha256": sha256_file(path)}

    return runner


def test_araus_protocol_runs_five_rotations_tested_on_fold_0(tmp_path):
    from soundaq.benchmark import leaderboard as lb

    labels, features = _fold_folder(tmp_path, {"training": [1, 2, 3, 4, 5, 1, 2, 3, 4, 5], "validation": [1],
                                               "test": [0, 0, 0, 1, 2, 3]})
    calls: list = []
    s = lb.Settings(out=tmp_path / "run", data="araus", labels=labels, features=features,
                    models=["AD_CNN", "YAMNet"], n_resamples=20, progress=False, correlate=False, protocol="araus",
                    cache_dir=tmp_path / "cache")
    out = lb.run_leaderboard(s, model_runner=_fake(calls))
    assert [c[0] for c in calls] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert all(c[2] == ["fold_0"] for c in calls)                 # every rotation tests on fold 0 only
    table = pd.read_csv(tmp_path / "run" / "leaderboard.csv")
    per = table[table["kind"] == "rotation"]
    assert sorted(set(per["rotation"])) == [1, 2, 3, 4, 5] and len(per) == 5 * 3
    sd = table[table["kind"] == "sd"].set_index("model")
    assert sd.loc["AD_CNN", "aq_mse_mean"] > 0 and "rotations 1-5" in out.title
    md = (tmp_path / "run" / "leaderboard.md").read_text()
    assert "Per rotation" in md and "rotation 5" in md
    rot = pd.read_csv(tmp_path / "run" / "rotation_2" / "leaderboard.csv")
    assert (rot["test_clips"].dropna() == 6).all()   # the 6 fold-0 clips (test folds 0,0,0,1,2,3 over 10 ids)
    assert all((tmp_path / "run" / f"rotation_{r}" / "models" / "YAMNet" / "done.json").is_file()
               for r in range(1, 6))                              # each rotation is a resumable run folder


def test_araus_protocol_is_refused_without_folds_or_with_a_missing_fold(tmp_path):
    import pytest

    from soundaq.base.errors import UserError
    from soundaq.benchmark import leaderboard as lb

    s = lb.Settings(out=tmp_path / "e", models=["AD_CNN"], protocol="araus", progress=False)
    with pytest.raises(UserError, match="embedded set's clips carry no ARAUS fold") as err:
        lb.run_leaderboard(s, model_runner=_fake([]))
    assert "fix:" in str(err.value) and not (tmp_path / "e").exists()
    labels, features = _fold_folder(tmp_path, {"training": [1, 2, 3, 4], "validation": [1], "test": [0]})
    s = lb.Settings(out=tmp_path / "a", data="araus", labels=labels, features=features, models=["AD_CNN"],
                    protocol="araus", progress=False, cache_dir=tmp_path / "cache")
    with pytest.raises(UserError, match=r"no clip of fold\(s\) 5") as err:
        lb.run_leaderboard(s, model_runner=_fake([]))
    assert "\n" not in str(err.value) and not (tmp_path / "a").exists()


def test_own_data_reads_a_fold_column_and_names_a_bad_fold(tmp_path):
    import pytest

    from soundaq.models_zoo.data.sources.own import LabelsCSVError, read_labels_csv

    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(b"")          # only the names are resolved here
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("clip,scene,Fold\na.wav,park,0\nb.wav,street_traffic,3\n")
    table, _, _ = read_labels_csv(csv_path, tmp_path)
    assert table["fold"].tolist() == [0, 3] and clip_folds(table).tolist() == [0, 3]
    csv_path.write_text("clip,scene,fold\na.wav,park,zero\n")
    with pytest.raises(LabelsCSVError, match=r"labels.csv:2: fold 'zero' is not a fold number"):
        read_labels_csv(csv_path, tmp_path)


def test_leaderboard_rows_get_seen_and_unseen_recording_and_masker_scores(tmp_path):
    """Clips that name their components (ARAUS read from its components) are scored by base recording and
    by masker too: a test clip is seen when some training clip was mixed from the same one."""
    from soundaq.base import vocab

    train = pd.DataFrame({"clip": ["t0", "t1"], "soundscape": ["R1", "R2"], "masker": ["bird_1", "bird_2"]})
    test = pd.DataFrame({"clip": [f"c{i}" for i in range(5)],
                         "soundscape": ["R1", "R3", "R3", "R2", "R4"],       # seen: c0, c3
                         "masker": ["bird_9", "bird_1", "bird_9", "bird_9", "bird_9"]})   # seen: c1
    table = pd.DataFrame({"clip": test["clip"]})
    for j, c in enumerate(vocab.SCENE_PROB_COLUMNS):
        table[c] = [1.0 if j == 0 else 0.0] * 5
    table["true_scene"] = [vocab.SCENES[0], vocab.SCENES[1], vocab.SCENES[1], vocab.SCENES[0], vocab.SCENES[1]]
    for c, t in zip(vocab.EVENT_PROB_COLUMNS, vocab.TRUE_EVENT_COLUMNS):
        table[c], table[t] = np.linspace(0, 1, 5), np.arange(5) % 2
    for q in vocab.QUALITIES:
        table[q], table[f"true_{q}"] = 3.0, [3.0, 4.0, 4.0, 3.0, 4.0]   # exact on the seen-recording clips
    for name in ("isop", "isoe"):
        table[name], table[f"true_{name}"] = 0.0, 0.0
    (tmp_path / "predictions").mkdir()
    table.to_csv(tmp_path / "predictions" / "Net.csv", index=False)
    rows = [{"model": "Net", "status": "ok"}]
    added = folds.add_fold_scores(rows, _Stub(train, test), tmp_path / "predictions")
    assert added[:2] == ["seen_recording_clips", "unseen_recording_clips"] and "seen_folds_clips" not in added
    assert "aq_mse_mean_unseen_masker" in added
    net = rows[0]
    assert (net["seen_recording_clips"], net["unseen_recording_clips"]) == (2, 3)
    assert (net["seen_masker_clips"], net["unseen_masker_clips"]) == (1, 4)
    assert net["aq_mse_mean_seen_recording"] == 0.0 and net["aq_mse_mean_unseen_recording"] == 1.0
    assert net["aq_mse_mean_seen_masker"] == 1.0 and net["aq_mse_mean_unseen_masker"] == 0.5
    text = "\n".join(folds.markdown(rows))
    assert "2 of 5 test clips are mixed from a base recording" in text and "1 of 5 test clips" in text
    assert "| Net |" in text and "seen folds" not in text


def test_a_breakdown_that_splits_the_clips_as_the_folds_do_is_one_line():
    """On ARAUS's own folds (disjoint in recordings and maskers) the three breakdowns are the same split."""
    row = {"model": "Net", "status": "ok"}
    for name in ("folds", "recording", "masker"):
        row.update({f"seen_{name}_clips": 4, f"unseen_{name}_clips": 2, f"scene_acc_seen_{name}": 0.5,
                    f"scene_acc_unseen_{name}": 0.25, f"event_auc_seen_{name}": 0.7, f"event_auc_unseen_{name}": 0.6,
                    f"aq_mse_mean_seen_{name}": 1.0, f"aq_mse_mean_unseen_{name}": 1.5})
    row["aq_mse_mean_unseen_masker"] = 1.25      # the masker split scores differently: its own table
    text = "\n".join(folds.markdown([row]))
    assert "By base recording: the same 4 / 2 test clips as by ARAUS fold, so the same scores as above." in text
    assert text.count("| Net |") == 2 and "1.250" in text
