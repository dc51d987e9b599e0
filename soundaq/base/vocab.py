"""The toolkit's vocabulary: scenes, events and affective qualities, named once.

Orders follow the original SoundSCaper release (``SoundAQnet/framework/config.py``) so that
logits of released checkpoints line up; everywhere else we address things by name.
"""
from __future__ import annotations

import math

import numpy as np

#: Acoustic scenes in the original's logit order.
SCENES: tuple[str, ...] = ("public_square", "park", "street_traffic")

#: The 15 AudioSet-style events in the original's logit order. Note the comma in one name.
EVENTS: tuple[str, ...] = (
    "Silence", "Human sounds", "Wind", "Water", "Natural sounds", "Traffic", "Sounds of things",
    "Vehicle", "Bird", "Outside, rural or natural", "Environment and background", "Speech",
    "Music", "Noise", "Animal",
)

#: The 8 perceived affective qualities in the SoundSCaper/ARAUS file order.
QUALITIES: tuple[str, ...] = (
    "pleasant", "eventful", "chaotic", "vibrant", "uneventful", "calm", "annoying", "monotonous",
)

#: Circumplex order (going round the ISO/TS 12913-3 model), used for figures.
CIRCUMPLEX_ORDER: tuple[str, ...] = (
    "pleasant", "vibrant", "eventful", "chaotic", "annoying", "monotonous", "uneventful", "calm",
)

#: soundscapy's PAQ1..PAQ8 naming: PAQ1 pleasant, PAQ2 vibrant, PAQ3 eventful, PAQ4 chaotic,
#: PAQ5 annoying, PAQ6 monotonous, PAQ7 uneventful, PAQ8 calm (the circumplex order).
SOUNDSCAPY_PAQ: dict[str, str] = {f"PAQ{i + 1}": q for i, q in enumerate(CIRCUMPLEX_ORDER)}
QUALITY_TO_PAQ: dict[str, str] = {q: paq for paq, q in SOUNDSCAPY_PAQ.items()}

#: Label hierarchy observed over all 25,248 ARAUS clips: child implies parent.
EVENT_IMPLIES: dict[str, tuple[str, ...]] = {
    "Speech": ("Human sounds",),
    "Wind": ("Natural sounds",),
    "Water": ("Natural sounds",),
    "Traffic": ("Sounds of things",),
    "Vehicle": ("Sounds of things",),
    "Bird": ("Animal",),
    "Outside, rural or natural": ("Environment and background",),
    "Noise": ("Environment and background",),
}

RATING_MIN, RATING_MAX = 1.0, 5.0
_COS45 = math.cos(math.radians(45))
_ISO_SCALE = 4.0 + math.sqrt(32.0)


def event_column(event: str) -> str:
    """Column name of an event in tidy tables: ``event_`` + snake case (``event_outside_rural_or_natural``)."""
    slug = "".join(c.lower() if c.isalnum() else "_" for c in event)
    while "__" in slug:
        slug = slug.replace("__", "_")
    return "event_" + slug.strip("_")


EVENT_COLUMNS: tuple[str, ...] = tuple(event_column(e) for e in EVENTS)

#: The label groups ("tasks") a data source may have; any of them may be missing (a listening test
#: with ratings only, an annotation with scenes and events only). ISOP/ISOE belong to the qualities:
#: they are computed from the 8 ratings (:func:`iso_coordinates`).
LABEL_GROUPS: tuple[str, ...] = ("scene", "events", "qualities")
#: Columns of a tidy label table that belong to each label group.
GROUP_COLUMNS: dict[str, tuple[str, ...]] = {"scene": ("scene",), "events": EVENT_COLUMNS,
                                             "qualities": (*QUALITIES, "isop", "isoe")}


def iso_coordinates(pleasant, eventful, chaotic, vibrant, uneventful, calm, annoying, monotonous):
    """ISOPleasant and ISOEventful (ISO/TS 12913-3) from the 8 quality ratings (1-5 scale).

    Args:
        pleasant: rating on the 1-5 scale, a scalar or an array; the others have its shape.
        eventful: rating on the 1-5 scale.
        chaotic: rating on the 1-5 scale.
        vibrant: rating on the 1-5 scale.
        uneventful: rating on the 1-5 scale.
        calm: rating on the 1-5 scale.
        annoying: rating on the 1-5 scale.
        monotonous: rating on the 1-5 scale.

    Returns:
        ``(isop, isoe)``, float64 arrays of that shape (0-d for scalars), in [-1, 1] for ratings in
        1-5. Formula (ISO/TS 12913-3:2019, the projection ARAUS and the paper use)::

        ISOP = ((p - a) + cos45 (ca - ch) + cos45 (v - m)) / (4 + sqrt 32)
        ISOE = ((e - u) + cos45 (ch - ca) + cos45 (v - m)) / (4 + sqrt 32)

    A clip rated fully pleasant, vibrant and calm and not at all annoying, chaotic or monotonous sits
    at the right edge of the circumplex:

    >>> isop, isoe = iso_coordinates(pleasant=5, eventful=1, chaotic=1, vibrant=5, uneventful=1, calm=5,
    ...                              annoying=1, monotonous=1)
    >>> round(float(isop), 6), round(float(isoe), 6)
    (1.0, 0.0)
    """
    p, e, ch, v, u, ca, a, m = (np.asarray(x, dtype=np.float64) for x in (
        pleasant, eventful, chaotic, vibrant, uneventful, calm, annoying, monotonous))
    isop = ((p - a) + _COS45 * (ca - ch) + _COS45 * (v - m)) / _ISO_SCALE
    isoe = ((e - u) + _COS45 * (ch - ca) + _COS45 * (v - m)) / _ISO_SCALE
    return isop, isoe


def iso_from_matrix(ratings) -> np.ndarray:
    """ISOP/ISOE for an ``[N, 8]`` matrix in :data:`QUALITIES` order; returns ``[N, 2]``.

    Raises:
        ValueError: not an ``[N, 8]`` matrix.

    >>> iso_from_matrix([[3] * 8, [5, 1, 1, 5, 1, 5, 1, 1]]).round(6).tolist()
    [[0.0, 0.0], [1.0, 0.0]]
    """
    r = np.asarray(ratings, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != len(QUALITIES):
        raise ValueError(f"expected an [N, 8] rating matrix in the order {QUALITIES}, got shape {r.shape}")
    isop, isoe = iso_coordinates(*(r[:, i] for i in range(8)))
    return np.stack([isop, isoe], axis=1)


def to_soundscapy(frame):
    """Rename quality columns of a DataFrame to soundscapy's PAQ1..PAQ8 (others untouched)."""
    return frame.rename(columns=QUALITY_TO_PAQ)


def from_soundscapy(frame):
    """Rename soundscapy's PAQ1..PAQ8 columns to quality names (others untouched)."""
    return frame.rename(columns=SOUNDSCAPY_PAQ)


def event_slug(event: str) -> str:
    """Snake-case slug of an event name: ``Outside, rural or natural`` -> ``outside_rural_or_natural``."""
    return event_column(event)[len("event_"):]


# Columns of a predictions table (``soundaq predict`` CSV, leaderboard ``predictions/<model>.csv``).
# Predicted values: scene (name), scene_prob_<scene>, event_prob_<slug>, the 8 quality names, isop, isoe.
# Ground truth, when known: true_scene, true_event_<slug> (0/1), true_<quality>, true_isop, true_isoe.
SCENE_PROB_COLUMNS: tuple[str, ...] = tuple(f"scene_prob_{s}" for s in SCENES)
EVENT_PROB_COLUMNS: tuple[str, ...] = tuple(f"event_prob_{event_slug(e)}" for e in EVENTS)
TRUE_EVENT_COLUMNS: tuple[str, ...] = tuple(f"true_event_{event_slug(e)}" for e in EVENTS)
TRUE_QUALITY_COLUMNS: tuple[str, ...] = tuple(f"true_{q}" for q in QUALITIES)
PREDICTION_COLUMNS: tuple[str, ...] = (
    "clip", "model", "scene", *SCENE_PROB_COLUMNS, *EVENT_PROB_COLUMNS, *QUALITIES, "isop", "isoe")
TRUTH_COLUMNS: tuple[str, ...] = ("true_scene", *TRUE_EVENT_COLUMNS, *TRUE_QUALITY_COLUMNS, "true_isop", "true_isoe")
#: Ground-truth columns of a predictions table by label group (all empty where the data lack that group).
TRUTH_GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "scene": ("true_scene",), "events": TRUE_EVENT_COLUMNS,
    "qualities": (*TRUE_QUALITY_COLUMNS, "true_isop", "true_isoe")}
