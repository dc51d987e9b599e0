"""The one opener of user audio: every command (features, predict, compare, the data module) reads
recordings through :func:`open_audio`, so each kind of recorder file is handled here, once.

What it checks and repairs (each repair is one line, a :class:`AudioWarning`, naming the file):

* **the header against the bytes** (:mod:`~soundaq.models_zoo.features.wavheader`): a WAV whose
  header was never finalised (data size 0 after a crash), left open by a streaming writer
  (0xFFFFFFFF), or wrapped past 4 GiB is read in full, as headerless samples after its ``data``
  chunk; one cut short is read as far as it goes. RF64, BW64 and Wave64 (64-bit sizes) are read
  by libsndfile as they are.
* **the channels**: the channel policy (:func:`parse_channels`). ``auto`` (the default) averages
  the channels that carry signal and leaves out the digitally silent ones (every sample below
  :data:`SILENT_PEAK`: the unused tracks of a multitrack field recorder), saying which and the
  level change the plain average would have made; a file whose every channel is silent keeps them
  all. ``mean`` averages every channel (librosa's ``to_mono``, the SoundSCaper release's downmix);
  ``1,2`` averages the named tracks (1-based).
* **windows**: :meth:`AudioSource.read` seeks to the window and reads only its frames, so memory
  follows the window, not the recording.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundaq.base.errors import SoundaqWarning, UserError, first_line
from soundaq.base.filekinds import KINDS, describe, sniff
from soundaq.models_zoo.features.wavheader import OffsetFile, WavData, inspect_wav

#: A channel whose every sample stays at or below this (full-scale units; half a 24-bit step,
#: -144.5 dBFS) is digitally silent: an unused track.
SILENT_PEAK = 2.0 ** -24
#: Frames read per block while looking for silent channels.
SCAN_BLOCK = 1 << 16
#: The channel policies by name (besides a list of tracks).
POLICIES = ("auto", "mean")
#: libsndfile subtypes whose samples float32 holds exactly (integers of at most 24 bits, 32-bit floats).
EXACT_IN_FLOAT32 = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "FLOAT", "ULAW", "ALAW", "DPCM_8", "DPCM_16"})
#: Notes already issued by this process (Python's own once-per-place registry is reset whenever a
#: library changes the warning filters, as torch and Lightning do between two opens of one file).
_SAID: set[str] = set()
_REPAIR = "repair the header with `sox --ignore-length IN.wav OUT.wav` or `ffmpeg -ignore_length 1 -i IN.wav OUT.wav`"
_CONVERT = "convert it to WAV/FLAC/OGG (e.g. with ffmpeg) or replace the corrupt file"


class AudioError(UserError):
    """An audio file that cannot be used: unreadable, empty, not audio, NaN/Inf samples."""

    def __init__(self, path: Path | str, problem: str, fix: str):
        self.path, self.problem, self.fix = Path(path), problem, fix
        super().__init__(f"{path}: {problem}; fix: {fix}")


class AudioWarning(SoundaqWarning):
    """A recording read with a repair or a choice the user should know of (one line naming the file)."""


def existing_file(path: Path | str) -> Path:
    """``path`` as a Path when it names a file; :class:`AudioError` (one line, the fix) when it is
    missing or a folder.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found", "check the path")
    if path.is_dir():
        kind = sniff(path)
        if kind in ("label-folder", "feature-folder"):
            raise AudioError(path, f"this looks like {describe(kind)}, not audio", KINDS[kind].goes_to)
        raise AudioError(path, "is a folder, not an audio file", "pass audio files (e.g. DIR/*.wav)")
    return path


def parse_channels(text: str | tuple[int, ...]) -> str | tuple[int, ...]:
    """A channel policy: ``"auto"``, ``"mean"`` or the 1-based tracks of ``"1,2"`` as ``(1, 2)``.

    Raises:
        UserError: anything else (one line with the accepted forms).
    """
    if isinstance(text, tuple):
        return text
    word = str(text).strip().lower()
    if word in POLICIES:
        return word
    try:
        tracks = tuple(int(t) for t in word.split(","))
    except ValueError:
        tracks = ()
    if not tracks or min(tracks) < 1 or len(set(tracks)) != len(tracks):
        raise UserError(f"--channels {text}: not a channel policy; fix: auto, mean, or distinct track numbers "
                        "counted from 1, e.g. 1,2")
    return tracks


def policy_text(policy: str | tuple[int, ...]) -> str:
    """The policy as it is written on the command line (and in cache keys): ``auto``, ``mean``, ``1,2``."""
    return policy if isinstance(policy, str) else ",".join(str(t) for t in policy)


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


@dataclass(frozen=True)
class AudioSource:
    """An opened recording: what can be read from it and how (no samples held).

    Attributes:
        path: the file.
        frames, rate, channels: samples per channel, Hz, channels in the file.
        subtype: libsndfile's sample format (``PCM_16``, ``FLOAT``, ...).
        keep: the 0-based channels averaged into the mono signal (the channel policy applied).
        policy: the policy text (``auto``, ``mean``, ``1,2``).
        notes: one-line notes on repairs and choices (also issued as :class:`AudioWarning`).
        raw_offset: byte offset of the samples when they are read headerless (a repaired WAV header).
    """

    path: Path
    frames: int
    rate: int
    channels: int
    subtype: str
    keep: tuple[int, ...]
    policy: str = "auto"
    notes: tuple[str, ...] = field(default=())
    raw_offset: int | None = None

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds (frames over the sample rate)."""
        return self.frames / float(self.rate)

    @contextmanager
    def _soundfile(self) -> Iterator:
        import soundfile as sf

        if self.raw_offset is None:
            with sf.SoundFile(str(self.path)) as fh:
                yield fh
            return
        raw = OffsetFile(self.path, self.raw_offset)
        try:
            with sf.SoundFile(raw, mode="r", format="RAW", samplerate=self.rate, channels=self.channels,
                              subtype=self.subtype, endian="LITTLE") as fh:
                yield fh
        finally:
            raw.close()

    @contextmanager
    def reader(self) -> Iterator:
        """A function ``read(start, count) -> float64 mono [count']`` over the open file (``count'``
        is less than ``count`` only at the end of the recording).

        Raises:
            AudioError: libsndfile fails while reading (a file damaged after its header).
        """
        import soundfile as sf

        dtype = "float32" if self.subtype in EXACT_IN_FLOAT32 else "float64"
        every = self.keep == tuple(range(self.channels))
        try:
            with self._soundfile() as fh:
                def read(start: int, count: int) -> np.ndarray:
                    fh.seek(start)
                    data = fh.read(max(0, min(count, self.frames - start)), dtype=dtype, always_2d=True)
                    return downmix(data if every else data[:, list(self.keep)])

                yield read
        except (RuntimeError, sf.LibsndfileError) as err:
            raise AudioError(self.path, f"reading failed ({first_line(err)})", _CONVERT) from None

    def read(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """Mono float64 samples ``[count]`` from frame ``start`` (default: to the end): only those
        frames are read from disk.
        """
        with self.reader() as read:
            return read(start, self.frames - start if count is None else count)


def _header(path: Path) -> tuple[Any, WavData | None, Exception | None]:
    """``(soundfile.info or None, the WAV data chunk or None, libsndfile's error or None)``."""
    import soundfile as sf

    wav = inspect_wav(path)
    try:
        return sf.info(str(path)), wav, None
    except Exception as err:  # noqa: BLE001 - libsndfile raises several types; all mean "not readable audio"
        return None, wav, err


def _repair_note(path: Path, wav: WavData) -> str:
    got = f"read the {wav.frames / wav.rate:.1f} s the file holds"
    if wav.verdict == "unfinalised":
        what = f"WAV header never finalised (it declares 0 samples; {wav.present:,} bytes of audio follow)"
    elif wav.verdict == "wrapped":
        what = (f"WAV over 4 GiB whose header holds its length modulo 4 GiB (it declares "
                f"{wav.declared_frames / wav.rate:.1f} s; {wav.present:,} bytes follow)")
    else:
        what = f"WAV header leaves the data size open (0xFFFFFFFF, a streaming writer; {wav.present:,} bytes follow)"
    big = " (over 4 GiB: add `-rf64 auto` to ffmpeg's command)" if wav.verdict != "unfinalised" else ""
    return f"{path}: {what}: {got}; fix: {_REPAIR}{big}"


def _container(path: Path) -> tuple[int, int, int, str, int | None, list[str]]:
    """``(frames, rate, channels, subtype, raw_offset, notes)`` from the header, repaired where it lies."""
    info, wav, err = _header(path)
    broken = wav is not None and wav.verdict in ("unfinalised", "open", "wrapped")
    if broken and wav is not None and (info is None or wav.frames != getattr(info, "frames", -1)):
        if wav.subtype is None or wav.rate <= 0 or wav.block_align <= 0:
            raise AudioError(path, f"the WAV header declares {wav.declared_frames:,} samples while {wav.present:,} "
                                   "bytes follow (never finalised), in a sample format soundaq cannot read headerless",
                             _REPAIR)
        return wav.frames, wav.rate, wav.channels, wav.subtype, wav.offset, [_repair_note(path, wav)]
    if info is None:
        kind = sniff(path)
        if kind not in ("audio", "binary", "empty", "missing", "text", "zip"):   # another kind of file soundaq knows
            raise AudioError(path, f"this looks like {describe(kind)}, not audio", KINDS[kind].goes_to) from None
        raise AudioError(path, f"not readable as audio ({first_line(err or ValueError())})", _CONVERT) from None
    notes = []
    if wav is not None and wav.verdict == "cut short" and info.frames > 0:
        notes.append(f"{path}: cut short: the WAV header declares {wav.declared_frames / wav.rate:.1f} s, the file "
                     f"holds {info.frames / info.samplerate:.1f} s, which are read; fix: if a copy was interrupted, "
                     "copy the recording again")
    return int(info.frames), int(info.samplerate), int(info.channels), str(info.subtype), None, notes


def _silent_channels(source: AudioSource) -> list[int]:
    """0-based channels of ``source`` whose every sample is digitally silent (a scan in blocks that
    stops as soon as every channel has shown signal: one block for most files).
    """
    loud = np.zeros(source.channels, dtype=bool)
    with source._soundfile() as fh:
        for block in fh.blocks(blocksize=SCAN_BLOCK, dtype="float64", always_2d=True, frames=source.frames):
            loud |= ~(np.abs(block).max(axis=0) <= SILENT_PEAK)    # NaN counts as signal, to be named later
            if loud.all():
                break
    return [c for c in range(source.channels) if not loud[c]]


def _apply_policy(source: AudioSource, policy: str | tuple[int, ...]) -> tuple[tuple[int, ...], list[str]]:
    n = source.channels
    if isinstance(policy, tuple):
        if max(policy) > n:
            raise AudioError(source.path, f"has {n} channel(s); --channels {policy_text(policy)} asks for track "
                                          f"{max(policy)}", f"choose among tracks 1-{n}, or --channels auto")
        return tuple(t - 1 for t in policy), []
    if policy == "mean" or n == 1:
        return tuple(range(n)), []
    silent = _silent_channels(source)
    if not silent or len(silent) == n:       # all carry signal, or all are silent (said by the caller)
        return tuple(range(n)), []
    keep = tuple(c for c in range(n) if c not in silent)
    change = 20.0 * math.log10(len(keep) / n)
    names = ", ".join(str(c + 1) for c in silent)
    note = (f"{source.path}: track(s) {names} of {n} are digitally silent and left out of the mix (averaging all "
            f"{n} would lower the level by {-change:.1f} dB); fix: --channels mean to average every track, or "
            f"--channels {','.join(str(c + 1) for c in keep)} to choose them")
    return keep, [note]


def open_audio(path: Path | str, channels: str | tuple[int, ...] = "auto", warn: bool = True) -> AudioSource:
    """Open a recording: check its header against its bytes and choose its channels (see the module
    docstring); no samples are kept.

    Args:
        path: the audio file (any format libsndfile reads).
        channels: the channel policy (:func:`parse_channels`).
        warn: issue each note as an :class:`AudioWarning` (one line ``warning: <note>``), once per
            process (``AudioSource.notes`` holds them every time).

    Returns:
        :class:`AudioSource`.

    Raises:
        AudioError: missing, a folder, another kind of file, unreadable, no samples, an invalid rate,
            a track the file lacks (one line naming the file and the fix).
        UserError: a malformed channel policy.
    """
    policy = parse_channels(channels)
    path = existing_file(path)
    frames, rate, n, subtype, raw_offset, notes = _container(path)
    if frames <= 0 or n <= 0:
        raise AudioError(path, "contains no samples", "replace it with a non-empty recording")
    if rate <= 0:
        raise AudioError(path, f"has an invalid sample rate {rate}", "re-export it with a valid rate")
    source = AudioSource(path, frames, rate, n, subtype, tuple(range(n)), policy_text(policy), (), raw_offset)
    try:
        keep, more = _apply_policy(source, policy)
    except RuntimeError as err:   # libsndfile failing on the samples after a readable header
        raise AudioError(path, f"reading failed ({first_line(err)})", _CONVERT) from None
    notes += more
    if warn:
        for note in notes:
            if note not in _SAID:         # a file opened twice by one command (compare) is said once
                _SAID.add(note)
                warnings.warn(note, AudioWarning, stacklevel=2)
    return AudioSource(path, frames, rate, n, subtype, keep, policy_text(policy), tuple(notes), raw_offset)
