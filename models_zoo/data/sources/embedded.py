"""``embedded``: the synthetic set of :mod:`soundaq.models_zoo.data.synthetic`, generated into the cache on
first use and then read like ARAUS features (its own normalisation statistics come with it).
"""
from __future__ import annotations

from soundaq.models_zoo.data.labels import SPLITS, read_split
from soundaq.models_zoo.data.sources.base import DataSource
from soundaq.models_zoo.data.sources.readers import FeatureFolder


class EmbeddedSource(DataSource):
    """The embedded synthetic set (default 360 clips, seed 0; ``embedded_workers`` processes generate it).

    The data do not change with a training run's seed: one set serves every run unless asked otherwise.
    """

    name = "embedded"
    synthetic = True
    description = "the bundled synthetic set (generated into the cache on first use)"
    needs = "nothing (embedded_clips/--embedded-clips and embedded_seed optional)"
    schedule = "embedded"
    in_memory = True

    def __init__(self, embedded_clips: int | None = None, embedded_seed: int | None = None,
                 embedded_workers: int | None = None, cache_dir=None, progress: bool = False):
        from soundaq.models_zoo.data import synthetic

        self.n_clips = int(embedded_clips or synthetic.DEFAULT_CLIPS)
        self.seed = int(synthetic.DEFAULT_SEED if embedded_seed is None else embedded_seed)
        self.workers = int(2 if embedded_workers is None else embedded_workers)
        self.cache_dir = cache_dir
        self.progress = bool(progress)
        self.embedded = None          # the prepared synthetic.EmbeddedSet

    def prepare(self):
        """Generate the set into the cache unless it is complete there; returns the ``EmbeddedSet``."""
        if self.embedded is None:
            from soundaq.models_zoo.data import synthetic

            self.embedded = synthetic.prepare_embedded(cache_dir=self.cache_dir, n_clips=self.n_clips, seed=self.seed,
                                                       workers=self.workers, progress=self.progress)
        return self.embedded

    def splits(self) -> tuple[str, ...]:
        """All three splits (the generator gives every scene a training, validation and test clip)."""
        return SPLITS

    def labels(self, split: str):
        """The tidy label table of ``split`` from the generated label files (generated on first use)."""
        return read_split(self.prepare().labels_dir, split)

    def reader(self) -> FeatureFolder:
        """The reader of the set's feature folder (``.npy`` per clip)."""
        return FeatureFolder(self.prepare().features_dir)

    def data_label(self) -> str:
        """The data column: ``synthetic (soundaq embedded set v<version>, <n> clips, seed <seed>)``."""
        from soundaq.models_zoo.data import synthetic

        return synthetic.data_label(self.n_clips, self.seed)

    def identity(self) -> str:
        """``embedded:<key>`` (generator version, size, seed and feature parameters)."""
        from soundaq.models_zoo.data import synthetic

        return f"embedded:{synthetic.embedded_key(self.n_clips, self.seed)}"

    def norm_stats(self) -> tuple[dict, str]:
        """The statistics the generator wrote for the training split, with their origin."""
        from soundaq.models_zoo.data.normalisation import load_norm_stats

        stats, _ = load_norm_stats(self.prepare().norm_stats_path)
        return stats, f"computed on the training split of the embedded set ({stats.get('clips', '?')} clips)"

    def describe(self) -> dict:
        """The set's label and feature folders and its manifest's provenance fields."""
        es = self.prepare()
        return {"labels_dir": str(es.labels_dir), "features_dir": str(es.features_dir), "audio_dir": None,
                "embedded": {k: es.manifest.get(k) for k in
                             ("generator_version", "seed", "n_clips", "key", "calibration", "root")}}
