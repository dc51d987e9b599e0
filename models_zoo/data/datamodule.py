"""One LightningDataModule for every zoo network, whatever the data source.

Sources (:mod:`soundaq.models_zoo.data.sources`: one class each behind one protocol, plus a registry and
the ``soundaq.sources`` entry-point group): ``source="embedded"`` (default: the synthetic set, generated
into the cache on first use), ``source="araus"`` (the paper's label folder with ``features_dir`` in the
original release's layout or ``audio_dir``), ``source="own"`` (``labels_dir`` = one CSV of labels,
``audio_dir`` = its folder of audio), a plug-in's name, or a ready
:class:`~soundaq.models_zoo.data.sources.DataSource` instance. The data module holds no source-specific
code: everything it knows of a source comes through that protocol.

Batches are dicts with :data:`soundaq.models_zoo.outputs.BATCH_KEYS`, plus ``labelled`` (bool [B, 3], the
groups of :data:`soundaq.base.vocab.LABEL_GROUPS` each clip has labels for) when the source lacks a label
group; the values of a missing group are placeholders (scene 0, events 0, ratings 3, ISOP/ISOE 0) that
the loss and the metrics leave out. Features are read lazily, one clip per item (memory-mapped
``.npy``), so streaming a split costs one batch of memory whatever its size. An item whose features
cannot be read (truncated, wrong shape) is skipped with a one-line warning naming the file; the batch
goes on with the others.

Normalisation statistics (per mel bin, loudness) are supplied (path or dict, e.g. the original
release's ``original_normalisation_stats.json``), the source's own (the embedded set's), or computed
by streaming the training split; computed ones are cached beside the data they came from.
"""
from __future__ import annotations

import hashlib
import logging
import warnings

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader

from soundaq.base import paths
from soundaq.base.errors import UserError, first_line
from soundaq.base.vocab import LABEL_GROUPS
from soundaq.models_zoo.data.clip_dataset import ClipDataset, SkippedClipWarning, collate_clips, complete_labels
from soundaq.models_zoo.data.labels import SPLIT_ALIASES, SPLITS
from soundaq.models_zoo.data.normalisation import Normaliser, compute_norm_stats, feature_stats, load_norm_stats, save_norm_stats
from soundaq.models_zoo.data.sources import DataSource, make_source, source_names
from soundaq.models_zoo.data.sources.readers import (  # noqa: F401 - names this module has always exported
    AUDIO_SUFFIXES,
    LOUDNESS_DIR,
    LOUDNESS_SHAPE,
    MEL_DIR,
    MEL_SHAPE,
    AudioFolder,
    DataError,
    FeatureFolder,
)

log = logging.getLogger(__name__)

#: Clip ids named in the one-line warning about clips left out for want of features.
LISTED_CLIPS = 20
#: Which splits each Lightning stage needs.
STAGE_SPLITS = {"fit": ("training", "validation"), "validate": ("validation",), "test": ("test",),
                "predict": None}


def __getattr__(name: str):
    if name == "SOURCES":      # the registry's names (plug-ins included), as this module once listed them
        return tuple(source_names())
    raise AttributeError(name)


# ------------------------------------------------------------------------------- data module
class SoundscapeDataModule(L.LightningDataModule):
    """The shared data module (see the module docstring).

    Parameters
    ----------
    source: a registry name (``"embedded"``, ``"araus"``, ``"own"`` or a plug-in's;
        :func:`soundaq.models_zoo.data.sources.source_names`) or a ready
        :class:`~soundaq.models_zoo.data.sources.DataSource`.
    labels_dir: ARAUS label folder (default for araus: ``<cache>/araus_labels``), or the own source's CSV.
    audio_dir, features_dir: clip audio, or features in the release's layout (araus: one of them; own: audio).
    araus_dir: ARAUS's own download (soundscapes/, maskers/, data/), stimuli mixed in memory (araus only).
    cache_dir: cache root (default ``$SOUNDAQ_CACHE`` or ``~/.cache/soundaq``).
    norm_stats: ``None`` (the source's own, else computed on the training split), a JSON path, or a dict.
    seed: shuffling seed of the training loader (a training run's seed; it does not change the data).
    embedded_clips, embedded_seed, embedded_workers: size and generation seed (default 360 clips, seed 0)
        of the embedded set, and the processes generating it.
    calibration: a :class:`soundaq.models_zoo.features.Calibration` for audio (default: the pipeline's).
    predict_split: split served by ``predict_dataloader`` (default ``"test"``).
    in_memory: keep each split's normalised features in memory after one read (small sets such as the
        embedded one: many models trained in a row read each clip once; splits over 4 GB stay lazy);
        ``"auto"``: as the source suggests (``DataSource.in_memory``).
    source_options: further keyword arguments of a plug-in source's constructor.

    Raises:
        DataError: an unknown source, options that go with another source, or what the source itself
            refuses (each one line saying what it needs).
    """

    def __init__(self, source: str | DataSource = "embedded", labels_dir=None, audio_dir=None, features_dir=None,
                 cache_dir=None, batch_size: int = 32, num_workers: int = 0, norm_stats=None, seed: int = 0,
                 *, embedded_clips: int | None = None, embedded_seed: int | None = None,
                 embedded_workers: int | None = None, calibration=None, predict_split: str = "test",
                 pin_memory: bool = False, progress: bool = False, in_memory: bool | str = False,
                 source_options: dict | None = None, araus_dir=None):
        super().__init__()
        if int(batch_size) < 1:
            raise DataError(f"batch size {batch_size} is not positive; fix: pass a batch size of at least 1")
        self.data_source = make_source(source, labels_dir=labels_dir, audio_dir=audio_dir, features_dir=features_dir,
                                       embedded_clips=embedded_clips, embedded_seed=embedded_seed,
                                       embedded_workers=embedded_workers, cache_dir=cache_dir,
                                       calibration=calibration, progress=progress, araus_dir=araus_dir,
                                       **(source_options or {}))
        self.source = self.data_source.name
        self.cache_dir = cache_dir
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.pin_memory = pin_memory
        self.progress = progress
        self.in_memory = bool(self.data_source.in_memory if in_memory == "auto" else in_memory)
        self.predict_split = SPLIT_ALIASES.get(predict_split, predict_split)
        if self.predict_split not in SPLITS:
            raise DataError(f"unknown split {predict_split!r}; fix: use one of {', '.join(SPLITS)}")
        self.calibration = calibration
        self._norm_stats_arg = norm_stats
        self.norm_stats: dict | None = None
        self.norm_stats_origin: str | None = None
        self._feature_source = None
        self._tables: dict[str, pd.DataFrame] = {}
        self._datasets: dict[str, ClipDataset] = {}
        self._missing: dict[str, dict[str, str]] = {}   # split -> {clip id: missing file}

    # -- preparation ----------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """The source's preparation (generate the embedded set, check a labels CSV, ...; idempotent)."""
        self.data_source.prepare()

    def _source(self):
        """The source's feature reader (FeatureFolder or AudioFolder)."""
        if self._feature_source is None:
            self._feature_source = self.data_source.reader()
        return self._feature_source

    @property
    def tasks(self) -> tuple[str, ...]:
        """The label groups the source labels (of :data:`~soundaq.base.vocab.LABEL_GROUPS`)."""
        return tuple(self.data_source.tasks)

    @property
    def synthetic(self) -> bool:
        """Whether the source's data is synthetic (every table and figure made from it then says so)."""
        return bool(self.data_source.synthetic)

    # -- labels -----------------------------------------------------------------------------------
    def labels(self, split: str) -> pd.DataFrame:
        """The tidy label table of a split (clip, split, scene, 15 events, 8 qualities, isop, isoe; the
        columns of groups the source does not label are empty).
        """
        split = SPLIT_ALIASES.get(split, split)
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; fix: use one of {', '.join(SPLITS)}")
        if split not in self._tables:
            self._tables[split] = complete_labels(self.data_source.labels(split), self.tasks)
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
        return split in self.data_source.splits()

    # -- normalisation ----------------------------------------------------------------------------
    def _resolve_norm_stats(self) -> dict:
        """The statistics to normalise with: supplied, the source's own, cached or computed (once)."""
        if self.norm_stats is not None:
            return self.norm_stats
        if self._norm_stats_arg is not None:
            stats, self.norm_stats_origin = load_norm_stats(self._norm_stats_arg)
            self.norm_stats = feature_stats(stats)
            return self.norm_stats
        own = self.data_source.norm_stats()
        if own is not None:
            stats, self.norm_stats_origin = own
            self.norm_stats = feature_stats(stats)
            return self.norm_stats
        if not self._has_split("training"):
            raise DataError(f"{self.data_label()}: no training split to compute normalisation statistics from; "
                            "fix: supply norm_stats (e.g. --norm-stats original_normalisation_stats.json)")
        train = self._dataset("training", normalise=False)
        key = self._norm_key(train)
        cached = paths.norm_stats_cache_dir(self.cache_dir) / f"{key}.json"
        if cached.is_file():
            try:
                stats, _ = load_norm_stats(cached)
                self.norm_stats = feature_stats(stats)
                self.norm_stats_origin = f"computed on the training split ({len(train)} clips), cached {cached}"
                return self.norm_stats
            except UserError:
                log.warning("%s: unreadable cached statistics, recomputing", cached)
        stats = compute_training_stats(train, progress=self.progress)
        save_norm_stats(cached, stats, origin=f"training split of {self.data_source.identity()}")
        self.norm_stats = feature_stats(stats)
        self.norm_stats_origin = f"computed on the training split ({stats['clips']} clips), cached {cached}"
        return self.norm_stats

    def _norm_key(self, train: ClipDataset) -> str:
        h = hashlib.sha256()
        h.update(self.data_source.identity().encode())
        for item in self._source().fingerprint(train.clips):  # features replaced in place change the key
            h.update(item.encode())
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
            where = self.data_source.describe()
            folder = where.get("features_dir") or where.get("audio_dir") or self.data_label()
            raise DataError(f"{split} split: none of its clips has features in {folder}; "
                            "fix: check the folder and the clip ids")
        if not normalise:
            return ClipDataset(table, source, None, self.tasks)
        ds = ClipDataset(table, source, Normaliser(self._resolve_norm_stats()), self.tasks)
        if self.in_memory and not ds.preload():
            log.warning("%s split: too large to keep in memory (%d clips); reading features per batch", split, len(ds))
        self._datasets[split] = ds
        return ds

    def setup(self, stage: str | None = None) -> None:
        """Lightning hook: build the datasets of the splits ``stage`` needs (all splits when None).

        Raises:
            DataError: a split the stage needs is missing from the source (its message names the fix).
        """
        splits = STAGE_SPLITS.get(stage, SPLITS) if stage is not None else SPLITS
        if splits is None:
            splits = (self.predict_split,)
        self._resolve_norm_stats()
        for split in splits:
            if self._has_split(split):
                self._dataset(split)
            elif stage is not None:
                raise self.data_source.missing_split(split)

    def dataset(self, split: str) -> ClipDataset:
        """The normalised dataset of ``split`` (built on first use)."""
        return self._dataset(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self._dataset(split)
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          collate_fn=collate_clips, generator=generator, pin_memory=self.pin_memory,
                          persistent_workers=False)

    def train_dataloader(self) -> DataLoader:
        """Lightning hook: the training split, shuffled with the module's seed."""
        return self._loader("training", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Lightning hook: the validation split, in order."""
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Lightning hook: the test split, in order."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Lightning hook: the split named by ``predict_split``, in order."""
        return self._loader(self.predict_split, shuffle=False)

    # -- provenance -----------------------------------------------------------------------------------
    def describe(self) -> dict:
        """Provenance of what this module serves: source, synthetic or not, labelled tasks, folders, sizes,
        seed, norm stats, clips left out.
        """
        sizes = self.split_sizes
        where = {"labels_dir": None, "features_dir": None, "audio_dir": None, **self.data_source.describe()}
        extra = {k: v for k, v in where.items() if k not in ("labels_dir", "features_dir", "audio_dir")}
        return {
            "source": self.source,
            "synthetic": self.synthetic,
            "paper_split": bool(self.data_source.paper_split),
            "data": self.data_label(),
            "tasks": list(self.tasks),
            "unlabelled": [g for g in LABEL_GROUPS if g not in self.tasks],
            "labels_dir": where["labels_dir"],
            "features_dir": where["features_dir"],
            "audio_dir": where["audio_dir"],
            "split_sizes": sizes,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "norm_stats_origin": self.norm_stats_origin,
            "left_out": {split: len(m) for split, m in self._missing.items()},
            "left_out_clips": {split: list(m) for split, m in self._missing.items()},
            **extra,
        }

    def data_label(self) -> str:
        """What tables and figures should write in their data column/caption."""
        return self.data_source.data_label()


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


def prepare_features(dm: SoundscapeDataModule, progress: bool = False) -> tuple[list[str], list[str]]:
    """Make every split of ``dm`` ready to serve: the source prepared, each clip's features computed into
    the feature cache when they come from audio (clip by clip: one bad file does not stop the rest), the
    normalisation statistics resolved. What ``soundaq data prepare`` does for a labelled source.

    Returns:
        ``(failed, skipped)``: one line per clip whose audio could not be turned into features, and the
        warnings about clips left out (no file, unreadable features).

    Raises:
        DataError: the source has no split at all (one line), or what the source refuses.
    """
    from rich.progress import Progress

    failures: list[str] = []
    dm.prepare_data()      # its own warnings (e.g. ignored CSV columns) are shown, not collected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedClipWarning)
        present = [s for s in SPLITS if dm._has_split(s)]
        if not present:
            raise dm.data_source.missing_split("training")
        if isinstance(dm._source(), AudioFolder):
            with Progress(disable=not progress) as bar:
                for split in present:
                    ds = dm._dataset(split, normalise=False)
                    task = bar.add_task(f"features: {split}", total=len(ds))
                    for i in range(len(ds)):
                        try:
                            ds.raw(i)
                        except (UserError, OSError, ValueError) as exc:
                            failures.append(f"{ds.clips[i]}: {first_line(exc)}")
                        bar.advance(task)
        dm.setup()
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedClipWarning)]
    return failures, skipped
