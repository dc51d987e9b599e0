"""Audio features of the SoundSCaper models: log-mel and ISO 532-1 loudness, per 30-s window.

Public API::

    load_audio(path) -> (float64 mono samples, rate)          # AudioError on bad files
    Calibration.from_recording(path, db_spl=60) / .from_dbfs_offset(db) / .default()
    log_mel(samples, sample_rate) -> float32 [frames, 64]
    loudness(pascals, sample_rate, backend="fast") -> [frames] sone, one per 2 ms
    clip_features(samples, rate, calibration) -> (mel [W, 3001, 64], loudness [W, 15000, 1])
    FeatureCache(root).get(path) -> ClipFeatures (cached by content + parameters)
"""
from soundaq.models_zoo.features.audio import ARAUS_DBFS_OFFSET, AudioError, Calibration, load_audio
from soundaq.models_zoo.features.cache import (FEATURE_CODE_VERSION, ClipFeatures, FeatureCache, compute_file_features,
                                       default_cache_dir, feature_parameters)
from soundaq.models_zoo.features.clips import LOUDNESS_FRAMES, MEL_FRAMES, WINDOW_SECONDS, clip_features, split_windows
from soundaq.models_zoo.features.iso532 import LevelRangeError
from soundaq.models_zoo.features.logmel import log_mel
from soundaq.models_zoo.features.loudness import BACKENDS, LOUDNESS_RATE, loudness

__all__ = [
    "ARAUS_DBFS_OFFSET", "AudioError", "BACKENDS", "Calibration", "ClipFeatures", "FEATURE_CODE_VERSION",
    "FeatureCache", "LOUDNESS_FRAMES", "LOUDNESS_RATE", "LevelRangeError", "MEL_FRAMES", "WINDOW_SECONDS",
    "clip_features", "compute_file_features", "default_cache_dir", "feature_parameters", "load_audio",
    "log_mel", "loudness", "split_windows",
]
