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

from soundaq.models_zoo.registry import NETS

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
    assert names == [*NETS, "ToyNet"]


def test_a_broken_import_path_is_one_line(tmp_path):
    proc = _soundaq("train", "--model", "no_such_package:Net", "--data", "embedded", "--out", tmp_path / "x",
                    env_path=[PLUGINS], timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot import no_such_package" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


NINTH_NET = """
import torch
from torch import nn

from soundaq.models_zoo.nets.common import ZooNet, add_linear_heads, linear_heads
from soundaq.models_zoo.registry import INPUT_MEL, NetSpec


class NinthNet(ZooNet):
    \"\"\"Mean and max of the log-mel bands through one linear layer, the zoo's twelve heads.\"\"\"

    min_frames = 8

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(128, 16)
        add_linear_heads(self, 16)

    def forward(self, mel, loudness=None):
        self.check_inputs(mel, loudness)
        return linear_heads(self, torch.relu(self.proj(torch.cat([mel.mean(1), mel.amax(1)], dim=1))))


# Its one registry entry: every fact about the net, the CPU policies included.
SPEC = NetSpec("NinthNet", "ninth_net:NinthNet", (INPUT_MEL,), 2_540, None,
               None, None, None, notes="a ninth net from a scratch module", schedule={"lr": 2e-3},
               cpu_bf16=False, channels_last_cpu_gain=(1.0, 1.3))
"""


def test_a_ninth_net_is_one_file_and_one_registry_entry(tmp_path, monkeypatch, capsys, request, soundaq_cache,
                                                      small_embedded_set):
    """A net written from scratch outside the project plus its one registry entry (a NetSpec named by an
    entry point of an installed distribution) is listed by `soundaq models`, trains one step with the
    policies its entry declares, and predicts; nothing else is edited (in-process: three CLI runs)."""
    import soundfile as sf

    from soundaq.benchmark.cli import main
    from soundaq.models_zoo import registry

    site = tmp_path / "site"
    dist = site / "ninth_net-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "ninth_net.py").write_text(NINTH_NET)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ninth-net\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[soundaq.models]\nNinthNet = ninth_net:SPEC\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_ENTRY_POINTS", None)      # installed now: read the entry points again
    monkeypatch.setattr(registry, "_PLUGINS", {})             # predict resolves the checkpoint's class here
    request.addfinalizer(lambda: sys.modules.pop("ninth_net", None))

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [*NETS, "NinthNet"]
    assert rows[-1]["notes"] == "a ninth net from a scratch module" and rows[-1]["plugin"] is True

    run = tmp_path / "train"
    assert main(["train", "--model", "NinthNet", "--data", "embedded", "--schedule", "embedded",
                 "--budget-clips", "8", "--batch-size", "8", "--accelerator", "cpu", "--no-progress",
                 "--cache-dir", str(soundaq_cache), "--out", str(run)]) == 0
    prov = json.loads((run / "train.json").read_text())["provenance"]
    assert prov["steps"] == 1 and prov["schedule"]["lr"] == 2e-3
    assert prov["precision_reason"] == "bf16 measured no faster for NinthNet"
    assert prov["validation_memory_format"] == "channels_last"      # its entry's measured gain, 1.3x

    audio = tmp_path / "clip.wav"
    sf.write(audio, np.random.default_rng(1).normal(0, 0.05, 44100 * 2), 44100)
    out = tmp_path / "pred.json"
    assert main(["predict", str(audio), "--checkpoint", str(run / "checkpoints" / "last.ckpt"),
                 "--out", str(out)]) == 0
    pred = json.loads(out.read_text())
    assert pred[0]["model"] == "NinthNet" and len(pred[0]["qualities"]) == 8
