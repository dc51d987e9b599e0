"""ISO 532-1:2017 time-varying loudness with a selectable backend.

``fast`` (default): :mod:`soundaq.models_zoo.features.iso532`, compiled loops, same numbers as mosqito.
``mosqito``: mosqito's ``loudness_zwtv``, the reference implementation (about 40 s per 30-s clip).
Both take pascals at any sample rate; input is brought to 48 kHz by FFT resampling (mosqito's own
method; mosqito alone refuses rates above 48 kHz, so those are resampled here first for both).
"""
from __future__ import annotations

import contextlib
import io

import numpy as np

from soundaq.models_zoo.features.iso532 import FS, LevelRangeError, loudness_zwtv_fast, to_48k

BACKENDS = ("fast", "mosqito")
#: Loudness values per second (one per 2 ms).
LOUDNESS_RATE = 500


def _mosqito(pascals: np.ndarray, sample_rate: int, field: str) -> np.ndarray:
    from mosqito.sq_metrics import loudness_zwtv

    if sample_rate > FS:
        pascals, sample_rate = to_48k(pascals, sample_rate), FS
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # mosqito prints a resampling warning
            n = loudness_zwtv(np.asarray(pascals, dtype=np.float64), sample_rate, field_type=field)[0]
    except ValueError as err:
        if "120 dB" in str(err):
            raise LevelRangeError(str(err)) from None
        raise
    return np.asarray(n, dtype=np.float64)


def loudness(pascals, sample_rate: int, backend: str = "fast", field: str = "free") -> np.ndarray:
    """Loudness in sone, one value per 2 ms, of a mono signal in pascals: float64 [frames].

    For n samples at 48 kHz, frames = ceil(ceil(n / 24) / 4); 30 s gives 15000.
    Raises :class:`LevelRangeError` when a 25-250 Hz third-octave level exceeds 120 dB.
    """
    x = np.asarray(pascals, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"loudness expects a mono 1-D signal in pascals, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("loudness of an empty signal")
    if backend == "fast":
        return loudness_zwtv_fast(x, int(sample_rate), field)
    if backend == "mosqito":
        return _mosqito(x, int(sample_rate), field)
    raise ValueError(f"unknown loudness backend {backend!r}; choose one of {', '.join(BACKENDS)}")
