"""Log-mel spectrogram exactly as the original release computed it.

Recipe: mono, resampled to 16 kHz with the SoX resampler at "HQ" quality (what ``librosa.load``
uses by default since librosa 0.10), STFT with n_fft 512, hop 160, periodic Hann window, centred
with reflect padding, power spectrum, 64 Slaney-normalised mel bands 50-8000 Hz on the Slaney mel
scale, then ``10 * log10(max(x, 1e-10))``. 30 s of audio gives [3001, 64] float32.
"""
from __future__ import annotations

import functools
import math

import numpy as np

MEL_SAMPLE_RATE = 16000
N_FFT = 512
HOP = 160
N_MELS = 64
FMIN = 50.0
FMAX = 8000.0
AMIN = 1e-10
#: Resampler used before the STFT (soxr quality string).
RESAMPLER = "soxr-HQ"


def hz_to_mel(hz):
    """Slaney mel scale (librosa's, ``htk=False``): linear below 1 kHz, logarithmic above."""
    import librosa

    return librosa.hz_to_mel(np.asarray(hz, dtype=np.float64), htk=False)


def mel_to_hz(mel):
    """Inverse of :func:`hz_to_mel`: Slaney mel (librosa's, ``htk=False``) to Hz."""
    import librosa

    return librosa.mel_to_hz(np.asarray(mel, dtype=np.float64), htk=False)


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int = MEL_SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Librosa's triangular mel filters [n_mels, n_fft // 2 + 1], Slaney scale and unit-area norm."""
    import librosa

    weights = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
                                  norm="slaney", dtype=np.float64)
    weights.setflags(write=False)
    return weights


def resample(samples: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Librosa's default resampler (SoX HQ); identity when the rates agree. The result has
    ``ceil(n * target / rate)`` samples, so frame counts equal the original pipeline's for any length.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if sample_rate == target_rate:
        return samples
    import librosa

    out = librosa.resample(samples, orig_sr=sample_rate, target_sr=target_rate, res_type="soxr_hq")
    size = math.ceil(samples.size * target_rate / sample_rate)
    return np.pad(out, (0, max(0, size - out.size)))[:size]


def power_spectrogram(samples16k: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """|STFT|^2 (librosa: periodic Hann, centred frames, reflect padding): [frames, n_fft // 2 + 1]."""
    import librosa

    x = np.asarray(samples16k, dtype=np.float64)
    if x.size <= n_fft // 2:
        # reflect padding needs more samples than half a frame; such a signal is padded with zeros
        x = np.pad(x, (0, n_fft // 2 + 1 - x.size))
    spec = librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True, pad_mode="reflect")
    return (spec.real ** 2 + spec.imag ** 2).T


def log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log-mel features of a mono signal at any rate, the release's recipe.

    The signal is resampled to 16 kHz (soxr), framed with a 512-point Hann STFT at a 160-sample hop
    (10 ms), projected on 64 Slaney mel bands (50 Hz - 8 kHz, librosa) and taken as 10 log10 of the
    power floored at 1e-10 (the release's recipe; equal to the release's features in tests).

    Args:
        samples: [n] mono signal in full-scale units.
        sample_rate: its rate in Hz (any).

    Returns:
        float32 ``[frames, 64]`` in dB, frames = 1 + n16k // 160 (3001 for a 30-s clip).

    Raises:
        ValueError: not a 1-D signal.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1:
        raise ValueError(f"log_mel expects a mono 1-D signal, got shape {samples.shape}")
    x = resample(samples, int(sample_rate), MEL_SAMPLE_RATE)
    power = power_spectrogram(x)
    mel = power @ mel_filterbank().T
    return (10.0 * np.log10(np.maximum(mel, AMIN))).astype(np.float32)
