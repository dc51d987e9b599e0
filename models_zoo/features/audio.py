"""Reading user audio and calibrating it to pascals.

Every failure to read a file is an :class:`AudioError` whose message names the file and the fix;
it is a :class:`soundaq.base.errors.UserError`, so any ``soundaq`` command prints it as one line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundaq.base.errors import UserError, first_line
from soundaq.base.filekinds import KINDS, describe, sniff

#: Reference sound pressure for dB SPL (20 micropascal).
P_REF = 20e-6

#: The ARAUS calibration: a 1 kHz tone recorded at 60 dB SPL whose RMS is 0.0070527 in full-scale
#: units, i.e. a signal of RMS 1.0 corresponds to 103.033 dB SPL. Used for user audio that comes
#: without a calibration recording, so that audio levelled like ARAUS is treated as ARAUS was.
ARAUS_DBFS_OFFSET = 103.0329


class AudioError(UserError):
    """An audio file that cannot be used: unreadable, empty, not audio, NaN/Inf samples."""

    def __init__(self, path: Path | str, problem: str, fix: str):
        self.path, self.problem, self.fix = Path(path), problem, fix
        super().__init__(f"{path}: {problem}; fix: {fix}")


def existing_file(path: Path | str) -> Path:
    """``path`` as a Path when it names a file; :class:`AudioError` (one line, the fix) when it is
    missing or a folder."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found", "check the path")
    if path.is_dir():
        kind = sniff(path)
        if kind in ("label-folder", "feature-folder"):
            raise AudioError(path, f"this looks like {describe(kind)}, not audio", KINDS[kind].goes_to)
        raise AudioError(path, "is a folder, not an audio file", "pass audio files (e.g. DIR/*.wav)")
    return path


def load_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """Read any file libsndfile understands (WAV, FLAC, OGG, ...).

    Multi-channel audio is downmixed by averaging the channels (as librosa's ``to_mono``).

    Args:
        path: the audio file.
    Returns:
        ``(samples, rate)``: float64 mono samples ``[n]`` in full-scale units (1.0 = digital full
        scale; :class:`Calibration` turns them into pascals) and the sample rate in Hz.
    Raises:
        AudioError: a missing, unreadable, empty or non-finite file (one line naming it and the fix).
    """
    import soundfile as sf

    path = existing_file(path)
    try:
        with sf.SoundFile(str(path)) as fh:
            # formats of at most 24-bit integers (or 32-bit floats) are exact in float32: half the memory
            # traffic of a float64 read, the same numbers
            exact = fh.subtype in EXACT_IN_FLOAT32
            data = fh.read(dtype="float32" if exact else "float64", always_2d=True)
            rate = fh.samplerate
    except Exception as err:  # libsndfile raises several types; all mean "not readable audio"
        kind = sniff(path)
        if kind not in ("audio", "binary", "empty", "missing", "text", "zip"):   # another kind of file soundaq knows
            raise AudioError(path, f"this looks like {describe(kind)}, not audio", KINDS[kind].goes_to) from None
        raise AudioError(path, f"not readable as audio ({first_line(err)})",
                         "convert it to WAV/FLAC/OGG (e.g. with ffmpeg) or replace the corrupt file") from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioError(path, "contains no samples", "replace it with a non-empty recording")
    if rate <= 0:
        raise AudioError(path, f"has an invalid sample rate {rate}", "re-export it with a valid rate")
    mono = downmix(data)
    if not np.isfinite(mono).all():   # a NaN or Inf in any channel reaches the average
        bad = int(data.size - np.isfinite(data).sum())
        raise AudioError(path, f"has {bad} NaN/Inf samples",
                         "re-export the audio; NaN/Inf cannot be turned into features")
    return mono, int(rate)


#: libsndfile subtypes whose samples float32 holds exactly (integers of at most 24 bits, 32-bit floats).
EXACT_IN_FLOAT32 = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "FLOAT", "ULAW", "ALAW", "DPCM_8", "DPCM_16"})


def downmix(data: np.ndarray) -> np.ndarray:
    """The average of the channels of ``data`` [n, channels], float64 [n], contiguous (a new array).

    Equal bit for bit to ``data.astype(float64).mean(axis=1)`` (librosa's ``to_mono``): two channels
    as ``(a + b) * 0.5``, the same two roundings as numpy's sum-then-halve, without its slow
    reduction over a short axis.
    """
    if data.shape[1] == 1:
        return data[:, 0].astype(np.float64)     # astype copies
    if data.shape[1] == 2:
        mono = data[:, 0].astype(np.float64)
        mono += data[:, 1]
        mono *= 0.5
        return mono
    return np.ascontiguousarray(data.astype(np.float64, copy=False).mean(axis=1))


def rms(samples: np.ndarray) -> float:
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
    def from_recording(cls, path: Path | str, db_spl: float = 60.0) -> "Calibration":
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
    def from_dbfs_offset(cls, db: float) -> "Calibration":
        """A signal whose RMS is 1.0 (full scale units) is ``db`` dB SPL."""
        return cls(P_REF * 10.0 ** (db / 20.0), source=f"dBFS offset {db:g} dB (RMS 1.0 = {db:g} dB SPL)")

    @classmethod
    def default(cls) -> "Calibration":
        """The default for user audio: the ARAUS calibration (RMS 1.0 = 103.033 dB SPL)."""
        return cls.from_dbfs_offset(ARAUS_DBFS_OFFSET)

    @property
    def db_offset(self) -> float:
        """dB SPL of a signal with RMS 1.0."""
        return 20.0 * math.log10(self.pascal_per_unit / P_REF)

    def key(self) -> str:
        """Stable text for cache keys (17 significant digits: distinct factors give distinct keys)."""
        return f"{self.pascal_per_unit:.17g}"
