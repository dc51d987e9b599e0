"""Every metric of the project, defined once: the paper's scores and the standard ones.

One implementation per metric, three ways in, one set of names:

* :func:`score` / :func:`score_table` / :func:`read_predictions` score :class:`EvalData`, a predictions
  table (columns ``vocab.PREDICTION_COLUMNS`` + ``vocab.TRUTH_COLUMNS``) or such a file, and return a
  flat ``{name: number}`` dict;
* :class:`soundaq.models_zoo.streaming.SoundAQMetrics` (the torchmetrics ``Metric`` the training module
  logs) only collects each batch's predictions and labels and calls :func:`score` at epoch end;
* :mod:`soundaq.evaluation.bootstrap` resamples clips through the same ``values`` functions.

This module sits in models_zoo, under the training module that logs it; it needs only numpy (pandas
for tables), so importing it stays light.

Every scalar metric is a small class in the :data:`METRICS` registry with ``name``, ``maximize``,
``definition`` (``"paper"``: the original SoundSCaper code's exact definition; ``"standard"``: the usual
macro/micro definition) and ``values(data, weights)``. ``values`` takes a ``[B, N]`` matrix of clip
weights and returns ``B`` values, so that one vectorised code path gives the point estimate (all weights 1)
and every bootstrap resample (weights = how often each clip was drawn); see ``soundaq.evaluation.bootstrap``.

Missing labels: data may lack a label group (``scene``, ``events`` or ``qualities`` with ISOP/ISOE; a
predictions table's ``true_*`` columns of that group are empty). Every metric declares the group it
reads (``task``); :meth:`ScoreFunction.evaluate` and :func:`score` give NaN for the metrics of a group
the data lack, and ``score`` says which groups are labelled (``labelled_<group>``, 1/0). The numbers
of fully labelled data do not change.

Definitions (docs/metrics.md has the long form):

* ``scene_acc`` (paper): mean over the 3 scenes of correct/(clips of that scene + 1e-8), prediction =
  argmax of the scene probabilities (first scene wins a tie). As in the original, a scene absent from the
  labels counts as accuracy 0 in the mean.
* ``event_auc`` (paper): ROC AUC over the 15 events of each clip (ties count 1/2), averaged over clips.
  Clips without a positive event are skipped (as in the original); clips whose 15 events are all
  positive are skipped too (their AUC is undefined; the original would crash or return NaN there).
* ``event_auc_macro`` / ``event_map`` (standard): per-event ROC AUC / average precision over clips,
  averaged over the events that have both positive and negative clips (AUC) or a positive clip (AP).
* ``mse_<quality>``, ``aq_mse_mean``, ``isop_mse``, ``isoe_mse``, ``pearson_<quality>``.
"""
from __future__ import annotations

import abc
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np

from soundaq.base import predictions_table
from soundaq.base.errors import UserError
from soundaq.base.vocab import EVENTS, LABEL_GROUPS, QUALITIES, SCENES

PAPER = "paper"
STANDARD = "standard"
#: The original adds this to each scene's clip count before dividing (so an absent scene scores 0).
SCENE_EPS = 1e-8
ISO_NAMES = ("isop", "isoe")


class MetricInputError(UserError):
    """Arrays or settings that cannot be scored; the message names the source and the fix. A predictions
    table's problems are :class:`~soundaq.base.predictions_table.PredictionTableError` (its one parser).
    """


# --------------------------------------------------------------------------------------------------
# The data being scored
# --------------------------------------------------------------------------------------------------
class EvalData:
    """Predictions and ground truth of N clips, as float64/int64 numpy arrays in vocab order.

    scene_true [N] (index into SCENES), scene_prob [N, 3], event_true [N, 15] (0/1),
    event_prob [N, 15], quality_true / quality_pred [N, 8] (QUALITIES order),
    iso_true / iso_pred [N, 2] (isop, isoe).

    Ground truth of a label group the data lack is None (``scene_true``; ``event_true``; ``quality_true``
    with ``iso_true``): :attr:`tasks` lists the groups that are labelled, and every metric of another
    group is NaN (:meth:`ScoreFunction.evaluate`). Predictions are always complete.

    Raises:
        MetricInputError: wrong shapes, non-finite values, labels outside their range, no clip, or a
            quality group given half (ratings without ISOP/ISOE or the reverse); one line each.
    """

    def __init__(self, *, scene_prob, event_prob, quality_pred, iso_pred, scene_true=None, event_true=None,
                 quality_true=None, iso_true=None, clips=None, source: str = "predictions"):
        self.source = source
        self.scene_prob = _matrix(scene_prob, len(SCENES), "scene probabilities", source)
        n = self.scene_prob.shape[0]
        if n == 0:
            raise MetricInputError(f"{source}: no clips to score; fix: pass at least one clip with labels")
        self.scene_true = None if scene_true is None else _scene_indices(scene_true, n, source)
        self.event_true = None
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
        return clipwise_auc(self.event_true, self.event_prob)

    @cached_property
    def _event_sort(self):
        """Per event: ascending score order, labels in that order and the starts of tie groups."""
        out = []
        for k in range(len(EVENTS)):
            order = np.argsort(self.event_prob[:, k], kind="stable")
            s = self.event_prob[order, k]
            starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
            out.append((order, self.event_true[order, k], starts))
        return out

    def take(self, index) -> EvalData:
        """The clips at ``index`` (with repeats: an explicit bootstrap resample)."""
        index = np.asarray(index)

        def pick(a):
            return None if a is None else a[index]

        return EvalData(scene_true=pick(self.scene_true), scene_prob=self.scene_prob[index],
                        event_true=pick(self.event_true), event_prob=self.event_prob[index],
                        quality_true=pick(self.quality_true), quality_pred=self.quality_pred[index],
                        iso_true=pick(self.iso_true), iso_pred=self.iso_pred[index],
                        clips=[self.clips[i] for i in index], source=self.source)

    @classmethod
    def from_table(cls, frame, source: str = "predictions table", lines: bool = False) -> EvalData:
        """Read a predictions table (``vocab.PREDICTION_COLUMNS`` + ``vocab.TRUTH_COLUMNS``) through its one
        parser, :func:`soundaq.base.predictions_table.score_arrays`.

        A label group whose ``true_*`` columns are all empty (``vocab.TRUTH_GROUP_COLUMNS``) is unlabelled;
        one empty cell in a group that has values elsewhere is an error naming the clip. ``lines``: the frame
        was read from a CSV file, so messages give the line too.

        Raises:
            PredictionTableError: the table's problems (one line naming row, clip, column and fix).
        """
        return cls(source=source, **predictions_table.score_arrays(frame, source, lines))


def _scene_indices(scene_true, n: int, source: str) -> np.ndarray:
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


def _matrix(x, width: int, what: str, source: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != width or (n is not None and a.shape[0] != n):
        want = f"[{n if n is not None else 'N'}, {width}]"
        raise MetricInputError(f"{source}: {what} have shape {list(a.shape)}, expected {want}; "
                               "fix: pass one row per clip in vocab order")
    if not np.all(np.isfinite(a)):
        row = int(np.argwhere(~np.isfinite(a))[0][0])
        raise MetricInputError(f"{source}: {what} of clip {row} are not finite; fix: rerun the model on that clip")
    return a


def read_predictions(path: Path | str) -> EvalData:
    """Read a predictions CSV (or Parquet) file into :class:`EvalData`.

    Args:
        path: a table written by soundaq (``predict``, the leaderboard's ``predictions/``).

    Returns:
        :class:`EvalData` (arrays ``[N, ...]`` in vocabulary order).

    Raises:
        PredictionTableError: a missing or unreadable file (not UTF-8 text, a binary file: one line
            naming file:line), missing columns, bad cells (:func:`soundaq.base.predictions_table.read`).
    """
    return EvalData.from_table(predictions_table.read(path), source=str(path), lines=True)


# --------------------------------------------------------------------------------------------------
# Vectorised building blocks (weights W: [B, N], one row per resample)
# --------------------------------------------------------------------------------------------------
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


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Num / den, NaN where den == 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _weighted_mean(W: np.ndarray, values: np.ndarray) -> np.ndarray:
    return _ratio(W @ values, W.sum(axis=1))


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN (NaN for an all-NaN row), without the RuntimeWarning."""
    ok = ~np.isnan(x)
    return _ratio(np.where(ok, x, 0.0).sum(axis=1), ok.sum(axis=1).astype(np.float64))


def _onehot(index: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((index.shape[0], k))
    out[np.arange(index.shape[0]), index] = 1.0
    return out


def _event_auc_weighted(data: EvalData, W: np.ndarray, k: int) -> np.ndarray:
    """ROC AUC of event k over clips, one value per weight row (NaN without both classes)."""
    order, y, starts = data._event_sort[k]
    Wo = W[:, order]
    pos = np.add.reduceat(Wo * y, starts, axis=1)
    neg = np.add.reduceat(Wo * (1.0 - y), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    num = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return _ratio(num, pos.sum(axis=1) * neg.sum(axis=1))


def _event_ap_weighted(data: EvalData, W: np.ndarray, k: int) -> np.ndarray:
    """Average precision of event k (sklearn's step-wise definition: sum over thresholds of
    recall increase x precision), one value per weight row (NaN without a positive clip).
    """
    order, y, starts = data._event_sort[k]
    # Descending thresholds = the ascending tie groups walked backwards.
    Wo = W[:, order]
    pos = np.add.reduceat(Wo * y, starts, axis=1)[:, ::-1]
    neg = np.add.reduceat(Wo * (1.0 - y), starts, axis=1)[:, ::-1]
    tp = np.cumsum(pos, axis=1)
    fp = np.cumsum(neg, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), 0.0)
    return _ratio((pos * precision).sum(axis=1), pos.sum(axis=1))


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------
class ScoreFunction(abc.ABC):
    """One scalar metric. Subclasses set the class attributes and implement :meth:`values`."""

    name: str = ""
    maximize: bool = True
    definition: str = STANDARD
    headline: bool = False
    description: str = ""
    #: The label group (vocab.LABEL_GROUPS) whose ground truth the metric reads; None: every group.
    task: str | None = None

    @abc.abstractmethod
    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """The metric under each row of clip weights ``[B, N]``; returns ``[B]`` (NaN where undefined).
        Called only when ``data`` has the labels of :attr:`task`.
        """

    @property
    def needs(self) -> frozenset[str]:
        """The label groups whose ground truth the metric reads."""
        return frozenset({self.task} if self.task else LABEL_GROUPS)

    def labelled(self, data: EvalData) -> bool:
        """True when ``data`` has the ground truth this metric reads."""
        return self.needs <= set(data.tasks)

    def evaluate(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """:meth:`values`, or ``[B]`` NaN when ``data`` lacks the metric's labels (what every caller uses)."""
        if not self.labelled(data):
            return np.full(np.shape(weights)[0], np.nan)
        return self.values(data, weights)

    def compute(self, data: EvalData) -> float:
        """The point estimate (every clip once; NaN without the metric's labels)."""
        return float(self.evaluate(data, np.ones((1, data.n)))[0])

    def __repr__(self) -> str:
        return f"<{self.name} ({self.definition}, {'max' if self.maximize else 'min'})>"


class SceneAccuracyPaper(ScoreFunction):
    task = "scene"
    name, maximize, definition, headline = "scene_acc", True, PAPER, True
    description = "mean over the 3 scenes of correct/(clips of that scene + 1e-8); absent scene scores 0"

    def values(self, data, weights):
        truth = _onehot(data.scene_true, len(SCENES))
        correct = truth * (data.scene_pred == data.scene_true)[:, None]
        per_class = (weights @ correct) / (weights @ truth + SCENE_EPS)
        return per_class.mean(axis=1)


class SceneAccuracyPlain(ScoreFunction):
    task = "scene"
    name, maximize, definition, headline = "scene_acc_plain", True, STANDARD, False
    description = "share of clips whose scene is predicted right (micro accuracy)"

    def values(self, data, weights):
        return _weighted_mean(weights, (data.scene_pred == data.scene_true).astype(np.float64))


class SceneF1Macro(ScoreFunction):
    task = "scene"
    name, maximize, definition, headline = "scene_f1_macro", True, STANDARD, True
    description = "F1 per scene, averaged over scenes that occur in the labels or predictions (sklearn macro)"

    def values(self, data, weights):
        truth = _onehot(data.scene_true, len(SCENES))
        pred = _onehot(data.scene_pred, len(SCENES))
        tp = weights @ (truth * pred)
        support = weights @ truth + weights @ pred  # 2tp + fp + fn
        return _nanmean_rows(_ratio(2.0 * tp, support))


class EventAUCPaper(ScoreFunction):
    task = "events"
    name, maximize, definition, headline = "event_auc", True, PAPER, True
    description = ("ROC AUC over the 15 events of each clip, averaged over clips with at least one "
                   "positive (and one negative) event")

    def values(self, data, weights):
        auc = data.clip_event_auc
        ok = ~np.isnan(auc)
        return _ratio(weights @ np.where(ok, auc, 0.0), weights @ ok.astype(np.float64))


class EventAUCMacro(ScoreFunction):
    task = "events"
    name, maximize, definition, headline = "event_auc_macro", True, STANDARD, True
    description = "ROC AUC of each event over clips, averaged over events with positive and negative clips"

    def values(self, data, weights):
        return _nanmean_rows(np.stack([_event_auc_weighted(data, weights, k) for k in range(len(EVENTS))], 1))


class EventMAP(ScoreFunction):
    task = "events"
    name, maximize, definition, headline = "event_map", True, STANDARD, True
    description = "average precision of each event over clips, averaged over events with a positive clip"

    def values(self, data, weights):
        return _nanmean_rows(np.stack([_event_ap_weighted(data, weights, k) for k in range(len(EVENTS))], 1))


class QualityMSE(ScoreFunction):
    task = "qualities"
    maximize, definition = False, PAPER

    def __init__(self, quality: str):
        self.quality = quality
        self.column = QUALITIES.index(quality)
        self.name = f"mse_{quality}"
        self.description = f"mean squared error of the '{quality}' rating (1-5 scale)"

    def values(self, data, weights):
        k = self.column
        return _weighted_mean(weights, (data.quality_pred[:, k] - data.quality_true[:, k]) ** 2)


class QualityMSEMean(ScoreFunction):
    task = "qualities"
    name, maximize, definition, headline = "aq_mse_mean", False, PAPER, True
    description = "mean of the 8 per-quality MSEs"

    def values(self, data, weights):
        return _weighted_mean(weights, ((data.quality_pred - data.quality_true) ** 2).mean(axis=1))


class IsoMSE(ScoreFunction):
    task = "qualities"
    maximize, definition, headline = False, STANDARD, True

    def __init__(self, column: int):
        self.column = column
        self.name = f"{ISO_NAMES[column]}_mse"
        self.description = f"mean squared error of {('ISOPleasant', 'ISOEventful')[column]} ([-1, 1] scale)"

    def values(self, data, weights):
        k = self.column
        return _weighted_mean(weights, (data.iso_pred[:, k] - data.iso_true[:, k]) ** 2)


class QualityPearson(ScoreFunction):
    task = "qualities"
    maximize, definition = True, STANDARD

    def __init__(self, quality: str):
        self.quality = quality
        self.column = QUALITIES.index(quality)
        self.name = f"pearson_{quality}"
        self.description = f"Pearson r between predicted and rated '{quality}' (NaN if either is constant)"

    def values(self, data, weights):
        k = self.column
        x = data.quality_pred[:, k] - data.quality_pred[:, k].mean()  # centring keeps the moments accurate
        y = data.quality_true[:, k] - data.quality_true[:, k].mean()
        sw = weights.sum(axis=1)
        mx, my = _ratio(weights @ x, sw), _ratio(weights @ y, sw)
        vx = _ratio(weights @ (x * x), sw) - mx * mx
        vy = _ratio(weights @ (y * y), sw) - my * my
        cxy = _ratio(weights @ (x * y), sw) - mx * my
        tiny_x = 1e-12 * max(float((x * x).mean()), 1e-300)
        tiny_y = 1e-12 * max(float((y * y).mean()), 1e-300)
        ok = (vx > tiny_x) & (vy > tiny_y)
        with np.errstate(invalid="ignore"):
            r = np.where(ok, cxy / np.sqrt(np.where(ok, vx * vy, 1.0)), np.nan)
        return np.clip(r, -1.0, 1.0)


def _build_registry() -> dict[str, ScoreFunction]:
    items: list[ScoreFunction] = [SceneAccuracyPaper(), SceneAccuracyPlain(), SceneF1Macro(),
                                  EventAUCPaper(), EventAUCMacro(), EventMAP(), QualityMSEMean()]
    items += [QualityMSE(q) for q in QUALITIES]
    items += [IsoMSE(0), IsoMSE(1)]
    items += [QualityPearson(q) for q in QUALITIES]
    return {m.name: m for m in items}


#: Every scalar metric by name, in table order.
METRICS: dict[str, ScoreFunction] = _build_registry()
#: The metrics that get bootstrap confidence intervals by default (and lead the leaderboard).
HEADLINE: tuple[str, ...] = tuple(name for name, m in METRICS.items() if m.headline)
#: The paper's three headline scores (its results table): what ranks models.
PAPER_HEADLINE: tuple[str, ...] = ("scene_acc", "event_auc", "aq_mse_mean")
#: What a summary shows of a model (figures, the comparison with the training-mean reference).
SUMMARY: tuple[str, ...] = (*PAPER_HEADLINE, "isop_mse", "isoe_mse")


def metrics_for(tasks, names=HEADLINE) -> list[str]:
    """The metrics among ``names`` (default the headline ones) that data labelled for ``tasks`` (label
    groups, vocab.LABEL_GROUPS) can score; the others would be NaN.
    """
    return [n for n in names if METRICS[n].needs <= set(tasks)]


def definitions() -> dict[str, str]:
    """``{metric name: "paper" | "standard"}`` for labelling table columns (confusion counts are standard)."""
    return {name: m.definition for name, m in METRICS.items()}


def resolve(names=None) -> list[ScoreFunction]:
    """Registry entries for ``names`` (``None``: the headline metrics; ``"all"``: every metric)."""
    if names is None:
        names = HEADLINE
    elif names == "all":
        names = tuple(METRICS)
    elif isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise MetricInputError(f"unknown metric(s) {', '.join(unknown)}; fix: use names from "
                               f"{', '.join(METRICS)}")
    return [METRICS[n] for n in names]


def confusion_matrix(data: EvalData) -> np.ndarray:
    """Counts [3, 3]: rows true scene, columns predicted scene (vocab.SCENES order)."""
    out = np.zeros((len(SCENES), len(SCENES)), dtype=np.int64)
    np.add.at(out, (data.scene_true, data.scene_pred), 1)
    return out


def confusion_key(true_scene: str, pred_scene: str) -> str:
    return f"confusion_{true_scene}__as__{pred_scene}"


def score(data: EvalData) -> dict[str, float | int]:
    """Every metric of :data:`METRICS`, the confusion counts and how many clips/events each mean used.

    ``labelled_<group>`` (1 or 0, for each of vocab.LABEL_GROUPS) says whether the data have that group's
    labels; the metrics of an unlabelled group are NaN and its counts 0.
    """
    out: dict[str, float | int] = {"n_clips": data.n}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, metric in METRICS.items():
            out[name] = metric.compute(data)
    for group in LABEL_GROUPS:
        out[f"labelled_{group}"] = int(group in data.tasks)
    cm = confusion_matrix(data) if "scene" in data.tasks else np.zeros((len(SCENES), len(SCENES)), dtype=np.int64)
    for i, t in enumerate(SCENES):
        for j, p in enumerate(SCENES):
            out[confusion_key(t, p)] = int(cm[i, j])
    if "events" not in data.tasks:
        out.update({k: 0 for k in ("event_auc_clips_scored", "event_auc_clips_no_positive",
                                   "event_auc_clips_all_positive", "event_auc_macro_events_scored",
                                   "event_map_events_scored")})
        return out
    npos = data.event_true.sum(axis=1)
    out["event_auc_clips_scored"] = int((~np.isnan(data.clip_event_auc)).sum())
    out["event_auc_clips_no_positive"] = int((npos == 0).sum())
    out["event_auc_clips_all_positive"] = int((npos == len(EVENTS)).sum())
    per_event_pos = data.event_true.sum(axis=0)
    out["event_auc_macro_events_scored"] = int(((per_event_pos > 0) & (per_event_pos < data.n)).sum())
    out["event_map_events_scored"] = int((per_event_pos > 0).sum())
    return out


def unlabelled(scores: dict) -> list[str]:
    """The label groups a :func:`score` dict says the data lack (empty for fully labelled data, and for
    dicts written before the ``labelled_<group>`` counts existed).
    """
    return [g for g in LABEL_GROUPS if scores.get(f"labelled_{g}", 1) in (0, 0.0, False)]


def score_table(frame, source: str = "predictions table") -> dict[str, float | int]:
    """Score a predictions table: the flat dict of :func:`score`.

    Args:
        frame: a pandas DataFrame with :data:`~soundaq.base.vocab.PREDICTION_COLUMNS` and the
            ``true_*`` label columns (the leaderboard's ``predictions/<model>.csv``).
        source: how error messages name the table.

    Returns:
        ``{metric: value}`` for every metric of :data:`METRICS` (docs/metrics.md gives each formula
        and its source), the confusion counts and ``labelled_<group>`` flags.

    Raises:
        PredictionTableError: missing columns, bad cells (one line naming row, clip and column).
        MetricInputError: values the metrics cannot take.
    """
    return score(EvalData.from_table(frame, source=source))

