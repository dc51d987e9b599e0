"""The leaderboard's rows: one flat record per model (and the reference), ranked.

Every metric name, its definition (paper/standard) and direction come from
soundaq.models_zoo.metrics; the ranking uses the paper's three headline scores (``PAPER_HEADLINE``),
the confidence intervals every ``HEADLINE`` metric, and the comparison with the training-mean
reference the ``SUMMARY`` metrics.
"""
from __future__ import annotations

import math
from typing import Any, cast

from soundaq.models_zoo.metrics import HEADLINE, METRICS, PAPER_HEADLINE, SUMMARY, unlabelled


def fmt(x, digits: int = 3) -> str:
    """A table cell: ``digits`` decimals for a float, "–" for a missing or NaN value, else ``str(x)``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


#: The reference row: what a model must beat to have learnt anything from the clips.
REFERENCE = "training-mean predictor"
REFERENCE_TEXT = ("predicts, for every test clip, the training split's scene frequencies, event frequencies, "
                  "mean quality ratings and mean ISOP/ISOE; not a model, not ranked")
RANKING_TEXT = ("models are ranked by their mean rank over " + ", ".join(
    f"{m} ({'higher' if METRICS[m].maximize else 'lower'} is better)" for m in PAPER_HEADLINE)
    + ", the paper's three headline scores; ties are broken by the lower aq_mse_mean; failed models come last")
#: Row statuses that are ranked (a diverged run is scored on its last checkpoint before divergence).
RANKED = ("ok", "diverged")


def rank_rows(rows: list[dict]) -> list[dict]:
    """Sort rows by their mean rank over :data:`PAPER_HEADLINE` and give each a ``rank``
    (reference and failed rows last, unranked).
    """
    import pandas as pd

    ranked = [r for r in rows if r["status"] in RANKED]
    failed = [r for r in rows if r["status"] == "failed"]
    reference = [r for r in rows if r["status"] == "reference"]
    if ranked:
        frame = pd.DataFrame([{m: r.get(m) for m in PAPER_HEADLINE} for r in ranked], dtype=float)
        ranks = [frame[m].rank(ascending=not METRICS[m].maximize, method="average", na_option="bottom")
                 for m in PAPER_HEADLINE]
        mean_rank = cast("pd.Series", sum(ranks) / len(ranks))   # a sum of Series is a Series
        for r, mr in zip(ranked, mean_rank):
            r["mean_rank"] = round(float(mr), 4)
        ranked.sort(key=lambda r: (r["mean_rank"], _sortable(r.get("aq_mse_mean")), r["model"]))
        for i, r in enumerate(ranked, start=1):
            r["rank"] = i
    for r in failed + reference:
        r["rank"] = None
        r["mean_rank"] = None
    return ranked + reference + failed


def _sortable(x) -> float:
    return float("inf") if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def table_row(model: str, record: dict | None, failure: str | None, data_label: str, synthetic: bool,
              paper_split: bool | None = None) -> dict:
    """One flat leaderboard row (the CSV's columns) from a done.json record or a failure reason;
    ``unlabelled`` names the label groups the data lack (``;``-separated; their metrics are empty);
    ``paper_split``: the data's test split is the paper's (default: any data that are not synthetic).
    """
    from soundaq.models_zoo.registry import NetSpec, get_spec

    if model == REFERENCE:
        spec = NetSpec(REFERENCE, "", (), 0, None, None, None, None)
        status = "reference"
    else:
        spec = get_spec(model)
        status = "failed" if failure is not None else ("diverged" if (record or {}).get("diverged") else "ok")
    rec = record or {}
    row: dict[str, Any] = {"rank": None, "model": model, "status": status,
                           "params": rec.get("params") or spec.params or 0}
    scores, ci = rec.get("scores", {}), rec.get("ci", {})
    for name in METRICS:
        row[name] = scores.get(name)
        if name in HEADLINE:
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = ci.get(name, [None, None])
    reason = failure or (REFERENCE_TEXT if status == "reference" else "")
    if status == "diverged":
        d = rec["diverged"]
        v = d.get("validation")
        reason = (f"validation diverged: {v['metric']} {v['value']:.4g} at step {d.get('step')} exceeds {v['bound']:g}, "
                  "the largest error of any prediction within the rating scale (outputs far outside it); scored "
                  "as it is" if v else
                  f"training diverged at step {d.get('step')} (loss {d.get('loss')}); scored with the last "
                  "checkpoint before it")
    row.update({
        "test_clips": rec.get("test_clips"),
        "train_seconds": rec.get("train_seconds"),
        "clips_seen": rec.get("clips_seen"),
        "steps": rec.get("steps"),
        "epochs": rec.get("epochs"),
        "batch_size": rec.get("batch_size"),
        "crop_frames": rec.get("crop_frames"),
        "clips_per_second": rec.get("clips_per_second"),
        "data": data_label,
        "synthetic": synthetic,
        "paper_scene_acc": spec.paper_scene_acc / 100.0 if spec.paper_scene_acc is not None else None,
        "paper_event_auc": spec.paper_event_auc,
        "paper_aq_mse_mean": spec.paper_paq_mse,
        "paper_comparable": (None if status == "reference" else
                             "same test split; the paper's own training" if (not synthetic if paper_split is None
                                                                             else paper_split) else False),
        "checkpoint_sha256": rec.get("checkpoint_sha256"),
        "unlabelled": ";".join(unlabelled(scores)) if scores else None,
        "reason": reason,
    })
    return row


def mark_beats_reference(rows: list[dict]) -> None:
    """Give each ranked row ``beats_reference``: the :data:`SUMMARY` metrics on which its estimate is
    better than the training-mean predictor's (a model that beats it nowhere has learnt nothing usable yet).
    """
    ref = next((r for r in rows if r["status"] == "reference"), None)
    for r in rows:
        if r["status"] not in RANKED or ref is None:
            r["beats_reference"] = None
            continue
        better = []
        for name in SUMMARY:
            a, b = r.get(name), ref.get(name)
            if a is None or b is None:
                continue
            if (a > b) if METRICS[name].maximize else (a < b):
                better.append(name)
        r["beats_reference"] = ",".join(better) if better else "none"


def leaderboard_columns() -> list[str]:
    """The columns of leaderboard.csv, in order."""
    cols = ["rank", "model", "status", "mean_rank", "params"]
    for name in METRICS:
        cols.append(name)
        if name in HEADLINE:
            cols += [f"{name}_ci_low", f"{name}_ci_high"]
    cols += ["beats_reference", "test_clips", "train_seconds", "clips_seen", "steps", "epochs", "batch_size",
             "crop_frames", "clips_per_second", "data", "synthetic", "paper_scene_acc", "paper_event_auc",
             "paper_aq_mse_mean", "paper_comparable", "checkpoint_sha256", "unlabelled", "reason"]
    return cols


def definitions() -> dict:
    """Every metric's definition, direction and description (leaderboard.json)."""
    return {n: {"definition": m.definition, "higher_is_better": m.maximize, "description": m.description}
            for n, m in METRICS.items()}


def number(x) -> float | None:
    """A score as a float, None for missing or NaN (how records store it)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def json_value(v):
    """A cell as JSON: numpy scalars unwrapped, NaN as null."""
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v
