"""ARAUS's own protocol over any source whose clips carry ARAUS folds: one rotation of its cross-validation.

ARAUS (Ooi et al. 2023) splits its stimuli into folds that share no base recording and no masker:
folds 1-5 for five-fold cross-validation and fold 0, made from new recordings and maskers, as the
independent test set. Rotation ``r`` (1-5) pools the clips of every split of the wrapped source,
trains on folds {1..5} minus r, validates on fold r and tests on fold 0, so no test clip shares a
recording with a training clip. The fold of a clip comes from ``labels.clip_folds`` (the clip id
``fold_<k>_...`` or a ``fold`` column). Features, normalisation statistics and tasks are the wrapped
source's; the identity says the rotation, so caches and run folders never mix rotations.
"""
from __future__ import annotations

from soundaq.models_zoo.data.sources.base import DataSource
from soundaq.models_zoo.data.sources.readers import DataError

#: ARAUS's cross-validation folds and its independent test fold.
CV_FOLDS = (1, 2, 3, 4, 5)
TEST_FOLD = 0


def pooled_folds(inner: DataSource):
    """``(labels of every split stacked, their folds)``.

    Raises:
        DataError: the clips carry no fold, or a fold of ARAUS's protocol has no clip (one line each).
    """
    import pandas as pd

    from soundaq.models_zoo.data.labels import clip_folds

    table = pd.concat([inner.labels(s) for s in inner.splits()], ignore_index=True)
    folds = clip_folds(table)
    if folds is None:
        raise DataError(f"--protocol araus: the clips of {inner.data_label()} carry no ARAUS fold (no clip id "
                        "fold_<k>_participant_..., no fold column); fix: use --protocol published, or data whose "
                        "clips name their fold")
    missing = [k for k in (TEST_FOLD, *CV_FOLDS) if not (folds == k).any()]
    if missing:
        raise DataError(f"--protocol araus: {inner.data_label()} has no clip of fold(s) "
                        f"{', '.join(map(str, missing))} (ARAUS's protocol needs folds 1-5 and the test fold 0); "
                        "fix: add those folds' clips, or use --protocol published")
    return table, folds


class FoldRotation(DataSource):
    """Rotation ``validation_fold`` of ARAUS's protocol over ``inner`` (see the module docstring)."""

    name = "araus-rotation"
    description = "ARAUS's protocol: train on four of folds 1-5, validate on the fifth, test on fold 0"

    def __init__(self, inner: DataSource, validation_fold: int):
        if validation_fold not in CV_FOLDS:
            raise DataError(f"rotation {validation_fold}: ARAUS's validation fold is one of 1-5; fix: choose one")
        self.inner = inner
        self.fold = int(validation_fold)
        self._table = None

    @property
    def synthetic(self) -> bool:  # type: ignore[override]
        """Whether the pooled source is synthetic."""
        return bool(self.inner.synthetic)

    @property
    def in_memory(self) -> bool:  # type: ignore[override]
        """Whether the pooled source's splits fit in memory."""
        return bool(self.inner.in_memory)

    @property
    def schedule(self) -> str:  # type: ignore[override]
        """The pooled source's training schedule."""
        return self.inner.schedule

    @property
    def tasks(self) -> tuple[str, ...]:
        """The label groups of the pooled source."""
        return tuple(self.inner.tasks)

    def prepare(self) -> None:
        """Prepare the pooled source and assign its folds to this rotation's splits (once)."""
        import numpy as np

        self.inner.prepare()
        if self._table is None:
            table, folds = pooled_folds(self.inner)
            train = [k for k in CV_FOLDS if k != self.fold]
            f = folds.fillna(-1).astype(int)
            split = np.select([f == TEST_FOLD, f == self.fold, f.isin(train)], ["test", "validation", "training"],
                              default="")
            table = table.assign(split=split, fold=f.to_numpy())
            self._table = table[table["split"] != ""].reset_index(drop=True)

    def splits(self) -> tuple[str, ...]:
        """All three splits: the four training folds, the validation fold and test fold 0."""
        return ("training", "validation", "test")

    def labels(self, split: str):
        """The clips of ``split`` under this rotation, with their ``fold`` column."""
        self.prepare()
        assert self._table is not None
        return self._table[self._table["split"] == split].reset_index(drop=True)

    def reader(self):
        """The pooled source's reader."""
        return self.inner.reader()

    def data_label(self) -> str:
        """The pooled source's data label, with the rotation and its folds."""
        return f"{self.inner.data_label()}, ARAUS protocol rotation {self.fold} (validation fold {self.fold}, test fold 0)"

    def identity(self) -> str:
        """The pooled source's identity with ``|araus-rotation:<fold>``."""
        return f"{self.inner.identity()}|araus-rotation:{self.fold}"

    def norm_stats(self):
        """The pooled source's own statistics, if any (else computed on this rotation's training split)."""
        return self.inner.norm_stats()

    def describe(self) -> dict:
        """The pooled source's provenance with the protocol and the folds of each split."""
        return {**self.inner.describe(), "protocol": "araus", "validation_fold": self.fold,
                "training_folds": [k for k in CV_FOLDS if k != self.fold], "test_fold": TEST_FOLD}
