"""A toy data source from outside the project: everything a source plug-in needs (docs/extending.md).

Declare it in your package's pyproject.toml with one line::

    [project.entry-points."soundaq.sources"]
    toy = "soundaq_toysource:ToySource"

and ``--data toy`` works in ``soundaq train`` and ``soundaq leaderboard``. It labels scenes and
qualities but no events, so it also shows a source that lacks a label group.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from soundaq.base.paths import cache_root
from soundaq.base.vocab import QUALITIES, SCENES, iso_coordinates
from soundaq.models_zoo.data.sources import DataSource, FeatureFolder
from soundaq.models_zoo.data.sources.readers import LOUDNESS_DIR, LOUDNESS_SHAPE, MEL_DIR, MEL_SHAPE

SPLIT_OF = ["training"] * 6 + ["validation"] * 3 + ["test"] * 3


class ToySource(DataSource):
    """Twelve clips of random features written into the cache on first use (scene and qualities only)."""

    name = "toy"
    description = "a toy source of random features"
    needs = "nothing"
    in_memory = True

    def __init__(self, cache_dir=None):
        self.root = cache_root(cache_dir) / "toysource"
        rng = np.random.default_rng(0)
        ratings = rng.integers(1, 6, size=(len(SPLIT_OF), len(QUALITIES))).astype(float)
        self.table = pd.DataFrame({"clip": [f"toy{i:02d}" for i in range(len(SPLIT_OF))], "split": SPLIT_OF,
                                   "scene": [SCENES[i % 3] for i in range(len(SPLIT_OF))]})
        self.table[list(QUALITIES)] = ratings
        self.table["isop"], self.table["isoe"] = iso_coordinates(*ratings.T)

    @property
    def tasks(self):
        return ("scene", "qualities")

    def prepare(self):
        rng = np.random.default_rng(1)
        for clip in self.table["clip"]:
            for sub, shape, scale in ((MEL_DIR, MEL_SHAPE, 10.0), (LOUDNESS_DIR, LOUDNESS_SHAPE, 1.0)):
                path = self.root / sub / f"{clip}.npy"
                if not path.is_file():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path, (scale * rng.normal(size=shape)).astype(np.float32))

    def splits(self):
        return ("training", "validation", "test")

    def labels(self, split):
        return self.table[self.table["split"] == split].reset_index(drop=True)

    def reader(self):
        self.prepare()
        return FeatureFolder(self.root)

    def data_label(self):
        return "toy source (12 random clips)"

    def identity(self):
        return f"toy:{Path(self.root).resolve()}"
