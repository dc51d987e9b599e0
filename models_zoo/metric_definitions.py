"""How each metric is computed: one class per metric, vectorised over bootstrap resamples.

Every scalar metric is a small :class:`ScoreFunction` subclass with ``name``, ``maximize``,
``definition`` (:data:`PAPER`: the original SoundSCaper code's exact definition; :data:`STANDARD`: the
usual macro/micro definition), ``task`` (the label group it reads) and ``values(data, weights)``.
``values`` takes a ``[B, N]`` matrix of clip weights and returns ``B`` values, so that one vectorised
code path gives the point estimate (all weights 1) and every bootstrap resample (weights = how often
each clip was drawn; :mod:`soundaq.evaluation.bootstrap`). The registry that lists them, and the
scoring that runs them, is :mod:`soundaq.models_zoo.metrics`; docs/metrics.md has each formula and its
source.
"""
from __future__ import annotations

import abc

import numpy as np

from soundaq.base.vocab import EVENTS, LABEL_GROUPS, QUALITIES, SCENES
from soundaq.models_zoo.eval_data import EvalData

#: ``definition`` of a metric computed exactly as the original SoundSCaper code computes it.
PAPER = "paper"
#: ``definition`` of a metric with the usual (macro/micro, sklearn) definition.
STANDARD = "standard"
#: The original adds this to each scene's clip count before dividing (so an absent scene scores 0).
SCENE_EPS = 1e-8
#: ``iso_true`` / ``iso_pred`` columns, as metric names spell them.
ISO_NAMES = ("isop", "isoe")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Num / den, NaN where den == 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _weighted_mean(W: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weighted mean of per-clip ``values`` [N] under each row of ``W`` [B, N] (NaN for an all-zero row)."""
    return _ratio(W @ values, W.sum(axis=1))


def _column_mse(W: np.ndarray, pred: np.ndarray, true: np.ndarray, k: int) -> np.ndarray:
    """Weighted mean squared error of column k of ``pred`` / ``true`` [N, C] under each row of ``W`` [B, N]."""
    return _weighted_mean(W, (pred[:, k] - true[:, k]) ** 2)


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN (NaN for an all-NaN row), without the RuntimeWarning."""
    ok = ~np.isnan(x)
    return _ratio(np.where(ok, x, 0.0).sum(axis=1), ok.sum(axis=1).astype(np.float64))


def _onehot(index: np.ndarray, k: int) -> np.ndarray:
    """One-hot rows [N, k] of class indices [N]."""
    out = np.zeros((index.shape[0], k))
    out[np.arange(index.shape[0]), index] = 1.0
    return out


def _event_auc_weighted(data: EvalData, W: np.ndarray, k: int) -> np.ndarray:
    """ROC AUC of event k over clips, one value per weight row (NaN without both classes)."""
    order, y, starts = data.event_sort[k]
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
    order, y, starts = data.event_sort[k]
    # Descending thresholds = the ascending tie groups walked backwards.
    Wo = W[:, order]
    pos = np.add.reduceat(Wo * y, starts, axis=1)[:, ::-1]
    neg = np.add.reduceat(Wo * (1.0 - y), starts, axis=1)[:, ::-1]
    tp = np.cumsum(pos, axis=1)
    fp = np.cumsum(neg, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), 0.0)
    return _ratio((pos * precision).sum(axis=1), pos.sum(axis=1))


class ScoreFunction(abc.ABC):
    """One scalar metric. Subclasses set the class attributes and implement :meth:`values`."""

    name: str = ""
    maximize: bool = True
    definition: str = STANDARD
    headline: bool = False
    description: str = ""
    #: The label group (vocab.LABEL_GROUPS) whose ground truth the metric reads; None: every group.
    task: str | None = None
    #: The values the metric can take (an interval over seeds is clipped to them): accuracies, AUCs and
    #: AP in [0, 1], errors in [0, inf), correlations in [-1, 1]. The default clips nothing, so a metric
    #: that declares no range is never cut (a wrong range would clip an interval below its own mean).
    bounds: tuple[float, float] = (float("-inf"), float("inf"))

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


class _SceneScore(ScoreFunction):
    """A score of the scene predictions against the scene labels, a share in [0, 1]."""

    task = "scene"
    bounds = (0.0, 1.0)


class SceneAccuracyPaper(_SceneScore):
    """``scene_acc`` (paper): mean over the 3 scenes of correct / (clips of that scene + 1e-8).

    The prediction is the argmax of the scene probabilities; a scene absent from the labels scores 0 in
    the mean, as in the original code (SoundSCaper's scene accuracy).
    """

    name, maximize, definition, headline = "scene_acc", True, PAPER, True
    description = "mean over the 3 scenes of correct/(clips of that scene + 1e-8); absent scene scores 0"

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """Per-scene weighted recall averaged over the 3 scenes; ``[B]`` for weights ``[B, N]``."""
        truth = _onehot(data.scene_labels, len(SCENES))
        correct = truth * (data.scene_pred == data.scene_labels)[:, None]
        per_class = (weights @ correct) / (weights @ truth + SCENE_EPS)
        return per_class.mean(axis=1)


class SceneAccuracyPlain(_SceneScore):
    """``scene_acc_plain`` (standard): the share of clips whose scene is predicted right (micro accuracy)."""

    name, maximize, definition, headline = "scene_acc_plain", True, STANDARD, False
    description = "share of clips whose scene is predicted right (micro accuracy)"

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """Weighted share of correct scene predictions; ``[B]`` for weights ``[B, N]``."""
        return _weighted_mean(weights, (data.scene_pred == data.scene_labels).astype(np.float64))


class SceneF1Macro(_SceneScore):
    """``scene_f1_macro`` (standard): F1 per scene, averaged over the scenes that occur (sklearn macro F1)."""

    name, maximize, definition, headline = "scene_f1_macro", True, STANDARD, True
    description = "F1 per scene, averaged over scenes that occur in the labels or predictions (sklearn macro)"

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """2 tp / (2 tp + fp + fn) per scene, averaged over scenes with support; ``[B]`` for ``[B, N]``."""
        truth = _onehot(data.scene_labels, len(SCENES))
        pred = _onehot(data.scene_pred, len(SCENES))
        tp = weights @ (truth * pred)
        support = weights @ truth + weights @ pred  # 2tp + fp + fn
        return _nanmean_rows(_ratio(2.0 * tp, support))


class EventAUCPaper(ScoreFunction):
    """``event_auc`` (paper): ROC AUC over the 15 events of each clip, averaged over clips.

    Clips without a positive event are skipped, as in the original code; clips whose 15 events are all
    positive are skipped too (their AUC is undefined).
    """

    task = "events"
    name, maximize, definition, headline = "event_auc", True, PAPER, True
    description = ("ROC AUC over the 15 events of each clip, averaged over clips with at least one "
                   "positive (and one negative) event")
    bounds = (0.0, 1.0)

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """Weighted mean of the per-clip AUCs that are defined; ``[B]`` for weights ``[B, N]``."""
        auc = data.clip_event_auc
        ok = ~np.isnan(auc)
        return _ratio(weights @ np.where(ok, auc, 0.0), weights @ ok.astype(np.float64))


class _EventMacro(ScoreFunction):
    """A per-event score over clips (:attr:`per_event`, one value per weight row), averaged over the 15
    events where it is defined (macro, as sklearn's ``average="macro"``).
    """

    task = "events"
    definition, headline = STANDARD, True
    bounds = (0.0, 1.0)

    @staticmethod
    @abc.abstractmethod
    def per_event(data: EvalData, W: np.ndarray, k: int) -> np.ndarray:
        """The score of event k under each row of clip weights ``W`` ``[B, N]``; ``[B]`` (NaN where undefined)."""

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """Mean over the events where it is defined of :meth:`per_event`; ``[B]`` for weights ``[B, N]``."""
        return _nanmean_rows(np.stack([self.per_event(data, weights, k) for k in range(len(EVENTS))], 1))


class EventAUCMacro(_EventMacro):
    """``event_auc_macro`` (standard): ROC AUC of each event over clips, averaged over the events (macro)."""

    name, maximize = "event_auc_macro", True
    description = "ROC AUC of each event over clips, averaged over events with positive and negative clips"
    per_event = staticmethod(_event_auc_weighted)


class EventMAP(_EventMacro):
    """``event_map`` (standard): average precision of each event over clips (sklearn), averaged over events."""

    name, maximize = "event_map", True
    description = "average precision of each event over clips, averaged over events with a positive clip"
    per_event = staticmethod(_event_ap_weighted)


class _OneQuality(ScoreFunction):
    """A metric of one rated quality, named ``<prefix>_<quality>``.

    Args:
        quality: one of vocab.QUALITIES.
    """

    task = "qualities"
    prefix = ""
    #: The ``description``, with ``{quality}`` standing for the quality's name.
    about = ""

    def __init__(self, quality: str):
        self.quality = quality
        self.column = QUALITIES.index(quality)
        self.name = f"{self.prefix}_{quality}"
        self.description = self.about.format(quality=quality)


class QualityMSE(_OneQuality):
    """``mse_<quality>`` (paper): mean squared error of one rating on the 1-5 scale.

    Args:
        quality: one of vocab.QUALITIES.
    """

    maximize, definition = False, PAPER
    bounds = (0.0, float("inf"))
    prefix, about = "mse", "mean squared error of the '{quality}' rating (1-5 scale)"

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """Weighted mean of the squared rating error; ``[B]`` for weights ``[B, N]``."""
        return _column_mse(weights, data.quality_pred, data.quality_labels, self.column)


class QualityMSEMean(ScoreFunction):
    """``aq_mse_mean`` (paper): the mean of the 8 per-quality MSEs (the paper's mean PAQ MSE)."""

    task = "qualities"
    name, maximize, definition, headline = "aq_mse_mean", False, PAPER, True
    bounds = (0.0, float("inf"))
    description = "mean of the 8 per-quality MSEs"

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """Weighted mean over clips of the clip's mean squared error over the 8 ratings; ``[B]``."""
        return _weighted_mean(weights, ((data.quality_pred - data.quality_labels) ** 2).mean(axis=1))


class IsoMSE(ScoreFunction):
    """``isop_mse`` / ``isoe_mse`` (standard): mean squared error of ISOPleasant / ISOEventful ([-1, 1]).

    Args:
        column: 0 for ISOPleasant, 1 for ISOEventful (ISO/TS 12913-3).
    """

    task = "qualities"
    maximize, definition, headline = False, STANDARD, True
    bounds = (0.0, float("inf"))

    def __init__(self, column: int):
        self.column = column
        self.name = f"{ISO_NAMES[column]}_mse"
        self.description = f"mean squared error of {('ISOPleasant', 'ISOEventful')[column]} ([-1, 1] scale)"

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """Weighted mean of the squared ISO coordinate error; ``[B]`` for weights ``[B, N]``."""
        return _column_mse(weights, data.iso_pred, data.iso_labels, self.column)


class QualityPearson(_OneQuality):
    """``pearson_<quality>`` (standard): Pearson r of predicted and rated quality (NaN if either is constant).

    Args:
        quality: one of vocab.QUALITIES.
    """

    maximize, definition = True, STANDARD
    bounds = (-1.0, 1.0)
    prefix, about = "pearson", "Pearson r between predicted and rated '{quality}' (NaN if either is constant)"

    def values(self, data: EvalData, weights: np.ndarray) -> np.ndarray:
        """Weighted Pearson correlation (weighted moments of centred values), clipped to [-1, 1]; ``[B]``."""
        k = self.column
        x = data.quality_pred[:, k] - data.quality_pred[:, k].mean()  # centring keeps the moments accurate
        y = data.quality_labels[:, k] - data.quality_labels[:, k].mean()
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
