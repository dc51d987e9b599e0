"""Recordings as field recorders write them (issue 26, cases F3-11, F3-13, F3-15 and their kinds), read
through the one opener (``soundaq.models_zoo.features.opener``); small synthetic files made here.

* F3-11 and its kind: a WAV header never finalised (data size 0), left open (0xFFFFFFFF), wrapped past
  4 GiB, declaring more than the file holds; RF64 and Wave64 (64-bit sizes) as libsndfile reads them.
* F3-13: a 6-track file with 4 silent tracks mixes to the same signal as its mono mix (``auto``), and
  the choice is said and can be changed (``--channels mean|1,2``).
* F3-15: a window is read alone: the memory of ``load_audio(path, span)`` follows the window, not
  the file (peak allocation measured with tracemalloc on a 2-min and a 10-min sparse file).
* the rough edges of ``soundaq predict``: digital silence, a 2-ms file, clipping (a line each, the
  prediction made), a single unreadable file (exit 2), a features ``.npz``'s duration (``end_s``).
"""
from __future__ import annotations

import json
import struct
import tracemalloc
import warnings

import numpy as np
import pytest
import soundfile as sf

from soundaq.models_zoo.features import AudioError, load_audio
from soundaq.models_zoo.features.opener import AudioWarning, open_audio, parse_channels
from soundaq.models_zoo.features.wavheader import inspect_wav

RATE = 16000


def _pcm(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    x = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate))
    return (np.clip(x, -1, 1) * 32767).astype("<i2")


def _wav(path, pcm: np.ndarray, riff: int | None = None, data: int | None = None, tail: bytes = b"",
         rate: int = RATE, channels: int = 1):
    """A 16-bit PCM WAV with the RIFF and data sizes given (default: the right ones)."""
    body = pcm.tobytes()
    data = len(body) if data is None else data
    riff = 36 + len(body) + len(tail) if riff is None else riff
    head = (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
            + b"data" + struct.pack("<I", data))
    path.write_bytes(head + body + tail)
    return path


def _read(path, **kw):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        samples, rate = load_audio(path, **kw)
    return samples, rate, [str(w.message) for w in said if issubclass(w.category, AudioWarning)]


# --------------------------------------------------------------------------------------------------
# F3-11 and the kind: headers that disagree with the bytes
# --------------------------------------------------------------------------------------------------
def test_f3_11_unfinalised_header_is_read_in_full_with_one_line(tmp_path):
    pcm = _pcm(4.0)
    path = _wav(tmp_path / "rec_crashed.wav", pcm, riff=36, data=0)     # what `wave` writes before close()
    assert sf.info(str(path)).frames == 0                                # libsndfile: "no samples"
    samples, rate, notes = _read(path)
    assert rate == RATE and samples.size == pcm.size
    np.testing.assert_array_equal(samples, pcm / 32768.0)
    assert len(notes) == 1 and "rec_crashed.wav" in notes[0] and "never finalised" in notes[0]
    assert "3.9 s" not in notes[0] and "4.0 s" in notes[0] and "sox --ignore-length" in notes[0]
    assert "ffmpeg -ignore_length 1" in notes[0]


@pytest.mark.parametrize("riff, data, verdict", [(0xFFFFFFFF, 0xFFFFFFFF, "open"), (36, 0xFFFFFFFF, "open")])
def test_open_data_size_reads_what_follows(tmp_path, riff, data, verdict):
    pcm = _pcm(2.0)
    path = _wav(tmp_path / "stream.wav", pcm, riff=riff, data=data)
    assert inspect_wav(path).verdict == verdict
    samples, _, notes = _read(path)
    np.testing.assert_array_equal(samples, pcm / 32768.0)
    assert notes == []             # libsndfile read it all: nothing to say


def test_cut_short_file_is_read_as_far_as_it_goes_and_said(tmp_path):
    pcm = _pcm(2.0)
    path = _wav(tmp_path / "copy.wav", pcm, data=pcm.nbytes * 3)
    samples, _, notes = _read(path)
    np.testing.assert_array_equal(samples, pcm / 32768.0)
    assert len(notes) == 1 and "cut short" in notes[0] and "declares 6.0 s" in notes[0] and "holds 2.0 s" in notes[0]


def test_chunk_after_the_data_is_not_audio(tmp_path):
    pcm = _pcm(1.0)
    tail = b"LIST" + struct.pack("<I", 4) + b"INFO"
    path = _wav(tmp_path / "tagged.wav", pcm, tail=tail)
    assert inspect_wav(path).verdict == "ok"
    samples, _, notes = _read(path)
    assert samples.size == pcm.size and notes == []


def test_wav_over_4_gib_with_a_wrapped_size_is_read_whole(tmp_path):
    """The data size field holds the length modulo 2^32: libsndfile reads the remainder only."""
    rate, extra = 48000, 96000 * 2                   # 2 s of 16-bit mono past 4 GiB
    total = 2**32 + extra
    path = tmp_path / "long.wav"
    head = (b"RIFF" + struct.pack("<I", (36 + total) % 2**32) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", total % 2**32))
    tone = (0.25 * 32767 * np.sin(np.arange(rate) / 7.0)).astype("<i2")
    with open(path, "wb") as fh:      # sparse: a hole of zeros, then one second of tone at the very end
        fh.write(head)
        fh.seek(44 + total - tone.nbytes)
        fh.write(tone.tobytes())
    assert sf.info(str(path)).frames == extra // 2                     # 2 s of a 12.4-hour file
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        source = open_audio(path)
    assert source.frames == total // 2 and "modulo 4 GiB" in str(said[0].message)
    last = source.read(source.frames - rate, rate)                     # seek to the end: the tone is there
    np.testing.assert_array_equal(last, tone / 32768.0)


@pytest.mark.parametrize("fmt", ["RF64", "W64"])
def test_64_bit_containers_read_as_wav(tmp_path, fmt):
    x = (_pcm(1.0, seed=3) / 32768.0).reshape(-1, 1).repeat(2, axis=1)
    sf.write(str(tmp_path / "a.wav"), x, RATE, subtype="PCM_16")
    sf.write(str(tmp_path / f"a.{fmt.lower()}"), x, RATE, subtype="PCM_16", format=fmt)
    plain, _, _ = _read(tmp_path / "a.wav")
    other, _, notes = _read(tmp_path / f"a.{fmt.lower()}")
    np.testing.assert_array_equal(plain, other)
    assert notes == []


def test_unfinalised_header_in_a_format_not_readable_headerless_is_one_line(tmp_path):
    path = _wav(tmp_path / "adpcm.wav", _pcm(1.0), riff=36, data=0)
    raw = bytearray(path.read_bytes())
    raw[20:22] = struct.pack("<H", 2)       # format tag 2: MS ADPCM
    path.write_bytes(bytes(raw))
    with pytest.raises(AudioError, match=r"adpcm\.wav: .*never finalised.*fix: repair the header with `sox --ignore"):
        load_audio(path)


# --------------------------------------------------------------------------------------------------
# F3-13: the channel policy
# --------------------------------------------------------------------------------------------------
def _six(tmp_path, seconds: float = 2.0):
    rng = np.random.default_rng(5)
    stereo = 0.1 * rng.standard_normal((int(seconds * RATE), 2))
    sf.write(str(tmp_path / "mono.wav"), stereo.mean(axis=1), RATE, subtype="FLOAT")
    six = np.zeros((stereo.shape[0], 6))
    six[:, :2] = stereo
    sf.write(str(tmp_path / "six.wav"), six, RATE, subtype="FLOAT")
    return tmp_path / "mono.wav", tmp_path / "six.wav"


def test_f3_13_silent_tracks_are_left_out_and_named(tmp_path):
    mono, six = _six(tmp_path)
    a, _, _ = _read(mono)
    b, _, notes = _read(six)
    np.testing.assert_allclose(b, a, atol=1e-7)                         # the same signal (float32 rounding)
    assert len(notes) == 1
    assert "six.wav" in notes[0] and "3, 4, 5, 6 of 6" in notes[0] and "digitally silent" in notes[0]
    assert "9.5 dB" in notes[0] and "--channels mean" in notes[0] and "--channels 1,2" in notes[0]


def test_channel_policies_mean_and_tracks(tmp_path):
    mono, six = _six(tmp_path)
    a, _, _ = _read(mono)
    every, _, notes = _read(six, channels="mean")                       # the release's downmix: 9.5 dB lower
    assert notes == []
    level = 20 * np.log10(np.sqrt(np.mean(every ** 2)) / np.sqrt(np.mean(a ** 2)))
    assert level == pytest.approx(20 * np.log10(2 / 6), abs=1e-3)
    left, _, _ = _read(six, channels="1")
    assert not np.allclose(left, a)
    with pytest.raises(AudioError, match=r"six\.wav: has 6 channel\(s\); --channels 7 .*fix: choose among tracks 1-6"):
        load_audio(six, channels="7")


def test_all_silent_channels_are_all_kept(tmp_path):
    sf.write(str(tmp_path / "quiet.wav"), np.zeros((800, 4)), RATE)
    source = open_audio(tmp_path / "quiet.wav")
    assert source.keep == (0, 1, 2, 3) and source.notes == ()


@pytest.mark.parametrize("text, want", [("auto", "auto"), ("MEAN", "mean"), ("1,2", (1, 2)), (" 3 ", (3,))])
def test_parse_channels(text, want):
    assert parse_channels(text) == want


@pytest.mark.parametrize("text", ["", "0", "1,1", "left", "1;2"])
def test_parse_channels_refuses(text):
    from soundaq.base.errors import UserError

    with pytest.raises(UserError, match="fix: auto, mean, or distinct track numbers"):
        parse_channels(text)


# --------------------------------------------------------------------------------------------------
# F3-15: a window is read alone
# --------------------------------------------------------------------------------------------------
def _sparse_wav(path, seconds: int, rate: int = 48000):
    """48 kHz mono 16-bit: 60 s of noise, then a hole of zeros to ``seconds`` (as the F3-15 generator)."""
    head = _pcm(60.0, rate, seed=1)
    total = seconds * rate * 2
    _wav(path, head, riff=36 + total, data=total, rate=rate)
    with open(path, "r+b") as fh:
        fh.truncate(44 + total)
    return path


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_f3_15_window_memory_does_not_grow_with_the_file(tmp_path):
    short = _sparse_wav(tmp_path / "walk_2min.wav", 120)
    long = _sparse_wav(tmp_path / "walk_10min.wav", 600)
    window = 30 * 48000 * 8                                              # 30 s of float64: 11.5 MB
    peaks = {}
    for path in (short, long):
        got = {}
        peaks[path.name] = _peak_bytes(lambda path=path, got=got: got.update(x=load_audio(path, (20, 50))[0]))
        assert got["x"].size == 30 * 48000
    a, _ = load_audio(short, (20, 50))
    b, _ = load_audio(long, (20, 50))
    np.testing.assert_array_equal(a, b)
    assert peaks["walk_10min.wav"] < 2.5 * window, peaks                 # the whole file would be 230 MB
    assert abs(peaks["walk_10min.wav"] - peaks["walk_2min.wav"]) < 1_000_000, peaks


def test_window_after_the_end_is_one_line(tmp_path):
    path = _wav(tmp_path / "short.wav", _pcm(2.0))
    with pytest.raises(AudioError, match=r"short\.wav: window 5-10 s starts after the recording's end \(2\.0 s\)"):
        load_audio(path, (5, 10))


def test_streamed_windows_of_a_long_file_hold_one_window(tmp_path):
    from soundaq.models_zoo.recording import stream_windows

    peaks = [_peak_bytes(lambda path=path: [w.index for w in stream_windows(path)])
             for path in (_sparse_wav(tmp_path / "a.wav", 120), _sparse_wav(tmp_path / "b.wav", 600))]
    assert abs(peaks[1] - peaks[0]) < 1_000_000 and peaks[1] < 6 * 30 * 48000 * 8, peaks   # a few windows' buffers


# --------------------------------------------------------------------------------------------------
# soundaq predict: lines for weak recordings, exit codes, .npz durations; compare of F3-13
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import torch

    from soundaq.models_zoo.checkpoints import save_checkpoint
    from soundaq.models_zoo.registry import build_net

    torch.manual_seed(0)
    stats = {"log_mel": {"mean": [-40.0] * 64, "std": [10.0] * 64}, "loudness": {"mean": [10.0], "std": [3.0]}}
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "Baseline_CNN.ckpt", "Baseline_CNN",
                           build_net("Baseline_CNN").state_dict(), stats)


def _cli(argv, capsys):
    from soundaq.benchmark.cli import main

    capsys.readouterr()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.err + "".join(f"warning: {w.message}\n" for w in said if issubclass(w.category, AudioWarning))


def test_predict_says_silence_shortness_and_clipping_and_still_predicts(tmp_path, ckpt, capsys, one_torch_thread):
    sf.write(str(tmp_path / "zeros.wav"), np.zeros(RATE * 2), RATE, subtype="PCM_16")
    sf.write(str(tmp_path / "blip.wav"), 0.1 * np.ones(32), RATE, subtype="PCM_16")          # 2 ms
    loud = np.clip(3.0 * np.sin(np.arange(RATE * 2) / 5.0), -1, 1)
    sf.write(str(tmp_path / "hot.wav"), loud, RATE, subtype="PCM_16")
    rc, err = _cli(["predict", tmp_path / "zeros.wav", tmp_path / "blip.wav", tmp_path / "hot.wav",
                    "--checkpoint", ckpt, "--out", tmp_path / "p.csv", "--no-progress"], capsys)
    assert rc == 0, err
    import pandas as pd

    table = pd.read_csv(tmp_path / "p.csv")
    assert sorted(table["clip"]) == ["blip", "hot", "zeros"]
    lines = err.splitlines()
    assert [ln for ln in lines if "zeros.wav" in ln and "digital silence" in ln and "fix" in ln]
    assert [ln for ln in lines if "blip.wav" in ln and "only 2 ms of audio" in ln and "fix" in ln]
    clipped = [ln for ln in lines if "hot.wav" in ln and "clipped" in ln]
    assert len(clipped) == 1 and "fix: record with less gain" in clipped[0]
    assert not [ln for ln in lines if "hot.wav" in ln and "digital silence" in ln]


def test_predict_a_single_unreadable_file_exits_2(tmp_path, ckpt, capsys, one_torch_thread):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF" + bytes(range(200)))
    rc, err = _cli(["predict", bad, "--checkpoint", ckpt, "--out", tmp_path / "p.csv", "--no-progress"], capsys)
    assert rc == 2 and "broken.wav" in err and "fix" in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()


def test_features_of_a_single_unusable_file_exits_2(tmp_path, capsys):
    sf.write(str(tmp_path / "two.wav"), np.zeros((800, 2)), RATE)
    rc, err = _cli(["features", tmp_path / "two.wav", "--channels", "3", "--out", tmp_path / "f", "--no-cache",
                    "--no-progress"], capsys)
    assert rc == 2 and "two.wav: has 2 channel(s); --channels 3 asks for track 3" in err


def test_features_npz_stores_the_duration_so_end_s_is_right(tmp_path, ckpt, capsys, one_torch_thread):
    sf.write(str(tmp_path / "walk.wav"), 0.05 * np.random.default_rng(2).standard_normal(35 * 8000), 8000)
    rc, err = _cli(["features", tmp_path / "walk.wav", "--out", tmp_path / "f", "--no-cache", "--no-progress"], capsys)
    assert rc == 0, err
    with np.load(tmp_path / "f" / "walk.npz") as data:
        assert float(data["duration_s"]) == pytest.approx(35.0)
    rc, err = _cli(["predict", tmp_path / "f" / "walk.npz", "--checkpoint", ckpt, "--out", tmp_path / "p.json",
                    "--no-progress"], capsys)
    assert rc == 0, err
    windows = json.loads((tmp_path / "p.json").read_text())[0]["windows"]
    assert [(w["start_s"], w["end_s"]) for w in windows] == [(0.0, 30.0), (30.0, 35.0)]


def test_f3_13_compare_calls_the_mono_and_six_track_files_identical(tmp_path, ckpt, capsys, one_torch_thread):
    mono, six = _six(tmp_path, seconds=3.0)
    rc, err = _cli(["compare", mono, six, "--checkpoint", ckpt, "--out", tmp_path / "cmp", "--no-progress"], capsys)
    assert rc == 0, err
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    a, b = result["a"], result["b"]
    assert a["signal"]["level_db_spl"] == pytest.approx(b["signal"]["level_db_spl"], abs=0.01)
    assert max(abs(a["events"][k] - b["events"][k]) for k in a["events"]) < 1e-4
    assert a["isop"] == pytest.approx(b["isop"], abs=1e-4)
    assert [ln for ln in err.splitlines() if "six.wav" in ln and "digitally silent" in ln]
    rc, err = _cli(["compare", mono, six, "--channels", "mean", "--checkpoint", ckpt, "--out", tmp_path / "cmp2",
                    "--no-progress"], capsys)
    result = json.loads((tmp_path / "cmp2" / "compare.json").read_text())
    assert result["a"]["signal"]["level_db_spl"] - result["b"]["signal"]["level_db_spl"] == pytest.approx(9.54, abs=0.01)
