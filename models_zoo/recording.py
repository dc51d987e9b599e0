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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundaq.models_zoo.features import WINDOW_SECONDS, AudioError
from soundaq.models_zoo.features.opener import AudioSource, open_audio

#: The longest hop accepted, in seconds (one window an hour).
MAX_HOP_S = 3600.0
#: A sample at or above this magnitude (full-scale units) sits at digital full scale: clipped (16-bit
#: full scale is 32767/32768 = 0.99997).
CLIP_LEVEL = 0.9999


#: What the file header says (kept under its old name): :class:`~soundaq.models_zoo.features.opener.AudioSource`
#: (``frames`` samples per channel at ``rate`` Hz, ``channels``, the channels averaged, header repairs).
RecordingInfo = AudioSource


@dataclass(frozen=True)
class Window:
    """One analysis window: ``samples`` float64 mono [30 * rate] (zero-padded past the end)."""

    index: int
    start_s: float
    end_s: float           # end of the real audio in this window (<= start_s + 30)
    samples: np.ndarray
    peak: float = 0.0      # largest |sample| of the real audio (full-scale units)
    clipped: int = 0       # samples at digital full scale (|x| >= CLIP_LEVEL)


def recording_info(path: Path | str, channels: str | tuple[int, ...] = "auto") -> AudioSource:
    """Header of an audio file (any format libsndfile reads), without reading the samples: the one
    opener, :func:`~soundaq.models_zoo.features.opener.open_audio` (header repairs, channel policy).

    Raises:
        AudioError: missing, a folder, unreadable, empty, or an invalid rate (one line, the fix).
    """
    return open_audio(path, channels)


def window_count(frames: int, rate: int, hop_s: float = WINDOW_SECONDS) -> int:
    """Windows of a recording of ``frames`` samples: ``1 + ceil((frames - width) / hop)``, at least 1."""
    width = int(WINDOW_SECONDS * rate)
    hop = _hop_samples(hop_s, rate)
    return 1 if frames <= width else 1 + math.ceil((frames - width) / hop)


def _hop_samples(hop_s: float, rate: int) -> int:
    if not (math.isfinite(hop_s) and 0 < hop_s <= MAX_HOP_S):
        raise ValueError(f"hop must be in (0, {MAX_HOP_S:g}] seconds, got {hop_s}")
    return max(1, int(round(hop_s * rate)))


def stream_windows(path: Path | str | AudioSource, hop_s: float = WINDOW_SECONDS,
                   channels: str | tuple[int, ...] = "auto") -> Iterator[Window]:
    """The 30-s windows of a recording, every ``hop_s`` seconds, read from disk one at a time.

    The channels are mixed to mono by the channel policy ``channels`` (see
    :func:`~soundaq.models_zoo.features.opener.parse_channels`; ignored when ``path`` is an opened
    :class:`AudioSource`).

    Yields:
        :class:`Window` objects in time order; only one window of samples is held at a time.

    Raises:
        AudioError: the file cannot be read, or a window holds NaN/Inf samples (naming its time).
    """
    info = path if isinstance(path, AudioSource) else open_audio(path, channels)
    width = int(WINDOW_SECONDS * info.rate)
    hop = _hop_samples(hop_s, info.rate)
    count = window_count(info.frames, info.rate, hop_s)
    with info.reader() as read:
        for k in range(count):
            start = k * hop
            mono = read(start, width)
            if not np.all(np.isfinite(mono)):
                raise AudioError(info.path, f"has NaN/Inf samples in the window at {start / info.rate:.1f} s",
                                 "re-export the audio; NaN/Inf cannot be turned into features")
            samples = np.zeros(width)
            samples[: mono.size] = mono
            yield Window(k, round(start / info.rate, 6), round((start + mono.size) / info.rate, 6), samples,
                         float(np.max(np.abs(mono), initial=0.0)), int(np.count_nonzero(np.abs(mono) >= CLIP_LEVEL)))


#: A recording shorter than this (seconds) is said to be mostly padding.
SHORT_S = 1.0
#: A recording with at least this many samples at full scale is said to be clipped.
CLIPPED_MIN = 10


def signal_notes(path: Path | str, duration_s: float, peak: float, clipped: int, samples: int) -> list[str]:
    """One-line notes on a recording whose prediction stands on weak ground (the prediction is still made):
    digital silence (every sample below :data:`~soundaq.models_zoo.features.opener.SILENT_PEAK`), a
    recording shorter than :data:`SHORT_S` (its 30-s window is nearly all zero padding), clipping (at
    least :data:`CLIPPED_MIN` samples at full scale: the level and loudness are underestimated).

    Args:
        path: the recording (named in each note).
        duration_s: its length in seconds.
        peak: its largest |sample| (full-scale units).
        clipped: samples at or above :data:`CLIP_LEVEL`.
        samples: samples read (for the share clipped).

    Returns:
        The notes, possibly none.
    """
    from soundaq.models_zoo.features.opener import SILENT_PEAK

    notes = []
    if peak <= SILENT_PEAK:
        notes.append(f"{path}: digital silence (every sample is 0): the prediction describes silence; "
                     "fix: check the recording, the input channel or --channels")
    if duration_s < SHORT_S:
        notes.append(f"{path}: only {duration_s * 1000:.0f} ms of audio: its 30-s window is "
                     f"{100 * (1 - duration_s / WINDOW_SECONDS):.2f}% zero padding, so the prediction describes "
                     "mostly silence; fix: predict recordings of several seconds (the models read 30-s clips)")
    if clipped >= CLIPPED_MIN:
        notes.append(f"{path}: clipped: {clipped:,} samples ({100 * clipped / max(1, samples):.2g}%) at digital full "
                     "scale, so the level, loudness and the qualities that follow them are underestimated; fix: "
                     "record with less gain (the prediction is made all the same)")
    return notes


@dataclass
class SignalStats:
    """What the streamed windows of one recording showed: peak |sample|, samples at full scale, samples
    read; :meth:`warn` says (:func:`signal_notes`) what makes its prediction weak.
    """

    peak: float = 0.0
    clipped: int = 0
    samples: int = 0
    windows: int = 0

    def add(self, window: Window, rate: int) -> None:
        """Count one streamed window (its peak, clipped samples and length at ``rate`` Hz)."""
        self.peak = max(self.peak, window.peak)
        self.clipped += window.clipped
        self.samples += round((window.end_s - window.start_s) * rate)
        self.windows += 1

    def warn(self, path: Path | str, duration_s: float) -> None:
        """Each note as one :class:`~soundaq.models_zoo.features.opener.AudioWarning` line."""
        import warnings

        from soundaq.models_zoo.features.opener import AudioWarning

        for note in signal_notes(path, duration_s, self.peak, self.clipped, self.samples):
            warnings.warn(note, AudioWarning, stacklevel=2)


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


def recording_ids(paths) -> list[str]:
    """The id of each input in predictions, tables and figure names: its file stem, unless another input
    has the same stem (``site_a/10.flac`` and ``site_b/10.flac``, ``a.ogg`` and ``a.mp3``); those get
    their file name, then as many parent folders as make them distinct (``site_a/10.flac``). Two inputs
    with one id would otherwise be merged into one recording.
    """
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    ids = list(stems)
    for i, path in enumerate(paths):
        if stems.count(stems[i]) < 2:
            continue
        parts = path.absolute().parts
        same = [q.absolute().parts for j, q in enumerate(paths) if j != i and stems[j] == stems[i]]
        for depth in range(1, len(parts) + 1):
            tail = parts[-depth:]
            if all(other[-depth:] != tail for other in same):
                ids[i] = "/".join(tail)
                break
        else:
            ids[i] = str(path)   # the same file given twice: its path, both times
    return ids
