"""Recordings of any length, read as a stream of 30-s windows: memory independent of the length.

Field recordings last minutes to hours; the models read 30-s clips. :func:`stream_windows` reads one
window at a time from disk (``soundfile`` seek + read; one window of samples in memory), every
``hop_s`` seconds, and :func:`window_features` turns each window into the models' inputs through the
feature pipeline of :mod:`soundaq.models_zoo.features` (``log_mel``; ``clip_features`` with the
calibration when the net reads loudness), exactly as a 30-s ARAUS clip is processed.

Windowing rule (the same as :func:`soundaq.models_zoo.features.split_windows` when ``hop_s`` is 30):
windows start at 0, hop, 2 hop, ...; the last one is the first that reaches the end of the recording,
and whatever it lacks is zero-padded as audio (silence). A recording of ``d`` seconds gives
``1 + ceil((d - 30) / hop)`` windows (one when ``d <= 30``). A hop below 30 s overlaps windows (each
is computed on its own, as a clip, so the cost grows as 30 / hop); a hop above 30 s samples the
recording with gaps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from soundaq.base.errors import first_line
from soundaq.models_zoo.features import WINDOW_SECONDS, AudioError

#: The longest hop accepted, in seconds (one window an hour).
MAX_HOP_S = 3600.0


@dataclass(frozen=True)
class RecordingInfo:
    """What the file header says: ``frames`` samples per channel at ``rate`` Hz, ``channels``."""

    path: Path
    frames: int
    rate: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.rate)


@dataclass(frozen=True)
class Window:
    """One analysis window: ``samples`` float64 mono [30 * rate] (zero-padded past the end)."""

    index: int
    start_s: float
    end_s: float           # end of the real audio in this window (<= start_s + 30)
    samples: np.ndarray


def recording_info(path: Path | str) -> RecordingInfo:
    """Header of an audio file (any format libsndfile reads), without reading the samples.

    Raises:
        AudioError: missing, a folder, unreadable, empty, or an invalid rate (one line, the fix).
    """
    import soundfile as sf

    from soundaq.models_zoo.features.audio import existing_file

    path = existing_file(path)
    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile raises several types; all mean "not readable audio"
        raise AudioError(path, f"not readable as audio ({first_line(err)})",
                         "convert it to WAV/FLAC/OGG (e.g. with ffmpeg) or replace the corrupt file") from None
    if info.frames <= 0 or info.channels <= 0:
        raise AudioError(path, "contains no samples", "replace it with a non-empty recording")
    if info.samplerate <= 0:
        raise AudioError(path, f"has an invalid sample rate {info.samplerate}", "re-export it with a valid rate")
    return RecordingInfo(path, int(info.frames), int(info.samplerate), int(info.channels))


def window_count(frames: int, rate: int, hop_s: float = WINDOW_SECONDS) -> int:
    """Windows of a recording of ``frames`` samples: ``1 + ceil((frames - width) / hop)``, at least 1."""
    width = int(WINDOW_SECONDS * rate)
    hop = _hop_samples(hop_s, rate)
    return 1 if frames <= width else 1 + math.ceil((frames - width) / hop)


def _hop_samples(hop_s: float, rate: int) -> int:
    if not (math.isfinite(hop_s) and 0 < hop_s <= MAX_HOP_S):
        raise ValueError(f"hop must be in (0, {MAX_HOP_S:g}] seconds, got {hop_s}")
    return max(1, int(round(hop_s * rate)))


def stream_windows(path: Path | str, hop_s: float = WINDOW_SECONDS) -> Iterator[Window]:
    """The 30-s windows of a recording, every ``hop_s`` seconds, read from disk one at a time.

    Multi-channel audio is averaged to mono (as :func:`soundaq.models_zoo.features.load_audio`).

    Yields:
        :class:`Window` objects in time order; only one window of samples is held at a time.

    Raises:
        AudioError: the file cannot be read, or a window holds NaN/Inf samples (naming its time).
    """
    import soundfile as sf

    info = recording_info(path)
    width = int(WINDOW_SECONDS * info.rate)
    hop = _hop_samples(hop_s, info.rate)
    count = window_count(info.frames, info.rate, hop_s)
    try:
        with sf.SoundFile(str(info.path)) as fh:
            for k in range(count):
                start = k * hop
                fh.seek(start)
                block = fh.read(min(width, info.frames - start), dtype="float64", always_2d=True)
                mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                if not np.all(np.isfinite(mono)):
                    raise AudioError(info.path, f"has NaN/Inf samples in the window at {start / info.rate:.1f} s",
                                     "re-export the audio; NaN/Inf cannot be turned into features")
                samples = np.zeros(width)
                samples[: mono.size] = mono
                yield Window(k, round(start / info.rate, 6), round((start + mono.size) / info.rate, 6), samples)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioError(info.path, f"reading failed ({first_line(err)})",
                         "convert it to WAV/FLAC (e.g. with ffmpeg) or replace the corrupt file") from None


def window_features(window: Window, rate: int, calibration=None, need_loudness: bool = True):
    """``(mel float32 [3001, 64], loudness float32 [15000, 1] or None)`` of one window, un-normalised.

    The feature pipeline's own functions: ``clip_features`` (log-mel and ISO 532-1 loudness of the
    calibrated window) when the net reads loudness, else ``log_mel`` alone.

    Raises:
        ValueError: a level outside the loudness model's range (from the loudness code).
    """
    from soundaq.models_zoo.features import Calibration, clip_features, log_mel

    if need_loudness:
        mel, loud = clip_features(window.samples, rate, calibration or Calibration.default())
        return mel[0], loud[0]
    return log_mel(window.samples, rate).astype(np.float32), None
