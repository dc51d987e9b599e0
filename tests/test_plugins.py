"""A net from outside the project joins the zoo through the public plug-in paths (an import path, an
entry point) and runs through train, predict and the leaderboard like the paper's nets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "plugins"


def _soundaq(*args, env_path: list[Path], timeout=900):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, env_path))}
    return subprocess.run([sys.executable, "-m", "soundaq", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)


def test_import_path_plugin_trains_predicts_and_joins_the_leaderboard(tmp_path, soundaq_cache, small_embedded_set):
    import soundfile as sf

    run = tmp_path / "train"
    proc = _soundaq("train", "--model", "soundaq_toynet:ToyNet", "--data", "embedded", "--schedule", "embedded",
                    "--budget-clips", "16", "--batch-size", "8", "--accelerator", "cpu", "--no-progress",
                    "--cache-dir", soundaq_cache, "--out", run, env_path=[PLUGINS])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ToyNet: budget used" in proc.stderr
    ckpt = run / "checkpoints" / "last.ckpt"
    record = json.loads((run / "train.json").read_text())
    assert record["steps"] == 2 and record["provenance"]["schedule"]["lr"] == 3e-3   # the net's own lr
    assert record["provenance"]["crop_frames"] == 401                                 # it accepts crops

    audio = tmp_path / "clip.wav"
    sf.write(audio, np.random.default_rng(0).normal(0, 0.05, 44100 * 3), 44100)
    out = tmp_path / "pred.json"
    proc = _soundaq("predict", audio, "--checkpoint", ckpt, "--out", out, env_path=[PLUGINS])
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = json.loads(out.read_text())
    assert pred[0]["model"] == "ToyNet" and set(pred[0]["qualities"]) >= {"pleasant", "calm"}

    lb = tmp_path / "lb"
    proc = _soundaq("leaderboard", "--models", "soundaq_toynet:ToyNet,Baseline_CNN", "--budget-clips", "8",
                    "--batch-size", "4", "--embedded-clips", "12", "--seed", "7", "--resamples", "20", "--workers", "2",
                    "--accelerator", "cpu", "--no-progress", "--no-correlation", "--cache-dir", soundaq_cache, "--out", lb,
                    env_path=[PLUGINS])
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(lb / "leaderboard.csv").set_index("model")
    assert table.loc["ToyNet", "status"] == "ok" and table.loc["ToyNet", "params"] > 0
    assert (lb / "predictions" / "ToyNet.csv").is_file()


def test_entry_point_plugin_is_listed_with_the_zoo(tmp_path):
    """One entry-point line in an installed distribution's metadata is all it takes."""
    dist = tmp_path / "site" / "soundaq_toynet-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: soundaq-toynet\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text('[soundaq.models]\nToyNet = soundaq_toynet:ToyNet\n')
    proc = _soundaq("models", "--json", env_path=[tmp_path / "site", PLUGINS], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = [row["name"] for row in json.loads(proc.stdout)]
    assert names[:8] == ["AD_CNN", "Baseline_CNN", "Hierarchical_CNN", "MobileNetV2", "YAMNet", "CNN_Transformer",
                         "PANNs", "SoundAQnet"]
    assert names[8:] == ["ToyNet"]


def test_a_broken_import_path_is_one_line(tmp_path):
    proc = _soundaq("train", "--model", "no_such_package:Net", "--data", "embedded", "--out", tmp_path / "x",
                    env_path=[PLUGINS], timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot import no_such_package" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
