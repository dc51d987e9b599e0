"""Clip features as the models read them: 30-s windows of log-mel [3001, 64] and loudness [15000, 1].

Windowing rules: a clip shorter than 30 s is zero-padded *as audio* (silence appended) before any
feature is computed; a longer clip is cut into consecutive 30-s windows, the last one zero-padded.
Each window is then processed exactly like one 30-s ARAUS clip.
"""
from __future__ import annotations

import math

import numpy as np

from soundaq.models_zoo.features.audio import Calibration
from soundaq.models_zoo.features.logmel import log_mel
from soundaq.models_zoo.features.loudness import loudness

WINDOW_SECONDS = 30
MEL_FRAMES = 3001
LOUDNESS_FRAMES = 15000


def split_windows(samples: np.ndarray, sample_rate: int, seconds: int = WINDOW_SECONDS) -> np.ndarray:
    """[windows, seconds * rate]: consecutive windows, the last (or only) one padded with zeros."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"expected a non-empty mono signal, got shape {samples.shape}")
    width = int(seconds * sample_rate)
    count = max(1, math.ceil(samples.size / width))
    padded = np.zeros(count * width)
    padded[: samples.size] = samples
    return padded.reshape(count, width)


def clip_features(samples: np.ndarray, sample_rate: int, calibration: Calibration | None = None,
                  backend: str = "fast") -> tuple[np.ndarray, np.ndarray]:
    """(mel float32 [windows, 3001, 64], loudness float32 [windows, 15000, 1]) of a mono signal.

    ``samples`` are full-scale units; ``calibration`` maps them to pascals for the loudness
    (default: :meth:`Calibration.default`, the ARAUS calibration).
    """
    calibration = calibration or Calibration.default()
    windows = split_windows(samples, sample_rate)
    mel = np.empty((len(windows), MEL_FRAMES, 64), dtype=np.float32)
    loud = np.empty((len(windows), LOUDNESS_FRAMES, 1), dtype=np.float32)
    for i, window in enumerate(windows):
        m = log_mel(window, sample_rate)
        n = loudness(window * calibration.pascal_per_unit, sample_rate, backend=backend)
        if m.shape != (MEL_FRAMES, 64) or n.shape != (LOUDNESS_FRAMES,):
            raise RuntimeError(f"window {i}: unexpected feature shapes {m.shape}, {n.shape}")
        mel[i] = m
        loud[i, :, 0] = n
    return mel, loud
