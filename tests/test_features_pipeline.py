"""Audio reading, calibration, 30-s windowing and the content-keyed feature cache."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from soundaq.base.errors import UserError
from soundaq.models_zoo.features import (
    ARAUS_DBFS_OFFSET,
    AudioError,
    Calibration,
    FeatureCache,
    clip_features,
    load_audio,
    log_mel,
    loudness,
    split_windows,
)
from soundaq.models_zoo.features import cache as cache_mod

CAL = "calibration_sine_1kHz_60dB.wav"


def noise(seconds: float, rate: int, channels: int = 1, seed: int = 0, amp: float = 0.05) -> np.ndarray:
    x = amp * np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))
    return x[:, 0] if channels == 1 else x


# -- load_audio --------------------------------------------------------------------------------------
@pytest.mark.parametrize("subtype,rate,channels", [("PCM_16", 22050, 2), ("PCM_24", 48000, 1),
                                                   ("FLOAT", 44100, 3), ("PCM_U8", 8000, 1),
                                                   ("PCM_24", 44100, 2), ("PCM_32", 16000, 2),
                                                   ("DOUBLE", 32000, 2), ("FLOAT", 48000, 2)])
def test_load_any_depth_rate_and_channels(tmp_path, subtype, rate, channels):
    data = np.clip(noise(0.2, rate, channels, amp=0.2), -0.9, 0.9)
    path = tmp_path / ("x.wav" if subtype != "PCM_24" else "x.flac")
    sf.write(path, data, rate, subtype=subtype)
    stored, _ = sf.read(path, dtype="float64", always_2d=True)
    samples, got_rate = load_audio(path)
    assert got_rate == rate and samples.dtype == np.float64 and samples.ndim == 1
    assert samples.flags.c_contiguous and samples.flags.writeable
    # bit for bit the float64 read averaged by numpy (formats read as float32 are exact in it)
    np.testing.assert_array_equal(samples, stored.mean(axis=1))
    np.testing.assert_allclose(samples, np.atleast_2d(data.T).mean(axis=0), atol=1e-2)


def _bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 16000)
    text = tmp_path / "notes.wav"
    text.write_text("these are my notes, not audio\n")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2, np.inf] * 100), 16000, subtype="FLOAT")
    good = tmp_path / "good.flac"
    sf.write(good, noise(1.0, 16000), 16000)
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(np.random.default_rng(3).integers(0, 256, 300, dtype=np.uint8)))
    return {"empty": empty, "not audio": text, "NaN": nan, "corrupt": corrupt}


def test_bad_files_are_audio_errors_naming_the_file(tmp_path):
    for why, path in {**_bad_files(tmp_path), "missing": tmp_path / "nope.wav", "folder": tmp_path}.items():
        with pytest.raises(AudioError) as err:
            load_audio(path)
        message = str(err.value)
        assert str(path) in message and "fix:" in message and "\n" not in message, (why, message)
        assert isinstance(err.value, UserError)
    with pytest.raises(AudioError, match="NaN/Inf"):
        load_audio(tmp_path / "nan.wav")
    with pytest.raises(AudioError, match="no samples"):
        load_audio(tmp_path / "empty.wav")


# -- calibration -------------------------------------------------------------------------------------
def test_calibration_from_the_release_recording(sample_clip_dir):
    cal = Calibration.from_recording(sample_clip_dir / CAL)
    samples, _ = load_audio(sample_clip_dir / CAL)
    assert cal.pascal_per_unit == pytest.approx(0.02 / np.sqrt(np.mean(samples ** 2)), rel=1e-12)
    # the default for user audio is this same calibration, stated as a dBFS offset
    assert cal.db_offset == pytest.approx(ARAUS_DBFS_OFFSET, abs=1e-3)
    assert Calibration.default().pascal_per_unit == pytest.approx(cal.pascal_per_unit, rel=1e-4)
    louder = Calibration.from_recording(sample_clip_dir / CAL, db_spl=66.0)
    assert louder.pascal_per_unit / cal.pascal_per_unit == pytest.approx(10 ** (6 / 20))


def test_calibration_from_dbfs_offset_and_errors(tmp_path):
    assert Calibration.from_dbfs_offset(93.9794).pascal_per_unit == pytest.approx(1.0, rel=1e-5)  # 1 Pa = 93.98 dB
    assert Calibration.from_dbfs_offset(100.0).db_offset == pytest.approx(100.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(UserError):
            Calibration(bad)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(1000), 48000)
    with pytest.raises(AudioError, match="silent"):
        Calibration.from_recording(silent)


def test_calibrated_tone_has_its_level():
    """A full-scale sine calibrated at +94 dB offset is 1/sqrt(2) Pa RMS -> about 91 dB -> loudness of a 91 dB tone."""
    rate = 48000
    x = np.sin(2 * np.pi * 1000 * np.arange(rate // 2) / rate)
    cal = Calibration.from_dbfs_offset(40.0 + 3.0103)  # RMS of x is -3.01 dBFS -> 40 dB SPL
    assert loudness(x * cal.pascal_per_unit, rate)[-50:].mean() == pytest.approx(1.0, abs=0.01)


# -- windowing ---------------------------------------------------------------------------------------
def test_split_windows_counts():
    assert split_windows(np.ones(30 * 100), 100).shape == (1, 3000)
    w = split_windows(np.ones(30 * 100 + 1), 100)
    assert w.shape == (2, 3000) and w[1, 0] == 1 and not w[1, 1:].any()
    assert split_windows(np.ones(5), 100).shape == (1, 3000)
    with pytest.raises(ValueError):
        split_windows(np.zeros(0), 100)


def test_short_clip_is_padded_as_audio():
    rate = 22050
    x = noise(7.3, rate, seed=5)
    mel, loud = clip_features(x, rate, Calibration.default())
    assert mel.shape == (1, 3001, 64) and loud.shape == (1, 15000, 1)
    assert mel.dtype == loud.dtype == np.float32
    padded = np.concatenate([x, np.zeros(30 * rate - x.size)])
    np.testing.assert_array_equal(mel[0], log_mel(padded, rate))
    np.testing.assert_allclose(loud[0, :, 0], loudness(padded * Calibration.default().pascal_per_unit, rate),
                               rtol=1e-6, atol=1e-6)
    # feature-domain padding would differ: the transition into silence is part of the features
    direct = log_mel(x, rate)
    assert not np.array_equal(mel[0, direct.shape[0] - 3: direct.shape[0]], direct[-3:])
    assert np.all(mel[0, -100:] == np.float32(-100.0))


def test_long_clip_gives_consecutive_windows_last_padded():
    rate = 16000
    x = noise(65.0, rate, seed=6)
    cal = Calibration.from_dbfs_offset(90.0)
    mel, loud = clip_features(x, rate, cal)
    assert mel.shape == (3, 3001, 64) and loud.shape == (3, 15000, 1)
    second = x[30 * rate: 60 * rate]
    np.testing.assert_array_equal(mel[1], log_mel(second, rate))
    np.testing.assert_allclose(loud[1, :, 0], loudness(second * cal.pascal_per_unit, rate), rtol=1e-6, atol=1e-6)
    last = np.concatenate([x[60 * rate:], np.zeros(25 * rate)])
    np.testing.assert_array_equal(mel[2], log_mel(last, rate))
    assert not mel[0].ravel().tolist() == mel[1].ravel().tolist()


# -- cache -------------------------------------------------------------------------------------------
@pytest.fixture()
def two_clips(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, noise(2.0, 16000, seed=1), 16000)
    sf.write(b, noise(2.0, 16000, seed=2), 16000)
    return a, b


def test_cache_hit_is_keyed_by_content_not_path(tmp_path, two_clips):
    a, b = two_clips
    cache = FeatureCache(tmp_path / "cache")
    first = cache.get(a)
    assert first.status == "computed" and first.sample_rate == 16000 and first.seconds == pytest.approx(2.0)
    copy = tmp_path / "elsewhere" / "renamed.wav"
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())
    again = cache.get(copy)
    assert again.status == "cached" and again.key == first.key
    np.testing.assert_array_equal(again.mel, first.mel)
    np.testing.assert_array_equal(again.loudness, first.loudness)
    assert (again.sample_rate, again.seconds) == (first.sample_rate, first.seconds)
    other = cache.get(b)
    assert other.status == "computed" and other.key != first.key
    assert not np.array_equal(other.mel, first.mel)
    # what the cache returns is what the pipeline computes
    mel, loud = clip_features(*load_audio(a), Calibration.default())
    np.testing.assert_array_equal(first.mel, mel)
    np.testing.assert_array_equal(first.loudness, loud)


def test_stale_parameters_miss_the_cache(tmp_path, two_clips, monkeypatch):
    a, _ = two_clips
    root = tmp_path / "cache"
    base = FeatureCache(root).get(a)
    recalibrated = FeatureCache(root, calibration=Calibration.from_dbfs_offset(80.0)).get(a)
    assert recalibrated.status == "computed" and recalibrated.key != base.key
    np.testing.assert_array_equal(recalibrated.mel, base.mel)          # log-mel does not see the calibration
    assert recalibrated.loudness.max() < base.loudness.max()           # loudness does
    assert FeatureCache(root, backend="mosqito").key_for_sha(base.audio_sha256) != base.key
    assert FeatureCache(root, field="diffuse").key_for_sha(base.audio_sha256) != base.key
    monkeypatch.setattr(cache_mod, "FEATURE_CODE_VERSION", "999")
    assert FeatureCache(root).key_for_sha(base.audio_sha256) != base.key
    monkeypatch.undo()
    assert FeatureCache(root).get(a).status == "cached"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong digest", "empty"])
def test_damaged_entry_is_rebuilt(tmp_path, two_clips, damage):
    a, _ = two_clips
    cache = FeatureCache(tmp_path / "cache")
    good = cache.get(a)
    entry = cache.entry_path(good.key)
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        entry.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8)))
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        with np.load(entry) as z:
            fields = {k: z[k] for k in z.files}
        fields["mel"] = fields["mel"].copy()
        fields["mel"][0, 0, 0] += 1.0
        np.savez(entry, **fields)
    rebuilt = cache.get(a)
    assert rebuilt.status == "recomputed"
    np.testing.assert_array_equal(rebuilt.mel, good.mel)
    np.testing.assert_array_equal(rebuilt.loudness, good.loudness)
    assert cache.get(a).status == "cached"
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_unwritable_cache_still_returns_features(tmp_path, two_clips):
    a, _ = two_clips
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    cache = FeatureCache(blocker)
    feats = cache.get(a)
    assert feats.mel.shape == (1, 3001, 64) and cache.write_errors


def test_cache_reports_bad_audio(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    for path in _bad_files(tmp_path).values():
        with pytest.raises(AudioError):
            cache.get(path)
    with pytest.raises(AudioError, match="not found"):
        cache.get(tmp_path / "missing.wav")


def test_no_root_computes_without_storing(tmp_path, two_clips):
    feats = FeatureCache(None).get(two_clips[0])
    assert feats.status == "computed" and feats.mel.shape == (1, 3001, 64)


def test_too_loud_for_iso532_is_an_audio_error(tmp_path):
    """A wrong calibration that puts a low tone above 120 dB is reported against the file, with a fix."""
    path = tmp_path / "hum.wav"
    rate = 16000
    sf.write(path, 0.5 * np.sin(2 * np.pi * 100 * np.arange(rate) / rate), rate)
    with pytest.raises(AudioError, match="too loud for ISO 532-1") as err:
        FeatureCache(None, calibration=Calibration.from_dbfs_offset(130.0)).get(path)
    assert str(path) in str(err.value) and "calibration" in str(err.value)
