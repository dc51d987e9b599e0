"""Every metric of the project, listed once, and the scoring that runs them.

One implementation per metric, three ways in, one set of names:

* :func:`score` / :func:`score_table` / :func:`read_predictions` score
  :class:`~soundaq.models_zoo.eval_data.EvalData`, a predictions table (columns
  ``vocab.PREDICTION_COLUMNS`` + ``vocab.TRUTH_COLUMNS``) or such a file, and return a flat
  ``{name: number}`` dict;
* :class:`soundaq.models_zoo.streaming.SoundAQMetrics` (the torchmetrics ``Metric`` the training module
  logs) only collects each batch's predictions and labels and calls :func:`score` at epoch end;
* :mod:`soundaq.evaluation.bootstrap` resamples clips through the same ``values`` functions.

The homes: each metric is one class in :mod:`soundaq.models_zoo.metric_definitions` (how it is
computed) and one entry of :func:`_build_registry` here (the :data:`METRICS` registry, in table
order); the data they read, checked once, is :class:`~soundaq.models_zoo.eval_data.EvalData`
(:mod:`soundaq.models_zoo.eval_data`). This module sits in models_zoo, under the training module that
logs it; it needs only numpy (pandas for tables), so importing it stays light.

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

import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from soundaq.base import predictions_table
from soundaq.base.vocab import EVENTS, LABEL_GROUPS, QUALITIES, SCENES
from soundaq.models_zoo.eval_data import EvalData, MetricInputError
from soundaq.models_zoo.metric_definitions import (
    EventAUCMacro,
    EventAUCPaper,
    EventMAP,
    IsoMSE,
    QualityMSE,
    QualityMSEMean,
    QualityPearson,
    SceneAccuracyPaper,
    SceneAccuracyPlain,
    SceneF1Macro,
    ScoreFunction,
)

if TYPE_CHECKING:
    import pandas as pd


def _build_registry() -> dict[str, ScoreFunction]:
    """One instance of every metric class, by name, in the order tables show them (add a new metric here)."""
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


def metrics_for(tasks: Iterable[str], names: Sequence[str] = HEADLINE) -> list[str]:
    """The metrics among ``names`` (default the headline ones) that data labelled for ``tasks`` (label
    groups, vocab.LABEL_GROUPS) can score; the others would be NaN.

    Args:
        tasks: the labelled groups (``EvalData.tasks``).
        names: metric names of :data:`METRICS`, in the order wanted.

    Returns:
        The names of ``names`` whose label group is among ``tasks``, in their order.
    """
    return [n for n in names if METRICS[n].needs <= set(tasks)]


def definitions() -> dict[str, str]:
    """``{metric name: "paper" | "standard"}`` for labelling table columns (confusion counts are standard)."""
    return {name: m.definition for name, m in METRICS.items()}


def resolve(names: str | Sequence[str] | None = None) -> list[ScoreFunction]:
    """Registry entries for ``names``.

    Args:
        names: ``None`` (the headline metrics), ``"all"`` (every metric), a comma-separated string or a
            sequence of names of :data:`METRICS`.

    Returns:
        The :class:`ScoreFunction` of each name, in the order given.

    Raises:
        MetricInputError: a name that is not in :data:`METRICS` (the message lists the known ones).
    """
    if names is None:
        wanted: Sequence[str] = HEADLINE
    elif names == "all":
        wanted = tuple(METRICS)
    elif isinstance(names, str):
        wanted = [n.strip() for n in names.split(",") if n.strip()]
    else:
        wanted = names
    unknown = [n for n in wanted if n not in METRICS]
    if unknown:
        raise MetricInputError(f"unknown metric(s) {', '.join(unknown)}; fix: use names from "
                               f"{', '.join(METRICS)}")
    return [METRICS[n] for n in wanted]


def confusion_matrix(data: EvalData) -> np.ndarray:
    """Counts [3, 3]: rows true scene, columns predicted scene (vocab.SCENES order).

    Raises:
        MetricInputError: the data have no scene labels.
    """
    out = np.zeros((len(SCENES), len(SCENES)), dtype=np.int64)
    np.add.at(out, (data.scene_labels, data.scene_pred), 1)
    return out


def confusion_key(true_scene: str, pred_scene: str) -> str:
    """The :func:`score` key of the count of ``true_scene`` clips predicted as ``pred_scene``."""
    return f"confusion_{true_scene}__as__{pred_scene}"


def score(data: EvalData) -> dict[str, float | int]:
    """Every metric of :data:`METRICS`, the confusion counts and how many clips/events each mean used.

    ``labelled_<group>`` (1 or 0, for each of vocab.LABEL_GROUPS) says whether the data have that group's
    labels; the metrics of an unlabelled group are NaN and its counts 0.

    Args:
        data: the clips to score.

    Returns:
        ``{name: value}``: ``n_clips``, every metric (NaN where undefined), ``labelled_<group>``,
        ``confusion_<true>__as__<pred>`` and the ``event_*_scored`` / ``*_no_positive`` /
        ``*_all_positive`` counts.
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
    npos = data.event_labels.sum(axis=1)
    out["event_auc_clips_scored"] = int((~np.isnan(data.clip_event_auc)).sum())
    out["event_auc_clips_no_positive"] = int((npos == 0).sum())
    out["event_auc_clips_all_positive"] = int((npos == len(EVENTS)).sum())
    per_event_pos = data.event_labels.sum(axis=0)
    out["event_auc_macro_events_scored"] = int(((per_event_pos > 0) & (per_event_pos < data.n)).sum())
    out["event_map_events_scored"] = int((per_event_pos > 0).sum())
    return out


def unlabelled(scores: Mapping[str, object]) -> list[str]:
    """The label groups a :func:`score` dict says the data lack (empty for fully labelled data, and for
    dicts written before the ``labelled_<group>`` counts existed).
    """
    return [g for g in LABEL_GROUPS if scores.get(f"labelled_{g}", 1) in (0, 0.0, False)]


def score_table(frame: pd.DataFrame, source: str = "predictions table") -> dict[str, float | int]:
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



def read_predictions(path: Path | str) -> EvalData:
    """Read a predictions CSV (or Parquet) file into :class:`~soundaq.models_zoo.eval_data.EvalData`.

    Args:
        path: a table written by soundaq (``predict``, the leaderboard's ``predictions/``).

    Returns:
        :class:`~soundaq.models_zoo.eval_data.EvalData` (arrays ``[N, ...]`` in vocabulary order).

    Raises:
        PredictionTableError: a missing or unreadable file (not UTF-8 text, a binary file: one line
            naming file:line), missing columns, bad cells (:func:`soundaq.base.predictions_table.read`).
    """
    return EvalData.from_table(predictions_table.read(path), source=str(path), lines=True)
