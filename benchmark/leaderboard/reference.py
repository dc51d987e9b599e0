"""The training-mean predictor: the leaderboard's reference row and every learning curve's first point.

It predicts, for every clip, the training split's scene frequencies, event frequencies, mean quality
ratings and mean ISOP/ISOE (neutral values for a label group the data lack, whose scores stay empty).
With the leaderboard's head initialisation (soundaq.models_zoo.head_init)
an untrained net predicts exactly this, so its scores on the validation split are each model's
learning curve at 0 training seconds, and whatever a model gains over it was learnt from the clips.
"""
from __future__ import annotations

from soundaq.benchmark.leaderboard.table import REFERENCE, number


def reference_table(datamodule, split: str = "test", clips: int | None = None):
    """The reference's predictions table for ``split`` (columns PREDICTION_COLUMNS + TRUTH_COLUMNS), or
    for its first ``clips`` clips (the validation subset a budget's learning curve is measured on).
    """
    import numpy as np

    from soundaq.models_zoo.head_init import base_rates
    from soundaq.models_zoo.predict import add_truth, predictions_frame

    rates = base_rates(datamodule.labels("training"))   # the same rates the head initialisation uses
    labels = datamodule.labels(split)
    if clips is not None:
        labels = labels.iloc[:clips]
    n = len(labels)
    outputs = {"scene_probabilities": np.tile(rates["scene"], (n, 1)),
               "event_probabilities": np.tile(rates["events"], (n, 1)),
               "qualities": np.tile(rates["qualities"], (n, 1)),
               "isop": np.full(n, rates["isop"]), "isoe": np.full(n, rates["isoe"])}
    return add_truth(predictions_frame(outputs, REFERENCE, labels["clip"].astype(str).tolist()), labels)


def reference_scores(datamodule, n_resamples: int, seed: int, split: str = "test", clips: int | None = None) -> dict:
    """Scores (with CIs on the test split) of the reference: a record shaped like a model's ``done.json``."""
    from soundaq.evaluation.bootstrap import bootstrap_ci
    from soundaq.models_zoo.metrics import metrics_for, score_table

    table = reference_table(datamodule, split, clips)
    record = {"scores": {k: number(v) if isinstance(v, float) else v for k, v in score_table(table).items()},
              "test_clips": len(table), "params": 0}
    if n_resamples:
        ci = bootstrap_ci(table, metrics=metrics_for(datamodule.tasks), n_resamples=n_resamples, seed=seed)
        record["ci"] = {r.metric: [number(r.ci_low), number(r.ci_high)] for r in ci.itertuples()}
    return record
