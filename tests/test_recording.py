"""Long recordings: streamed windows with a hop, out-of-scale flags and --clamp, the analysis folder."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from soundaq.base.vocab import QUALITIES
from soundaq.benchmark.cli import main
from soundaq.models_zoo import recording as rec

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RATE = 16000


def _cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _noise(seconds: float, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Pink-ish noise with a level that drifts, so windows differ."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = np.cumsum(rng.normal(0, 1, (n, channels)), axis=0)
    x -= np.convolve(x[:, 0], np.ones(400) / 400, mode="same")[:, None]
    env = 0.5 + 0.4 * np.sin(np.linspace(0, 3 * np.pi, n))[:, None]
    return 0.02 * env * x / np.abs(x).max()


@pytest.fixture(scope="module")
def off_scale(ad_cnn_checkpoint, tmp_path_factory):
    """AD_CNN with its `pleasant` head moved up by 4 and its ISOP head by 2: outputs leave the scales."""
    import torch

    from soundaq.models_zoo.checkpoints import load_checkpoint, save_checkpoint

    net, norm, _info = load_checkpoint(ad_cnn_checkpoint)
    with torch.no_grad():
        net.fc_final_pleasant.bias += 4.0
        net.fc_final_ISOPls.bias += 2.0
    out = tmp_path_factory.mktemp("ckpt") / "AD_CNN_off_scale.ckpt"
    save_checkpoint(out, "AD_CNN", net.state_dict(), norm, {"note": "test: heads shifted"})
    return out


def test_windows_with_a_hop_and_the_same_windows_as_split_windows(tmp_path):
    from soundaq.models_zoo.features import load_audio, split_windows

    path = tmp_path / "stereo.flac"
    sf.write(path, _noise(95, channels=2), RATE, subtype="PCM_24")
    samples, rate = load_audio(path)
    consecutive = list(rec.stream_windows(path))
    assert len(consecutive) == 4 == rec.window_count(len(samples), rate)
    assert np.array_equal(np.stack([w.samples for w in consecutive]), split_windows(samples, rate))
    assert [(w.start_s, w.end_s) for w in consecutive] == [(0, 30), (30, 60), (60, 90), (90, 95)]
    hopped = list(rec.stream_windows(path, hop_s=10))
    assert len(hopped) == 1 + math.ceil((95 - 30) / 10) == rec.window_count(len(samples), rate, 10)
    assert [w.start_s for w in hopped] == [0, 10, 20, 30, 40, 50, 60, 70]
    assert hopped[-1].end_s == 95 and hopped[3].end_s == 60
    assert np.array_equal(hopped[1].samples, samples[10 * RATE: 40 * RATE])
    assert np.all(hopped[-1].samples[25 * RATE:] == 0)          # padded with silence past the end
    assert len(list(rec.stream_windows(path, hop_s=45))) == 3    # gaps: 0, 45, 90
    with pytest.raises(ValueError, match="hop"):
        list(rec.stream_windows(path, hop_s=0))


def test_reading_holds_one_window_at_most(tmp_path, monkeypatch):
    """Memory independent of length: no read asks for more than one window of samples."""
    path = tmp_path / "long.wav"
    sf.write(path, _noise(200), RATE)
    asked = []
    original = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    windows = sum(1 for _ in rec.stream_windows(path, hop_s=15))
    assert windows == 1 + math.ceil((200 - 30) / 15)
    assert len(asked) == windows and 0 < max(asked) <= 30 * RATE


def test_out_of_scale_values_are_flagged_and_clamp_is_recorded():
    from soundaq.models_zoo.predict import clip_result, results_frame

    outs = {"scene_probabilities": np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]),
            "event_probabilities": np.full((2, 15), 0.5),
            "qualities": np.array([[6.5, 3, 3, 3, 3, 3, 3, 0.5], [4.0, 3, 3, 3, 3, 3, 3, 2.0]]),
            "isop": np.array([1.4, 0.2]), "isoe": np.array([0.0, -0.3])}
    raw = clip_result("c", "m", outs)
    assert raw["ratings"] == "raw" and "raw" not in raw
    assert raw["windows"][0]["out_of_scale"] == ["pleasant", "monotonous", "isop"]
    assert raw["windows"][1]["out_of_scale"] == []
    assert raw["qualities"]["pleasant"] == pytest.approx(5.25) and raw["out_of_scale"] == ["pleasant"]
    clamped = clip_result("c", "m", outs, clamp=True)
    assert clamped["ratings"] == "clamped"
    assert clamped["windows"][0]["qualities"]["pleasant"] == 5.0 and clamped["windows"][0]["isop"] == 1.0
    assert clamped["windows"][0]["raw"]["qualities"]["pleasant"] == 6.5 and clamped["windows"][0]["raw"]["isop"] == 1.4
    assert clamped["windows"][0]["out_of_scale"] == ["pleasant", "monotonous", "isop"]   # flags from the raw values
    assert clamped["qualities"]["pleasant"] == pytest.approx(4.5)                         # mean of clamped windows
    assert clamped["raw"]["qualities"]["pleasant"] == pytest.approx(5.25)
    flat = results_frame([clamped])
    assert flat["out_of_scale"].tolist() == ["pleasant", "pleasant;monotonous;isop", ""]
    assert flat["raw_pleasant"].tolist() == pytest.approx([5.25, 6.5, 4.0])
    assert set(flat["ratings"]) == {"clamped"}
    assert "raw_pleasant" not in results_frame([raw]).columns


def test_analysis_folder_of_two_recordings(tmp_path, capsys, off_scale):
    """`soundaq predict --out DIR --hop 20 --clamp` on two recordings: time series, summaries, report, figures."""
    sf.write(tmp_path / "site_a.wav", _noise(70, seed=1), RATE)
    sf.write(tmp_path / "site_b.flac", _noise(35, seed=2, channels=2), RATE)
    out = tmp_path / "analysis"
    code, _, err = _cli(capsys, "predict", tmp_path / "site_a.wav", tmp_path / "site_b.flac", "--checkpoint", off_scale,
                        "--hop", "20", "--out", out, "--no-progress")
    assert code == 0, err
    series = pd.read_csv(out / "timeseries.csv", keep_default_na=False)
    assert series["recording"].tolist() == ["site_a"] * 3 + ["site_b"] * 2
    assert series["window"].tolist() == [0, 1, 2, 0, 1]
    assert series["start_s"].tolist() == [0, 20, 40, 0, 20] and series["end_s"].tolist() == [30, 50, 70, 30, 35]
    assert list(series.columns[:4]) == ["recording", "window", "start_s", "end_s"]
    assert (series["pleasant"] > 5).all() and set(series["ratings"]) == {"raw"}
    assert all("pleasant" in flags.split(";") for flags in series["out_of_scale"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ratings"] == "raw" and summary["hop_s"] == 20 and summary["windows"] == 5
    assert summary["iso_coordinates"] == "the net's ISOP/ISOE outputs, raw"
    assert summary["out_of_scale"]["pleasant"]["windows"] == 5
    assert summary["out_of_scale"]["pleasant"]["max"] == pytest.approx(series["pleasant"].max())
    assert [r["recording"] for r in summary["recordings"]] == ["site_a", "site_b"]
    per = pd.read_csv(out / "recordings.csv")
    assert per["windows"].tolist() == [3, 2] and per["duration_s"].tolist() == [70, 35]
    report = (out / "report.md").read_text()
    assert "ratings: **raw**" in report and "| pleasant | 1 to 5 | 5 |" in report
    figures = {p.name for p in (out / "figures").iterdir()}
    for site in ("site_a", "site_b"):
        for kind in ("trajectory", "qualities", "events", "density"):
            assert {f"{site}_{kind}.png", f"{site}_{kind}.pdf"} <= figures
    assert {"sites.png", "sites.pdf"} <= figures
    try:
        import pyarrow  # noqa: F401
        assert pd.read_parquet(out / "timeseries.parquet").shape == series.shape
    except ImportError:
        assert not (out / "timeseries.parquet").exists()
        assert "pyarrow is not installed" in report and "pyarrow is not installed" in err

    # clamp (--clamp): clipped values, the raw ones kept, and the use recorded everywhere
    from soundaq.evaluation.recording_report import write_analysis
    from soundaq.models_zoo.predict import predict_files

    results, _ = predict_files([tmp_path / "site_a.wav"], off_scale, hop_s=20, clamp=True)
    write_analysis(results, out / "clamped", checkpoint=off_scale, hop_s=20, clamp=True, figures=False)
    clamped = pd.read_csv(out / "clamped" / "timeseries.csv", keep_default_na=False)
    assert (clamped["pleasant"] == 5.0).all() and (clamped["isop"] <= 1.0).all()
    assert np.allclose(clamped["raw_pleasant"], series["pleasant"][:3], atol=1e-6)
    assert set(clamped["ratings"]) == {"clamped"} and (clamped["out_of_scale"] != "").all()
    summary = json.loads((out / "clamped" / "summary.json").read_text())
    assert summary["ratings"] == "clamped" and summary["iso_coordinates"].endswith("clamped to [-1, 1]")
    assert summary["out_of_scale"]["pleasant"]["windows"] == 3     # counted on the raw values
    assert "ratings: **clamped**" in (out / "clamped" / "report.md").read_text()


def test_hop_on_features_and_bad_hops_are_one_line(tmp_path, capsys, ad_cnn_checkpoint, sample_clip_dir):
    mel = np.load(sample_clip_dir / "reference_log_mel.npy").astype(np.float32)
    np.savez(tmp_path / "clip.npz", mel=mel[None])
    code, _, err = _cli(capsys, "predict", tmp_path / "clip.npz", "--checkpoint", ad_cnn_checkpoint, "--hop", "10")
    assert code == 2 and "clip.npz" in err and "--hop 10 needs the audio" in err   # its only input: exit 2
    for hop in ("0", "-5", "nan"):
        code, _, err = _cli(capsys, "predict", tmp_path / "clip.npz", "--checkpoint", ad_cnn_checkpoint, "--hop", hop)
        assert code == 2 and "--hop" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "predict", tmp_path / "clip.npz", "--checkpoint", ad_cnn_checkpoint,
                        "--out", tmp_path / "x.txt")
    assert code == 2 and "FILE.json, FILE.csv or a folder" in err


def test_each_window_is_the_model_on_that_30_s_clip(tmp_path, ad_cnn_checkpoint):
    """A hopped window's prediction equals predicting the same 30 s cut out as a clip of its own."""
    from soundaq.models_zoo.predict import predict_files

    x = _noise(50, seed=3)
    sf.write(tmp_path / "long.wav", x, RATE, subtype="FLOAT")
    sf.write(tmp_path / "cut.wav", x[10 * RATE: 40 * RATE], RATE, subtype="FLOAT")
    (long,), _ = predict_files([tmp_path / "long.wav"], ad_cnn_checkpoint, hop_s=10)
    (cut,), _ = predict_files([tmp_path / "cut.wav"], ad_cnn_checkpoint)
    assert [w["start_s"] for w in long["windows"]] == [0, 10, 20]
    for q in QUALITIES:
        assert long["windows"][1]["qualities"][q] == pytest.approx(cut["qualities"][q], abs=1e-5)
    assert long["windows"][1]["isop"] == pytest.approx(cut["isop"], abs=1e-5)


def test_recordings_with_one_stem_stay_apart(tmp_path, capsys, ad_cnn_checkpoint):
    """site_a/10.flac and site_b/10.flac (and a.ogg beside a.flac) were merged into one two-window
    recording "10" in recordings.csv and the figures (a new-user trial); ids now tell them apart."""

    from soundaq.models_zoo.recording import recording_ids

    for folder, seed in (("site_a", 1), ("site_b", 2)):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "10.flac", _noise(12.0, seed), RATE)
    inputs = [tmp_path / "site_a" / "10.flac", tmp_path / "site_b" / "10.flac"]
    code, _, err = _cli(capsys, "predict", *inputs, "--checkpoint", ad_cnn_checkpoint, "--out", tmp_path / "out",
                        "--no-progress")
    assert code == 0, err
    recs = pd.read_csv(tmp_path / "out" / "recordings.csv")
    assert list(recs["recording"]) == ["site_a/10.flac", "site_b/10.flac"] and list(recs["windows"]) == [1, 1]
    assert recs["pleasant"].iloc[0] != recs["pleasant"].iloc[1]
    assert recording_ids(["x/a.ogg", "x/a.flac", "y/b.wav"]) == ["a.ogg", "a.flac", "b"]
    # a folder stands for its audio (and .npz) files, as in `soundaq features`
    code, _, err = _cli(capsys, "predict", tmp_path / "site_a", "--checkpoint", ad_cnn_checkpoint, "--out",
                        tmp_path / "folder.csv", "--no-progress")
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "folder.csv", dtype={"clip": str})["clip"].unique()) == ["10"]

