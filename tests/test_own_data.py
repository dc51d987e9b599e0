"""Your own data: a folder of audio plus one CSV of labels with whatever label groups it has, through the
data module, the loss, the metrics, the CLI (train, predict, leaderboard) and the reports; a toy source
through the entry-point plug-in path."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from soundaq.base.vocab import EVENT_COLUMNS, EVENTS, QUALITIES, SCENES, TRUE_EVENT_COLUMNS, iso_coordinates
from soundaq.benchmark.cli import main
from soundaq.models_zoo.data.datamodule import DataError, SoundscapeDataModule
from soundaq.models_zoo.data.sources import make_source, source_names
from soundaq.models_zoo.data.sources.own import LabelsCSVError, OwnSource, hash_split
from soundaq.models_zoo.outputs import LABELLED_KEY

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "plugins"
SPLITS = ["training"] * 6 + ["validation"] * 3 + ["test"] * 3
EVENT_SETS = ["Bird;Wind", "Traffic;Vehicle", "Speech;Human sounds", "Bird", "Traffic", "Music", "Water", "Noise",
              "Speech", "Bird;Animal", "Vehicle", ""]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """Twelve short WAVs (2 s, 16 kHz; features computed once into the module's cache) and their labels."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("own")
    (root / "clips").mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    for i in range(12):
        x = 0.05 * rng.normal(size=t.size) + (0.1 * np.sin(2 * np.pi * (300 + 100 * i) * t) if i % 2 else 0.0)
        sf.write(root / "clips" / f"clip{i:02d}.wav", x.astype(np.float32), 16000)
    ratings = rng.integers(1, 6, size=(12, 8)).astype(float)
    ratings[0, 0] = 4.5                                       # a mean over listeners is fine
    labels = pd.DataFrame({"clip": [f"clip{i:02d}" + (".wav" if i % 3 == 0 else "") for i in range(12)],
                           "split": SPLITS, "scene": [SCENES[i % 3] for i in range(12)], "events": EVENT_SETS})
    labels[list(QUALITIES)] = ratings
    labels["participant"] = "p1"                              # not a label: ignored with a warning
    return {"root": root, "clips": root / "clips", "cache": root / "cache", "labels": labels}


def _write(own, name: str, frame: pd.DataFrame, **kwargs) -> Path:
    path = own["root"] / name
    frame.to_csv(path, index=False, **kwargs)
    return path


def _full(own) -> Path:
    return _write(own, "full.csv", own["labels"])


def _qualities_only(own) -> Path:
    return _write(own, "qualities.csv", own["labels"][["clip", "split", *QUALITIES]])


def _scene_events(own) -> Path:
    """Scenes and the events as the 15 event columns by name (the other events form)."""
    frame = own["labels"][["clip", "split", "scene"]].copy()
    for event in EVENTS:
        frame[event] = [int(event in cell.split(";")) for cell in own["labels"]["events"]]
    return _write(own, "scene_events.csv", frame)


def _dm(own, csv: Path, **kwargs) -> SoundscapeDataModule:
    return SoundscapeDataModule("own", labels_dir=csv, audio_dir=own["clips"], cache_dir=own["cache"],
                                batch_size=12, **kwargs)


def test_all_groups_are_read_and_served(own):
    with pytest.warns(UserWarning, match="participant are not labels"):
        dm = _dm(own, _full(own))
        assert dm.tasks == ("scene", "events", "qualities")
    table = pd.concat([dm.labels(s) for s in ("training", "validation", "test")], ignore_index=True)
    expected = own["labels"]
    assert table["clip"].tolist() == [f"clip{i:02d}" for i in range(12)]          # stems, suffix or not
    assert table["split"].tolist() == SPLITS and table["scene"].tolist() == expected["scene"].tolist()
    assert table.loc[0, "event_bird"] == 1 and table.loc[0, "event_wind"] == 1 and table.loc[11, list(EVENT_COLUMNS)].sum() == 0
    assert np.allclose(table[list(QUALITIES)].to_numpy(), expected[list(QUALITIES)].to_numpy())
    isop, isoe = iso_coordinates(*expected[list(QUALITIES)].to_numpy().T)
    assert np.allclose(table["isop"], isop) and np.allclose(table["isoe"], isoe)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert LABELLED_KEY not in batch and batch["mel"].shape == (3, 3001, 64)   # full labels: the old contract
    info = dm.describe()
    assert info["data"] == "own data (full.csv, 12 clips)" and info["unlabelled"] == [] and not info["synthetic"]
    assert info["own"]["ignored_columns"] == ["participant"] and info["own"]["split_from"] == "column"


@pytest.mark.parametrize("make, tasks", [(_qualities_only, ("qualities",)), (_scene_events, ("scene", "events"))])
def test_partial_labels_carry_a_mask_and_empty_truth(own, make, tasks):
    from soundaq.models_zoo.predict import truth_frame

    dm = _dm(own, make(own), norm_stats={"log_mel": {"mean": [0.0] * 64, "std": [1.0] * 64},
                                         "loudness": {"mean": [0.0], "std": [1.0]}})
    assert dm.tasks == tasks
    batch = next(iter(dm.test_dataloader()))
    assert batch[LABELLED_KEY].shape == (3, 3) and batch[LABELLED_KEY].dtype == torch.bool
    assert batch[LABELLED_KEY][0].tolist() == [g in tasks for g in ("scene", "events", "qualities")]
    truth = truth_frame(dm.labels("test"))
    assert truth["true_scene"].isna().all() == ("scene" not in tasks)
    assert truth[list(TRUE_EVENT_COLUMNS)].isna().all().all() == ("events" not in tasks)
    assert truth["true_isop"].isna().all() == ("qualities" not in tasks)
    if "events" in tasks:    # the event-column form equals the events-column form
        full = OwnSource(_full(own), own["clips"]).labels("test")
        assert (dm.labels("test")[list(EVENT_COLUMNS)].to_numpy() == full[list(EVENT_COLUMNS)].to_numpy()).all()


def test_without_a_split_column_the_split_is_a_hash_of_the_clip_id(own):
    path = _write(own, "nosplit.csv", own["labels"][["clip", "scene"]])
    source = OwnSource(path, own["clips"])
    table = pd.concat([source.labels(s) for s in source.splits()])
    for clip, split in zip(table["clip"], table["split"]):
        u = int(hashlib.sha256(clip.encode()).hexdigest()[:8], 16) / 2 ** 32
        assert split == ("training" if u < 0.70 else "validation" if u < 0.85 else "test") == hash_split(clip)
    assert hash_split("clip00") == hash_split("clip00") and source.describe()["own"]["split_from"] == "hash of the clip id"


def test_bom_crlf_semicolons_and_case_read_the_same(own):
    frame = own["labels"][["clip", "split", "scene", *QUALITIES]].rename(columns=str.upper)
    frame["SCENE"] = frame["SCENE"].str.replace("_", " ")
    text = frame.to_csv(index=False, sep=";").replace("\n", "\r\n")
    path = own["root"] / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    a = OwnSource(path, own["clips"]).labels("training")
    b = OwnSource(_write(own, "plain.csv", own["labels"][["clip", "split", "scene", *QUALITIES]]),
                  own["clips"]).labels("training")
    pd.testing.assert_frame_equal(a, b)


def _bad(own, name, edit):
    frame = own["labels"][["clip", "split", "scene", *QUALITIES]].copy()
    return _write(own, name, edit(frame))


BAD = {
    "no clip column": (lambda f: f.rename(columns={"clip": "file"}), None, ["no 'clip' column", "name the column"]),
    "unknown scene": (lambda f: f.assign(scene=["beach", *f["scene"].tolist()[1:]]), 2,
                      ["unknown scene 'beach'", "public_square"]),
    "rating 7": (lambda f: f.assign(calm=[3, 7, *f["calm"].tolist()[2:]]), 3,
                 ["rating 7", "of calm is outside 1-5", "between 1 and 5"]),
    "clip listed twice": (lambda f: pd.concat([f, f.iloc[[4]]]), 14, ["'clip04' is listed twice (first on line 6)",
                                                                      "one row per clip"]),
    "file missing": (lambda f: f.assign(clip=[*f["clip"].tolist()[:5], "clip99", *f["clip"].tolist()[6:]]), 7,
                     ["clip 'clip99': no such audio file", "add the file"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_labels_are_one_line_naming_file_line_and_fix(own, case, tmp_path, capsys):
    edit, line, needles = BAD[case]
    path = _bad(own, f"bad_{case.replace(' ', '_')}.csv", edit)
    code = main(["train", "--model", "AD_CNN", "--data", "own", "--labels", str(path), "--audio", str(own["clips"]),
                 "--cache-dir", str(own["cache"]), "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    where = f"{path}:{line}:" if line else f"{path}:1:"
    assert where in err and "fix:" in err and all(n in err for n in needles), err


def test_an_unquoted_delimiter_in_an_events_cell_is_named(own, tmp_path, capsys):
    """A ';'-separated file whose events cell ``Bird;Speech`` is not quoted: the row has one field too many.
    The message said "pleasant is 'Speech', not a number" (a new-user trial)."""
    clips = own["labels"]["clip"].tolist()[:3]
    lines = ["clip;scene;events;" + ";".join(QUALITIES)]
    lines += [f"{c};park;Bird;{';'.join(['3'] * len(QUALITIES))}" for c in clips[:2]]
    lines.append(f"{clips[2]};park;Bird;Speech;{';'.join(['3'] * len(QUALITIES))}")
    path = own["root"] / "semicolons.csv"
    path.write_text("\n".join(lines) + "\n")
    code = main(["data", "prepare", "--data", "own", "--labels", str(path), "--audio", str(own["clips"]),
                 "--cache-dir", str(own["cache"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"{path}:4: 12 fields but the header has 11" in err and 'quote such cells ("Bird;Speech")' in err
    quoted = path.read_text().replace("Bird;Speech", '"Bird;Speech"')
    path.write_text(quoted)
    assert OwnSource(path, own["clips"]).labels("training") is not None


def test_decimal_commas_are_read_and_words_are_refused_with_the_right_fix(own):
    """A ';'-separated export from a spreadsheet with decimal commas ("3,5") was refused with "fix: ratings
    lie between 1 and 5" (second new-user trial)."""
    frame = own["labels"][["clip", "split", "scene", *QUALITIES]].copy()
    frame["calm"] = frame["calm"].astype(float) + 0.5
    frame.loc[frame["calm"] > 5, "calm"] = 4.5
    text = frame.to_csv(index=False, sep=";", decimal=",")
    assert ";4,5;" in text or ";3,5;" in text
    path = own["root"] / "decimal_commas.csv"
    path.write_text(text)
    dots = _write(own, "decimal_dots.csv", frame)
    pd.testing.assert_frame_equal(OwnSource(path, own["clips"]).labels("training"),
                                  OwnSource(dots, own["clips"]).labels("training"))
    path.write_text(text.replace(";4,5;", ";high;", 1).replace(";3,5;", ";high;", 1))
    with pytest.raises(LabelsCSVError, match=r"is 'high', not a number; fix: write a number there"):
        OwnSource(path, own["clips"]).labels("training")


def test_a_source_checks_its_options_in_one_line(own, tmp_path):
    with pytest.raises(DataError, match=r"needs labels_dir \(--labels LABELS.csv\) and audio_dir"):
        SoundscapeDataModule("own", labels_dir=_full(own))
    with pytest.raises(DataError, match=r"features_dir \(--features\) go with source='araus' \(--data araus\)"):
        SoundscapeDataModule("own", labels_dir=_full(own), audio_dir=own["clips"], features_dir=tmp_path)
    with pytest.raises(DataError, match=r"labels_dir.*go with source='araus' or 'own'"):
        SoundscapeDataModule("embedded", labels_dir=tmp_path)
    with pytest.raises(DataError, match="is a folder"):
        make_source("own", labels_dir=own["root"], audio_dir=own["clips"])
    ready = OwnSource(_full(own), own["clips"])
    assert SoundscapeDataModule(ready).data_source is ready
    with pytest.raises(DataError, match="a ready data source takes no options"):
        SoundscapeDataModule(ready, audio_dir=own["clips"])
    assert source_names()[:3] == ["embedded", "araus", "own"]


def _soundaq(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _leaderboard_table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "leaderboard.csv").set_index("model")


def test_qualities_only_train_predict_leaderboard(own, tmp_path, capsys):
    """(b) ratings only: early stopping and the checkpoint follow val/isop_mse, scene/event metrics are
    empty everywhere and the report says so; the leaderboard evaluates the trained checkpoint."""
    csv = _qualities_only(own)
    data = ["--data", "own", "--labels", csv, "--audio", own["clips"], "--cache-dir", own["cache"]]
    run = tmp_path / "train"
    code, _, err = _soundaq(capsys, "train", "--model", "AD_CNN", *data, "--schedule", "embedded", "--budget-clips", 8,
                            "--batch-size", 4, "--accelerator", "cpu", "--no-progress", "--out", run)
    assert code == 0, err[-2000:]
    record = json.loads((run / "train.json").read_text())
    assert record["tasks"] == ["qualities"] and "val/isop_mse" in record["metrics"]
    assert not any(k.startswith(("val/scene", "val/event")) for k in record["metrics"])
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    shutil.copy(run / "checkpoints" / "last.ckpt", ckpts / "AD_CNN.ckpt")

    code, _, err = _soundaq(capsys, "predict", *sorted(own["clips"].glob("*.wav"))[:2], "--checkpoint",
                            ckpts / "AD_CNN.ckpt", "--out", tmp_path / "pred.json")
    pred = json.loads((tmp_path / "pred.json").read_text())
    assert code == 0 and [p["clip"] for p in pred] == ["clip00", "clip01"] and set(pred[0]["qualities"]) == set(QUALITIES)

    out = tmp_path / "lb"
    code, _, err = _soundaq(capsys, "leaderboard", *data, "--checkpoints", ckpts, "--resamples", 20, "--accelerator",
                            "cpu", "--no-progress", "--out", out)
    assert code == 0, err[-2000:]
    table = _leaderboard_table(out)
    assert table.loc["AD_CNN", "status"] == "ok" and table.loc["AD_CNN", "unlabelled"] == "scene;events"
    for name in ("scene_acc", "scene_f1_macro", "event_auc", "event_map"):
        assert table[name].isna().all(), name
    for name in ("aq_mse_mean", "isop_mse", "mse_calm", "aq_mse_mean_ci_low"):
        assert table[name].notna().all(), name
    assert table.loc["AD_CNN", "paper_comparable"] is False or table.loc["AD_CNN", "paper_comparable"] == False  # noqa: E712
    report = (out / "leaderboard.md").read_text()
    assert "**Not labelled:** scene and events" in report and "no scene or event labels" in report
    preds = pd.read_csv(out / "predictions" / "AD_CNN.csv")
    assert preds["true_scene"].isna().all() and preds[list(TRUE_EVENT_COLUMNS)].isna().all().all()
    assert preds["true_calm"].notna().all() and len(preds) == 3


def test_scene_and_events_only_train_predict_leaderboard(own, tmp_path, capsys):
    """(c) scenes and events only: early stopping falls back to val/loss, quality metrics are empty
    everywhere and the report says so; the leaderboard trains the model itself."""
    csv = _scene_events(own)
    data = ["--data", "own", "--labels", csv, "--audio", own["clips"], "--cache-dir", own["cache"]]
    run = tmp_path / "train"
    code, _, err = _soundaq(capsys, "train", "--model", "AD_CNN", *data, "--max-epochs", 1, "--batch-size", 6,
                            "--accelerator", "cpu", "--no-progress", "--out", run)
    assert code == 0, err[-2000:]
    record = json.loads((run / "train.json").read_text())
    assert record["monitor"] == "val/loss" and "best val/loss" in err and "best-000.ckpt" in record["best_checkpoint"]
    assert "val/scene_acc" in record["metrics"] and not any("mse" in k for k in record["metrics"] if k.startswith("val/"))

    code, _, err = _soundaq(capsys, "predict", own["clips"] / "clip05.wav", "--checkpoint", record["best_checkpoint"],
                            "--out", tmp_path / "pred.csv")
    assert code == 0 and pd.read_csv(tmp_path / "pred.csv")["clip"].tolist() == ["clip05"]

    out = tmp_path / "lb"
    code, stdout, err = _soundaq(capsys, "leaderboard", *data, "--models", "AD_CNN", "--schedule", "embedded",
                                 "--budget-clips", 8, "--batch-size", 4, "--resamples", 20, "--accelerator", "cpu",
                                 "--no-progress", "--out", out)
    assert code == 0, err[-2000:]
    table = _leaderboard_table(out)
    assert set(table["unlabelled"]) == {"qualities"} and "not labelled: qualities" in stdout
    for name in ("aq_mse_mean", "isop_mse", "isoe_mse", "mse_calm", "pearson_calm", "aq_mse_mean_ci_low"):
        assert table[name].isna().all(), name
    for name in ("scene_acc", "event_auc", "event_auc_ci_low"):
        assert table[name].notna().all(), name
    report = (out / "leaderboard.md").read_text()
    assert "**Not labelled:** qualities" in report and "Not labelled: the data have no quality ratings." in report
    preds = pd.read_csv(out / "predictions" / "AD_CNN.csv")
    assert preds["true_isop"].isna().all() and preds["true_scene"].notna().all()
    assert json.loads((out / "provenance.json").read_text())["data"]["unlabelled"] == ["qualities"]


def test_a_toy_source_joins_through_an_entry_point(tmp_path):
    """One entry-point line in an installed distribution's metadata makes ``--data toy`` work."""
    dist = tmp_path / "site" / "soundaq_toysource-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: soundaq-toysource\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[soundaq.sources]\ntoy = soundaq_toysource:ToySource\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (tmp_path / "site", PLUGINS)))}
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "soundaq", "train", "--model", "AD_CNN", "--data", "toy",
                           "--max-epochs", "1", "--batch-size", "3", "--accelerator", "cpu", "--no-progress",
                           "--cache-dir", str(tmp_path / "cache"), "--out", str(run)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run / "train.json").read_text())
    assert record["tasks"] == ["scene", "qualities"] and record["monitor"] == "val/isop_mse"
    assert record["provenance"]["data"]["source"] == "toy" and "val/scene_acc" in record["metrics"]
    assert not any(k.startswith("val/event") for k in record["metrics"])


# -- missing label groups in the loss, the metrics and the head initialisation ------------------------------
def _batch_and_output(n=6, seed=0):
    from soundaq.models_zoo.outputs import NetOutput

    g = torch.Generator().manual_seed(seed)
    batch = {"scene": torch.randint(0, 3, (n,), generator=g), "events": (torch.rand(n, 15, generator=g) > 0.6).float(),
             "qualities": 1 + 4 * torch.rand(n, 8, generator=g), "isop": torch.rand(n, generator=g) - 0.5,
             "isoe": torch.rand(n, generator=g) - 0.5}
    out = NetOutput(torch.randn(n, 3, generator=g), torch.randn(n, 15, generator=g), 3 + torch.randn(n, 8, generator=g),
                    torch.randn(n, generator=g) * 0.3, torch.randn(n, generator=g) * 0.3)
    return batch, out


def test_the_loss_trains_only_labelled_tasks():
    import torch.nn.functional as F

    from soundaq.models_zoo.losses import TASKS, MultiTaskLoss, UncertaintyWeighting

    batch, out = _batch_and_output()
    plain_total, plain = MultiTaskLoss()(out, batch)
    full_total, full = MultiTaskLoss()(out, {**batch, LABELLED_KEY: torch.ones(6, 3, dtype=torch.bool)})
    assert torch.equal(plain_total, full_total) and all(torch.equal(plain[t], full[t]) for t in TASKS)
    mask = torch.tensor([[False, True, False]] * 2 + [[True, True, False]] * 4)   # 4 clips with scenes, no ratings
    total, parts = MultiTaskLoss()(out, {**batch, LABELLED_KEY: mask})
    assert list(parts) == ["scene", "events"]
    assert torch.allclose(parts["scene"], F.cross_entropy(out.scene_logits[2:], batch["scene"][2:]))
    assert torch.equal(parts["events"], plain["events"]) and torch.allclose(total, parts["scene"] + parts["events"])
    weighting = UncertaintyWeighting()
    with torch.no_grad():
        weighting.sigma.copy_(torch.linspace(0.5, 2.0, len(TASKS)))
    weighted, terms = weighting(parts)
    sigma = dict(zip(TASKS, weighting.sigma.tolist()))
    expected = sum(1.0 / sigma[t] ** 2 * float(parts[t]) + np.log1p(sigma[t]) for t in ("scene", "events"))
    assert list(terms) == ["scene", "events"] and float(weighted) == pytest.approx(expected, rel=1e-6)


def _eval_data(n=40, seed=3):
    from soundaq.models_zoo.eval_data import EvalData

    rng = np.random.default_rng(seed)
    quality_true = rng.uniform(1, 5, (n, 8))
    return dict(scene_true=rng.integers(0, 3, n), scene_prob=rng.dirichlet(np.ones(3), n),
                event_true=(rng.random((n, 15)) > 0.7).astype(float), event_prob=rng.random((n, 15)),
                quality_true=quality_true, quality_pred=quality_true + rng.normal(0, 0.7, (n, 8)),
                iso_true=rng.uniform(-1, 1, (n, 2)), iso_pred=rng.uniform(-1, 1, (n, 2))), EvalData


def test_metrics_skip_what_the_labels_lack_and_keep_the_rest():
    from soundaq.evaluation.bootstrap import bootstrap_ci
    from soundaq.models_zoo.metrics import METRICS, metrics_for, score, unlabelled
    from soundaq.models_zoo.predict import add_truth, predictions_frame

    arrays, EvalData = _eval_data()
    full = score(EvalData(**arrays))
    lacking = score(EvalData(**{**arrays, "event_true": None}))
    assert unlabelled(full) == [] and unlabelled(lacking) == ["events"]
    for name, metric in METRICS.items():
        if metric.task == "events":
            assert np.isnan(lacking[name]), name
        else:
            assert lacking[name] == full[name], name
    assert lacking["event_auc_clips_scored"] == 0 and lacking["confusion_park__as__park"] == full["confusion_park__as__park"]
    # the same through a predictions table whose true_event_* columns are empty
    n = len(arrays["scene_true"])
    outputs = {"scene_probabilities": arrays["scene_prob"], "event_probabilities": arrays["event_prob"],
               "qualities": arrays["quality_pred"], "isop": arrays["iso_pred"][:, 0], "isoe": arrays["iso_pred"][:, 1]}
    labels = pd.DataFrame({"clip": [str(i) for i in range(n)], "scene": [SCENES[i] for i in arrays["scene_true"]]})
    labels[list(EVENT_COLUMNS)] = np.nan
    labels[list(QUALITIES)] = arrays["quality_true"]
    labels["isop"], labels["isoe"] = arrays["iso_true"][:, 0], arrays["iso_true"][:, 1]
    table = add_truth(predictions_frame(outputs, "m", labels["clip"].tolist()), labels)
    ci = bootstrap_ci(table, n_resamples=50, seed=1).set_index("metric")
    assert np.isnan(ci.loc["event_auc", "estimate"]) and np.isnan(ci.loc["event_auc", "ci_low"])
    assert ci.loc["scene_acc", "estimate"] == pytest.approx(full["scene_acc"])
    ref = bootstrap_ci(EvalData(**arrays), n_resamples=50, seed=1).set_index("metric")
    assert ci.loc["aq_mse_mean", "ci_low"] == pytest.approx(ref.loc["aq_mse_mean", "ci_low"])
    assert "event_auc" not in metrics_for(("scene", "qualities")) and "scene_acc" in metrics_for(("scene",))


def test_streaming_metrics_follow_the_batch_mask():
    from soundaq.models_zoo.eval_data import MetricInputError
    from soundaq.models_zoo.metrics import score
    from soundaq.models_zoo.streaming import SoundAQMetrics

    arrays, EvalData = _eval_data(n=12)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    out = {"scene_logits": torch.tensor(np.log(arrays["scene_prob"])), "event_logits": torch.tensor(logit(arrays["event_prob"])),
           "qualities": torch.tensor(arrays["quality_pred"]), "isop": torch.tensor(arrays["iso_pred"][:, 0]),
           "isoe": torch.tensor(arrays["iso_pred"][:, 1])}
    batch = {"scene": torch.tensor(arrays["scene_true"]), "events": torch.tensor(arrays["event_true"]),
             "qualities": torch.tensor(arrays["quality_true"]), "isop": torch.tensor(arrays["iso_true"][:, 0]),
             "isoe": torch.tensor(arrays["iso_true"][:, 1]),
             LABELLED_KEY: torch.tensor([[True, True, False]] * 12)}
    metric = SoundAQMetrics()
    for half in (slice(0, 6), slice(6, 12)):
        metric.update({k: v[half] for k, v in out.items()}, {k: v[half] for k, v in batch.items()})
    got = metric.compute()
    want = score(EvalData(**{**arrays, "quality_true": None, "iso_true": None}))
    assert got["labelled_qualities"] == 0 and np.isnan(got["aq_mse_mean"])
    assert got["scene_acc"] == pytest.approx(want["scene_acc"]) and got["event_auc"] == pytest.approx(want["event_auc"])
    mixed = SoundAQMetrics()
    mixed.update(out, {**batch, LABELLED_KEY: torch.tensor([[True, True, True]] * 6 + [[True, True, False]] * 6)})
    with pytest.raises(MetricInputError, match="6 of 12 clips have qualities labels"):
        mixed.compute()


def test_head_initialisation_uses_only_what_is_labelled():
    from soundaq.models_zoo.head_init import base_rates, init_heads_from_labels
    from soundaq.models_zoo.registry import build_net

    labels = pd.DataFrame({"clip": ["a", "b", "c", "d"], "scene": ["park", "park", "street_traffic", "park"]})
    rates = base_rates(labels)
    assert rates["tasks"] == ["scene"] and rates["scene"] == [0.0, 0.75, 0.25] and rates["qualities"] == [3.0] * 8
    torch.manual_seed(0)
    net = build_net("AD_CNN")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    init_heads_from_labels(net, labels)
    after = net.state_dict()
    assert torch.allclose(after["fc_final_scene.bias"], torch.log(torch.tensor([1e-3, 0.75, 0.25])))
    assert not after["fc_final_scene.weight"].any()
    for name in ("fc_final_event.weight", "fc_final_event.bias", "fc_final_pleasant.bias", "fc_final_ISOPls.weight"):
        assert torch.equal(after[name], before[name]), name


def test_an_own_labels_csv_given_as_an_araus_folder_points_to_data_own(own, capsys):
    """`data check --labels labels.csv` answered "fix: see the command's --help" (second new-user trial)."""
    path = _write(own, "labels_for_check.csv", own["labels"][["clip", "split", "scene", *QUALITIES]])
    code = main(["data", "check", "--labels", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"`soundaq data prepare --data own --labels {path} --audio DIR` checks it" in err
