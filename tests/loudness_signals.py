"""Test signals in pascals for the ISO 532-1 tests: tones and pink noise at a given dB SPL."""
from __future__ import annotations

import numpy as np

P_REF = 2e-5


def at_db(x: np.ndarray, db: float) -> np.ndarray:
    """Scale a signal to an RMS of ``db`` dB SPL (pascals)."""
    return x * (P_REF * 10 ** (db / 20) / np.sqrt(np.mean(x ** 2)))


def tone(freq: float, db: float, seconds: float, rate: int = 48000) -> np.ndarray:
    """A sine of ``freq`` Hz at ``db`` dB SPL."""
    t = np.arange(int(round(seconds * rate))) / rate
    return at_db(np.sin(2 * np.pi * freq * t), db)


def pink(seconds: float, db: float, rate: int = 48000, seed: int = 0) -> np.ndarray:
    """Pink noise (1/f power from the second FFT bin up, no DC) at ``db`` dB SPL."""
    n = int(round(seconds * rate))
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    return at_db(np.fft.irfft(spec, n), db)
