"""The LLM prompts of ``soundaq compare``'s three tiers (our wording, with the release's rules: no
numbers for events, no invented events, lay language).

The facts reach the model as words, not numbers: small models repeat what they are handed, and
"Animal (0.84)" in a prompt came back as "Animal (0.84)" in the text (issue 26, SmolLM2-135M and
Qwen2.5-0.5B). An event's probability becomes how surely it is heard (:func:`heard`), the ISOPleasant/
ISOEventful coordinates become the quadrant of each side and the size and direction of the move
(:func:`move_words`); the signal facts keep their units (dB SPL, sone, Hz), which people use too.
"""
from __future__ import annotations

from typing import Any

#: An event probability of at least this is "clearly heard", else at least the next "likely heard",
#: else "possibly heard" (the events in a prompt passed the release's cascade, so are at least 0.2).
HEARD_WORDS: tuple[tuple[float, str], ...] = ((0.7, "clearly heard"), (0.4, "likely heard"), (0.0, "possibly heard"))
#: A move on the ISOP/ISOE plane shorter than this is "small", then "clear", else "large" (the plane
#: spans -1 to 1 on each axis).
MOVE_WORDS: tuple[tuple[float, str], ...] = ((0.15, "small"), (0.4, "clear"), (float("inf"), "large"))

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


def move_words(circumplex: dict) -> str:
    """Where A and B lie on the circumplex and how B moved from A, in words (no coordinates)."""
    c = circumplex
    where = (f"A and B both lie in the {c['a_quadrant']} quadrant of the pleasant-eventful circumplex"
             if c["a_quadrant"] == c["b_quadrant"] else
             f"A lies in the {c['a_quadrant']} quadrant of the pleasant-eventful circumplex, B in the "
             f"{c['b_quadrant']} quadrant")
    if c["direction"] is None:
        return f"{where}; they lie close together."
    size = next(word for bound, word in MOVE_WORDS if c["distance"] < bound)
    return f"{where}; from A, B lies towards {c['direction']} (a {size} move)."


def _side_lines(side: Any, t1_events: list[dict]) -> list[str]:
    p = side.prediction
    kind = {"site": f"a site (mean of {side.clips} clips)", "window": "a window of a recording", "clip": "a clip"}
    events = ", ".join(f"{e['event']} ({heard(e['probability'])})" for e in t1_events) or "no distinct sound event"
    return [f"{side.name} ({kind[side.kind]}): in this {p.scene}, the sound events are: {events}."]


def tier_prompt(tier: int, sa: Any, sb: Any, facts: dict) -> str:
    """The LLM prompt of one tier (1-3): the facts that tier may use, in words, then the task and the rules.

    Args:
        tier: 1 (events), 2 (+ scene and signal), 3 (+ qualities and the circumplex move).
        sa, sb: the two sides (:class:`soundaq.captions.compare.Side`: name, kind, clips, prediction).
        facts: ``{"tier1": ..., "tier2": ..., "tier3": ...}`` of
            :func:`soundaq.captions.compare.compare_sides`.
    """
    t1, t2, t3 = facts["tier1"], facts["tier2"], facts["tier3"]
    lines = ["You compare two soundscapes, A and B, for a listener. An acoustic model predicted these facts.", ""]
    lines += _side_lines(sa, t1["a_events"]) + _side_lines(sb, t1["b_events"])
    if tier >= 2 and t2["signal"]:
        for name, f in (("A", t2["signal"]["a"]), ("B", t2["signal"]["b"])):
            lines.append(f"{name} signal: level {f['level_db_spl']:.1f} dB SPL, N5 loudness {f['n5_sone']:.1f} sone, "
                         f"spectral centroid {f['spectral_centroid_hz']:.0f} Hz.")
    if tier >= 3:
        for name, key in (("A", "a_agreement"), ("B", "b_agreement")):
            feel = ", ".join(f"I {r[key]} with {r['quality']}" for r in t3["qualities"])
            lines.append(f"{name} feelings: {feel}.")
        lines.append(move_words(t3["circumplex"]))
    lines += ["", TIER_TASKS[tier], RULES]
    return "\n".join(lines)
