"""ISO 532-1 time-varying loudness: the fast backend against mosqito (the reference implementation)
and against the release's ISO-program output for the sample clip.

mosqito costs about 1.3 s of CPU per second of signal, so the fast tests compare on short generated
signals; the full 30-s clip through mosqito is a slow test.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from loudness_signals import at_db, pink, tone
from scipy import signal as sps

from soundaq.models_zoo.features import Calibration, LevelRangeError, load_audio, loudness
from soundaq.models_zoo.features.iso532 import fft_resample

CLIP = "fold_1_participant_00056_stimulus_13.flac"
CALIBRATION = "calibration_sine_1kHz_60dB.wav"
MEAN_TOL, MAX_TOL = 0.005, 0.05   # sone, from the issue


def bursts(rate: int = 48000) -> np.ndarray:
    """1 kHz at 70 dB: 50 ms on / 150 ms off, 5 ms raised-cosine ramps, 0.6 s in all."""
    x = tone(1000, 70, 0.6, rate)
    t = np.arange(x.size) / rate
    phase = np.mod(t, 0.2)
    ramp = 0.005
    env = np.clip(np.minimum(phase, 0.05 - phase) / ramp, 0, 1) * (phase < 0.05)
    return x * (0.5 - 0.5 * np.cos(np.pi * env))


SIGNALS = {
    "tone 1 kHz 40 dB": (lambda: tone(1000, 40, 0.3), 48000),
    "tone 1 kHz 60 dB": (lambda: tone(1000, 60, 0.3), 48000),
    "tone 1 kHz 80 dB": (lambda: tone(1000, 80, 0.3), 48000),
    "white noise 70 dB": (lambda: at_db(np.random.default_rng(1).standard_normal(24000 + 7), 70), 48000),
    "pink noise 60 dB": (lambda: pink(0.5, 60, 48000, 2), 48000),
    "tone bursts 70 dB": (bursts, 48000),
    "silence": (lambda: np.zeros(24000), 48000),
    "pink noise 65 dB at 44.1 kHz": (lambda: pink(0.5, 65, 44100, 3), 44100),
    "low tone 100 Hz 85 dB at 44.1 kHz": (lambda: tone(100, 85, 0.4, 44100), 44100),
}


@pytest.mark.parametrize("name", list(SIGNALS))
def test_fast_matches_mosqito_on_generated_signals(name):
    make, rate = SIGNALS[name]
    x = make()
    fast = loudness(x, rate)
    ref = loudness(x, rate, backend="mosqito")
    n48 = x.size if rate == 48000 else int(48000 * x.size / rate)
    assert fast.shape == ref.shape == (math.ceil(math.ceil(n48 / 24) / 4),)
    diff = np.abs(fast - ref)
    assert diff.mean() <= MEAN_TOL and diff.max() <= MAX_TOL, (name, diff.mean(), diff.max())
    if name == "silence":
        assert not fast.any()
    else:
        assert fast.max() > 0.1


def test_diffuse_field_matches_mosqito():
    x = pink(0.3, 70, 48000, 4)
    fast = loudness(x, 48000, field="diffuse")
    ref = loudness(x, 48000, backend="mosqito", field="diffuse")
    assert np.abs(fast - ref).max() <= MAX_TOL
    assert fast[-20:].mean() != pytest.approx(loudness(x, 48000)[-20:].mean(), abs=0.05)


def test_loudness_scale_of_a_1khz_tone():
    """The definition of the sone: a 1 kHz 40 dB free-field tone is 1 sone; +10 dB doubles it (above 40 phon)."""
    steady = {db: loudness(tone(1000, db, 1.0), 48000)[-100:].mean() for db in (40, 50, 60, 70)}
    assert steady[40] == pytest.approx(1.0, abs=0.01)
    for db in (50, 60, 70):
        assert steady[db] / steady[db - 10] == pytest.approx(2.0, rel=0.06)


@pytest.fixture(scope="module")
def clip_pascals(sample_clip_dir):
    samples, rate = load_audio(sample_clip_dir / CLIP)
    return samples * Calibration.from_recording(sample_clip_dir / CALIBRATION).pascal_per_unit, rate


@pytest.fixture(scope="module")
def reference_loudness(sample_clip_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference .npy was written by Python 2
        ref = np.load(sample_clip_dir / "reference_loudness_iso532_1.npy")
    assert ref.shape == (15000, 1)
    return ref[:, 0]


def test_sample_clip_matches_the_iso_program(clip_pascals, reference_loudness):
    pascals, rate = clip_pascals
    fast = loudness(pascals, rate)
    assert fast.shape == (15000,)
    diff = np.abs(fast - reference_loudness)
    assert diff.mean() <= MEAN_TOL and diff.max() <= MAX_TOL, (diff.mean(), diff.max())


def test_sample_clip_excerpt_matches_mosqito(clip_pascals):
    """1 s from the middle of the real clip (speech and birds), through both backends."""
    pascals, rate = clip_pascals
    part = pascals[12 * rate: 13 * rate]
    diff = np.abs(loudness(part, rate) - loudness(part, rate, backend="mosqito"))
    assert diff.mean() <= MEAN_TOL and diff.max() <= MAX_TOL, (diff.mean(), diff.max())


@pytest.mark.slow
def test_sample_clip_mosqito_full(clip_pascals, reference_loudness):
    """The whole 30-s clip through mosqito (about 40 s): fast vs mosqito and mosqito vs the ISO program."""
    pascals, rate = clip_pascals
    fast = loudness(pascals, rate)
    ref = loudness(pascals, rate, backend="mosqito")
    diff = np.abs(fast - ref)
    assert diff.mean() <= MEAN_TOL and diff.max() <= MAX_TOL, (diff.mean(), diff.max())
    iso = np.abs(ref - reference_loudness)
    assert iso.mean() < 0.001 and iso.max() < 0.03


@pytest.mark.parametrize("n,m", [(1000, 1088), (1001, 1089), (1000, 1089), (1001, 1088),
                                 (1089, 1000), (1088, 1001), (1089, 1001), (1088, 1000), (441, 441)])
def test_fft_resample_equals_scipy(n, m):
    x = np.random.default_rng(n * m).standard_normal(n)
    np.testing.assert_allclose(fft_resample(x, m), sps.resample(x, m), rtol=1e-10, atol=1e-12)


def test_rates_above_48k_are_brought_down_first():
    x = tone(1000, 60, 0.25, 96000)
    fast = loudness(x, 96000)
    ref = loudness(x, 96000, backend="mosqito")
    assert fast.shape == ref.shape == (125,)
    assert np.abs(fast - ref).max() <= MAX_TOL
    same = loudness(tone(1000, 60, 0.25, 48000), 48000)
    assert np.abs(fast - same)[25:].max() < 0.02


def test_too_loud_is_a_level_range_error():
    x = tone(100, 125, 0.1)
    with pytest.raises(LevelRangeError, match="120 dB"):
        loudness(x, 48000)
    with pytest.raises(LevelRangeError, match="120 dB"):
        loudness(x, 48000, backend="mosqito")


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        loudness(np.zeros(480), 48000, backend="nope")
    with pytest.raises(ValueError, match="mono"):
        loudness(np.zeros((2, 480)), 48000)
    with pytest.raises(ValueError, match="empty"):
        loudness(np.zeros(0), 48000)
    with pytest.raises(ValueError, match="field"):
        loudness(np.zeros(480), 48000, field="pressure")
