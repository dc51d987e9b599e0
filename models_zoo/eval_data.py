"""The data being scored: predictions and ground truth of N clips, checked once.

:class:`EvalData` holds a model's outputs and the labels of N clips as float64/int64 numpy arrays in
vocabulary order (``soundaq.base.vocab``); every metric of :mod:`soundaq.models_zoo.metrics` reads it,
and :mod:`soundaq.evaluation.bootstrap` resamples it. Bad arrays raise :class:`MetricInputError`, one
line naming the source and the fix; a predictions table is read through its one parser,
:mod:`soundaq.base.predictions_table`.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from soundaq.base import predictions_table
from soundaq.base.errors import UserError
from soundaq.base.vocab import EVENTS, LABEL_GROUPS, QUALITIES, SCENES

if TYPE_CHECKING:
    import pandas as pd

class MetricInputError(UserError):
    """Arrays or settings that cannot be scored; the message names the source and the fix. A predictions
    table's problems are :class:`~soundaq.base.predictions_table.PredictionTableError` (its one parser).
    """


#: What :class:`EvalData` takes for an array: a numpy array, nested sequences or a torch tensor.
Arrayish = Any


class _Labels:
    """A ground-truth array of :class:`EvalData` read through a check (a descriptor): ``data.<name>`` is the
    ``field`` array, for code that runs on data labelled in ``group`` only.

    Raises (on access):
        MetricInputError: the data have no ``group`` labels (their ``field`` is None).
    """

    def __init__(self, field: str, group: str, shape: str):
        self.field, self.group = field, group
        self.__doc__ = (f"``{field}`` ``{shape}``, for code that runs on data with {group} labels only; "
                        f"MetricInputError when the data have none.")

    @overload
    def __get__(self, data: None, owner: type) -> _Labels: ...

    @overload
    def __get__(self, data: EvalData, owner: type | None = None) -> np.ndarray: ...

    def __get__(self, data: EvalData | None, owner: type | None = None) -> np.ndarray | _Labels:
        if data is None:
            return self
        labels = getattr(data, self.field)
        if labels is None:
            raise MetricInputError(f"{data.source}: the data have no {self.group} labels; fix: score only the "
                                   "metrics of the labelled groups (metrics_for(data.tasks))")
        return labels


class EvalData:
    """Predictions and ground truth of N clips, as float64/int64 numpy arrays in vocab order.

    scene_true [N] (index into SCENES), scene_prob [N, 3], event_true [N, 15] (0/1),
    event_prob [N, 15], quality_true / quality_pred [N, 8] (QUALITIES order),
    iso_true / iso_pred [N, 2] (isop, isoe).

    Ground truth of a label group the data lack is None (``scene_true``; ``event_true``; ``quality_true``
    with ``iso_true``): :attr:`tasks` lists the groups that are labelled, and every metric of another
    group is NaN (:meth:`soundaq.models_zoo.metric_definitions.ScoreFunction.evaluate`). Predictions are
    always complete.

    Args:
        scene_prob: scene probabilities ``[N, 3]`` (vocab.SCENES order).
        event_prob: event probabilities ``[N, 15]`` (vocab.EVENTS order).
        quality_pred: predicted ratings ``[N, 8]`` (1-5 scale, vocab.QUALITIES order).
        iso_pred: predicted ISOPleasant / ISOEventful ``[N, 2]`` ([-1, 1] scale).
        scene_true: true scene index per clip ``[N]``, or None when the data lack scene labels.
        event_true: multi-hot event labels ``[N, 15]``, or None.
        quality_true: rated qualities ``[N, 8]``, or None (then ``iso_true`` is None too).
        iso_true: ISOPleasant / ISOEventful of the ratings ``[N, 2]``, or None.
        clips: one id per clip (default ``"0"``, ``"1"``, ...).
        source: how messages name the data (a file, a table).

    Raises:
        MetricInputError: wrong shapes, non-finite values, labels outside their range, no clip, or a
            quality group given half (ratings without ISOP/ISOE or the reverse); one line each.
    """

    def __init__(self, *, scene_prob: Arrayish, event_prob: Arrayish, quality_pred: Arrayish, iso_pred: Arrayish,
                 scene_true: Arrayish | None = None, event_true: Arrayish | None = None,
                 quality_true: Arrayish | None = None, iso_true: Arrayish | None = None,
                 clips: Sequence[Any] | None = None, source: str = "predictions"):
        self.source = source
        self.scene_prob = _matrix(scene_prob, len(SCENES), "scene probabilities", source)
        n = self.scene_prob.shape[0]
        if n == 0:
            raise MetricInputError(f"{source}: no clips to score; fix: pass at least one clip with labels")
        self.scene_true = None if scene_true is None else _scene_indices(scene_true, n, source)
        self.event_true: np.ndarray | None = None
        if event_true is not None:
            self.event_true = _matrix(event_true, len(EVENTS), "event labels", source, n)
            if not np.all((self.event_true == 0) | (self.event_true == 1)):
                raise MetricInputError(f"{source}: event labels must be 0 or 1; fix: write multi-hot labels")
        self.event_prob = _matrix(event_prob, len(EVENTS), "event probabilities", source, n)
        if (quality_true is None) != (iso_true is None):
            raise MetricInputError(f"{source}: quality ratings and ISOP/ISOE labels come together; fix: pass both "
                                   "or neither (ISOP/ISOE follow from the ratings, vocab.iso_from_matrix)")
        self.quality_true = None if quality_true is None else _matrix(quality_true, len(QUALITIES), "quality labels",
                                                                      source, n)
        self.quality_pred = _matrix(quality_pred, len(QUALITIES), "quality predictions", source, n)
        self.iso_true = None if iso_true is None else _matrix(iso_true, 2, "ISOP/ISOE labels", source, n)
        self.iso_pred = _matrix(iso_pred, 2, "ISOP/ISOE predictions", source, n)
        self.clips = tuple(str(c) for c in clips) if clips is not None else tuple(str(i) for i in range(n))
        if len(self.clips) != n:
            raise MetricInputError(f"{source}: {len(self.clips)} clip ids for {n} clips; fix: one id per clip")

    @property
    def n(self) -> int:
        """The number of clips N."""
        return int(self.scene_prob.shape[0])

    def __len__(self) -> int:
        return self.n

    @property
    def tasks(self) -> tuple[str, ...]:
        """The label groups (vocab.LABEL_GROUPS) whose ground truth is known."""
        have = {"scene": self.scene_true is not None, "events": self.event_true is not None,
                "qualities": self.quality_true is not None}
        return tuple(g for g in LABEL_GROUPS if have[g])

    @cached_property
    def scene_pred(self) -> np.ndarray:
        """Predicted scene index: argmax of the probabilities, the first scene winning a tie (as np.argmax)."""
        return np.argmax(self.scene_prob, axis=1)

    @cached_property
    def clip_event_auc(self) -> np.ndarray:
        """Per-clip ROC AUC over the 15 events ([N]; NaN where a clip has no positive or no negative event)."""
        return clipwise_auc(self.event_labels, self.event_prob)

    @cached_property
    def event_sort(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per event (15): ascending score order ``[N]``, the labels in that order ``[N]`` and the starts of
        the tie groups (the per-event AUC and AP kernels walk the scores once through it).
        """
        out = []
        for k in range(len(EVENTS)):
            order = np.argsort(self.event_prob[:, k], kind="stable")
            s = self.event_prob[order, k]
            starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
            out.append((order, self.event_labels[order, k], starts))
        return out

    # Ground truth for code that runs on labelled data only: the array, or MetricInputError (one line naming
    # the source and the fix) when the data lack that label group.
    scene_labels = _Labels("scene_true", "scene", "[N]")
    event_labels = _Labels("event_true", "events", "[N, 15]")
    quality_labels = _Labels("quality_true", "qualities", "[N, 8]")
    iso_labels = _Labels("iso_true", "qualities", "[N, 2] (ISOPleasant, ISOEventful)")

    def take(self, index: Arrayish) -> EvalData:
        """The clips at ``index`` (with repeats: an explicit bootstrap resample).

        Args:
            index: clip positions ``[M]`` (integers in ``0..N-1``, repeats allowed).

        Returns:
            A new :class:`EvalData` of M clips, the same label groups.
        """
        index = np.asarray(index)

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[index]

        return EvalData(scene_true=pick(self.scene_true), scene_prob=self.scene_prob[index],
                        event_true=pick(self.event_true), event_prob=self.event_prob[index],
                        quality_true=pick(self.quality_true), quality_pred=self.quality_pred[index],
                        iso_true=pick(self.iso_true), iso_pred=self.iso_pred[index],
                        clips=[self.clips[i] for i in index], source=self.source)

    @classmethod
    def from_table(cls, frame: pd.DataFrame, source: str = "predictions table", lines: bool = False) -> EvalData:
        """Read a predictions table (``vocab.PREDICTION_COLUMNS`` + ``vocab.TRUTH_COLUMNS``) through its one
        parser, :func:`soundaq.base.predictions_table.score_arrays`.

        A label group whose ``true_*`` columns are all empty (``vocab.TRUTH_GROUP_COLUMNS``) is unlabelled;
        one empty cell in a group that has values elsewhere is an error naming the clip. ``lines``: the frame
        was read from a CSV file, so messages give the line too.

        Args:
            frame: the table, one row per clip.
            source: how messages name the table (its file).
            lines: True when ``frame`` was read from a CSV file (messages then give the line).

        Returns:
            The table's clips as :class:`EvalData`.

        Raises:
            PredictionTableError: the table's problems (one line naming row, clip, column and fix).
        """
        return cls(source=source, **predictions_table.score_arrays(frame, source, lines))


def _scene_indices(scene_true: Arrayish, n: int, source: str) -> np.ndarray:
    st = np.asarray(scene_true)
    if st.shape != (n,):
        raise MetricInputError(f"{source}: scene labels have shape {st.shape}, expected ({n},); "
                               "fix: one scene index per clip")
    if not np.issubdtype(st.dtype, np.integer):
        if not np.all(np.isfinite(st)) or np.any(st != np.round(st)):
            raise MetricInputError(f"{source}: scene labels must be integer indices into {SCENES}; "
                                   "fix: map scene names with vocab.SCENES.index")
    st = st.astype(np.int64)
    if st.min() < 0 or st.max() >= len(SCENES):
        raise MetricInputError(f"{source}: scene label {int(st.max() if st.max() >= len(SCENES) else st.min())}"
                               f" is not an index into {SCENES}; fix: use 0..{len(SCENES) - 1}")
    return st


def _matrix(x: Arrayish, width: int, what: str, source: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != width or (n is not None and a.shape[0] != n):
        want = f"[{n if n is not None else 'N'}, {width}]"
        raise MetricInputError(f"{source}: {what} have shape {list(a.shape)}, expected {want}; "
                               "fix: pass one row per clip in vocab order")
    if not np.all(np.isfinite(a)):
        row = int(np.argwhere(~np.isfinite(a))[0][0])
        raise MetricInputError(f"{source}: {what} of clip {row} are not finite; fix: rerun the model on that clip")
    return a


def clipwise_auc(event_true: np.ndarray, event_prob: np.ndarray) -> np.ndarray:
    """ROC AUC of each row (clip) over its columns (events): the share of (positive, negative) event pairs
    ranked correctly, ties counting 1/2 (Mann-Whitney U, as sklearn's roc_auc_score). NaN for rows
    without a positive or without a negative.
    """
    y = np.asarray(event_true, dtype=np.float64)
    s = np.asarray(event_prob, dtype=np.float64)
    out = np.full(y.shape[0], np.nan)
    npos = y.sum(axis=1)
    nneg = y.shape[1] - npos
    ok = (npos > 0) & (nneg > 0)
    step = 4096  # bounds the [rows, 15, 15] comparison block
    for a in range(0, y.shape[0], step):
        ys, ss = y[a:a + step], s[a:a + step]
        cmp = (ss[:, :, None] > ss[:, None, :]) + 0.5 * (ss[:, :, None] == ss[:, None, :])
        num = np.einsum("ni,nj,nij->n", ys, 1.0 - ys, cmp)
        den = npos[a:a + step] * nneg[a:a + step]
        okb = ok[a:a + step]
        out[a:a + step][okb] = num[okb] / den[okb]
    return out

