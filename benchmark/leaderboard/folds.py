"""Test scores split by ARAUS fold: clips whose fold also feeds training against clips from unseen folds.

ARAUS mixes every stimulus of fold k from fold k's base recordings and maskers, and its folds are
pairwise disjoint in both (Ooi et al. 2023). The SoundSCaper split draws its test clips mostly from the
training folds 1-5 (3,528 of 3,576) and only 48 from fold 0, ARAUS's independent test set; so the
published test score mixes recordings the model trained on with new ones. On data whose clips carry a
fold (the clip id ``fold_<k>_...`` or a ``fold`` column, soundaq.models_zoo.data.labels.clip_folds),
every leaderboard scores the two parts separately (columns ``<metric>_seen_folds`` and
``<metric>_unseen_folds`` with the counts ``seen_folds_clips`` and ``unseen_folds_clips``).
"""
from __future__ import annotations

import math
from pathlib import Path

from soundaq.models_zoo.metrics import PAPER_HEADLINE

#: The breakdown's columns in leaderboard.csv (present only on data with folds).
FOLD_COLUMNS = ("seen_folds_clips", "unseen_folds_clips",
                *[f"{m}_{part}" for m in PAPER_HEADLINE for part in ("seen_folds", "unseen_folds")])

MEANING = ("The test clips whose ARAUS fold also feeds training are mixed from the same base recordings and maskers "
           "as training clips (ARAUS builds each fold's stimuli from that fold's recordings); the clips from unseen "
           "folds come from recordings and maskers no training clip contains. A model that scores better on the "
           "first part than on the second has partly learnt the recordings themselves: only the unseen-fold score "
           "measures generalisation to new soundscapes (with a wide interval when it rests on few clips).")


def seen_test_clips(datamodule) -> tuple[set[str], set[str], list[int]] | None:
    """``(test clips in training folds, test clips in unseen folds, training folds)``, or None when the
    clips carry no folds.
    """
    import pandas as pd

    from soundaq.models_zoo.data.labels import clip_folds

    train, test = datamodule.labels("training"), datamodule.labels("test")
    folds = clip_folds(pd.concat([train, test], ignore_index=True))
    if folds is None:
        return None
    train_folds, test_folds = folds.iloc[:len(train)], folds.iloc[len(train):].reset_index(drop=True)
    known = sorted(int(k) for k in train_folds.dropna().unique())
    clips = test["clip"].astype(str)
    seen = set(clips[test_folds.isin(known).fillna(False).to_numpy(dtype=bool)])
    unseen = set(clips[(test_folds.notna() & ~test_folds.isin(known)).fillna(False).to_numpy(dtype=bool)])
    return seen, unseen, known


def add_fold_scores(rows: list[dict], datamodule, predictions: Path) -> bool:
    """Give every scored row (models from ``predictions/<model>.csv``) the breakdown's columns; False
    (nothing added) on data without folds.
    """
    from soundaq.base import predictions_table
    from soundaq.models_zoo.metrics import score_table

    parts = seen_test_clips(datamodule)
    if parts is None:
        return False
    seen, unseen, _ = parts
    for row in rows:
        path = predictions / f"{row['model']}.csv"
        row["seen_folds_clips"], row["unseen_folds_clips"] = len(seen), len(unseen)
        if row["status"] == "failed" or not path.is_file():
            continue
        table = predictions_table.read(path)
        for part, clips in (("seen_folds", seen), ("unseen_folds", unseen)):
            sub = table[table["clip"].astype(str).isin(clips)]
            scores = score_table(sub, source=str(path)) if len(sub) else {}
            for m in PAPER_HEADLINE:
                v = scores.get(m)
                row[f"{m}_{part}"] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    return True


def reference_fold_scores(row: dict, datamodule) -> None:
    """The training-mean reference's breakdown (its predictions are not written to a file)."""
    from soundaq.benchmark.leaderboard.reference import reference_table
    from soundaq.models_zoo.metrics import score_table

    parts = seen_test_clips(datamodule)
    if parts is None:
        return
    table = reference_table(datamodule)
    for part, clips in (("seen_folds", parts[0]), ("unseen_folds", parts[1])):
        sub = table[table["clip"].astype(str).isin(clips)]
        scores = score_table(sub) if len(sub) else {}
        for m in PAPER_HEADLINE:
            v = scores.get(m)
            row[f"{m}_{part}"] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    row["seen_folds_clips"], row["unseen_folds_clips"] = len(parts[0]), len(parts[1])


def markdown(rows: list[dict], value=None) -> list[str]:
    """The report's section (no lines when the rows have no breakdown). ``value(row, column)`` formats a
    cell (default three decimals; a grid passes mean ± sd).
    """
    from soundaq.benchmark.leaderboard.table import fmt

    if not any(r.get("seen_folds_clips") is not None for r in rows):
        return []
    value = value or (lambda r, c: fmt(r.get(c)))
    first = next(r for r in rows if r.get("seen_folds_clips") is not None)
    n_seen, n_unseen = int(first["seen_folds_clips"]), int(first["unseen_folds_clips"])
    head = ["model", *[f"{m} seen folds ({n_seen})" for m in PAPER_HEADLINE],
            *[f"{m} unseen folds ({n_unseen})" for m in PAPER_HEADLINE]]
    lines = ["## Test clips from folds that feed training against unseen folds", "",
             f"{n_seen} of {n_seen + n_unseen} test clips come from ARAUS folds that also feed the training split, "
             f"{n_unseen} from folds no training clip comes from. {MEANING}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.get("status") == "failed":
            continue
        lines.append("| " + " | ".join([r["model"], *[value(r, f"{m}_seen_folds") for m in PAPER_HEADLINE],
                                        *[value(r, f"{m}_unseen_folds") for m in PAPER_HEADLINE]]) + " |")
    return lines
