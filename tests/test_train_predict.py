"""train_model (run folders, resume, determinism) and prediction (tables, JSON, `soundaq predict`).

The prediction path is checked end to end against the original code's outputs for the released
AD_CNN weights on the sample clip (expected_outputs/AD_CNN_sample_clip.npz)."""
from __future__ import annotations

import json
import subprocess
import sys

import lightning as L
import numpy as np
import pytest
import torch
from test_module import SyntheticSet, TinyNet
from torch import nn
from torch.utils.data import DataLoader

from soundaq.base.vocab import (
    EVENT_PROB_COLUMNS,
    EVENTS,
    PREDICTION_COLUMNS,
    QUALITIES,
    SCENE_PROB_COLUMNS,
    SCENES,
    TRUTH_COLUMNS,
)

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tiny nets: faster on one thread (conftest)


class TinyData(L.LightningDataModule):
    """Synthetic train/val/test splits with the batch contract, and norm stats + describe()."""

    def __init__(self, batch_size: int = 8):
        super().__init__()
        self.batch_size = batch_size
        self.norm_stats = {"log_mel": {"mean": [0.0] * 64, "std": [1.0] * 64},
                           "loudness": {"mean": [0.0], "std": [1.0]}}
        self.sets = {"train": SyntheticSet(48, 1), "val": SyntheticSet(16, 2), "test": SyntheticSet(16, 3)}

    def describe(self):
        return {"source": "tiny", "synthetic": True}

    def train_dataloader(self):
        # A loader-owned generator, as SoundscapeDataModule's: resuming must reseed it too.
        return DataLoader(self.sets["train"], batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(11))

    def val_dataloader(self):
        return DataLoader(self.sets["val"], batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.sets["test"], batch_size=self.batch_size)


def _train(out, epochs, seed=3, **kw):
    from soundaq.models_zoo.training import train_model

    L.seed_everything(seed, verbose=False)  # the throwaway net is built here, outside train_model
    return train_model("tiny", TinyData(), out_dir=out, max_epochs=epochs, seed=seed, lr=1e-2, progress=False,
                       accelerator="cpu", net=TinyNet(), **kw)


def _weights(path):
    sd = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return torch.cat([v.flatten().float() for k, v in sorted(sd.items()) if k.startswith("net.")])


def test_train_model_writes_a_run_folder_and_does_not_retrain(tmp_path):
    res = _train(tmp_path / "run", 3, run_test=True)
    assert res.best_checkpoint.exists() and res.best_checkpoint.name.startswith("best-")
    assert res.epochs == 3 and res.train_seconds > 0 and not res.already_done
    record = json.loads((tmp_path / "run" / "train.json").read_text())
    assert record["best_score"] == pytest.approx(res.best_score)
    assert record["monitor"] == "val/isop_mse"
    assert "test/isop_mse" in record["metrics"] and "val/scene_acc" in record["metrics"]
    ck = torch.load(res.best_checkpoint, map_location="cpu", weights_only=True)
    assert ck["soundaq"]["norm_stats"]["log_mel"]["std"] == [1.0] * 64
    assert ck["soundaq"]["provenance"]["data"] == {"source": "tiny", "synthetic": True}
    assert ck["soundaq"]["provenance"]["seed"] == 3
    assert (tmp_path / "run" / "logs" / "metrics.csv").exists()
    # The module returned holds the best checkpoint's weights.
    best = torch.cat([v.flatten().float() for k, v in sorted(res.module.state_dict().items())
                      if k.startswith("net.")])
    assert torch.equal(best, _weights(res.best_checkpoint))
    again = _train(tmp_path / "run", 3)
    assert again.already_done and again.best_checkpoint == res.best_checkpoint
    # the same options as one TrainSettings object define the same run (resuming checks the identity)
    from soundaq.models_zoo.training import TrainSettings, train_model

    settings = TrainSettings(max_epochs=3, seed=3, lr=1e-2, progress=False, accelerator="cpu", net=TinyNet())
    same = train_model("tiny", TinyData(), out_dir=tmp_path / "run", settings=settings)
    assert same.already_done and same.best_checkpoint == res.best_checkpoint


def test_train_model_refuses_an_option_train_settings_lacks(tmp_path):
    from soundaq.models_zoo.training import train_model

    with pytest.raises(TypeError, match="max_epoch"):
        train_model("tiny", TinyData(), out_dir=tmp_path / "run", max_epoch=3)   # a typo of max_epochs
    assert not (tmp_path / "run").exists()


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    straight = _train(tmp_path / "a", 3)
    _train(tmp_path / "b", 1)           # "interrupted" after one epoch
    resumed = _train(tmp_path / "b", 3)  # same command with the full budget resumes from last.ckpt
    assert resumed.resumed and resumed.epochs == 3
    assert torch.equal(_weights(straight.last_checkpoint), _weights(resumed.last_checkpoint))
    assert resumed.train_seconds > 0


def test_a_resumed_run_keeps_the_metrics_of_its_earlier_sessions(tmp_path):
    """Lightning's CSV logger rewrote logs/metrics.csv with the resumed session's rows only (epoch 0 was
    lost after a kill; second new-user trial)."""
    import pandas as pd

    _train(tmp_path / "b", 1)
    first = pd.read_csv(tmp_path / "b" / "logs" / "metrics.csv")
    _train(tmp_path / "b", 3)
    rows = pd.read_csv(tmp_path / "b" / "logs" / "metrics.csv")
    assert sorted(rows["epoch"].dropna().unique()) == [0, 1, 2]
    assert rows["step"].is_monotonic_increasing
    kept = rows[rows["epoch"] == 0].dropna(axis=1, how="all")
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), first.dropna(axis=1, how="all")[kept.columns],
                                  check_dtype=False)


def test_ctrl_c_during_training_reaches_the_caller_as_an_interrupt(tmp_path):
    """Lightning answers Ctrl-C with a graceful shutdown and sys.exit(1), leaving SIGINT ignored; the
    command said nothing of resuming and exited 1. train_model raises KeyboardInterrupt (the CLI's
    "interrupted; run the same command again to resume", exit 130) and gives SIGINT back."""
    import signal

    class CtrlC(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "c", 2, trainer_kwargs={"callbacks": [CtrlC()]})
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class NormTinyNet(TinyNet):
    """TinyNet with a batch norm after its hidden layer (for precise batch norm)."""

    def __init__(self, hidden: int = 32):
        super().__init__(hidden)
        self.body = nn.Sequential(nn.Linear(64, hidden), nn.BatchNorm1d(hidden), nn.ReLU())


def test_precise_batchnorm_at_the_budgets_end_is_validated_once_and_kept(tmp_path):
    from soundaq.models_zoo.precise_bn import recompute_batchnorm
    from soundaq.models_zoo.schedules import EMBEDDED
    from soundaq.models_zoo.training import train_model

    schedule = EMBEDDED.with_overrides(budget_clips=40, batch_size=8, precise_bn_batches=3, crop_seconds=None,
                                       val_per_epoch=1, val_clips=8)
    L.seed_everything(5, verbose=False)
    res = train_model("tiny", TinyData(), out_dir=tmp_path / "run", schedule=schedule, seed=5, progress=False,
                      accelerator="cpu", net=NormTinyNet())
    record = json.loads((tmp_path / "run" / "train.json").read_text())
    # 40 clips = 5 steps of 8 (inside the first 6-step epoch): one validation, at the budget's end, of
    # the weights with recomputed statistics; no second validation of the same weights
    assert [(p["step"], bool(p.get("precise_bn"))) for p in record["curve"]] == [(5, True)]
    assert record["precise_bn"] == {"layers": 1, "batches": 3, "clips": 24}
    assert record["provenance"]["memory_format"] == "contiguous"   # a net not measured: contiguous
    assert res.best_checkpoint.name == "final.ckpt"
    final = torch.load(res.best_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    last = torch.load(res.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    stats = [k for k in final if k.endswith(("running_mean", "running_var"))]
    assert len(stats) == 2 and all(torch.equal(final[k], last[k]) for k in final)
    # the statistics are those a recomputation after the fit gives (same batches, same weights);
    # the running averages of the fit itself were different
    module = res.module
    kept = {k: v.clone() for k, v in module.state_dict().items() if k in stats}
    recompute_batchnorm(module, TinyData().train_dataloader(), None, 3)
    assert all(torch.equal(module.state_dict()[k], kept[k]) for k in stats)
    L.seed_everything(5, verbose=False)
    plain = train_model("tiny", TinyData(), out_dir=tmp_path / "plain", seed=5, progress=False, accelerator="cpu",
                        net=NormTinyNet(), schedule=schedule.with_overrides(precise_bn_batches=0))
    fitted = torch.load(plain.best_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(fitted["net.body.0.weight"], final["net.body.0.weight"])   # same weights
    assert not torch.equal(fitted["net.body.1.running_var"], kept["net.body.1.running_var"])
    assert len(json.loads((tmp_path / "plain" / "train.json").read_text())["curve"]) == 1


def test_memory_format_choice_per_net_phase_schedule_and_device():
    from soundaq.models_zoo.cpu_policy import (
        CHANNELS_LAST_CPU_GAIN,
        CHANNELS_LAST_MIN_GAIN,
        apply_memory_format,
        choose_memory_format,
    )
    from soundaq.models_zoo.schedules import EMBEDDED, PAPER

    for net, (_, gain) in CHANNELS_LAST_CPU_GAIN.items():
        fmt, why = choose_memory_format(net, EMBEDDED, "cpu", "inference")
        assert fmt == ("channels_last" if gain >= CHANNELS_LAST_MIN_GAIN else "contiguous"), net
        assert f"{gain:.2f}x" in why
        # training stays contiguous: its channels-last steps depend on the thread count
        assert choose_memory_format(net, EMBEDDED, "cpu", "training")[0] == "contiguous"
        for phase in ("training", "inference"):
            # the paper's schedule and GPUs keep the original layout
            assert choose_memory_format(net, PAPER, "cpu", phase)[0] == "contiguous"
            assert choose_memory_format(net, EMBEDDED, "gpu", phase) == ("contiguous", "not a CPU run")
    assert choose_memory_format("my_plugin_net", EMBEDDED, "cpu", "training")[0] == "contiguous"
    with pytest.raises(ValueError, match="phase"):
        choose_memory_format("Baseline_CNN", EMBEDDED, "cpu", "testing")
    net = apply_memory_format(nn.Sequential(nn.Conv2d(1, 4, 3)), "channels_last")
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert apply_memory_format(net, "contiguous")[0].weight.is_contiguous()
    with pytest.raises(ValueError, match="memory format"):
        apply_memory_format(net, "nhwc")


def test_validation_memory_format_round_trip_keeps_the_weights():
    from types import SimpleNamespace

    from soundaq.models_zoo.callbacks import ValidationMemoryFormat

    module = SimpleNamespace(net=nn.Sequential(nn.Conv2d(2, 8, 3), nn.BatchNorm2d(8)))
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    weight = module.net[0].weight
    callback = ValidationMemoryFormat("channels_last")
    fitting = SimpleNamespace(state=SimpleNamespace(fn="fit"))
    callback.on_validation_start(fitting, module)
    assert module.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not module.net[0].weight.is_contiguous()
    callback.on_validation_end(fitting, module)
    assert module.net[0].weight is weight and weight.is_contiguous()   # the optimizer's parameter, same values
    assert all(torch.equal(before[k], v) for k, v in module.net.state_dict().items())
    callback.on_validation_start(SimpleNamespace(state=SimpleNamespace(fn="validate")), module)
    assert module.net[0].weight.is_contiguous()          # only validations inside a fit


def test_channels_last_inference_gives_the_same_bits_with_one_or_two_threads():
    # why inference may switch format and training may not: the table must not depend on --workers
    import copy

    from soundaq.models_zoo.cpu_policy import apply_memory_format
    from soundaq.models_zoo.registry import build_net

    torch.manual_seed(0)
    net = apply_memory_format(copy.deepcopy(build_net("Baseline_CNN")), "channels_last").eval()
    mel = torch.randn(2, 3001, 64)
    outs = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            with torch.no_grad():
                outs.append(net(mel).qualities)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(outs[0], outs[1])


def test_other_arguments_in_an_existing_run_folder_are_refused(tmp_path):
    from soundaq.base.errors import UserError

    _train(tmp_path / "run", 1)
    with pytest.raises(UserError, match="seed"):
        _train(tmp_path / "run", 1, seed=4)


def test_predictions_frame_and_truth_columns():
    from soundaq.models_zoo.predict import add_truth, predict_loader, predictions_frame, truth_frame

    module = __import__("soundaq.models_zoo.module", fromlist=["x"]).SoundscapeModule("tiny", net=TinyNet())
    ds = SyntheticSet(10, 4)
    table = predict_loader(module, DataLoader(ds, batch_size=4), "tiny")
    assert list(table.columns) == [*PREDICTION_COLUMNS, *TRUTH_COLUMNS]
    assert table["clip"].tolist() == [f"clip_{i:03d}" for i in range(10)]
    assert np.allclose(table[list(SCENE_PROB_COLUMNS)].sum(axis=1), 1.0)
    assert table["true_scene"].tolist() == [SCENES[int(i)] for i in ds.scene]
    assert np.allclose(table[[f"true_{q}" for q in QUALITIES]].to_numpy(), ds.qualities.numpy())
    # Independent recomputation of one row.
    module.eval()
    with torch.no_grad():
        out = module(ds.mel[3:4])
    row = table.iloc[3]
    assert row["scene"] == SCENES[int(out.scene_logits.argmax())]
    assert np.allclose(row[list(EVENT_PROB_COLUMNS)].astype(float), torch.sigmoid(out.event_logits)[0].numpy(),
                       atol=1e-6)
    # add_truth from a label table, joining on the clip id.
    import pandas as pd

    from soundaq.base.vocab import EVENT_COLUMNS

    labels = pd.DataFrame({"clip": ["b", "a"], "scene": ["park", "street_traffic"],
                           **{c: [1, 0] for c in EVENT_COLUMNS}, **{q: [2.0, 4.0] for q in QUALITIES},
                           "isop": [0.1, -0.2], "isoe": [0.3, 0.0]})
    preds = predictions_frame({"scene_probabilities": np.eye(3)[:2], "event_probabilities": np.zeros((2, 15)),
                               "qualities": np.ones((2, 8)), "isop": np.zeros(2), "isoe": np.zeros(2)},
                              "m", clips=["a", "b"])
    joined = add_truth(preds, labels)
    assert joined["true_scene"].tolist() == ["street_traffic", "park"]
    assert joined["true_isop"].tolist() == [-0.2, 0.1]
    assert list(truth_frame(labels).columns) == ["clip", *TRUTH_COLUMNS]


def test_clip_result_averages_windows():
    from soundaq.models_zoo.predict import clip_result, results_frame, window_spans

    outs = {"scene_probabilities": np.array([[0.6, 0.3, 0.1], [0.0, 0.5, 0.5]]),
            "event_probabilities": np.array([np.full(15, 0.2), np.full(15, 0.4)]),
            "qualities": np.array([np.full(8, 2.0), np.full(8, 4.0)]),
            "isop": np.array([0.2, 0.4]), "isoe": np.array([-0.2, 0.0])}
    r = clip_result("c", "m", outs, duration_s=47.5)
    assert r["scene"] == "park"  # mean probabilities (0.3, 0.4, 0.3): the 2nd scene
    assert r["scene_probabilities"] == pytest.approx(dict(zip(SCENES, (0.3, 0.4, 0.3))))
    assert r["events"] == pytest.approx({e: 0.3 for e in EVENTS})
    assert r["qualities"] == pytest.approx({q: 3.0 for q in QUALITIES})
    assert r["isop"] == pytest.approx(0.3) and r["isoe"] == pytest.approx(-0.1)
    assert [(w["start_s"], w["end_s"]) for w in r["windows"]] == [(0.0, 30.0), (30.0, 47.5)]
    assert r["windows"][0]["scene"] == "public_square"
    assert window_spans(1) == [(0.0, 30.0)]
    flat = results_frame([r])
    assert flat["window"].tolist() == ["mean", "0", "1"]
    assert list(flat.columns[:len(PREDICTION_COLUMNS)]) == list(PREDICTION_COLUMNS)


def _soundaq(*args):
    """The real entry point in a fresh process (import errors, tracebacks and exit codes as users see them)."""
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "soundaq", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=env)


def _cli(capsys, *args):
    """``soundaq ARGS`` in this process (fast): (exit code, stdout, stderr)."""
    from soundaq.benchmark.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


RESULT_KEYS = {"clip", "model", "scene", "scene_probabilities", "events", "qualities", "isop", "isoe", "windows",
               "out_of_scale", "ratings"}


def test_predict_cli_reproduces_the_original_outputs(tmp_path, capsys, ad_cnn_checkpoint, sample_clip_dir,
                                                     checkpoints_dir):
    mel = np.load(sample_clip_dir / "reference_log_mel.npy").astype(np.float32)
    np.savez(tmp_path / "one.npz", mel=mel[None], loudness=np.zeros((1, 15000, 1), np.float32))
    np.savez(tmp_path / "two.npz", mel=np.stack([mel, mel]), loudness=np.zeros((2, 15000, 1), np.float32))
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    out = tmp_path / "pred.json"
    code, _, err = _cli(capsys, "predict", tmp_path / "one.npz", tmp_path / "broken.npz", tmp_path / "two.npz",
                        "--checkpoint", ad_cnn_checkpoint, "--out", out)
    assert code == 1, err            # one input skipped, the others written
    assert "broken.npz" in err
    results = json.loads(out.read_text())
    assert [r["clip"] for r in results] == ["one", "two"]
    exp = np.load(checkpoints_dir / "expected_outputs" / "AD_CNN_sample_clip.npz")
    scene_p = torch.softmax(torch.tensor(exp["scene_logits"][0], dtype=torch.float64), 0).numpy()
    for r in results:
        assert set(r) == RESULT_KEYS and r["model"] == "AD_CNN"
        assert list(r["scene_probabilities"]) == list(SCENES) and list(r["events"]) == list(EVENTS)
        assert list(r["qualities"]) == list(QUALITIES)
        assert np.allclose([r["scene_probabilities"][s] for s in SCENES], scene_p, atol=1e-4)
        assert r["scene"] == SCENES[int(np.argmax(exp["scene_logits"][0]))]
        assert np.allclose([r["events"][e] for e in EVENTS], exp["event_prob"][0], atol=1e-4)
        assert np.allclose([r["qualities"][q] for q in QUALITIES], exp["PAQ8"][0], atol=1e-4)
        assert r["isop"] == pytest.approx(float(exp["ISOPl"][0, 0]), abs=1e-4)
        assert r["isoe"] == pytest.approx(float(exp["ISOEv"][0, 0]), abs=1e-4)
    assert len(results[0]["windows"]) == 1 and len(results[1]["windows"]) == 2
    assert [(w["start_s"], w["end_s"]) for w in results[1]["windows"]] == [(0.0, 30.0), (30.0, 60.0)]
    csv = tmp_path / "pred.csv"
    code, _, err = _cli(capsys, "predict", tmp_path / "two.npz", "--checkpoint", ad_cnn_checkpoint, "--out", csv)
    assert code == 0, err
    import pandas as pd

    table = pd.read_csv(csv)
    assert list(table.columns) == [*PREDICTION_COLUMNS, "window", "start_s", "end_s", "ratings", "out_of_scale"]
    assert table["window"].astype(str).tolist() == ["mean", "0", "1"]
    assert table["ratings"].tolist() == ["raw"] * 3
    assert table.loc[0, "isop"] == pytest.approx(float(exp["ISOPl"][0, 0]), abs=1e-4)
    # No --out: the JSON list on stdout.
    code, stdout, _ = _cli(capsys, "predict", tmp_path / "one.npz", "--checkpoint", ad_cnn_checkpoint)
    assert code == 0 and json.loads(stdout)[0]["isop"] == pytest.approx(results[0]["isop"])


def test_predict_cli_user_errors_are_one_line(tmp_path, capsys, ad_cnn_checkpoint):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage")
    proc = _soundaq("predict", tmp_path / "x.npz", "--checkpoint", bad)   # the real entry point once
    assert proc.returncode == 2 and "bad.ckpt" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "predict", tmp_path / "missing.wav", "--checkpoint", ad_cnn_checkpoint)
    assert code == 2 and "missing.wav" in err        # a single unusable input: the command failed (docs/reliability.md)
    code, _, err = _cli(capsys, "predict", tmp_path / "x.npz", "--checkpoint", ad_cnn_checkpoint,
                        "--out", tmp_path / "o.txt")
    assert code == 2 and "o.txt" in err
    (tmp_path / "empty.wav").write_bytes(b"RIFF")
    np.savez(tmp_path / "short.npz", mel=np.zeros((1, 100, 64), np.float32))
    code, _, err = _cli(capsys, "predict", tmp_path / "empty.wav", tmp_path / "short.npz",
                        "--checkpoint", ad_cnn_checkpoint)
    assert code == 2 and "empty.wav" in err and "short.npz" in err and "3001" in err   # nothing predicted: exit 2
    assert len(err.strip().splitlines()) == 3  # one line per skipped input, one summary line


def test_train_then_predict_audio_with_the_real_net_and_data_module(tmp_path, capsys, monkeypatch,
                                                                    small_embedded_set, soundaq_cache):
    """`soundaq train` (AD_CNN on the 12-clip embedded set: 6 training clips) then `soundaq predict` on
    audio, a features .npz of the same audio, and a 40-s recording (two 30-s windows)."""
    import functools

    import soundfile as sf

    from soundaq.models_zoo.checkpoints import load_checkpoint
    from soundaq.models_zoo.data import datamodule as dm
    from soundaq.models_zoo.features import load_audio, log_mel, split_windows

    small = functools.partial(dm.SoundscapeDataModule, embedded_clips=12, embedded_seed=7)
    monkeypatch.setattr(dm, "SoundscapeDataModule", small)
    run = tmp_path / "run"
    code, _, err = _cli(capsys, "train", "--model", "AD_CNN", "--data", "embedded", "--cache-dir", soundaq_cache,
                        "--max-epochs", "1", "--batch-size", "4", "--out", run, "--seed", "5", "--no-progress")
    assert code == 0, err
    assert "AD_CNN: max epochs reached after 1 epoch(s)" in err
    record = json.loads((run / "train.json").read_text())
    assert record["params"] == 521_472 and record["provenance"]["seed"] == 5
    assert {"val/isop_mse", "val/scene_acc", "val/event_auc", "val/aq_mse_mean"} <= set(record["metrics"])
    _net, norm_stats, info = load_checkpoint(record["best_checkpoint"])  # the nets helper's loader reads ours
    assert info["model"] == "AD_CNN" and norm_stats["log_mel"]["mean"] is not None
    code, _, err = _cli(capsys, "train", "--model", "AD_CNN", "--data", "embedded", "--cache-dir", soundaq_cache,
                        "--max-epochs", "1", "--batch-size", "4", "--out", run, "--seed", "5", "--no-progress")
    assert code == 0 and "already trained" in err

    flac = sorted((small_embedded_set.root / "audio").glob("*.flac"))[0]
    samples, rate = load_audio(flac)
    long = np.concatenate([samples, samples[: int(10 * rate)]])          # 40 s: two windows
    sf.write(tmp_path / "long.wav", long, rate, subtype="FLOAT")
    mel = np.stack([log_mel(w, rate) for w in split_windows(samples, rate)]).astype(np.float32)
    np.savez(tmp_path / "same.npz", mel=mel)                           # AD_CNN needs no loudness
    out = tmp_path / "pred.json"
    code, _, err = _cli(capsys, "predict", flac, tmp_path / "same.npz", tmp_path / "long.wav",
                        "--checkpoint", record["best_checkpoint"], "--out", out)
    assert code == 0, err
    audio, npz, two = json.loads(out.read_text())
    assert set(audio) == RESULT_KEYS and audio["clip"] == flac.stem
    for key in ("isop", "isoe"):
        assert audio[key] == pytest.approx(npz[key], abs=1e-6)
    assert audio["qualities"] == pytest.approx(npz["qualities"], abs=1e-6)
    assert [(w["start_s"], w["end_s"]) for w in two["windows"]] == [(0.0, 30.0), (30.0, 40.0)]
    assert two["windows"][0]["isop"] == pytest.approx(audio["isop"], abs=1e-5)  # same first 30 s
    for s in SCENES:
        assert two["scene_probabilities"][s] == pytest.approx(
            np.mean([w["scene_probabilities"][s] for w in two["windows"]]), abs=1e-9)
    assert two["isop"] == pytest.approx(np.mean([w["isop"] for w in two["windows"]]), abs=1e-9)
    csv = tmp_path / "pred.csv"
    code, _, err = _cli(capsys, "predict", flac, tmp_path / "long.wav", "--checkpoint", record["best_checkpoint"],
                        "--out", csv)
    import pandas as pd

    table = pd.read_csv(csv)
    assert code == 0 and table["window"].astype(str).tolist() == ["mean", "mean", "0", "1"]
    assert table["clip"].tolist() == [flac.stem, "long", "long", "long"]


def test_train_cli_user_errors_are_one_line(tmp_path, capsys):
    cases = [
        (["--data", "araus", "--features", tmp_path], "--labels"),
        (["--data", "embedded", "--labels", tmp_path], "--data araus"),
        (["--data", "embedded", "--pretrained", tmp_path / "w.pth"], "PANNs and YAMNet"),
        (["--data", "embedded", "--devices", "two"], "--devices"),
        (["--data", "embedded", "--batch-size", "0"], "--batch-size"),
    ]
    for extra, needle in cases:
        code, _, err = _cli(capsys, "train", "--model", "AD_CNN", "--out", tmp_path / "run", *extra)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (extra, err)
    # argparse's own usage error for a malformed limit: one line too
    code, _, err = _cli(capsys, "train", "--model", "AD_CNN", "--data", "embedded", "--out", tmp_path / "run",
                        "--limit-train-batches", "-1")
    assert code == 2 and "positive batch count" in err and len(err.strip().splitlines()) == 1, err
    from soundaq.benchmark.options import batch_limit as _limit

    assert _limit("4") == 4 and isinstance(_limit("4"), int) and _limit("0.25") == 0.25 and _limit("1.0") == 1.0


def test_a_continued_run_refuses_other_limits_and_accepts_what_does_not_change_results(tmp_path):
    """One rule with the leaderboard's (soundaq.base.runs.identity_problem): a batch limit changed on a
    continued run is refused in one line naming the option, its old and new value and the fix."""
    from soundaq.base.errors import UserError

    _train(tmp_path / "run", 1, trainer_kwargs={"limit_train_batches": 2})
    with pytest.raises(UserError) as refused:
        _train(tmp_path / "run", 2, trainer_kwargs={"limit_train_batches": 3, "limit_val_batches": 1})
    line = str(refused.value)
    assert "--limit-train-batches 2 there, 3 now; --limit-val-batches not given there, 1 now" in line, line
    assert "fix: give the folder's values to continue it, or a new --out" in line and "\n" not in line
    with pytest.raises(UserError, match="--devices 1 there, 2 now"):
        _train(tmp_path / "run", 2, trainer_kwargs={"limit_train_batches": 2}, devices=2)
    from soundaq.base.runs import IDENTITY_DEFAULTS
    from soundaq.models_zoo.schedules import PATIENCE

    assert IDENTITY_DEFAULTS["patience"] == PATIENCE      # a paper run.json without patience had this one
    # the same limits continue the run (raising --max-epochs on the paper schedule trains on)
    assert _train(tmp_path / "run", 2, trainer_kwargs={"limit_train_batches": 2}).epochs == 2


@pytest.fixture
def lightning_notes():
    """Every log record Lightning's loggers emit during the test (restoring their levels afterwards)."""
    import logging

    from soundaq.benchmark.terminal import LIGHTNING_NOTE_LOGGERS

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append                       # type: ignore[method-assign]
    roots = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = {n: logging.getLogger(n).level for n in LIGHTNING_NOTE_LOGGERS}
    for root in roots:
        root.addHandler(handler)
    yield records
    for root in roots:
        root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_train_embedded_clips_no_progress_quiet_and_continued_run_rules(tmp_path, capsys, lightning_notes,
                                                                        soundaq_cache):
    """`soundaq train --embedded-clips 12 --no-progress`: the 12-clip set, no Lightning notes, tips or
    advice; a continued run refuses another --embedded-clips or limit and accepts another --workers."""
    import warnings

    run = tmp_path / "run"
    args = ["train", "--model", "AD_CNN", "--data", "embedded", "--embedded-clips", "12", "--cache-dir", soundaq_cache,
            "--max-epochs", "1", "--batch-size", "4", "--limit-train-batches", "1", "--limit-val-batches", "1",
            "--out", run, "--no-progress"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = _cli(capsys, *args, "--workers", "0")
    assert code == 0, err
    said = [r.getMessage() for r in lightning_notes if r.levelno < 30] + [str(w.message) for w in caught]
    assert not said, said                     # "GPU available", "💡 Tip", the num_workers PossibleUserWarning
    assert err.strip().splitlines() == [next(line for line in err.splitlines() if line.startswith("soundaq train:"))]
    record = json.loads((run / "train.json").read_text())
    assert sum(record["provenance"]["data"]["split_sizes"].values()) == 12
    assert json.loads((run / "run.json").read_text())["identity"]["embedded_clips"] == 12
    code, _, err = _cli(capsys, *args, "--workers", "1")          # a result-neutral option: accepted
    assert code == 0 and "already trained" in err, err
    changed = [a if a != "12" else "24" for a in args]
    code, _, err = _cli(capsys, *changed)
    assert code == 2 and "--embedded-clips 12 there, 24 now" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = _cli(capsys, *[a if a != "--limit-val-batches" else "--limit-train-batches" for a in args])
    assert code == 2 and "--limit-val-batches 1 there, not given now" in err, err


def test_train_with_its_bar_shows_no_tips_no_advice_and_counts_a_budget(tmp_path, capsys, lightning_notes,
                                                                        soundaq_cache):
    """`soundaq train` with its progress bar (trial faults G, H): the bar of a clip budget names the budget
    (it read "Epoch 0/-2": max_epochs is -1 there), and neither Lightning's litlogger tip nor its LeafSpec
    deprecation warning is printed; Lightning's notes (the device in use) stay."""
    import logging
    import warnings

    from soundaq.benchmark.terminal import LIGHTNING_NOTE_LOGGERS

    for name in LIGHTNING_NOTE_LOGGERS:     # as in a fresh process (an earlier test may have quietened them)
        logging.getLogger(name).setLevel(logging.NOTSET)
    args = ["train", "--model", "AD_CNN", "--data", "embedded", "--embedded-clips", "12", "--cache-dir", soundaq_cache,
            "--schedule", "embedded", "--budget-clips", "8", "--batch-size", "4", "--out", tmp_path / "run"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = _cli(capsys, *args)
    assert code == 0, err
    notes = [r.getMessage() for r in lightning_notes if r.levelno < 30]
    assert not [n for n in notes if "Tip" in n or "litlogger" in n], notes
    assert any("GPU available" in n for n in notes), notes
    assert not [str(w.message) for w in caught if "LeafSpec" in str(w.message)]
    assert "Epoch 0 (budget: 2 steps)" in out + err and "/-2" not in out + err, out + err


def test_the_epoch_bar_names_epochs_or_the_step_budget():
    from types import SimpleNamespace

    from soundaq.models_zoo.callbacks import EpochBar

    bar = EpochBar()
    for max_epochs, max_steps, says in ((100, -1, "Epoch 3/99"), (-1, 60, "Epoch 3 (budget: 60 steps)"),
                                        (-1, -1, "Epoch 3"), (None, 60, "Epoch 3 (budget: 60 steps)")):
        bar._trainer = SimpleNamespace(max_epochs=max_epochs, max_steps=max_steps)    # type: ignore[assignment]
        assert bar._get_train_description(3).strip() == says
