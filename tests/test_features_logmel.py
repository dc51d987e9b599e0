"""Log-mel: the release's feature of the sample clip, and librosa as an independent implementation."""
from __future__ import annotations

import numpy as np
import pytest

from soundaq.models_zoo.features import load_audio, log_mel, logmel

CLIP = "fold_1_participant_00056_stimulus_13.flac"


@pytest.fixture(scope="module")
def sample(sample_clip_dir):
    return load_audio(sample_clip_dir / CLIP)


def test_sample_clip_matches_the_release(sample, sample_clip_dir):
    samples, rate = sample
    assert rate == 44100
    ours = log_mel(samples, rate)
    ref = np.load(sample_clip_dir / "reference_log_mel.npy")
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (3001, 64)
    diff = np.abs(ours.astype(np.float64) - ref)
    assert diff[:, :62].mean() <= 0.05, diff[:, :62].mean()
    assert diff.mean() <= 0.1, diff.mean()
    # the bins below the resampler's transition band agree much better than the issue asks
    assert diff[:, :60].mean() < 0.04


def test_filterbank_equals_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000, htk=False, norm="slaney")
    np.testing.assert_allclose(logmel.mel_filterbank(), ref, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_equals_librosa_pipeline(rate):
    """Same recipe built from librosa calls (soxr_hq resampling, reflect-padded STFT, power_to_db)."""
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(rate)
    t = np.arange(int(2.3 * rate)) / rate
    x = 0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t) * (t > 1.0)
    y = librosa.resample(x, orig_sr=rate, target_sr=16000, res_type="soxr_hq")
    spec = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=160, window="hann", center=True,
                                          pad_mode="reflect", power=2.0, n_mels=64, fmin=50, fmax=8000)
    ref = librosa.power_to_db(spec, ref=1.0, amin=1e-10, top_db=None).T
    ours = log_mel(x, rate)
    assert ours.shape == ref.shape == (1 + y.size // 160, 64)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_thirty_seconds_give_3001_frames_at_any_rate():
    for rate in (8000, 44100, 96000):
        assert log_mel(np.zeros(30 * rate), rate).shape == (3001, 64)


def test_silence_is_the_floor():
    out = log_mel(np.zeros(16000), 16000)
    assert np.all(out == np.float32(-100.0))


def test_tone_lands_in_its_band():
    rate = 16000
    t = np.arange(rate) / rate
    out = log_mel(np.sin(2 * np.pi * 1000 * t), rate)
    centres = logmel.mel_to_hz(np.linspace(logmel.hz_to_mel(50.0), logmel.hz_to_mel(8000.0), 66))[1:-1]
    assert abs(centres[int(out[50:-50].mean(axis=0).argmax())] - 1000.0) < 60.0


def test_rejects_multichannel():
    with pytest.raises(ValueError, match="mono"):
        log_mel(np.zeros((2, 16000)), 16000)
