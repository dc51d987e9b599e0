"""The jury's rating dimensions, their scales and the overall-score formula.

Each expert rated every caption on Precision and Recall (1 to 5) and on three penalties, Fluency,
Conciseness and Irrelevance (-2 to 0). The overall score of one caption by one expert is::

    overall = (precision + recall) / 2 + fluency + conciseness + irrelevance

so it lies in [-5, 5]. The blank template holds no formula cell; the formula is the one that
reproduces the published ``OverallScore_Avg`` column from the other averaged columns (119 of the
120 rows to 1e-9; the exception, D2 37.wav SoundSCaper, has fluency and overall averages that are
multiples of 1/15, probably taken over 15 experts; see docs/jury.md).
"""
from __future__ import annotations

import math

#: Dimensions in the order of the questionnaire's columns, then the derived overall score.
RATED: tuple[str, ...] = ("precision", "recall", "fluency", "conciseness", "irrelevance")
OVERALL = "overall"
DIMENSIONS: tuple[str, ...] = (*RATED, OVERALL)

#: Allowed closed range of each dimension.
RANGES: dict[str, tuple[float, float]] = {
    "precision": (1.0, 5.0),
    "recall": (1.0, 5.0),
    "fluency": (-2.0, 0.0),
    "conciseness": (-2.0, 0.0),
    "irrelevance": (-2.0, 0.0),
    OVERALL: (-5.0, 5.0),
}

LABELS: dict[str, str] = {
    "precision": "Precision",
    "recall": "Recall",
    "fluency": "Fluency (penalty)",
    "conciseness": "Conciseness (penalty)",
    "irrelevance": "Irrelevance (penalty)",
    OVERALL: "Overall score",
}

#: Substrings that identify a dimension in a header cell (case-insensitive).
HEADER_KEYS: dict[str, str] = {
    "precision": "precision",
    "recall": "recall",
    "fluency": "fluen",
    "conciseness": "concis",
    "irrelevance": "irrelev",
    OVERALL: "overall",
}

FORMULA_TEXT = "overall = (precision + recall) / 2 + fluency + conciseness + irrelevance"


def overall_score(precision, recall, fluency, conciseness, irrelevance):
    """The overall score of a caption; works on scalars and numpy arrays alike."""
    return (precision + recall) / 2.0 + fluency + conciseness + irrelevance


def in_range(dimension: str, value: float) -> bool:
    """Whether ``value`` is finite and within the scale of ``dimension`` (:data:`RANGES`, ends included)."""
    lo, hi = RANGES[dimension]
    return math.isfinite(value) and lo <= value <= hi


def dimension_of_header(text) -> str | None:
    """Which dimension a header cell names, or None (``'Fluency (negative) ([-2, 0] )'`` -> fluency)."""
    if not isinstance(text, str):
        return None
    low = text.lower()
    hits = [dim for dim, key in HEADER_KEYS.items() if key in low]
    return hits[0] if len(hits) == 1 else None
