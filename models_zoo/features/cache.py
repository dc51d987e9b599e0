"""Feature cache: get-or-compute clip features keyed by file content and every parameter.

Key = sha256 over the audio file's sha256 and a canonical JSON of the parameters (rates, STFT,
mel bands, loudness backend and field, calibration, code version). Entries are ``.npz`` files
written atomically; an entry that is truncated, corrupt, of the wrong shape or whose embedded
digest does not match is recomputed and replaced.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundaq.base.errors import first_line, one_line
from soundaq.base.fileio import atomic_path, sha256_file
from soundaq.models_zoo.features import logmel
from soundaq.models_zoo.features.audio import AudioError, Calibration, load_audio
from soundaq.models_zoo.features.clips import LOUDNESS_FRAMES, MEL_FRAMES, WINDOW_SECONDS, clip_features
from soundaq.models_zoo.features.iso532 import LevelRangeError
from soundaq.models_zoo.features.opener import parse_channels, policy_text

#: Bump whenever a code change alters feature values: old cache entries then stop matching.
FEATURE_CODE_VERSION = "1"


def feature_parameters(backend: str = "fast", calibration: Calibration | None = None,
                       field: str = "free") -> dict:
    """Everything that determines the features of a file, besides its content."""
    calibration = calibration or Calibration.default()
    params: dict[str, Any] = {
        "code_version": FEATURE_CODE_VERSION,
        "window_seconds": WINDOW_SECONDS,
        "log_mel": {"sample_rate": logmel.MEL_SAMPLE_RATE, "resampler": logmel.RESAMPLER,
                    "n_fft": logmel.N_FFT, "hop": logmel.HOP, "window": "hann", "center": "reflect",
                    "n_mels": logmel.N_MELS, "fmin": logmel.FMIN, "fmax": logmel.FMAX,
                    "mel_scale": "slaney", "norm": "slaney", "amin": logmel.AMIN, "frames": MEL_FRAMES},
        "loudness": {"standard": "ISO 532-1:2017 time-varying", "field": field, "backend": backend,
                     "sample_rate": 48000, "resampler": "fft", "step_ms": 2, "frames": LOUDNESS_FRAMES,
                     "pascal_per_unit": calibration.key()},
    }
    if backend == "mosqito":
        from importlib.metadata import version

        params["loudness"]["mosqito"] = version("mosqito")
    return params


def default_cache_dir() -> Path:
    """The same folder the data module uses: ``$SOUNDAQ_FEATURE_CACHE``, else ``$SOUNDAQ_CACHE/features``,
    else ``~/.cache/soundaq/features``.
    """
    from soundaq.base.paths import features_cache_dir

    return features_cache_dir()


@dataclass
class ClipFeatures:
    """The features of one audio file, per 30-s window, with where they came from.

    ``key`` is the cache key (audio content + parameters), ``audio_sha256`` the file's digest,
    ``status`` whether they were computed, read from the cache or recomputed over a bad entry, and
    ``sample_rate``/``seconds`` the file's rate (Hz) and duration (s).
    """

    mel: np.ndarray        # float32 [windows, 3001, 64]
    loudness: np.ndarray   # float32 [windows, 15000, 1]
    key: str
    audio_sha256: str
    status: str            # "computed", "cached" or "recomputed" (a bad cache entry was replaced)
    sample_rate: int = 0
    seconds: float = 0.0


def _digest(mel: np.ndarray, loud: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(mel).tobytes())
    h.update(np.ascontiguousarray(loud).tobytes())
    return h.hexdigest()


def compute_file_features(path: Path | str, calibration: Calibration | None = None, backend: str = "fast",
                          channels: str | tuple[int, ...] = "auto") -> tuple[np.ndarray, np.ndarray, int, float]:
    """Read a file (its channels mixed by the policy ``channels``) and compute its clip features;
    every failure is an :class:`AudioError`.
    """
    samples, rate = load_audio(path, channels=channels)
    try:
        mel, loud = clip_features(samples, rate, calibration, backend)
    except LevelRangeError as err:
        raise AudioError(path, f"too loud for ISO 532-1 ({first_line(err)})",
                         "check the calibration (a lower dB offset or the right calibration recording)") from None
    return mel, loud, rate, samples.size / rate


class FeatureCache:
    """Get-or-compute store of clip features under ``root`` (``None``: compute, never store)."""

    def __init__(self, root: Path | str | None, backend: str = "fast", calibration: Calibration | None = None,
                 field: str = "free", channels: str | tuple[int, ...] = "auto"):
        self.root = Path(root) if root is not None else None
        self.backend = backend
        self.calibration = calibration or Calibration.default()
        self.field = field
        self.channels = parse_channels(channels)
        # the channel policy is part of the key (how the file's channels became the mono signal); it is
        # kept out of feature_parameters, whose digest also names prepared sets of mono synthetic audio
        self.params = {**feature_parameters(backend, self.calibration, field), "channels": policy_text(self.channels)}
        self._params_json = json.dumps(self.params, sort_keys=True)
        self.write_errors: list[str] = []

    def key_for_sha(self, audio_sha256: str) -> str:
        """The cache key of audio with this sha256 under this cache's parameters (hex sha256)."""
        return hashlib.sha256(f"{audio_sha256}\n{self._params_json}".encode()).hexdigest()

    def entry_path(self, key: str) -> Path:
        """Where the entry of ``key`` lives: ``<root>/<key[:2]>/<key>.npz``.

        Raises:
            ValueError: the cache has no root folder (compute-only).
        """
        if self.root is None:
            raise ValueError("this cache has no root folder")
        return self.root / key[:2] / f"{key}.npz"

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray, int, float] | None:
        """The entry's (mel, loudness, sample rate, seconds), or None if missing or invalid in any way."""
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                mel, loud, digest = data["mel"], data["loudness"], str(data["digest"])
                rate, seconds = int(data["sample_rate"]), float(data["seconds"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        ok = (mel.dtype == np.float32 and loud.dtype == np.float32 and mel.ndim == 3 and loud.ndim == 3
              and mel.shape[1:] == (MEL_FRAMES, 64) and loud.shape[1:] == (LOUDNESS_FRAMES, 1)
              and mel.shape[0] == loud.shape[0] >= 1 and digest == _digest(mel, loud))
        return (mel, loud, rate, seconds) if ok else None

    def _write(self, path: Path, mel: np.ndarray, loud: np.ndarray, audio_sha: str, rate: int,
               seconds: float) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, mel=mel, loudness=loud, digest=np.array(_digest(mel, loud)),
                         audio_sha256=np.array(audio_sha), params=np.array(self._params_json),
                         sample_rate=np.array(rate), seconds=np.array(seconds))

    def get(self, path: Path | str) -> ClipFeatures:
        """Features of the audio file at ``path``, from the cache when a valid entry exists."""
        path = Path(path)
        if not path.is_file():
            load_audio(path)  # raises the right AudioError (missing, folder)
        audio_sha = sha256_file(path)
        key = self.key_for_sha(audio_sha)
        status = "computed"
        if self.root is not None:
            entry = self.entry_path(key)
            found = self._read(entry)
            if found is not None:
                return ClipFeatures(found[0], found[1], key, audio_sha, "cached", found[2], found[3])
            if entry.exists():
                status = "recomputed"
        mel, loud, rate, seconds = compute_file_features(path, self.calibration, self.backend, self.channels)
        if self.root is not None:
            try:
                self._write(self.entry_path(key), mel, loud, audio_sha, rate, seconds)
            except OSError as err:  # an unwritable cache must not cost the user the features
                self.write_errors.append(f"{self.entry_path(key)}: {one_line(err)}")
        return ClipFeatures(mel, loud, key, audio_sha, status, rate, seconds)

    get_or_compute = get

    def get_signal(self, content_sha256: str, make, name: str = "signal") -> ClipFeatures:
        """Features of a signal made in memory (e.g. an ARAUS stimulus mixed from its components), from the
        cache when a valid entry exists.

        Args:
            content_sha256: a digest that changes whenever the signal would (it stands for the audio file's
                sha256 in the key).
            make: called only on a cache miss; returns ``(samples float64 [n] mono full-scale, rate Hz)``.
            name: what one-line errors call the signal.

        Raises:
            AudioError: a signal too loud for ISO 532-1 under the calibration (one line naming ``name``).
        """
        key = self.key_for_sha(content_sha256)
        status = "computed"
        if self.root is not None:
            found = self._read(self.entry_path(key))
            if found is not None:
                return ClipFeatures(found[0], found[1], key, content_sha256, "cached", found[2], found[3])
            status = "recomputed" if self.entry_path(key).exists() else status
        samples, rate = make()
        try:
            mel, loud = clip_features(samples, rate, self.calibration, self.backend)
        except LevelRangeError as err:
            raise AudioError(Path(name), f"too loud for ISO 532-1 ({first_line(err)})",
                             "check the calibration (a lower dB offset or the right calibration recording)") from None
        seconds = samples.size / rate
        if self.root is not None:
            try:
                self._write(self.entry_path(key), mel, loud, content_sha256, rate, seconds)
            except OSError as err:
                self.write_errors.append(f"{self.entry_path(key)}: {one_line(err)}")
        return ClipFeatures(mel, loud, key, content_sha256, status, rate, seconds)
