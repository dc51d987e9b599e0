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
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mel = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep, mel)


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int = MEL_SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Triangular mel filters [n_mels, n_fft // 2 + 1], each scaled to unit area (Slaney norm)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@functools.lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)  # periodic (DFT-even) Hann
    w.setflags(write=False)
    return w


def resample(samples: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """SoX HQ resampling (librosa's default resampler); identity when the rates agree.

    As ``librosa.resample``, the result has ``ceil(n * target / rate)`` samples (soxr's output is
    zero-padded or cut to that length), so frame counts equal the original pipeline's for any length.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if sample_rate == target_rate:
        return samples
    import soxr

    out = soxr.resample(samples, sample_rate, target_rate, quality="HQ")
    size = math.ceil(samples.size * target_rate / sample_rate)
    if out.size < size:
        out = np.pad(out, (0, size - out.size))
    return out[:size]


def power_spectrogram(samples16k: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """|STFT|^2, centred frames with reflect padding: [frames, n_fft // 2 + 1]."""
    x = np.asarray(samples16k, dtype=np.float64)
    pad = n_fft // 2
    if x.size <= pad:
        # reflect padding needs more samples than half a frame; such a signal is padded with zeros
        x = np.pad(x, (0, pad + 1 - x.size))
    x = np.pad(x, pad, mode="reflect")
    n_frames = 1 + (x.size - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(x, shape=(n_frames, n_fft), strides=(x.strides[0] * hop, x.strides[0]),
                                             writeable=False)
    spec = np.fft.rfft(frames * _hann(n_fft), axis=1)
    return spec.real ** 2 + spec.imag ** 2


def log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log-mel features of a mono signal at any rate: float32 [frames, 64] in dB (frames = 1 + n16k // 160)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1:
        raise ValueError(f"log_mel expects a mono 1-D signal, got shape {samples.shape}")
    x = resample(samples, int(sample_rate), MEL_SAMPLE_RATE)
    power = power_spectrogram(x)
    mel = power @ mel_filterbank().T
    return (10.0 * np.log10(np.maximum(mel, AMIN))).astype(np.float32)
