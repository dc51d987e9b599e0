"""One split of clips as a torch Dataset, and the collate function that makes its batches.

A :class:`ClipDataset` holds a split's labels as small arrays and reads each clip's features from a
data source's feature reader per item (memory-mapped ``.npy``), or keeps the whole split in memory
when it fits (:meth:`ClipDataset.preload`). An item whose features cannot be read is skipped with a
one-line :class:`SkippedClipWarning` naming the clip; :func:`collate_clips` leaves it out of its
batch. The label groups a source lacks hold placeholders (:data:`PLACEHOLDER`) and every item then
says which groups are labelled.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from soundaq.base.errors import SoundaqWarning, UserError, first_line
from soundaq.base.vocab import EVENT_COLUMNS, GROUP_COLUMNS, LABEL_GROUPS, QUALITIES, SCENES
from soundaq.models_zoo.data.normalisation import Normaliser
from soundaq.models_zoo.data.sources.readers import LOUDNESS_SHAPE, MEL_SHAPE, DataError
from soundaq.models_zoo.outputs import BATCH_KEYS, LABELLED_KEY

#: Largest split :meth:`ClipDataset.preload` keeps in memory (bytes of normalised float32 features).
PRELOAD_LIMIT_BYTES = 4 << 30
#: What a clip's values of an unlabelled group are set to (never scored, never trained on).
PLACEHOLDER: dict[str, str | float] = {"scene": SCENES[0], "events": 0.0, "qualities": 3.0, "isop": 0.0, "isoe": 0.0}


def complete_labels(table: pd.DataFrame, tasks) -> pd.DataFrame:
    """A source's label table with every column of :data:`~soundaq.base.vocab.GROUP_COLUMNS`: those of the
    groups outside ``tasks`` are added as empty (NaN). Raises DataError when a labelled group lacks a
    column or has an empty cell (a source's bug: the message names the column).
    """
    out = table.copy()
    for group in LABEL_GROUPS:
        for column in GROUP_COLUMNS[group]:
            if group not in tasks:
                out[column] = np.nan
            elif column not in out.columns or out[column].isna().any():
                raise DataError(f"the {group} labels have no values in column {column!r}; fix: the data source "
                                f"must fill every {group} column when it declares the {group} task")
    return out


class ClipDataset(Dataset):
    """One split: labels held as small arrays, features read per item from a feature reader.

    ``tasks``: the label groups the table has (default all); the others hold placeholders and every
    item then says which groups are labelled (``labelled``, bool [3] in LABEL_GROUPS order).
    """

    def __init__(self, table: pd.DataFrame, source, normaliser: Normaliser | None, tasks=LABEL_GROUPS):
        self.clips: list[str] = table["clip"].astype(str).tolist()
        self.tasks = tuple(tasks)
        filled = table.copy()
        for group in LABEL_GROUPS:
            if group not in self.tasks:
                for column in GROUP_COLUMNS[group]:
                    filled[column] = PLACEHOLDER.get(column, PLACEHOLDER[group])
        self.scene = np.array([SCENES.index(s) for s in filled["scene"]], dtype=np.int64)
        self.events = filled[list(EVENT_COLUMNS)].to_numpy(dtype=np.float32)
        self.qualities = filled[list(QUALITIES)].to_numpy(dtype=np.float32)
        self.isop = filled["isop"].to_numpy(dtype=np.float32)
        self.isoe = filled["isoe"].to_numpy(dtype=np.float32)
        self.labelled = (None if set(LABEL_GROUPS) <= set(self.tasks) else
                         torch.tensor([g in self.tasks for g in LABEL_GROUPS], dtype=torch.bool))
        self.source = source
        self.normaliser = normaliser
        self._memory: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def preload(self) -> bool:
        """Read and normalise every clip once and keep the features in memory (float32: 0.83 MB a
        30-s clip, 300 MB for the embedded set). Clips that cannot be read are still reported and
        skipped per item. Returns False (and stays lazy) when the split would need more than
        :data:`PRELOAD_LIMIT_BYTES`.
        """
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
        features: tuple[torch.Tensor, torch.Tensor] | None
        if self._memory is not None:
            mel_all, loud_all, ok = self._memory
            if not bool(ok[i]):
                return None
            features = (mel_all[i], loud_all[i])
        else:
            features = self._read(i)
            if features is None:
                return None
        item = {
            "mel": features[0],
            "loudness": features[1],
            "scene": torch.tensor(self.scene[i]),
            "events": torch.from_numpy(self.events[i].copy()),
            "qualities": torch.from_numpy(self.qualities[i].copy()),
            "isop": torch.tensor(self.isop[i]),
            "isoe": torch.tensor(self.isoe[i]),
            "clip": clip,
        }
        if self.labelled is not None:
            item[LABELLED_KEY] = self.labelled.clone()
        return item


class SkippedClipWarning(SoundaqWarning):
    """An item whose features could not be read was left out of its batch."""


def collate_clips(items: list[dict | None]) -> dict[str, Any]:
    """Stack items into a batch, leaving out skipped (``None``) items."""
    kept = [it for it in items if it is not None]
    if not kept:
        raise DataError(f"all {len(items)} clips of a batch were unreadable (see the warnings above); "
                        "fix: rebuild the features (e.g. `soundaq data prepare`) or remove the broken files")
    keys = [key for key in (*BATCH_KEYS, LABELLED_KEY) if key != "clip" and key in kept[0]]
    batch: dict[str, Any] = {key: torch.stack([it[key] for it in kept]) for key in keys}
    batch["clip"] = [it["clip"] for it in kept]
    return batch
