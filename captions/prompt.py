r"""The language stage's prompt, built as the SoundSCaper release builds it.

Source: ``LLM_scripts_for_generating_soundscape_caption/LLM_GPT_soundscape_caption.py`` of the public
release (Yuanbo2020/SoundSCaper), which sends one system message to ``gpt-3.5-turbo`` with
temperature 1 and a 250-token limit. What it does with one clip's predictions:

1. **Event threshold cascade.** The threshold is 0.4 when some event probability is above 0.4,
   else 0.3 when some is above 0.3, else 0.2 when some is above 0.2 (strictly above). Events whose
   probability is below the threshold are dropped (a probability equal to it is kept).
2. The kept events are **sorted by probability, highest first** (ties: the name later in the
   alphabet first, as Python's ``sorted(..., reverse=True)`` of ``(probability, name)`` pairs), then
   the probabilities are **rounded to 2 decimals** (numpy rounding, the release's values being
   numpy floats).
3. Each of the 8 quality ratings (1-5) becomes an **agreement word**: <= 1.5 Strongly Disagree,
   <= 2.5 Disagree, <= 3.5 Neutral, <= 4.5 Agree, above 4.5 Strongly Agree.
4. **Neutral qualities are dropped**; when all 8 are neutral the first (pleasant) is kept.
   Each kept one reads "I <word> with <quality>".
5. The facts fill the release's prompt text (:data:`RELEASE_PROMPT_LINES`), lists written as
   Python writes them (``['Bird', 'Speech']``, ``[1.0, 0.55]``).

Two deliberate differences from the release, both documented in docs/captions.md:

* The event "Outside, rural or natural" is named with its comma (our vocabulary). The release's
  data-preparation script wrote a tab in place of the comma, so its prompts read
  ``'Outside\\t rural or natural'``.
* A clip with no event above 0.2 makes the release fail (its threshold is then never set). Here the
  prompt says that no event is clearly heard (:data:`NO_EVENT_LINES`, our wording).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from soundaq.base.vocab import EVENTS, QUALITIES, SCENES

#: The release's event-probability thresholds, tried in this order.
THRESHOLDS: tuple[float, ...] = (0.4, 0.3, 0.2)

#: Upper bounds (inclusive) of each agreement word on the 1-5 rating scale; above 4.5: Strongly Agree.
AGREEMENT_BOUNDS: tuple[tuple[float, str], ...] = (
    (1.5, "Strongly Disagree"), (2.5, "Disagree"), (3.5, "Neutral"), (4.5, "Agree"), (math.inf, "Strongly Agree"))
AGREEMENT_WORDS: tuple[str, ...] = tuple(word for _, word in AGREEMENT_BOUNDS)
NEUTRAL = "Neutral"

#: The release's request settings (``get_completion_from_messages``).
RELEASE_MODEL = "gpt-3.5-turbo"
TEMPERATURE = 1.0
MAX_TOKENS = 250
#: The release sends the prompt as the only message, with this role.
ROLE = "system"

# The release's prompt text, line by line as its f-string holds it: (indent in spaces, text).
# The indentation and the two trailing spaces are the release's; so are its spelling slips
# ("occurrance", "summerize", ...): the paper's LLM read exactly this.
RELEASE_PROMPT_LINES: tuple[tuple[int, str], ...] = (
    (0, ""),
    (4, ""),
    (8, "A  soundscape is defined as the an acoustic environment as perceived or experienced and/or understood "
        "by a person or people in context, accompanying physiological and psychological responses."),
    (4, ""),
    (8, "Consider this as a guided task to create an soundscape description:"),
    (4, ""),
    (8, "As an expert in soundscape analysis, your task is to write a description based on provided affective "
        "responses and auditory events."),
    (4, ""),
    (8, "To proceed, you are in this {scene}, where you hear sound events, including {event_labels}, each "
        "occurring with a probability of {event_probability}, ordered with the decreasing probability of being heard."),
    (4, ""),
    (8, "step 1. According to the {event_labels} and its corresponding probability of {event_probability} "
        "happening in this {scene},"),
    (10, "Identify which sound events will be present and describe the auditory scenario according to their "
         "occurrance,"),
    (10, "If the {event_probability} is too low, you can ignore it, please do not mention the probability numbers "
         "{event_probability}  directly in the description."),
    (11, "Please do not add or relate any new sound events which is not belong to the {event_labels} to the "
         "description. "),
    (11, "Please do not describe the sound events details, "),
    (11, "for example, vehicle sounds does not mean \"The constant hum of engines and occasional honking of "
         "horns\", please just write the sound events itself."),
    (4, ""),
    (4, ""),
    (8, "step 2. Describe your feelings based on the ratings {Affective_Responses_list} on this soundscape:"),
    (4, ""),
    (8, "Now, your task is to write a soundscape description within 200 tokens which summerize the steps above, "
        "please describe it in lay language, keeping it simple and concise."),
    (4, ""),
    (8, "example:"),
    (8, "In this {scene},....."),
    (8, ""),
)

#: Lines 8-15 of the release's prompt (the events sentence and step 1) are replaced by these when no
#: event passes the last threshold (our wording; the release fails on such clips).
NO_EVENT_LINES: tuple[tuple[int, str], ...] = (
    (8, "To proceed, you are in this {scene}, where no sound event is heard clearly: no event reaches a "
        "probability of 0.2."),
    (4, ""),
    (8, "step 1. Describe the auditory scenario of this {scene} as one without distinct sound events."),
    (11, "Please do not add or relate any sound events to the description. "),
)
_EVENT_BLOCK = slice(8, 16)


def _render(lines) -> str:
    return "\n".join(" " * indent + text for indent, text in lines)


def event_threshold(probabilities) -> float | None:
    """The release's threshold for one clip: the first of 0.4, 0.3, 0.2 that some probability exceeds
    (strictly); None when none does. ``probabilities``: the 15 event probabilities (any order).
    """
    values = np.asarray(list(probabilities), dtype=np.float64)
    for threshold in THRESHOLDS:
        if np.any(values > threshold):
            return threshold
    return None


def kept_events(probabilities: Mapping[str, float]) -> list[tuple[str, float]]:
    """The events the prompt names, as ``(event, probability rounded to 2 decimals)``, most probable first.

    Args:
        probabilities: event name -> probability in [0, 1] (the 15 of :data:`soundaq.base.vocab.EVENTS`).

    Returns:
        The events at or above :func:`event_threshold`, sorted by unrounded probability, highest first
        (ties: the later name first), each with ``round(p, 2)`` as numpy rounds; empty when no event
        is above 0.2.
    """
    threshold = event_threshold(probabilities.values())
    if threshold is None:
        return []
    kept = [(float(p), name) for name, p in probabilities.items() if float(p) >= threshold and float(p) != 0.0]
    kept.sort(reverse=True)
    return [(name, float(np.round(np.float64(p), 2))) for p, name in kept]


def agreement(rating: float) -> str:
    """The release's agreement word of a 1-5 rating (<= 1.5 Strongly Disagree ... > 4.5 Strongly Agree).

    Raises:
        ValueError: the rating is NaN.
    """
    rating = float(rating)
    if math.isnan(rating):
        raise ValueError("a NaN rating has no agreement word")
    for bound, word in AGREEMENT_BOUNDS:
        if rating <= bound:
            return word
    return AGREEMENT_WORDS[-1]


def kept_qualities(ratings: Mapping[str, float]) -> list[tuple[str, str]]:
    """``(quality, agreement word)`` of the qualities the prompt names: every non-neutral one, in
    :data:`~soundaq.base.vocab.QUALITIES` order; the first quality (pleasant) alone when all are neutral.
    """
    words = [(q, agreement(ratings[q])) for q in QUALITIES]
    kept = [(q, w) for q, w in words if w != NEUTRAL]
    return kept or words[:1]


@dataclass(frozen=True)
class PromptFacts:
    """What the prompt carries for one clip or window (the numbers the LLM sees, already filtered)."""

    scene: str
    events: tuple[tuple[str, float], ...]
    qualities: tuple[tuple[str, str], ...]
    agreements: dict[str, str] = field(default_factory=dict)

    @property
    def event_labels(self) -> list[str]:
        """The kept events' names, most probable first (the release's ``event_labels``)."""
        return [e for e, _ in self.events]

    @property
    def event_probability(self) -> list[float]:
        """The kept events' probabilities (rounded to 2 decimals), in the order of :attr:`event_labels`."""
        return [p for _, p in self.events]

    @property
    def affective_responses(self) -> list[str]:
        """The kept qualities as the prompt words them: ``I Agree with pleasant``."""
        return [f"I {word} with {quality}" for quality, word in self.qualities]


def prompt_facts(scene: str, event_probabilities: Mapping[str, float], ratings: Mapping[str, float]) -> PromptFacts:
    """The filtered facts of one prediction: scene, kept events, kept qualities and all 8 agreement words.

    Args:
        scene: one of :data:`~soundaq.base.vocab.SCENES`.
        event_probabilities: event -> probability for the 15 events.
        ratings: quality -> predicted rating (1-5 scale) for the 8 qualities.

    Raises:
        ValueError: unknown scene, a missing event or quality, a NaN rating.
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; expected one of {', '.join(SCENES)}")
    missing = [e for e in EVENTS if e not in event_probabilities] + [q for q in QUALITIES if q not in ratings]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    probs = {e: float(event_probabilities[e]) for e in EVENTS}
    return PromptFacts(scene=scene, events=tuple(kept_events(probs)), qualities=tuple(kept_qualities(ratings)),
                       agreements={q: agreement(ratings[q]) for q in QUALITIES})


def build_prompt(facts: PromptFacts) -> str:
    """The release's prompt text for these facts (one system message; see the module docstring)."""
    lines = list(RELEASE_PROMPT_LINES)
    if not facts.events:
        lines[_EVENT_BLOCK] = NO_EVENT_LINES
    values = {"scene": facts.scene, "event_labels": repr(facts.event_labels),
              "event_probability": repr(facts.event_probability),
              "Affective_Responses_list": repr(facts.affective_responses)}
    return _render((indent, text.format(**values)) for indent, text in lines)


def prompt_sha256(prompt: str) -> str:
    """sha256 (hex) of the prompt's UTF-8 bytes: the ``prompt_sha256`` column of ``captions.csv``."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()
