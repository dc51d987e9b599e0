"""The facts of ``soundaq compare``'s three tiers (after ADIFF, Deshmukh et al., ICLR 2025), as typed records.

* **tier 1** (:func:`event_facts`): the events each side's caption would name (the release's threshold
  cascade, :func:`soundaq.captions.prompt.kept_events`) that the other side lacks, and the events both
  have whose probability differs by at least :data:`EVENT_CHANGE`;
* **tier 2** (:func:`scene_signal_facts`): the predicted scenes and the signal facts of the audio
  (level, N5 loudness, spectral balance; :mod:`soundaq.captions.signal`) when audio is at hand;
* **tier 3** (:func:`feeling_facts`): the qualities that rise or fall by at least :data:`QUALITY_CHANGE`
  rating points and the move on the ISOPleasant/ISOEventful plane (distance, the circumplex direction
  it points to, the quadrant of each side).

Numbers are B - A where a difference is given, rounded as ``compare.json`` writes them. Each record's
``to_dict()`` is its part of ``compare.json``; the words are :mod:`soundaq.captions.compare_texts`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from soundaq.base.vocab import QUALITIES
from soundaq.captions.prompt import agreement, kept_events
from soundaq.captions.signal import SignalFacts

if TYPE_CHECKING:
    from soundaq.captions.compare_sides import Side
    from soundaq.captions.tables import Prediction

#: An event present on both sides is "more" on one when its probability differs by at least this.
EVENT_CHANGE = 0.2
#: A quality "rises" or "falls" when its rating changes by at least this (1-5 scale).
QUALITY_CHANGE = 0.25
#: A move on the ISOP/ISOE plane shorter than this is "staying put".
MOVE_MIN = 0.05
#: Compass of the circumplex: the quality each direction of a move points to (degrees from +ISOPleasant).
DIRECTIONS: tuple[tuple[float, str], ...] = (
    (0, "pleasant"), (45, "vibrant"), (90, "eventful"), (135, "chaotic"), (180, "annoying"),
    (225, "monotonous"), (270, "uneventful"), (315, "calm"))


def rounded(x: float, n: int = 4) -> float:
    """``x`` as a Python float rounded to ``n`` decimals, as ``compare.json`` gives its numbers."""
    return round(float(x), n)


# --------------------------------------------------------------------------------------------------
# tier 1: events
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeptEvent:
    """An event a side's caption would name, with its probability rounded to 2 decimals."""

    event: str
    probability: float


@dataclass(frozen=True)
class EventPair:
    """An event one side names and the other lacks: its probability on each side (4 decimals)."""

    event: str
    a: float
    b: float


@dataclass(frozen=True)
class EventChange:
    """An event both sides name whose probability changes by at least :data:`EVENT_CHANGE` (delta = B - A)."""

    event: str
    a: float
    b: float
    delta: float


@dataclass(frozen=True)
class EventFacts:
    """Tier 1: the kept events of each side and how they differ.

    Attributes:
        a_events, b_events: the events each side's caption would name, most probable first.
        only_a, only_b: the events only that side names.
        both: the events both name (A's order).
        changed: the events of ``both`` that changed by at least :data:`EVENT_CHANGE`, largest change first.
    """

    a_events: list[KeptEvent]
    b_events: list[KeptEvent]
    only_a: list[EventPair]
    only_b: list[EventPair]
    both: list[str]
    changed: list[EventChange]

    def to_dict(self) -> dict[str, Any]:
        """The tier-1 facts as ``compare.json`` holds them."""
        return {"a_events": [vars(e).copy() for e in self.a_events],
                "b_events": [vars(e).copy() for e in self.b_events],
                "only_a": [vars(e).copy() for e in self.only_a], "only_b": [vars(e).copy() for e in self.only_b],
                "both": list(self.both), "changed": [vars(c).copy() for c in self.changed]}


def event_facts(a: Prediction, b: Prediction) -> EventFacts:
    """Tier 1: the kept events of each side and how they differ.

    Args:
        a: the prediction of side A.
        b: the prediction of side B.

    Returns:
        The :class:`EventFacts` of the two sides.
    """
    ka, kb = dict(kept_events(a.events)), dict(kept_events(b.events))
    changed = [EventChange(e, rounded(a.events[e]), rounded(b.events[e]), rounded(b.events[e] - a.events[e]))
               for e in ka if e in kb and abs(b.events[e] - a.events[e]) >= EVENT_CHANGE]
    changed.sort(key=lambda c: -abs(c.delta))
    return EventFacts(
        a_events=[KeptEvent(e, p) for e, p in ka.items()],
        b_events=[KeptEvent(e, p) for e, p in kb.items()],
        only_a=[EventPair(e, rounded(a.events[e]), rounded(b.events[e])) for e in ka if e not in kb],
        only_b=[EventPair(e, rounded(a.events[e]), rounded(b.events[e])) for e in kb if e not in ka],
        both=[e for e in ka if e in kb],
        changed=changed)


# --------------------------------------------------------------------------------------------------
# tier 2: scene and signal
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneFacts:
    """The predicted scene of each side and its scene probabilities (4 decimals)."""

    a: str
    b: str
    same: bool
    a_probabilities: dict[str, float]
    b_probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """The scene facts as ``compare.json`` holds them."""
        return {"a": self.a, "b": self.b, "same": self.same, "a_probabilities": dict(self.a_probabilities),
                "b_probabilities": dict(self.b_probabilities)}


@dataclass(frozen=True)
class SignalDelta:
    """The signal facts of both sides and how B differs from A.

    Attributes:
        a, b: each side's :class:`~soundaq.captions.signal.SignalFacts`.
        level_delta_db: L_eq of B - A, dB.
        n5_ratio: N5 of B / A (None when A's N5 is 0 sone).
        centroid_ratio: spectral centroid of B / A.
        low_high_delta_db: low/high balance of B - A, dB.
    """

    a: SignalFacts
    b: SignalFacts
    level_delta_db: float
    n5_ratio: float | None
    centroid_ratio: float
    low_high_delta_db: float

    def to_dict(self) -> dict[str, Any]:
        """The signal facts as ``compare.json`` holds them."""
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "level_delta_db": self.level_delta_db,
                "n5_ratio": self.n5_ratio, "centroid_ratio": self.centroid_ratio,
                "low_high_delta_db": self.low_high_delta_db}


@dataclass(frozen=True)
class SceneSignalFacts:
    """Tier 2: the scenes, the signal facts (None without audio on both sides) and why they are missing."""

    scene: SceneFacts
    signal: SignalDelta | None
    signal_note: str | None

    def to_dict(self) -> dict[str, Any]:
        """The tier-2 facts as ``compare.json`` holds them."""
        return {"scene": self.scene.to_dict(), "signal": self.signal.to_dict() if self.signal else None,
                "signal_note": self.signal_note}


def scene_signal_facts(sa: Side, sb: Side) -> SceneSignalFacts:
    """Tier 2: the scenes and the signal facts (differences B - A).

    Args:
        sa: the resolved side A (its signal facts, when audio was at hand).
        sb: the resolved side B.

    Returns:
        The :class:`SceneSignalFacts` of the two sides.
    """
    a, b = sa.prediction, sb.prediction
    scene = SceneFacts(a.scene, b.scene, a.scene == b.scene, {s: rounded(v) for s, v in a.scene_probabilities.items()},
                       {s: rounded(v) for s, v in b.scene_probabilities.items()})
    signal = None
    if sa.signal and sb.signal:
        fa, fb = sa.signal, sb.signal
        signal = SignalDelta(fa, fb, level_delta_db=rounded(fb.level_db_spl - fa.level_db_spl, 2),
                             n5_ratio=rounded(fb.n5_sone / fa.n5_sone, 3) if fa.n5_sone > 0 else None,
                             centroid_ratio=rounded(fb.spectral_centroid_hz / fa.spectral_centroid_hz, 3),
                             low_high_delta_db=rounded(fb.low_high_db - fa.low_high_db, 2))
    note = "; ".join(f"{s.name}: {s.signal_note}" for s in (sa, sb) if s.signal_note) or None
    return SceneSignalFacts(scene, signal, note)


# --------------------------------------------------------------------------------------------------
# tier 3: feelings
# --------------------------------------------------------------------------------------------------
def direction_of(d_isop: float, d_isoe: float) -> str:
    """The circumplex quality a move points to: the nearest of the 8 directions of :data:`DIRECTIONS`.

    Args:
        d_isop: the move along ISOPleasant.
        d_isoe: the move along ISOEventful.

    Returns:
        One of the 8 qualities (``pleasant`` at 0 degrees, ``vibrant`` at 45, ...).
    """
    angle = math.degrees(math.atan2(d_isoe, d_isop)) % 360.0
    return min(DIRECTIONS, key=lambda d: min(abs(angle - d[0]), 360.0 - abs(angle - d[0])))[1]


def quadrant(isop: float, isoe: float) -> str:
    """ISO/TS 12913-3's quadrant names: vibrant (+,+), chaotic (-,+), monotonous (-,-), calm (+,-).

    Args:
        isop: ISOPleasant, in [-1, 1].
        isoe: ISOEventful, in [-1, 1].

    Returns:
        The quadrant's name (0 counts as positive).
    """
    if isop >= 0:
        return "vibrant" if isoe >= 0 else "calm"
    return "chaotic" if isoe >= 0 else "monotonous"


@dataclass(frozen=True)
class QualityChange:
    """One quality's rating on each side (1-5, 4 decimals), B - A, and the Likert word of each side."""

    quality: str
    a: float
    b: float
    delta: float
    a_agreement: str
    b_agreement: str


@dataclass(frozen=True)
class Circumplex:
    """Both sides on the ISOPleasant/ISOEventful plane and the move from A to B.

    Attributes:
        a, b: (ISOPleasant, ISOEventful) of each side.
        delta: B - A on each axis.
        distance: length of the move.
        direction: the circumplex quality the move points to (None for a move under :data:`MOVE_MIN`).
        a_quadrant, b_quadrant: ISO/TS 12913-3 quadrant of each side.
    """

    a: tuple[float, float]
    b: tuple[float, float]
    delta: tuple[float, float]
    distance: float
    direction: str | None
    a_quadrant: str
    b_quadrant: str

    def to_dict(self) -> dict[str, Any]:
        """The circumplex facts as ``compare.json`` holds them (coordinates as lists)."""
        return {"a": list(self.a), "b": list(self.b), "delta": list(self.delta), "distance": self.distance,
                "direction": self.direction, "a_quadrant": self.a_quadrant, "b_quadrant": self.b_quadrant}


@dataclass(frozen=True)
class FeelingFacts:
    """Tier 3: every quality's change, the qualities that rise and fall, and the circumplex move.

    Attributes:
        qualities: one :class:`QualityChange` per quality (vocab.QUALITIES order).
        rises, falls: the qualities that change by at least :data:`QUALITY_CHANGE`, largest change first.
        circumplex: the move on the ISOPleasant/ISOEventful plane.
    """

    qualities: list[QualityChange]
    rises: list[str]
    falls: list[str]
    circumplex: Circumplex

    def to_dict(self) -> dict[str, Any]:
        """The tier-3 facts as ``compare.json`` holds them."""
        return {"qualities": [vars(r).copy() for r in self.qualities], "rises": list(self.rises),
                "falls": list(self.falls), "circumplex": self.circumplex.to_dict()}


def feeling_facts(a: Prediction, b: Prediction) -> FeelingFacts:
    """Tier 3: quality changes (B - A) and the move on the ISOP/ISOE plane.

    Args: as :func:`event_facts` (the predictions of side A and side B).

    Returns:
        The :class:`FeelingFacts` of the two sides.
    """
    rows = [QualityChange(q, rounded(a.qualities[q]), rounded(b.qualities[q]), rounded(b.qualities[q] - a.qualities[q]),
                          agreement(a.qualities[q]), agreement(b.qualities[q])) for q in QUALITIES]
    d_p, d_e = b.isop - a.isop, b.isoe - a.isoe
    dist = math.hypot(d_p, d_e)
    return FeelingFacts(
        qualities=rows,
        rises=[r.quality for r in sorted(rows, key=lambda r: -r.delta) if r.delta >= QUALITY_CHANGE],
        falls=[r.quality for r in sorted(rows, key=lambda r: r.delta) if r.delta <= -QUALITY_CHANGE],
        circumplex=Circumplex(a=(rounded(a.isop), rounded(a.isoe)), b=(rounded(b.isop), rounded(b.isoe)),
                              delta=(rounded(d_p), rounded(d_e)), distance=rounded(dist),
                              direction=direction_of(d_p, d_e) if dist >= MOVE_MIN else None,
                              a_quadrant=quadrant(a.isop, a.isoe), b_quadrant=quadrant(b.isop, b.isoe)))


@dataclass(frozen=True)
class TierFacts:
    """The facts of the three tiers of one comparison."""

    tier1: EventFacts
    tier2: SceneSignalFacts
    tier3: FeelingFacts


def tier_facts(sa: Side, sb: Side) -> TierFacts:
    """The facts of all three tiers for two resolved sides.

    Args:
        sa: the resolved side A.
        sb: the resolved side B.

    Returns:
        :class:`TierFacts` (events, scene and signal, feelings).
    """
    return TierFacts(event_facts(sa.prediction, sb.prediction), scene_signal_facts(sa, sb),
                     feeling_facts(sa.prediction, sb.prediction))
