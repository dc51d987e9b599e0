"""Signal facts of a recording for ``soundaq compare``'s second tier: level, N5 loudness, spectral balance.

All three come from the features soundaq already computes for its models:

* **level**: the equivalent continuous sound pressure level L_eq (unweighted) of the calibrated
  signal, ``20 log10(p_rms / 20 uPa)`` in dB SPL (the calibration maps full-scale samples to pascals,
  :class:`soundaq.models_zoo.features.Calibration`; default: ARAUS's).
* **N5**: the percentile loudness exceeded 5 % of the time, i.e. the 95th percentile of the ISO 532-1
  time-varying loudness N(t) in sone (:func:`soundaq.models_zoo.features.loudness`, one value per
  2 ms); the statistic soundscape studies report (e.g. ISO/TS 12913-3 annex, ARAUS). Computed on the
  unpadded signal.
* **spectral balance** from the log-mel (:func:`soundaq.models_zoo.features.log_mel`, 64 Slaney mel
  bands 50-8000 Hz): each band's mean power times half its filter's width approximates the band's
  energy (Slaney filters have unit area, so overlapping halves tile the axis). The spectral
  centroid is the energy-weighted mean of the band centres (Hz); the low/high balance is
  ``10 log10(E(< 500 Hz) / E(> 2 kHz))`` in dB (band centres).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Band-centre limits of the low/high balance, Hz.
LOW_HZ, HIGH_HZ = 500.0, 2000.0


@dataclass(frozen=True)
class SignalFacts:
    """What a listener's ear gets before any model: duration, level, loudness, spectral balance.

    Attributes:
        seconds: duration analysed.
        level_db_spl: L_eq in dB SPL (unweighted).
        n5_sone: ISO 532-1 loudness exceeded 5 % of the time, sone.
        spectral_centroid_hz: energy-weighted mean mel-band centre, Hz.
        low_high_db: energy below 500 Hz over energy above 2 kHz, dB.
        clips: how many clips were pooled (1 for a clip or window).
    """

    seconds: float
    level_db_spl: float
    n5_sone: float
    spectral_centroid_hz: float
    low_high_db: float
    clips: int = 1

    def to_dict(self) -> dict:
        """The facts with floats rounded to 4 decimals (as ``compare.json`` writes them)."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _band_energies() -> tuple[np.ndarray, np.ndarray]:
    """(band centres Hz [64], energy weights [64]) of the log-mel's Slaney filters."""
    import librosa

    from soundaq.models_zoo.features import logmel

    edges = librosa.mel_frequencies(n_mels=logmel.N_MELS + 2, fmin=logmel.FMIN, fmax=logmel.FMAX, htk=False)
    centres = edges[1:-1]
    widths = (edges[2:] - edges[:-2]) / 2.0
    return centres, widths


def signal_facts(samples: np.ndarray, sample_rate: int, calibration=None) -> SignalFacts:
    """Signal facts of a mono signal in full-scale units (see the module docstring).

    Args:
        samples: float [n] mono, full scale.
        sample_rate: Hz.
        calibration: :class:`~soundaq.models_zoo.features.Calibration` (default: the ARAUS calibration).

    Raises:
        ValueError: an empty or silent signal; LevelRangeError when the level exceeds ISO 532-1's range.
    """
    from soundaq.models_zoo.features import Calibration, log_mel, loudness, loudness_statistics

    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("signal facts need a non-empty mono signal")
    calibration = calibration or Calibration.default()
    pascals = x * calibration.pascal_per_unit
    p_rms = float(np.sqrt(np.mean(pascals ** 2)))
    if p_rms <= 0:
        raise ValueError("the signal is silent (all samples zero)")
    level = 20.0 * math.log10(p_rms / 20e-6)
    n5 = loudness_statistics(loudness(pascals, sample_rate)).N5
    mel_db = log_mel(x, sample_rate).astype(np.float64)
    centres, widths = _band_energies()
    energy = np.mean(10.0 ** (mel_db / 10.0), axis=0) * widths
    centroid = float(np.sum(centres * energy) / np.sum(energy))
    low, high = energy[centres < LOW_HZ].sum(), energy[centres > HIGH_HZ].sum()
    balance = float(10.0 * math.log10(max(low, 1e-30) / max(high, 1e-30)))
    return SignalFacts(seconds=x.size / float(sample_rate), level_db_spl=level, n5_sone=n5,
                       spectral_centroid_hz=centroid, low_high_db=balance)


def audio_signal_facts(path: Path | str, calibration=None, span: tuple[float, float] | None = None,
                       channels="auto") -> SignalFacts:
    """:func:`signal_facts` of an audio file, or of its ``(start_s, end_s)`` span (only the span is read
    from disk), its channels mixed by the channel policy ``channels`` (``auto``, ``mean``, ``1,2``).

    Raises:
        AudioError: the file cannot be read, or the span starts after its end; UserError: an empty span.
    """
    from soundaq.base.errors import UserError
    from soundaq.models_zoo.features import load_audio

    samples, rate = load_audio(path, span, channels)
    if span is not None:
        if samples.size == 0:
            raise UserError(f"{path}: window {span[0]:g}-{span[1]:g} s is empty")
    return signal_facts(samples, rate, calibration)


def crop(samples: np.ndarray, rate: int, span: tuple[float, float], path: Path | str = "audio") -> np.ndarray:
    """Samples of ``span`` (seconds); raises UserError when it starts after the recording ends."""
    from soundaq.base.errors import UserError

    start, end = int(round(span[0] * rate)), int(round(span[1] * rate))
    if start >= samples.size:
        raise UserError(f"{path}: window {span[0]:g}-{span[1]:g} s starts after the recording's end "
                        f"({samples.size / rate:.1f} s); fix: pick a window inside it")
    return samples[start:min(end, samples.size)]


def pool(facts: Sequence[SignalFacts]) -> SignalFacts:
    """Facts of a site from its clips: energetic mean level (L_eq over the pooled time, durations as
    weights), and duration-weighted means of N5, centroid and low/high balance.
    """
    if not facts:
        raise ValueError("no clips to pool")
    w = np.array([f.seconds for f in facts], dtype=np.float64)
    level = 10.0 * math.log10(np.sum(w * 10.0 ** (np.array([f.level_db_spl for f in facts]) / 10.0)) / w.sum())

    def mean(name):
        return float(np.sum(w * np.array([getattr(f, name) for f in facts])) / w.sum())

    return SignalFacts(seconds=float(w.sum()), level_db_spl=float(level), n5_sone=mean("n5_sone"),
                       spectral_centroid_hz=mean("spectral_centroid_hz"), low_high_db=mean("low_high_db"),
                       clips=len(facts))
