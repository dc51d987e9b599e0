"""Audio in, captions and comparisons out, through the released AD_CNN weights (imported from
../shared/reference/checkpoints) and `soundaq predict`'s code path."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from soundaq.benchmark.cli import main

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]   # ~40 s on 2 busy cores


@pytest.fixture(scope="module")
def ad_cnn(ad_cnn_checkpoint):   # conftest's released AD_CNN weights
    return ad_cnn_checkpoint


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """35 s of noise at 16 kHz: 30 s quiet, then 5 s 12 dB louder (two 30-s windows)."""
    rng = np.random.default_rng(0)
    rate = 16000
    x = rng.normal(0, 0.01, 35 * rate)
    x[30 * rate:] *= 10 ** (12 / 20)
    path = tmp_path_factory.mktemp("audio") / "walk.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_caption_audio_with_a_checkpoint(tmp_path, capsys, ad_cnn, long_recording):
    broken = long_recording.parent / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEnot audio")
    out = tmp_path / "caps"
    code, _, err = _run(capsys, "caption", long_recording.parent, "--checkpoint", ad_cnn, "--out", out)
    assert code == 1, err                                   # one file skipped, as `soundaq predict` reports it
    assert "skipped" in err and "broken.wav" in err and "Traceback" not in err
    csv = pd.read_csv(out / "captions.csv", keep_default_na=False)
    assert list(zip(csv["clip"], csv["window"])) == [("walk", "all"), ("walk", "0-30"), ("walk", "30-35")]
    assert set(csv["acoustic_model"]) == {"AD_CNN"}
    predicted = pd.read_csv(out / "predictions.csv")
    assert list(predicted["window"].astype(str)) == ["mean", "0", "1"]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["counts"]["audio_skipped"] == 1 and prov["inputs"][0]["checkpoint_sha256"]
    broken.unlink()


def test_compare_two_windows_of_one_recording(tmp_path, capsys, ad_cnn, long_recording):
    out = tmp_path / "cmp"
    code, _stdout, err = _run(capsys, "compare", f"{long_recording}@0-10", f"{long_recording}@30-35",
                             "--checkpoint", ad_cnn, "--out", out)
    assert code == 0, err
    result = json.loads((out / "compare.json").read_text())
    assert result["a"]["label"] == "walk.wav, 0-10 s" and result["b"]["window"] == "30-35"
    sig = result["tier2"]["signal"]
    assert sig["level_delta_db"] == pytest.approx(12.0, abs=0.3)
    assert sig["a"]["seconds"] == 10.0 and sig["b"]["seconds"] == 5.0
    assert sig["n5_ratio"] > 1.5
    assert "B is much louder than A" in result["tier2"]["text"]
    assert (out / "circumplex_move.pdf").exists()
