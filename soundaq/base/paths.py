"""Where soundaq keeps what it downloads and generates.

One cache root holds everything that can be rebuilt: the embedded synthetic dataset, the feature
cache, downloaded labels and normalisation statistics. Its location is, in order of precedence:
an explicit ``cache_dir`` argument, the ``SOUNDAQ_CACHE`` environment variable, ``~/.cache/soundaq``.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that moves the cache.
CACHE_ENV = "SOUNDAQ_CACHE"
FEATURE_CACHE_ENV = "SOUNDAQ_FEATURE_CACHE"
DEFAULT_CACHE = Path("~/.cache/soundaq")


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """The cache root (not created)."""
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return DEFAULT_CACHE.expanduser()


def embedded_root(cache_dir: Path | str | None = None) -> Path:
    """Folder of generated embedded (synthetic) datasets, one sub-folder per generation key."""
    return cache_root(cache_dir) / "embedded"


def features_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """Root of the on-disk feature cache (``soundaq.models_zoo.features.FeatureCache``).

    ``<cache>/features``; without an explicit ``cache_dir``, ``$SOUNDAQ_FEATURE_CACHE`` (the feature
    pipeline's own variable) wins when set.
    """
    if cache_dir is None or str(cache_dir) == "":
        env = os.environ.get(FEATURE_CACHE_ENV, "").strip()
        if env:
            return Path(env).expanduser()
    return cache_root(cache_dir) / "features"


def labels_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """Default destination of downloaded ARAUS label files."""
    return cache_root(cache_dir) / "araus_labels"


def norm_stats_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """Normalisation statistics computed on a training split, keyed by what they were computed from."""
    return cache_root(cache_dir) / "norm_stats"
