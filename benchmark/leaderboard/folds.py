"""Test scores split by what the test clips share with training: ARAUS fold, base recording, masker.

ARAUS mixes every stimulus of fold k from fold k's base recordings and maskers, and its folds are
pairwise disjoint in both (Ooi et al. 2023). The SoundSCaper split draws its test clips mostly from the
training folds 1-5 (3,528 of 3,576) and only 48 from fold 0, ARAUS's independent test set; so the
published test score mixes recordings the model trained on with new ones. Every leaderboard scores the
parts separately, on the keys the data carry:

- by fold, on clips that carry one (the clip id ``fold_<k>_...`` or a ``fold`` column,
  soundaq.models_zoo.data.labels.clip_folds): columns ``<metric>_seen_folds`` and
  ``<metric>_unseen_folds``, counts ``seen_folds_clips`` and ``unseen_folds_clips``;
- by base recording and by masker, on clips that name their components (a ``soundscape`` and a
  ``masker`` column: ARAUS read from its components, ``--data araus --araus DIR``): a test clip is *seen*
  when a training clip was mixed from the same recording (``<metric>_seen_recording``,
  ``<metric>_unseen_recording``) or the same masker (``..._seen_masker``, ``..._unseen_masker``).
"""
from __future__ import annotations

import math
from pathlib import Path

from soundaq.models_zoo.metrics import PAPER_HEADLINE

#: The breakdowns, in report order: name -> (the label column a clip is matched on, in words).
BREAKDOWNS: dict[str, tuple[str, str]] = {
    "folds": ("fold", "ARAUS fold"),
    "recording": ("soundscape", "base recording"),
    "masker": ("masker", "masker"),
}


def _columns(name: str) -> tuple[str, ...]:
    return (f"seen_{name}_clips", f"unseen_{name}_clips",
            *[f"{m}_{part}_{name}" for m in PAPER_HEADLINE for part in ("seen", "unseen")])


#: The breakdowns' columns in leaderboard.csv (each breakdown's present only on data with its key).
FOLD_COLUMNS = tuple(c for name in BREAKDOWNS for c in _columns(name))

MEANING = ("The test clips whose ARAUS fold also feeds training are mixed from the same base recordings and maskers "
           "as training clips (ARAUS builds each fold's stimuli from that fold's recordings); the clips from unseen "
           "folds come from recordings and maskers no training clip contains. A model that scores better on the "
           "first part than on the second has partly learnt the recordings themselves: only the unseen-fold score "
           "measures generalisation to new soundscapes (with a wide interval when it rests on few clips).")
COMPONENT_MEANING = ("By component: a test clip counts as seen when a training clip was mixed from the same base "
                     "recording (or, in the second pair, the same masker). A gap between the seen and unseen "
                     "recording parts says how much of the score rests on recordings the model trained on.")


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


def _seen_component(datamodule, column: str) -> tuple[set[str], set[str]] | None:
    """Test clips whose ``column`` value (a base recording, a masker) some training clip has, and the rest."""
    train, test = datamodule.labels("training"), datamodule.labels("test")
    if column not in train.columns or column not in test.columns:
        return None
    known = set(train[column].dropna().astype(str))
    named = test[test[column].notna()]
    hit = named[column].astype(str).isin(known).to_numpy(dtype=bool)
    clips = named["clip"].astype(str).to_numpy()
    return set(clips[hit]), set(clips[~hit])


def clip_parts(datamodule) -> dict[str, tuple[set[str], set[str]]]:
    """``{breakdown: (seen test clips, unseen test clips)}`` for each breakdown the data carry a key for."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    by_fold = seen_test_clips(datamodule)
    if by_fold is not None:
        out["folds"] = (by_fold[0], by_fold[1])
    for name in ("recording", "masker"):
        parts = _seen_component(datamodule, BREAKDOWNS[name][0])
        if parts is not None:
            out[name] = parts
    return out


def _count_parts(row: dict, parts: dict[str, tuple[set[str], set[str]]]) -> None:
    for name, (seen, unseen) in parts.items():
        row[f"seen_{name}_clips"], row[f"unseen_{name}_clips"] = len(seen), len(unseen)


def _score_parts(row: dict, table, parts: dict[str, tuple[set[str], set[str]]], source: str) -> None:
    from soundaq.models_zoo.metrics import score_table

    for name, (seen, unseen) in parts.items():
        for part, clips in (("seen", seen), ("unseen", unseen)):
            sub = table[table["clip"].astype(str).isin(clips)]
            scores = score_table(sub, source=source) if len(sub) else {}
            if len(sub) and "true_scene" in sub.columns:     # the report's caveat on scene accuracy
                row[f"scenes_{part}_{name}"] = int(sub["true_scene"].dropna().nunique())
            for m in PAPER_HEADLINE:
                v = scores.get(m)
                row[f"{m}_{part}_{name}"] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def add_fold_scores(rows: list[dict], datamodule, predictions: Path) -> list[str]:
    """Give every scored row (models from ``predictions/<model>.csv``) the breakdowns' columns.

    Args:
        rows: leaderboard rows (``model``, ``status``); updated in place.
        datamodule: gives the ``training`` and ``test`` label tables (``labels(split)``).
        predictions: the run's ``predictions/`` folder.

    Returns:
        The columns added, in :data:`FOLD_COLUMNS` order (empty on data without folds or components).
    """
    from soundaq.base import predictions_table

    parts = clip_parts(datamodule)
    if not parts:
        return []
    for row in rows:
        path = predictions / f"{row['model']}.csv"
        _count_parts(row, parts)
        if row["status"] == "failed" or not path.is_file():
            continue
        _score_parts(row, predictions_table.read(path), parts, str(path))
    return [c for name in BREAKDOWNS if name in parts for c in _columns(name)]


def reference_fold_scores(row: dict, datamodule) -> None:
    """The training-mean reference's breakdowns (its predictions are not written to a file)."""
    from soundaq.benchmark.leaderboard.reference import reference_table

    parts = clip_parts(datamodule)
    if not parts:
        return
    _score_parts(row, reference_table(datamodule), parts, "the training-mean reference")
    _count_parts(row, parts)


def markdown(rows: list[dict], value=None) -> list[str]:
    """The report's section (no lines when the rows have no breakdown).

    Args:
        rows: leaderboard rows (or a grid's mean rows) with the breakdowns' columns.
        value: ``value(row, column)`` formats a cell (default three decimals; a grid passes mean ± sd).
    """
    from soundaq.benchmark.leaderboard.table import fmt

    value = value or (lambda r, c: fmt(r.get(c)))
    present = [name for name in BREAKDOWNS if any(r.get(f"seen_{name}_clips") is not None for r in rows)]
    if not present:
        return []
    lines = ["## Test clips that share folds or recordings with training against those that do not", ""]
    shown: list[str] = []
    for name in present:
        first = next(r for r in rows if r.get(f"seen_{name}_clips") is not None)
        n_seen, n_unseen = int(round(float(first[f"seen_{name}_clips"]))), int(round(float(first[f"unseen_{name}_clips"])))
        what = BREAKDOWNS[name][1]
        same = next((other for other in shown if _same_parts(rows, name, other)), None)
        if same is not None:       # e.g. ARAUS's own folds, which share neither recordings nor maskers
            lines += [f"By {what}: the same {n_seen} / {n_unseen} test clips as by {BREAKDOWNS[same][1]}, so the "
                      "same scores as above.", ""]
            continue
        shown.append(name)
        head = ["model", *[f"{m} seen {what} ({n_seen})" for m in PAPER_HEADLINE],
                *[f"{m} unseen {what} ({n_unseen})" for m in PAPER_HEADLINE]]
        if name == "folds":
            lines += [f"{n_seen} of {n_seen + n_unseen} test clips come from ARAUS folds that also feed the training "
                      f"split, {n_unseen} from folds no training clip comes from. {MEANING}", ""]
        else:
            lines += [f"{n_seen} of {n_seen + n_unseen} test clips are mixed from a {what} some training clip was "
                      f"mixed from, {n_unseen} from a {what} no training clip uses."
                      + (f" {COMPONENT_MEANING}" if name == "recording" else ""), ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            if r.get("status") == "failed":
                continue
            lines.append("| " + " | ".join([r["model"], *[value(r, f"{m}_seen_{name}") for m in PAPER_HEADLINE],
                                            *[value(r, f"{m}_unseen_{name}") for m in PAPER_HEADLINE]]) + " |")
        lines += ["", *_scene_caveat(rows, name, what)]
    return lines[:-1]


def _same_parts(rows: list[dict], name: str, other: str) -> bool:
    """Whether breakdown ``name`` splits the test clips as ``other`` does (same counts and scores)."""
    keys = [("seen", "clips"), ("unseen", "clips")]
    for r in rows:
        if any(r.get(f"{part}_{name}_{x}") != r.get(f"{part}_{other}_{x}") for part, x in keys):
            return False
        if any(r.get(f"{m}_{part}_{name}") != r.get(f"{m}_{part}_{other}") for m in PAPER_HEADLINE
               for part in ("seen", "unseen")):
            return False
    return True


def _scene_caveat(rows: list[dict], name: str, what: str) -> list[str]:
    """A line when a part lacks a scene: the paper's scene accuracy counts an absent scene as 0."""
    from soundaq.base.vocab import SCENES

    for part in ("seen", "unseen"):
        found = [int(v) for r in rows if (v := r.get(f"scenes_{part}_{name}")) is not None]
        if found and min(found) < len(SCENES):
            k = min(found)
            return [f"Note: the {part} {what} part holds clips of {k} of the {len(SCENES)} scenes, and the "
                    "paper's scene accuracy (the mean over scenes of each scene's accuracy) counts an absent scene "
                    f"as 0, so that part's `scene_acc` cannot exceed {k / len(SCENES):.3f}: compare scene accuracy "
                    "between the parts only where both hold every scene.", ""]
    return []
