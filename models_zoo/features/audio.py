"""Reading user audio and calibrating it to pascals.

Every failure to read a file is an :class:`AudioError` whose message names the file and the fix;
it is a :class:`soundaq.base.errors.UserError`, so any ``soundaq`` command prints it as one line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundaq.base.errors import UserError
from soundaq.models_zoo.features.opener import (  # noqa: F401  (re-exported: the home of reading audio)
    EXACT_IN_FLOAT32,
    AudioError,
    AudioSource,
    AudioWarning,
    downmix,
    existing_file,
    open_audio,
    parse_channels,
)

#: Reference sound pressure for dB SPL (20 micropascal).
P_REF = 20e-6

#: The ARAUS calibration: a 1 kHz tone recorded at 60 dB SPL whose RMS is 0.0070527 in full-scale
#: units, i.e. a signal of RMS 1.0 corresponds to 103.033 dB SPL. Used for user audio that comes
#: without a calibration recording, so that audio levelled like ARAUS is treated as ARAUS was.
ARAUS_DBFS_OFFSET = 103.0329


def load_audio(path: Path | str, span: tuple[float, float] | None = None,
               channels: str | tuple[int, ...] = "auto") -> tuple[np.ndarray, int]:
    """Read any file libsndfile understands (WAV, FLAC, OGG, RF64, W64, ...), or a window of it.

    The file is opened by :func:`open_audio` (the one opener every command uses: header checks and
    repairs, the channel policy); with ``span`` only that window is read from disk (seek + read), so
    memory follows the window, not the recording.

    Args:
        path: the audio file.
        span: ``(start_s, end_s)`` in seconds, or None for the whole file; a window reaching past the
            end is cut at the end.
        channels: the channel policy (:func:`parse_channels`): ``auto`` (default), ``mean`` or ``1,2``.

    Returns:
        ``(samples, rate)``: float64 mono samples ``[n]`` in full-scale units (1.0 = digital full
        scale; :class:`Calibration` turns them into pascals) and the sample rate in Hz.

    Raises:
        AudioError: a missing, unreadable, empty or non-finite file, a window after its end (one
        line naming it and the fix).
    """
    source = open_audio(path, channels)
    start, count = 0, source.frames
    if span is not None:
        start, stop = int(round(span[0] * source.rate)), int(round(span[1] * source.rate))
        if start >= source.frames:
            raise AudioError(source.path, f"window {span[0]:g}-{span[1]:g} s starts after the recording's end "
                                          f"({source.duration_s:.1f} s)", "pick a window inside it")
        count = min(stop, source.frames) - start
    mono = source.read(start, count)
    if not np.isfinite(mono).all():   # a NaN or Inf in any channel reaches the average
        bad = int(mono.size - np.isfinite(mono).sum())
        raise AudioError(source.path, f"has {bad} NaN/Inf samples",
                         "re-export the audio; NaN/Inf cannot be turned into features")
    return mono, source.rate


def rms(samples: np.ndarray) -> float:
    """Root mean square of ``samples`` (any shape, computed in float64), in the samples' unit."""
    return float(np.sqrt(np.mean(np.square(np.asarray(samples, dtype=np.float64)))))


@dataclass(frozen=True)
class Calibration:
    """How full-scale sample values map to sound pressure: ``pascals = samples * pascal_per_unit``."""

    pascal_per_unit: float
    source: str = "explicit"

    def __post_init__(self):
        if not (math.isfinite(self.pascal_per_unit) and self.pascal_per_unit > 0):
            raise UserError(f"calibration: pascal_per_unit must be a positive number, got {self.pascal_per_unit}")

    @classmethod
    def from_recording(cls, path: Path | str, db_spl: float = 60.0) -> Calibration:
        """A recording of a tone (any signal) whose level is ``db_spl`` dB SPL, made with the same chain.

        As the release: ``pascals = samples * p_rms / rms(calibration)``; for 60 dB SPL p_rms = 0.02 Pa.
        """
        samples, _ = load_audio(path)
        level = rms(samples)
        if level <= 0:
            raise AudioError(path, "calibration recording is silent", "record the calibration tone again")
        p_rms = P_REF * 10.0 ** (db_spl / 20.0)
        return cls(p_rms / level, source=f"recording {Path(path).name} at {db_spl:g} dB SPL")

    @classmethod
    def from_dbfs_offset(cls, db: float) -> Calibration:
        """A signal whose RMS is 1.0 (full scale units) is ``db`` dB SPL."""
        return cls(P_REF * 10.0 ** (db / 20.0), source=f"dBFS offset {db:g} dB (RMS 1.0 = {db:g} dB SPL)")

    @classmethod
    def default(cls) -> Calibration:
        """The default for user audio: the ARAUS calibration (RMS 1.0 = 103.033 dB SPL)."""
        return cls.from_dbfs_offset(ARAUS_DBFS_OFFSET)

    @property
    def db_offset(self) -> float:
        """DB SPL of a signal with RMS 1.0."""
        return 20.0 * math.log10(self.pascal_per_unit / P_REF)

    def key(self) -> str:
        """Stable text for cache keys (17 significant digits: distinct factors give distinct keys)."""
        return f"{self.pascal_per_unit:.17g}"
