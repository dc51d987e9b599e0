"""The words of ``soundaq compare``: the template's text of each tier, and the LLM prompts of the three
tiers (our wording, with the release's rules: no numbers for events, no invented events, lay language).

The template words the facts of :mod:`soundaq.captions.compare_facts` (thresholds in docs/captions.md):
"slightly louder" 1-3 dB, "louder" 3-10 dB, "much louder" 10 dB or more; a spectral centroid ratio of
1.2 or more is "brighter", 1/1.2 or less "darker".

The facts reach the model as words, not numbers: small models repeat what they are handed, and
"Animal (0.84)" in a prompt came back as "Animal (0.84)" in the text (issue 26, SmolLM2-135M and
Qwen2.5-0.5B). An event's probability becomes how surely it is heard (:func:`heard`), the ISOPleasant/
ISOEventful coordinates become the quadrant of each side and the size and direction of the move
(:func:`move_words`); the signal facts keep their units (dB SPL, sone, Hz), which people use too.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from soundaq.captions.template import EVENT_WORDS, SCENE_WORDS, join_words

if TYPE_CHECKING:
    from soundaq.captions.compare_facts import (
        Circumplex,
        EventFacts,
        EventPair,
        FeelingFacts,
        KeptEvent,
        SceneSignalFacts,
        SignalDelta,
        TierFacts,
    )
    from soundaq.captions.compare_sides import Side

#: An event probability of at least this is "clearly heard", else at least the next "likely heard",
#: else "possibly heard" (the events in a prompt passed the release's cascade, so are at least 0.2).
HEARD_WORDS: tuple[tuple[float, str], ...] = ((0.7, "clearly heard"), (0.4, "likely heard"), (0.0, "possibly heard"))
#: A move on the ISOP/ISOE plane shorter than this is "small", then "clear", else "large" (the plane
#: spans -1 to 1 on each axis).
MOVE_WORDS: tuple[tuple[float, str], ...] = ((0.15, "small"), (0.4, "clear"), (float("inf"), "large"))


# --------------------------------------------------------------------------------------------------
# template texts
# --------------------------------------------------------------------------------------------------
def _place(scene: str) -> str:
    return "a " + SCENE_WORDS[scene][1]


def _words(events: Sequence[str | EventPair]) -> str:
    return join_words([EVENT_WORDS[e if isinstance(e, str) else e.event] for e in events])


def tier1_text(t1: EventFacts) -> str:
    """Which events differ: "A has birds, which B lacks; B has traffic, which A lacks. B has more speech."."""
    parts = []
    if t1.only_a:
        parts.append(f"A has {_words(t1.only_a)}, which B lacks")
    if t1.only_b:
        parts.append(f"B has {_words(t1.only_b)}, which A lacks")
    sentences = ["; ".join(parts) + "."] if parts else []
    more_b = [c.event for c in t1.changed if c.delta > 0]
    more_a = [c.event for c in t1.changed if c.delta < 0]
    more = [f"{side} has more {_words(evs)}" for side, evs in (("B", more_b), ("A", more_a)) if evs]
    if more:
        sentences.append("; ".join(more) + ".")
    if not sentences:
        if t1.both:
            return f"A and B have the same salient sound events: {_words(t1.both)}."
        return "Neither A nor B has a distinct sound event."
    return " ".join(s[0].upper() + s[1:] for s in sentences)


def signal_text(signal: SignalDelta | None) -> str:
    """Level, N5 and spectral balance in words (empty without signal facts)."""
    if not signal:
        return ""
    fa, fb, dl = signal.a.to_dict(), signal.b.to_dict(), signal.level_delta_db
    if abs(dl) < 1.0:
        loud = (f"A and B are about equally loud ({fa['level_db_spl']:.1f} and {fb['level_db_spl']:.1f} dB SPL; "
                f"N5 {fa['n5_sone']:.1f} and {fb['n5_sone']:.1f} sone)")
    else:
        hi, lo, fh, fl = ("B", "A", fb, fa) if dl > 0 else ("A", "B", fa, fb)
        how = "slightly louder" if abs(dl) < 3 else "louder" if abs(dl) < 10 else "much louder"
        loud = (f"{hi} is {how} than {lo} ({fh['level_db_spl']:.1f} vs {fl['level_db_spl']:.1f} dB SPL; "
                f"N5 loudness {fh['n5_sone']:.1f} vs {fl['n5_sone']:.1f} sone)")
    r = signal.centroid_ratio
    ca, cb = fa["spectral_centroid_hz"], fb["spectral_centroid_hz"]
    if r >= 1.2:
        tone = f"B sounds brighter than A, with more high-frequency energy (spectral centroid {cb:,.0f} vs {ca:,.0f} Hz)"
    elif r <= 1 / 1.2:
        tone = f"B sounds darker than A, weighted to low frequencies (spectral centroid {cb:,.0f} vs {ca:,.0f} Hz)"
    else:
        tone = f"their spectral balance is similar (spectral centroid {ca:,.0f} and {cb:,.0f} Hz)"
    return f"{loud}, and {tone}."


def tier2_text(t1: EventFacts, t2: SceneSignalFacts) -> str:
    """Scene, events and signal: one or two sentences more than tier 1."""
    sc = t2.scene
    scene = (f"Both sound like {_place(sc.a)}." if sc.same
             else f"A sounds like {_place(sc.a)} and B like {_place(sc.b)}.")
    sig = signal_text(t2.signal)
    return " ".join(s for s in (scene, tier1_text(t1), sig[0].upper() + sig[1:] if sig else "") if s)


def feelings_text(t3: FeelingFacts) -> str:
    """How a listener would feel: qualities that rise and fall, then the move on the circumplex."""
    rises, falls = t3.rises, t3.falls
    if rises or falls:
        parts = []
        if rises:
            parts.append("more " + join_words(rises))
        if falls:
            parts.append("less " + join_words(falls))
        feel = f"A listener would likely find B {' and '.join(parts)} than A."
    else:
        feel = "A listener would likely feel much the same in both."
    c = t3.circumplex
    where = (f"both in the {c.a_quadrant} quadrant" if c.a_quadrant == c.b_quadrant
             else f"from the {c.a_quadrant} quadrant into the {c.b_quadrant} one")
    coords = (f"ISOPleasant {c.a[0]:+.2f} to {c.b[0]:+.2f}, ISOEventful {c.a[1]:+.2f} to {c.b[1]:+.2f}")
    if c.direction is None:
        move = f"On the circumplex the two lie close together ({coords}; {where})."
    else:
        move = f"On the circumplex B lies {c.distance:.2f} from A towards {c.direction} ({coords}; {where})."
    return f"{feel} {move}"


def tier3_text(t1: EventFacts, t2: SceneSignalFacts, t3: FeelingFacts) -> str:
    """The full explanation: tier 2's text, then how a listener would feel (:func:`feelings_text`)."""
    return f"{tier2_text(t1, t2)} {feelings_text(t3)}"


# --------------------------------------------------------------------------------------------------
# LLM prompts
# --------------------------------------------------------------------------------------------------
TIER_TASKS = {
    1: "In one or two sentences, say which sound events differ between A and B.",
    2: "In two or three sentences, say how A and B differ in their scene, their sound events and their sound "
       "level, loudness and spectral balance.",
    3: "In three to five sentences, explain how A and B differ: their scene, their sound events, their sound "
       "level, loudness and spectral balance, and how a listener would feel in each, including the move on the "
       "pleasant-eventful circumplex.",
}
RULES = ("Do not write any probability or other number for the sound events. Do not add sound events that are "
         "not listed, and do not describe the sound events' details; just name them. Use lay language, simple "
         "and concise. Call the soundscapes A and B.")


def heard(probability: float) -> str:
    """How surely an event is heard, in words (:data:`HEARD_WORDS`)."""
    for bound, word in HEARD_WORDS:
        if probability >= bound:
            return word
    return HEARD_WORDS[-1][1]


def move_words(circumplex: Circumplex) -> str:
    """Where A and B lie on the circumplex and how B moved from A, in words (no coordinates)."""
    c = circumplex
    where = (f"A and B both lie in the {c.a_quadrant} quadrant of the pleasant-eventful circumplex"
             if c.a_quadrant == c.b_quadrant else
             f"A lies in the {c.a_quadrant} quadrant of the pleasant-eventful circumplex, B in the "
             f"{c.b_quadrant} quadrant")
    if c.direction is None:
        return f"{where}; they lie close together."
    size = next(word for bound, word in MOVE_WORDS if c.distance < bound)
    return f"{where}; from A, B lies towards {c.direction} (a {size} move)."


def _side_lines(side: Side, t1_events: list[KeptEvent]) -> list[str]:
    p = side.prediction
    kind = {"site": f"a site (mean of {side.clips} clips)", "window": "a window of a recording", "clip": "a clip"}
    events = ", ".join(f"{e.event} ({heard(e.probability)})" for e in t1_events) or "no distinct sound event"
    return [f"{side.name} ({kind[side.kind]}): in this {p.scene}, the sound events are: {events}."]


def tier_prompt(tier: int, sa: Side, sb: Side, facts: TierFacts) -> str:
    """The LLM prompt of one tier (1-3): the facts that tier may use, in words, then the task and the rules.

    Args:
        tier: 1 (events), 2 (+ scene and signal), 3 (+ qualities and the circumplex move).
        sa: side A (:class:`soundaq.captions.compare_sides.Side`: name, kind, clips, prediction).
        sb: side B.
        facts: the three tiers' facts (:func:`soundaq.captions.compare_facts.tier_facts`).

    Returns:
        The prompt text.
    """
    t1, t2, t3 = facts.tier1, facts.tier2, facts.tier3
    lines = ["You compare two soundscapes, A and B, for a listener. An acoustic model predicted these facts.", ""]
    lines += _side_lines(sa, t1.a_events) + _side_lines(sb, t1.b_events)
    if tier >= 2 and t2.signal:
        for name, f in (("A", t2.signal.a.to_dict()), ("B", t2.signal.b.to_dict())):
            lines.append(f"{name} signal: level {f['level_db_spl']:.1f} dB SPL, N5 loudness {f['n5_sone']:.1f} sone, "
                         f"spectral centroid {f['spectral_centroid_hz']:.0f} Hz.")
    if tier >= 3:
        for name, key in (("A", "a_agreement"), ("B", "b_agreement")):
            feel = ", ".join(f"I {getattr(r, key)} with {r.quality}" for r in t3.qualities)
            lines.append(f"{name} feelings: {feel}.")
        lines.append(move_words(t3.circumplex))
    lines += ["", TIER_TASKS[tier], RULES]
    return "\n".join(lines)
