"""One LightningDataModule for every zoo network: ARAUS (labels + audio or features) or the embedded set.

Sources
    ``source="embedded"`` (default): the synthetic set of :mod:`soundaq.models_zoo.data.synthetic`,
    generated into the cache on first use (``prepare_data``) and then read like ARAUS features.
    ``source="araus"``: a label folder (the paper's split files) plus either ``features_dir`` in
    the original release's layout (``Feature_log_mel/<clip>.npy`` [3001, 64] and
    ``Feature_loudness_ISO532_1/<clip>.npy`` [15000, 1]) or ``audio_dir`` with ``<clip>.flac|.wav``,
    whose features come from :mod:`soundaq.models_zoo.features` (cached on disk by content and parameters).

Batches are dicts with :data:`soundaq.models_zoo.outputs.BATCH_KEYS`. Features are read lazily, one clip
per item (memory-mapped ``.npy``), so streaming a split costs one batch of memory whatever its size.
An item whose features cannot be read (truncated, wrong shape) is skipped with a one-line warning
naming the file; the batch goes on with the others.

Normalisation statistics (per mel bin, loudness) are supplied (path or dict, e.g. the original
release's ``original_normalisation_stats.json``) or computed by streaming the training split;
computed ones are cached beside the data they came from.
"""
from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from soundaq.base.errors import SoundaqWarning, UserError, first_line
from soundaq.base import paths
from soundaq.base.filekinds import sniff, wrong_kind
from soundaq.models_zoo.data.labels import SPLIT_ALIASES, SPLITS, check_label_folder, read_split, split_files
from soundaq.models_zoo.data.normalisation import (Normaliser, compute_norm_stats, feature_stats, load_norm_stats,
                                           save_norm_stats)
from soundaq.models_zoo.outputs import BATCH_KEYS
from soundaq.base.vocab import EVENT_COLUMNS, QUALITIES, SCENES

log = logging.getLogger(__name__)

MEL_SHAPE = (3001, 64)
LOUDNESS_SHAPE = (15000, 1)
#: Sub-folders of a feature folder in the original release's layout.
MEL_DIR, LOUDNESS_DIR = "Feature_log_mel", "Feature_loudness_ISO532_1"
AUDIO_SUFFIXES = (".flac", ".wav")
#: Clip ids named in the one-line warning about clips left out for want of features.
LISTED_CLIPS = 20
SOURCES = ("embedded", "araus")
#: Which splits each Lightning stage needs.
STAGE_SPLITS = {"fit": ("training", "validation"), "validate": ("validation",), "test": ("test",),
                "predict": None}
#: Largest split :meth:`ClipDataset.preload` keeps in memory (bytes of normalised float32 features).
PRELOAD_LIMIT_BYTES = 4 << 30


class DataError(UserError):
    """Data that cannot be served: the message names the file or folder and the fix."""


# ------------------------------------------------------------------------------ feature sources
class FeatureFolder:
    """Features stored as one ``.npy`` per clip in the original release's two folders."""

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
        return self.mel_dir / f"{clip}.npy", self.loud_dir / f"{clip}.npy"

    def missing(self, clip: str) -> str | None:
        for p in self.paths(clip):
            if not p.is_file():
                return str(p)
        return None

    def load(self, clip: str) -> tuple[np.ndarray, np.ndarray]:
        mel_path, loud_path = self.paths(clip)
        return _load_npy(mel_path, MEL_SHAPE), _load_npy(loud_path, LOUDNESS_SHAPE)

    def identity(self) -> str:
        return f"features:{self.root.resolve()}"


class AudioFolder:
    """``<clip>.flac|.wav`` files whose features come from the feature pipeline's on-disk cache."""

    kind = "audio"

    def __init__(self, root: Path | str, cache_dir: Path | str | None, calibration=None):
        self.root = Path(root).expanduser()
        if sniff(self.root) in ("label-folder", "feature-folder"):
            raise wrong_kind(self.root, sniff(self.root), "an audio folder")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: audio folder not found; fix: pass the folder holding <clip id>.flac|.wav")
        self.cache_root = paths.features_cache_dir(cache_dir)
        self.calibration = calibration
        self._cache = None

    def _feature_cache(self):
        if self._cache is None:
            from soundaq.models_zoo.features import FeatureCache

            self._cache = FeatureCache(self.cache_root, calibration=self.calibration)
        return self._cache

    def audio_path(self, clip: str) -> Path | None:
        for suffix in AUDIO_SUFFIXES:
            p = self.root / f"{clip}{suffix}"
            if p.is_file():
                return p
        return None

    def missing(self, clip: str) -> str | None:
        return None if self.audio_path(clip) is not None else str(self.root / f"{clip}.flac")

    def load(self, clip: str) -> tuple[np.ndarray, np.ndarray]:
        path = self.audio_path(clip)
        if path is None:
            raise FileNotFoundError(f"{self.root / clip}.flac|.wav")
        feats = self._feature_cache().get(path)
        return _first_window(feats.mel, MEL_SHAPE, path), _first_window(feats.loudness, LOUDNESS_SHAPE, path)

    def identity(self) -> str:
        return f"audio:{self.root.resolve()}:{_feature_params_key(self.calibration)}"

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


# ----------------------------------------------------------------------------------- dataset
class ClipDataset(Dataset):
    """One split: labels held as small arrays, features read per item from a feature source."""

    def __init__(self, table: pd.DataFrame, source, normaliser: Normaliser | None):
        self.clips: list[str] = table["clip"].astype(str).tolist()
        self.scene = np.array([SCENES.index(s) for s in table["scene"]], dtype=np.int64)
        self.events = table[list(EVENT_COLUMNS)].to_numpy(dtype=np.float32)
        self.qualities = table[list(QUALITIES)].to_numpy(dtype=np.float32)
        self.isop = table["isop"].to_numpy(dtype=np.float32)
        self.isoe = table["isoe"].to_numpy(dtype=np.float32)
        self.source = source
        self.normaliser = normaliser
        self._memory: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def preload(self) -> bool:
        """Read and normalise every clip once and keep the features in memory (float32: 0.83 MB a
        30-s clip, 300 MB for the embedded set). Clips that cannot be read are still reported and
        skipped per item. Returns False (and stays lazy) when the split would need more than
        :data:`PRELOAD_LIMIT_BYTES`."""
        if self._memory is not None:
            return True
        per_clip = 4 * (MEL_SHAPE[0] * MEL_SHAPE[1] + LOUDNESS_SHAPE[0] * LOUDNESS_SHAPE[1])
        if per_clip * len(self) > PRELOAD_LIMIT_BYTES:
            return False
        mel = torch.empty((len(self), *MEL_SHAPE), dtype=torch.float32)
        loud = torch.empty((len(self), *LOUDNESS_SHAPE), dtype=torch.float32)
        ok = torch.zeros(len(self), dtype=torch.bool)
        for i in range(len(self)):
            item = self._read(i)
            if item is not None:
                mel[i], loud[i] = item
                ok[i] = True
        self._memory = (mel, loud, ok)
        return True

    def __len__(self) -> int:
        return len(self.clips)

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Un-normalised features of item ``i``."""
        return self.source.load(self.clips[i])

    def _read(self, i: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Normalised features of item ``i``, or None (with a one-line warning) when unreadable."""
        clip = self.clips[i]
        try:
            mel, loud = self.source.load(clip)
            mel = self.normaliser.mel(mel) if self.normaliser else np.array(mel, dtype=np.float32)
            loud = self.normaliser.loudness(loud) if self.normaliser else np.array(loud, dtype=np.float32)
        except (OSError, ValueError, EOFError, UserError) as exc:
            warnings.warn(f"clip {clip} skipped: {first_line(exc)}; fix: rebuild or replace its features",
                          SkippedClipWarning, stacklevel=2)
            return None
        return torch.from_numpy(mel), torch.from_numpy(loud)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        clip = self.clips[i]
        if self._memory is not None:
            mel_all, loud_all, ok = self._memory
            if not bool(ok[i]):
                return None
            features = (mel_all[i], loud_all[i])
        else:
            features = self._read(i)
            if features is None:
                return None
        return {
            "mel": features[0],
            "loudness": features[1],
            "scene": torch.tensor(self.scene[i]),
            "events": torch.from_numpy(self.events[i].copy()),
            "qualities": torch.from_numpy(self.qualities[i].copy()),
            "isop": torch.tensor(self.isop[i]),
            "isoe": torch.tensor(self.isoe[i]),
            "clip": clip,
        }


class SkippedClipWarning(SoundaqWarning):
    """An item whose features could not be read was left out of its batch."""


def collate_clips(items: list[dict | None]) -> dict[str, Any]:
    """Stack items into a batch, leaving out skipped (``None``) items."""
    kept = [it for it in items if it is not None]
    if not kept:
        raise DataError(f"all {len(items)} clips of a batch were unreadable (see the warnings above); "
                        "fix: rebuild the features (e.g. `soundaq data prepare`) or remove the broken files")
    batch = {key: torch.stack([it[key] for it in kept]) for key in BATCH_KEYS if key != "clip"}
    batch["clip"] = [it["clip"] for it in kept]
    return batch


# ------------------------------------------------------------------------------- data module
class SoundscapeDataModule(L.LightningDataModule):
    """The shared data module (see the module docstring).

    Parameters
    ----------
    source: ``"embedded"`` or ``"araus"``.
    labels_dir: ARAUS label folder (default for araus: ``<cache>/araus_labels``).
    audio_dir, features_dir: ARAUS clip audio or features in the release's layout (one of them).
    cache_dir: cache root (default ``$SOUNDAQ_CACHE`` or ``~/.cache/soundaq``).
    norm_stats: ``None`` (compute on the training split), a JSON path, or a dict.
    seed: shuffling seed of the training loader (a training run's seed; it does not change the data).
    embedded_clips, embedded_seed, embedded_workers: size and generation seed (default 360 clips, seed 0)
        of the embedded set, and the processes generating it.
    calibration: a :class:`soundaq.models_zoo.features.Calibration` for ``audio_dir`` (default: the pipeline's).
    predict_split: split served by ``predict_dataloader`` (default ``"test"``).
    in_memory: keep each split's normalised features in memory after one read (small sets such as the
        embedded one: many models trained in a row read each clip once; splits over 4 GB stay lazy).
    """

    def __init__(self, source: str = "embedded", labels_dir=None, audio_dir=None, features_dir=None,
                 cache_dir=None, batch_size: int = 32, num_workers: int = 0, norm_stats=None, seed: int = 0,
                 *, embedded_clips: int | None = None, embedded_seed: int | None = None,
                 embedded_workers: int = 2, calibration=None, predict_split: str = "test",
                 pin_memory: bool = False, progress: bool = False, in_memory: bool = False):
        super().__init__()
        if source not in SOURCES:
            raise DataError(f"unknown data source {source!r}; fix: use one of {', '.join(SOURCES)}")
        if int(batch_size) < 1:
            raise DataError(f"batch size {batch_size} is not positive; fix: pass a batch size of at least 1")
        self.source = source
        self.cache_dir = cache_dir
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.pin_memory = pin_memory
        self.progress = progress
        self.in_memory = bool(in_memory)
        self.predict_split = SPLIT_ALIASES.get(predict_split, predict_split)
        if self.predict_split not in SPLITS:
            raise DataError(f"unknown split {predict_split!r}; fix: use one of {', '.join(SPLITS)}")
        self.calibration = calibration
        self._norm_stats_arg = norm_stats
        self.norm_stats: dict | None = None
        self.norm_stats_origin: str | None = None
        self.embedded = None
        if source == "embedded":
            if labels_dir or audio_dir or features_dir:
                raise DataError("labels_dir/audio_dir/features_dir go with source='araus'; "
                                "fix: leave them out for the embedded set")
            from soundaq.models_zoo.data import synthetic

            self.embedded_clips = int(embedded_clips or synthetic.DEFAULT_CLIPS)
            # the data do not change with the training seed: one set serves every run unless asked otherwise
            self.embedded_seed = int(synthetic.DEFAULT_SEED if embedded_seed is None else embedded_seed)
            self.embedded_workers = int(embedded_workers)
            self.labels_dir = None
            self.audio_dir = None
            self.features_dir = None
        else:
            if audio_dir is None and features_dir is None:
                raise DataError("source='araus' needs audio_dir (<clip>.flac|.wav) or features_dir "
                                f"({MEL_DIR}/ and {LOUDNESS_DIR}/); fix: pass one of them")
            if audio_dir is not None and features_dir is not None:
                raise DataError("pass audio_dir or features_dir, not both; fix: keep the one you want features from")
            self.labels_dir = Path(labels_dir).expanduser() if labels_dir else paths.labels_cache_dir(cache_dir)
            check_label_folder(self.labels_dir)
            if not self.labels_dir.is_dir():
                raise DataError(f"{self.labels_dir}: label folder not found; fix: pass labels_dir, or fetch the "
                                "labels with `soundaq data download --labels-to DIR`")
            self.audio_dir = Path(audio_dir).expanduser() if audio_dir else None
            self.features_dir = Path(features_dir).expanduser() if features_dir else None
        self._feature_source = None
        self._tables: dict[str, pd.DataFrame] = {}
        self._datasets: dict[str, ClipDataset] = {}
        self._missing: dict[str, dict[str, str]] = {}   # split -> {clip id: missing file}

    # -- preparation ----------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Generate the embedded set if it is not in the cache yet (no-op for ARAUS)."""
        if self.source == "embedded":
            self._ensure_embedded()

    def _ensure_embedded(self):
        if self.embedded is None:
            from soundaq.models_zoo.data import synthetic

            self.embedded = synthetic.prepare_embedded(
                cache_dir=self.cache_dir, n_clips=self.embedded_clips, seed=self.embedded_seed,
                workers=self.embedded_workers, progress=self.progress)
            self.labels_dir = self.embedded.labels_dir
            self.features_dir = self.embedded.features_dir
        return self.embedded

    def _source(self):
        if self._feature_source is None:
            if self.source == "embedded":
                self._ensure_embedded()
            if self.features_dir is not None:
                self._feature_source = FeatureFolder(self.features_dir)
            else:
                self._feature_source = AudioFolder(self.audio_dir, self.cache_dir, self.calibration)
        return self._feature_source

    # -- labels -----------------------------------------------------------------------------------
    def labels(self, split: str) -> pd.DataFrame:
        """The tidy label table of a split (clip, split, scene, 15 events, 8 qualities, isop, isoe)."""
        split = SPLIT_ALIASES.get(split, split)
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; fix: use one of {', '.join(SPLITS)}")
        if split not in self._tables:
            if self.source == "embedded":
                self._ensure_embedded()
            self._tables[split] = read_split(self.labels_dir, split)
        return self._tables[split]

    @property
    def split_sizes(self) -> dict[str, int]:
        """Clips per split as served (clips without features are left out)."""
        sizes = {}
        for split in SPLITS:
            if split in self._datasets:
                sizes[split] = len(self._datasets[split])
            elif self._has_split(split):
                sizes[split] = len(self.labels(split))
        return sizes

    def _has_split(self, split: str) -> bool:
        if self.source == "embedded":
            return True
        return split_files(self.labels_dir, split).paths["ids"].exists()

    # -- normalisation ----------------------------------------------------------------------------
    def _resolve_norm_stats(self) -> None:
        if self.norm_stats is not None:
            return
        if self._norm_stats_arg is not None:
            stats, self.norm_stats_origin = load_norm_stats(self._norm_stats_arg)
            self.norm_stats = feature_stats(stats)
            return
        if self.source == "embedded":
            emb = self._ensure_embedded()
            stats, _ = load_norm_stats(emb.norm_stats_path)
            self.norm_stats = feature_stats(stats)
            self.norm_stats_origin = (f"computed on the training split of the embedded set "
                                      f"({stats.get('clips', '?')} clips)")
            return
        if not self._has_split("training"):
            raise DataError(f"{self.labels_dir}: no training split to compute normalisation statistics from; "
                            "fix: supply norm_stats (e.g. --norm-stats original_normalisation_stats.json)")
        train = self._dataset("training", normalise=False)
        key = self._norm_key(train)
        cached = paths.norm_stats_cache_dir(self.cache_dir) / f"{key}.json"
        if cached.is_file():
            try:
                stats, _ = load_norm_stats(cached)
                self.norm_stats = feature_stats(stats)
                self.norm_stats_origin = f"computed on the training split ({len(train)} clips), cached {cached}"
                return
            except UserError:
                log.warning("%s: unreadable cached statistics, recomputing", cached)
        stats = compute_training_stats(train, progress=self.progress)
        save_norm_stats(cached, stats, origin=f"training split of {self._source().identity()}")
        self.norm_stats = feature_stats(stats)
        self.norm_stats_origin = f"computed on the training split ({stats['clips']} clips), cached {cached}"

    def _norm_key(self, train: ClipDataset) -> str:
        h = hashlib.sha256()
        source = self._source()
        h.update(source.identity().encode())
        if isinstance(source, FeatureFolder):  # features replaced in place must not reuse old statistics
            for clip in train.clips:
                for p in source.paths(clip):
                    st = p.stat()
                    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        h.update("\n".join(train.clips).encode())
        return h.hexdigest()[:24]

    # -- datasets -----------------------------------------------------------------------------------
    def _dataset(self, split: str, normalise: bool = True) -> ClipDataset:
        split = SPLIT_ALIASES.get(split, split)
        if split in self._datasets and normalise:
            return self._datasets[split]
        table = self.labels(split)
        source = self._source()
        keep, missing = [], {}
        for clip in table["clip"]:
            problem = source.missing(clip)
            keep.append(problem is None)
            if problem is not None:
                missing[clip] = problem
        if missing:
            # a clip with valid labels is never dropped unnamed: the ids are in the line (the first
            # LISTED_CLIPS of them) and all of them in describe()["left_out_clips"]
            warned = split in self._missing
            self._missing[split] = missing
            names = list(missing)
            shown = ", ".join(names[:LISTED_CLIPS]) + (f" and {len(names) - LISTED_CLIPS} more (all in the "
                                                        "run's provenance, left_out_clips)"
                                                        if len(names) > LISTED_CLIPS else "")
            if not warned:
                warnings.warn(f"{len(missing)} of {len(table)} {split} clips have no features or audio and are "
                              f"left out: {shown} (first missing file: {missing[names[0]]}); fix: add the files "
                              "or re-run `soundaq data prepare`", SkippedClipWarning, stacklevel=2)
            table = table.loc[keep].reset_index(drop=True)
        if len(table) == 0:
            raise DataError(f"{split} split: none of its clips has features in {self.features_dir or self.audio_dir}; "
                            "fix: check the folder and the clip ids")
        if not normalise:
            return ClipDataset(table, source, None)
        self._resolve_norm_stats()
        ds = ClipDataset(table, source, Normaliser(self.norm_stats))
        if self.in_memory and not ds.preload():
            log.warning("%s split: too large to keep in memory (%d clips); reading features per batch", split, len(ds))
        self._datasets[split] = ds
        return ds

    def setup(self, stage: str | None = None) -> None:
        splits = STAGE_SPLITS.get(stage, SPLITS) if stage is not None else SPLITS
        if splits is None:
            splits = (self.predict_split,)
        self._resolve_norm_stats()
        for split in splits:
            if self._has_split(split):
                self._dataset(split)
            elif stage is not None:
                raise DataError(f"{self.labels_dir}: the {split} split's files are missing; fix: "
                                "`soundaq data download --labels-to DIR` fetches all of them")

    def dataset(self, split: str) -> ClipDataset:
        return self._dataset(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self._dataset(split)
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          collate_fn=collate_clips, generator=generator, pin_memory=self.pin_memory,
                          persistent_workers=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader("training", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, shuffle=False)

    # -- provenance -----------------------------------------------------------------------------------
    @property
    def synthetic(self) -> bool:
        return self.source == "embedded"

    def describe(self) -> dict:
        """Provenance of what this module serves: source, synthetic or not, folders, sizes, seed, norm stats."""
        out: dict[str, Any] = {
            "source": self.source,
            "synthetic": self.synthetic,
            "data": self.data_label(),
            "labels_dir": str(self.labels_dir) if self.labels_dir else None,
            "features_dir": str(self.features_dir) if self.features_dir else None,
            "audio_dir": str(self.audio_dir) if self.audio_dir else None,
            "split_sizes": self.split_sizes,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "norm_stats_origin": self.norm_stats_origin,
            "left_out": {split: len(m) for split, m in self._missing.items()},
            "left_out_clips": {split: list(m) for split, m in self._missing.items()},
        }
        if self.embedded is not None:
            out["embedded"] = {k: self.embedded.manifest.get(k) for k in
                               ("generator_version", "seed", "n_clips", "key", "calibration", "root")}
        return out

    def data_label(self) -> str:
        """What tables and figures should write in their data column/caption."""
        if self.synthetic:
            from soundaq.models_zoo.data import synthetic

            return synthetic.data_label(self.embedded_clips, self.embedded_seed)
        return "ARAUS (SoundSCaper split)"


def compute_training_stats(train: ClipDataset, progress: bool = False) -> dict:
    """Stream the raw features of a training dataset into normalisation statistics (bad items skipped)."""
    from rich.progress import Progress

    def pairs():
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("normalisation statistics", total=len(train))
            for i in range(len(train)):
                try:
                    yield train.raw(i)
                except (OSError, ValueError, EOFError, UserError) as exc:
                    warnings.warn(f"clip {train.clips[i]} left out of the statistics: {first_line(exc)}; "
                                  "fix: rebuild or replace its features",
                                  SkippedClipWarning, stacklevel=2)
                bar.advance(task)

    return compute_norm_stats(pairs())


def _feature_params_key(calibration=None) -> str:
    """Canonical JSON of the feature pipeline's parameters (changes whenever the features would)."""
    import json

    from soundaq.models_zoo.features import feature_parameters

    return json.dumps(feature_parameters(calibration=calibration), sort_keys=True)
