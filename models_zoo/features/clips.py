"""Clip features as the models read them: 30-s windows of log-mel [3001, 64] and loudness [15000, 1].

Windowing rules: a clip shorter than 30 s is zero-padded *as audio* (silence appended) before any
feature is computed; a longer clip is cut into consecutive 30-s windows, the last one zero-padded.
Each window is then processed exactly like one 30-s ARAUS clip.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from soundaq.models_zoo.features.audio import Calibration
from soundaq.models_zoo.features.logmel import log_mel
from soundaq.models_zoo.features.loudness import LOUDNESS_RATE, loudness, loudness_statistics

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


def window_loudness_statistics(loud: np.ndarray, seconds: float) -> list[dict]:
    """N5, N10, Nmax and mean N (sone) of each 30-s window and of the whole file.

    Only the frames that cover the audio count: the zero padding of a short clip or of the last
    window is left out (a 1-s clip is described by its first 500 frames, not by 29 s of silence).
    The file's row pools the covering frames of all its windows.

    Args:
        loud: [windows, 15000] or [windows, 15000, 1] loudness in sone, as :func:`clip_features` and
            the feature cache give it.
        seconds: the audio's duration in seconds.

    Returns:
        one dict per window (``window`` 1, 2, ...) and one for the file (``window`` "all"), each with
        ``start_s``, ``end_s``, ``N5``, ``N10``, ``Nmax``, ``Nmean``.

    Raises:
        ValueError: loudness of the wrong shape.
    """
    loud = np.asarray(loud, dtype=np.float64)
    if loud.ndim == 3 and loud.shape[2] == 1:
        loud = loud[:, :, 0]
    if loud.ndim != 2 or loud.shape[0] == 0:
        raise ValueError(f"expected loudness [windows, frames], got shape {loud.shape}")
    rows: list[dict[str, Any]] = []
    pooled: list[np.ndarray] = []
    for w in range(loud.shape[0]):
        start = w * WINDOW_SECONDS
        covered = min(WINDOW_SECONDS, seconds - start) if seconds > 0 else WINDOW_SECONDS
        frames = min(loud.shape[1], max(1, math.ceil(covered * LOUDNESS_RATE - 1e-9)))
        part = loud[w, :frames]
        pooled.append(part)
        rows.append({"window": w + 1, "start_s": float(start), "end_s": float(start + frames / LOUDNESS_RATE),
                     **loudness_statistics(part).as_dict()})
    every = np.concatenate(pooled)
    rows.append({"window": "all", "start_s": 0.0, "end_s": rows[-1]["end_s"], **loudness_statistics(every).as_dict()})
    return rows
