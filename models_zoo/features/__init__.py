"""Audio features of the SoundSCaper models: log-mel and ISO 532-1 loudness, per 30-s window.

Public API::

    load_audio(path, span=None, channels="auto") -> (float64 mono samples, rate)   # AudioError on bad files
    open_audio(path, channels="auto") -> AudioSource  # the one opener: header repairs, channel policy, windows
    Calibration.from_recording(path, db_spl=60) / .from_dbfs_offset(db) / .default()
    log_mel(samples, sample_rate) -> float32 [frames, 64]
    loudness(pascals, sample_rate, backend="fast") -> [frames] sone, one per 2 ms (ISO 532-1 N(t))
    specific_loudness(pascals, sample_rate) -> [240, frames] sone/Bark over BARK_AXIS (N'(z, t))
    loudness_statistics(sone) -> LoudnessStatistics(N5, N10, Nmax, Nmean)
    stationary_loudness(pascals, sample_rate, field="free") -> StationaryLoudness(N, specific [240])
    stationary_loudness_from_levels(levels_db [28], field="free") -> StationaryLoudness
    clip_features(samples, rate, calibration) -> (mel [W, 3001, 64], loudness [W, 15000, 1])
    window_loudness_statistics(loudness [W, 15000, 1], seconds) -> rows per window and per file
    FeatureCache(root).get(path) -> ClipFeatures (cached by content + parameters)
"""
from soundaq.models_zoo.features.audio import ARAUS_DBFS_OFFSET, AudioError, Calibration, load_audio
from soundaq.models_zoo.features.cache import (
                                       FEATURE_CODE_VERSION,
                                       ClipFeatures,
                                       FeatureCache,
                                       compute_file_features,
                                       default_cache_dir,
                                       feature_parameters,
)
from soundaq.models_zoo.features.clips import (
                                       LOUDNESS_FRAMES,
                                       MEL_FRAMES,
                                       WINDOW_SECONDS,
                                       clip_features,
                                       split_windows,
                                       window_loudness_statistics,
)
from soundaq.models_zoo.features.logmel import log_mel
from soundaq.models_zoo.features.loudness import (
                                       BACKENDS,
                                       BARK_AXIS,
                                       LOUDNESS_RATE,
                                       LevelRangeError,
                                       LoudnessStatistics,
                                       StationaryLoudness,
                                       loudness,
                                       loudness_statistics,
                                       specific_loudness,
                                       stationary_loudness,
                                       stationary_loudness_from_levels,
)

__all__ = [
                                       "ARAUS_DBFS_OFFSET",
                                       "BACKENDS",
                                       "BARK_AXIS",
                                       "FEATURE_CODE_VERSION",
                                       "LOUDNESS_FRAMES",
                                       "LOUDNESS_RATE",
                                       "MEL_FRAMES",
                                       "WINDOW_SECONDS",
                                       "AudioError",
                                       "Calibration",
                                       "ClipFeatures",
                                       "FeatureCache",
                                       "LevelRangeError",
                                       "LoudnessStatistics",
                                       "StationaryLoudness",
                                       "clip_features",
                                       "compute_file_features",
                                       "default_cache_dir",
                                       "feature_parameters",
                                       "load_audio",
                                       "log_mel",
                                       "loudness",
                                       "loudness_statistics",
                                       "specific_loudness",
                                       "split_windows",
                                       "stationary_loudness",
                                       "stationary_loudness_from_levels",
                                       "window_loudness_statistics",
]
