"""Normalisation statistics of the two input features, computed by streaming or supplied.

The statistics have the shape of the original release's file
(``original_normalisation_stats.json``)::

    {"log_mel": {"mean": [64 floats], "std": [64 floats]},
     "loudness": {"mean": [1 float], "std": [1 float]}}

Means and standard deviations are per feature bin (mel band; the single loudness channel), over
every frame of every clip of the training split (population std, ddof=0), which is what the
original's ``(x - mean) / std`` expects. They are accumulated clip by clip with Chan et al.'s
pairwise update, so memory stays at one clip whatever the split size.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from soundaq.base.errors import UserError
from soundaq.base.fileio import atomic_write_json
from soundaq.base.textio import TextFileError, read_json

#: Widths of the two features (mel bands, loudness channels).
FEATURE_WIDTHS = {"log_mel": 64, "loudness": 1}
#: A standard deviation below this is treated as this when dividing (a constant bin).
STD_FLOOR = 1e-6


class NormStatsError(UserError):
    """Malformed normalisation statistics (the message names the file and the fix)."""


class RunningMoments:
    """Per-column mean and variance over the rows of many arrays, merged pairwise (Chan et al.)."""

    def __init__(self, width: int):
        self.width = width
        self.count = 0
        self.mean = np.zeros(width, dtype=np.float64)
        self.m2 = np.zeros(width, dtype=np.float64)

    def update(self, block) -> None:
        """Merge the rows of ``block`` (reshaped to ``[rows, width]``) into the running mean and variance.

        Args:
            block: an array whose last axis (after reshaping) is the ``width`` columns, e.g. log-mel
                ``[T, 64]`` or loudness ``[T, 1]``; an empty block changes nothing.
        """
        x = np.asarray(block, dtype=np.float64).reshape(-1, self.width)
        n = x.shape[0]
        if n == 0:
            return
        b_mean = x.mean(axis=0)
        b_m2 = ((x - b_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = b_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + b_m2 + delta ** 2 * (self.count * n / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per column (``sqrt(M2 / n)``).

        Raises:
            ValueError: no rows were merged yet.
        """
        if self.count == 0:
            raise ValueError("no data")
        return np.sqrt(self.m2 / self.count)


def compute_norm_stats(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Stream ``(log_mel [T, 64], loudness [T', 1])`` pairs into a statistics dict."""
    mel = RunningMoments(FEATURE_WIDTHS["log_mel"])
    loud = RunningMoments(FEATURE_WIDTHS["loudness"])
    clips = 0
    for log_mel, loudness in pairs:
        mel.update(log_mel)
        loud.update(loudness)
        clips += 1
    if clips == 0:
        raise NormStatsError("cannot compute normalisation statistics from an empty training split; "
                             "fix: give a label folder with training clips, or supply --norm-stats FILE")
    return {
        "log_mel": {"mean": mel.mean.tolist(), "std": mel.std.tolist()},
        "loudness": {"mean": loud.mean.tolist(), "std": loud.std.tolist()},
        "clips": clips,
    }


def validate_norm_stats(stats: object, where: str = "normalisation statistics") -> dict:
    """Check shape and values; return a clean dict (lists of floats). Raises :class:`NormStatsError`."""
    fix = ('fix: give a JSON file shaped {"log_mel": {"mean": [64], "std": [64]}, '
           '"loudness": {"mean": [1], "std": [1]}}')
    if not isinstance(stats, Mapping):
        raise NormStatsError(f"{where}: expected a JSON object, got {type(stats).__name__}; {fix}")
    out: dict = {}
    for feature, width in FEATURE_WIDTHS.items():
        block = stats.get(feature)
        if not isinstance(block, Mapping):
            raise NormStatsError(f"{where}: missing the {feature!r} entry; {fix}")
        out[feature] = {}
        for key in ("mean", "std"):
            values = block.get(key)
            try:
                arr = np.asarray(values, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise NormStatsError(f"{where}: {feature}.{key} is not a list of numbers; {fix}") from None
            if arr.size != width:
                raise NormStatsError(f"{where}: {feature}.{key} has {arr.size} values, expected {width}; {fix}")
            if not np.all(np.isfinite(arr)):
                raise NormStatsError(f"{where}: {feature}.{key} holds a non-finite value; {fix}")
            if key == "std" and np.any(arr < 0):
                raise NormStatsError(f"{where}: {feature}.std holds a negative value; {fix}")
            out[feature][key] = arr.tolist()
    for extra in ("clips", "origin"):
        if extra in stats:
            out[extra] = stats[extra]
    return out


def feature_stats(stats: Mapping) -> dict:
    """Only the two features' mean/std (the contract's shape): provenance keys such as ``clips`` or
    ``origin`` that a stored file carries are dropped, so supplied, computed and cached statistics compare equal.
    """
    clean = validate_norm_stats(stats)
    return {feature: clean[feature] for feature in FEATURE_WIDTHS}


def load_norm_stats(source) -> tuple[dict, str]:
    """Statistics from a path or a dict; returns ``(stats, origin)`` where origin says where they came from."""
    if isinstance(source, Mapping):
        return validate_norm_stats(source, "supplied normalisation statistics"), "supplied (dict)"
    path = Path(source)
    if not path.is_file():
        raise NormStatsError(f"{path}: normalisation statistics file not found; fix: pass an existing JSON file "
                             "(e.g. original_normalisation_stats.json) or leave it out to compute them")
    try:
        stats = read_json(path, fix="give the statistics as a JSON file, or leave --norm-stats out to compute them")
    except TextFileError as exc:
        raise NormStatsError(str(exc)) from None
    return validate_norm_stats(stats, str(path)), f"file {path}"


def save_norm_stats(path: Path | str, stats: Mapping, origin: str | None = None) -> Path:
    """Write statistics atomically as JSON (with their origin when given)."""
    clean = validate_norm_stats(stats)
    if origin is not None:
        clean["origin"] = origin
    return atomic_write_json(path, clean)


class Normaliser:
    """``(x - mean) / std`` per bin, as float32, with std floored at :data:`STD_FLOOR`."""

    def __init__(self, stats: Mapping):
        stats = validate_norm_stats(stats)
        self.mel_mean = np.asarray(stats["log_mel"]["mean"], dtype=np.float32)
        self.mel_scale = np.float32(1.0) / np.maximum(np.asarray(stats["log_mel"]["std"], np.float32), STD_FLOOR)
        self.loud_mean = np.asarray(stats["loudness"]["mean"], dtype=np.float32)
        self.loud_scale = np.float32(1.0) / np.maximum(np.asarray(stats["loudness"]["std"], np.float32), STD_FLOOR)

    def mel(self, x) -> np.ndarray:
        """Normalise log-mel features ``[..., 64]`` (float32, a new array)."""
        out = np.asarray(x, dtype=np.float32) - self.mel_mean
        out *= self.mel_scale
        return out

    def loudness(self, x) -> np.ndarray:
        """Normalise loudness features ``[..., 1]`` in sone (float32, a new array)."""
        out = np.asarray(x, dtype=np.float32) - self.loud_mean
        out *= self.loud_scale
        return out

