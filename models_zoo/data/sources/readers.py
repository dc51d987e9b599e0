"""Feature readers: where a data source's clips get their log-mel and loudness features from.

A reader serves one clip at a time (``load(clip) -> (mel [3001, 64], loudness [15000, 1])``, un-normalised,
float32), says which file a clip lacks (``missing(clip)``) and names itself for caches (``identity()``).
Two readers serve every built-in source:

:class:`FeatureFolder`
    features stored as one ``.npy`` per clip in the original release's layout
    (``Feature_log_mel/<clip>.npy`` [3001, 64], ``Feature_loudness_ISO532_1/<clip>.npy`` [15000, 1]);
    memory-mapped reads, so streaming a split costs one batch of memory.
:class:`AudioFolder`
    audio files (any format libsndfile reads) whose features come from the feature pipeline's on-disk
    cache (:class:`soundaq.models_zoo.features.FeatureCache`, keyed by content and parameters); a clip
    longer than 30 s is served by its first 30-s window, a shorter one padded with silence.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from soundaq.base import paths
from soundaq.base.errors import UserError
from soundaq.base.filekinds import sniff, wrong_kind

MEL_SHAPE = (3001, 64)
LOUDNESS_SHAPE = (15000, 1)
#: Sub-folders of a feature folder in the original release's layout.
MEL_DIR, LOUDNESS_DIR = "Feature_log_mel", "Feature_loudness_ISO532_1"
#: Suffixes an ARAUS audio folder's ``<clip>`` files are looked up with.
AUDIO_SUFFIXES = (".flac", ".wav")


class DataError(UserError):
    """Data that cannot be served: the message names the file or folder and the fix."""


class FeatureFolder:
    """Features stored as one ``.npy`` per clip in the original release's two folders.

    Raises:
        DataError: the folder is missing or lacks one of the two sub-folders (one line).
        WrongKind: the folder is recognisably something else (a label or audio folder).
    """

    kind = "features"

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()
        self.mel_dir, self.loud_dir = self.root / MEL_DIR, self.root / LOUDNESS_DIR
        if sniff(self.root) in ("label-folder", "audio-folder"):
            raise wrong_kind(self.root, sniff(self.root), "a feature folder",
                             fix="pass it with --labels DIR" if sniff(self.root) == "label-folder" else
                             "pass it with --audio DIR (features are computed and cached)")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: feature folder not found; fix: pass the folder that holds "
                            f"{MEL_DIR}/ and {LOUDNESS_DIR}/")
        missing = [d.name for d in (self.mel_dir, self.loud_dir) if not d.is_dir()]
        if missing:
            raise DataError(f"{self.root}: has no {' or '.join(missing)} sub-folder; fix: lay the features out as "
                            f"{MEL_DIR}/<clip>.npy [3001, 64] and {LOUDNESS_DIR}/<clip>.npy [15000, 1]")

    def paths(self, clip: str) -> tuple[Path, Path]:
        """The clip's two feature files: ``(<mel dir>/<clip>.npy, <loudness dir>/<clip>.npy)``."""
        return self.mel_dir / f"{clip}.npy", self.loud_dir / f"{clip}.npy"

    def missing(self, clip: str) -> str | None:
        """The first of the clip's two files that does not exist, or None."""
        for p in self.paths(clip):
            if not p.is_file():
                return str(p)
        return None

    def load(self, clip: str) -> tuple[np.ndarray, np.ndarray]:
        """``(mel [3001, 64], loudness [15000, 1])`` memory-mapped; ValueError on a wrong shape."""
        mel_path, loud_path = self.paths(clip)
        return _load_npy(mel_path, MEL_SHAPE), _load_npy(loud_path, LOUDNESS_SHAPE)

    def identity(self) -> str:
        """``features:<resolved folder>``."""
        return f"features:{self.root.resolve()}"

    def fingerprint(self, clips) -> list[str]:
        """Size and modification time of every file of ``clips`` (features replaced in place must not
        reuse statistics computed from the old ones).
        """
        out = []
        for clip in clips:
            for p in self.paths(clip):
                st = p.stat()
                out.append(f"{st.st_size}:{st.st_mtime_ns}")
        return out


class AudioFolder:
    """Audio files whose features come from the feature pipeline's on-disk cache.

    ``files`` maps clip ids to their files (the own-data source resolves them from its CSV); without it
    a clip is ``<root>/<clip>.flac|.wav`` (the ARAUS layout).
    """

    kind = "audio"

    def __init__(self, root: Path | str, cache_dir: Path | str | None, calibration=None,
                 files: dict[str, Path] | None = None):
        self.root = Path(root).expanduser()
        if sniff(self.root) in ("label-folder", "feature-folder"):
            raise wrong_kind(self.root, sniff(self.root), "an audio folder")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: audio folder not found; fix: pass the folder holding <clip id>.flac|.wav")
        self.cache_root = paths.features_cache_dir(cache_dir)
        self.calibration = calibration
        self.files = dict(files) if files is not None else None
        self._cache = None

    def _feature_cache(self):
        if self._cache is None:
            from soundaq.models_zoo.features import FeatureCache

            self._cache = FeatureCache(self.cache_root, calibration=self.calibration)
        return self._cache

    def audio_path(self, clip: str) -> Path | None:
        """The clip's audio file, or None when it does not exist."""
        if self.files is not None:
            path = self.files.get(clip)
            return path if path is not None and path.is_file() else None
        for suffix in AUDIO_SUFFIXES:
            p = self.root / f"{clip}{suffix}"
            if p.is_file():
                return p
        return None

    def missing(self, clip: str) -> str | None:
        """The audio file ``clip`` needs when it is missing (the CSV's path, or ``<root>/<clip>.flac``), else None."""
        if self.audio_path(clip) is not None:
            return None
        if self.files is not None and clip in self.files:
            return str(self.files[clip])
        return str(self.root / f"{clip}.flac")

    def load(self, clip: str) -> tuple[np.ndarray, np.ndarray]:
        """Features of the clip's first 30-s window, ``(mel [3001, 64], loudness [15000, 1])``.

        Raises:
            FileNotFoundError: no audio file for ``clip``; AudioError (a UserError): unreadable audio.
        """
        path = self.audio_path(clip)
        if path is None:
            raise FileNotFoundError(f"{self.root / clip}.flac|.wav")
        feats = self._feature_cache().get(path)
        return _first_window(feats.mel, MEL_SHAPE, path), _first_window(feats.loudness, LOUDNESS_SHAPE, path)

    def identity(self) -> str:
        """``audio:<resolved folder>:<feature parameters>`` (the cache covers the audio's content)."""
        return f"audio:{self.root.resolve()}:{feature_params_key(self.calibration)}"

    def fingerprint(self, clips) -> list[str]:
        """Nothing to add: the feature cache is keyed by the audio's content already."""
        return []

    def __getstate__(self):  # the feature cache object is rebuilt in each worker
        state = dict(self.__dict__)
        state["_cache"] = None
        return state


def _first_window(arr, shape, path) -> np.ndarray:
    """First 30-s window of a clip's features (ARAUS clips are exactly one window)."""
    arr = np.asarray(arr)
    if arr.ndim == len(shape) + 1:
        if arr.shape[0] < 1:
            raise ValueError(f"{path}: no complete 30-s window")
        arr = arr[0]
    if tuple(arr.shape) != shape:
        raise ValueError(f"{path}: features have shape {tuple(arr.shape)}, expected {shape}")
    return arr


def _load_npy(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Memory-mapped read with a shape check (a truncated file fails here, not later)."""
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    if tuple(arr.shape) != shape:
        raise ValueError(f"{path}: shape {tuple(arr.shape)}, expected {shape}")
    return arr


def feature_params_key(calibration=None) -> str:
    """Canonical JSON of the feature pipeline's parameters (changes whenever the features would)."""
    from soundaq.models_zoo.features import feature_parameters

    return json.dumps(feature_parameters(calibration=calibration), sort_keys=True)
