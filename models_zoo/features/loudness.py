"""ISO 532-1:2017 Zwicker loudness with a selectable backend: N(t), N'(z, t), N5/N10/Nmax/mean N, stationary N.

``fast`` (default): :mod:`soundaq.models_zoo.features.iso532`, compiled loops, same numbers as mosqito.
``mosqito``: mosqito's ``loudness_zwtv`` / ``loudness_zwst``, the reference implementation (about
1-3 s of CPU per second of signal for the time-varying method).
Both take pascals at any sample rate; input is brought to 48 kHz by FFT resampling (mosqito's own
method; mosqito alone refuses rates above 48 kHz, so those are resampled here first for both).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from soundaq.models_zoo.features.iso532 import (
    BARK_AXIS,
    FS,
    LevelRangeError,
    loudness_zwst_fast,
    loudness_zwst_levels,
    loudness_zwtv_fast,
    specific_loudness_zwtv_fast,
    to_48k,
)

BACKENDS = ("fast", "mosqito")
#: Loudness values per second (one per 2 ms).
LOUDNESS_RATE = 500


def _pascals(pascals) -> np.ndarray:
    x = np.asarray(pascals, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"loudness expects a mono 1-D signal in pascals, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("loudness of an empty signal")
    return x


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown loudness backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _mosqito(name: str, pascals: np.ndarray, sample_rate: int, field: str):
    """Mosqito's ``loudness_zwtv`` or ``loudness_zwst`` (rates above 48 kHz are brought down first)."""
    from mosqito.sq_metrics import loudness_zwst, loudness_zwtv

    if field not in ("free", "diffuse"):
        raise ValueError(f"field must be 'free' or 'diffuse', got {field!r}")
    if sample_rate > FS:
        pascals, sample_rate = to_48k(pascals, sample_rate), FS
    method = loudness_zwtv if name == "zwtv" else loudness_zwst
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # mosqito prints a resampling warning
            return method(np.asarray(pascals, dtype=np.float64), sample_rate, field_type=field)
    except ValueError as err:
        if "120 dB" in str(err):
            raise LevelRangeError(str(err)) from None
        raise


def loudness(pascals, sample_rate: int, backend: str = "fast", field: str = "free") -> np.ndarray:
    """ISO 532-1 time-varying loudness N(t) in sone, one value per 2 ms, of a mono signal in pascals.

    Args:
        pascals: float [n] sound pressure (Pa) at ``sample_rate`` Hz, any rate.
        sample_rate: Hz.
        backend: "fast" or "mosqito".
        field: "free" or "diffuse".

    Returns:
        float64 [frames]; for n samples at 48 kHz frames = ceil(ceil(n / 24) / 4), 30 s give 15000.

    Raises:
        LevelRangeError: a 25-250 Hz third-octave level exceeds 120 dB.
        ValueError: not a non-empty mono signal, unknown backend or field.
    """
    x = _pascals(pascals)
    _check_backend(backend)
    if backend == "fast":
        return loudness_zwtv_fast(x, int(sample_rate), field)
    return np.asarray(_mosqito("zwtv", x, int(sample_rate), field)[0], dtype=np.float64)


def specific_loudness(pascals, sample_rate: int, backend: str = "fast", field: str = "free") -> np.ndarray:
    """ISO 532-1 time-varying specific loudness N'(z, t) in sone/Bark: float64 [240, frames].

    Row i is the critical-band rate ``BARK_AXIS[i]`` = 0.1 (i + 1) Bark (bands of 0.1 Bark), column k
    the instant k x 2 ms, the same frames as :func:`loudness`. As in the standard's program (and
    mosqito's ``loudness_zwtv``), N' is taken after the non-linear temporal decay and before the
    temporal weighting that N(t) receives, so sum(N'[:, k]) x 0.1 Bark approximates the unweighted
    total loudness, not N[k]. 30 s of signal give [240, 15000] (29 MB); cut long recordings into
    windows. The arguments (signal in pascals, sample rate, backend, field) are those of :func:`loudness`.

    Returns:
        float64 ``[240, frames]`` in sone/Bark.

    Raises:
        As :func:`loudness`.
    """
    x = _pascals(pascals)
    _check_backend(backend)
    if backend == "fast":
        return specific_loudness_zwtv_fast(x, int(sample_rate), field)[1]
    return np.asarray(_mosqito("zwtv", x, int(sample_rate), field)[1], dtype=np.float64)


@dataclass(frozen=True)
class StationaryLoudness:
    """ISO 532-1 loudness of a stationary sound: ``N`` (sone) and ``specific`` N'(z) [240] (sone/Bark)
    over ``BARK_AXIS``.
    """

    N: float
    specific: np.ndarray


def stationary_loudness(pascals, sample_rate: int, field: str = "free", backend: str = "fast") -> StationaryLoudness:
    """ISO 532-1 loudness of a stationary signal (the standard's method for stationary sounds).

    ``fast``: third-octave levels from the standard's own filter bank (Annex A.3), the mean square of
    each band over the whole signal, as the reference program computes stationary loudness from a
    time signal; ``mosqito``: mosqito's ``loudness_zwst``, whose levels come from its own IEC 61260
    third-octave filters, so the two agree to the standard's tolerance, not to the last digit.

    Args:
        pascals: [n] sound pressure in Pa.
        sample_rate: Hz.
        field: ``free`` or ``diffuse``.
        backend: ``fast`` or ``mosqito``.

    Returns:
        :class:`StationaryLoudness`: total loudness N in sone and the specific loudness [240] in
        sone/Bark.

    Raises:
        As :func:`loudness`.
    """
    x = _pascals(pascals)
    _check_backend(backend)
    if backend == "fast":
        n, spec = loudness_zwst_fast(x, int(sample_rate), field)
    else:
        n, spec, _ = _mosqito("zwst", x, int(sample_rate), field)
    return StationaryLoudness(float(n), np.asarray(spec, dtype=np.float64))


def stationary_loudness_from_levels(levels_db, field: str = "free") -> StationaryLoudness:
    """ISO 532-1 stationary loudness from 28 third-octave band levels (dB SPL, 25 Hz ... 12.5 kHz),
    e.g. measured with a class 1 sound level meter; ISO 532-1 Annex B.2 test signal 1 is such a spectrum.

    Args:
        levels_db: [28] band levels in dB SPL.
        field: ``free`` or ``diffuse``.

    Returns:
        :class:`StationaryLoudness` (N in sone, N' [240] in sone/Bark).

    Raises:
        LevelRangeError: a 25-250 Hz level above 120 dB.
        ValueError: not 28 levels, unknown field.
    """
    n, spec = loudness_zwst_levels(levels_db, field)
    return StationaryLoudness(n, spec)


@dataclass(frozen=True)
class LoudnessStatistics:
    """Percentile and summary values of a loudness time series, in sone.

    N5 / N10: the loudness exceeded during 5 % / 10 % of the time (the 95th / 90th percentiles of
    N(t); N5 is one of the psychoacoustic indicators ISO/TS 12913-3 lists); Nmax: the maximum;
    Nmean: the arithmetic mean.
    """

    N5: float
    N10: float
    Nmax: float
    Nmean: float

    def as_dict(self) -> dict[str, float]:
        """The four values by name (sone), for table rows."""
        return {"N5": self.N5, "N10": self.N10, "Nmax": self.Nmax, "Nmean": self.Nmean}


def loudness_statistics(sone) -> LoudnessStatistics:
    """N5, N10, Nmax and mean N of a loudness time series N(t) (e.g. from :func:`loudness`).

    Args:
        sone: [frames] loudness values, equally spaced in time (any of them, e.g. only the frames
            that cover a recording's real duration).

    Returns:
        :class:`LoudnessStatistics`; percentiles interpolate linearly between frames (numpy's
        default ``percentile`` method).

    Raises:
        ValueError: an empty or non-1-D series.

    >>> loudness_statistics([float(i) for i in range(101)])      # 0, 1, ..., 100 sone
    LoudnessStatistics(N5=95.0, N10=90.0, Nmax=100.0, Nmean=50.0)
    """
    n = np.asarray(sone, dtype=np.float64)
    if n.ndim != 1 or n.size == 0:
        raise ValueError(f"loudness statistics need a non-empty 1-D series, got shape {n.shape}")
    n5, n10 = np.percentile(n, [95.0, 90.0])
    return LoudnessStatistics(float(n5), float(n10), float(n.max()), float(n.mean()))


__all__ = ["BACKENDS", "BARK_AXIS", "LOUDNESS_RATE", "LevelRangeError", "LoudnessStatistics",
           "StationaryLoudness", "loudness", "loudness_statistics", "specific_loudness", "stationary_loudness",
           "stationary_loudness_from_levels"]
