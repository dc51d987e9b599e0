"""The offline captioner: a deterministic soundscape caption from the facts the prompt carries.

It follows the rules the release's prompt gives the LLM (:mod:`soundaq.captions.prompt`): the scene
first ("In this park, ..."), then the kept events by name, without numbers, without details and
never one the threshold cascade dropped, then the feelings that the kept (non-neutral) qualities
express. Events are said in two groups: those with a rounded probability of at least
:data:`CLEAR` are heard plainly, the rest "now and then". Sentence shapes vary between clips: the
shape is picked from a hash of (clip, window, seed), so a caption never changes between runs with
the same seed.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

from soundaq.captions.prompt import NEUTRAL, PromptFacts

#: Events at or above this rounded probability are "clearly heard"; the kept rest "now and then".
CLEAR = 0.7

#: How each event is said in a caption (plural or mass nouns, so no verb agreement is needed).
EVENT_WORDS: dict[str, str] = {
    "Silence": "moments of silence",
    "Human sounds": "human sounds",
    "Wind": "wind",
    "Water": "water",
    "Natural sounds": "natural sounds",
    "Traffic": "traffic",
    "Sounds of things": "sounds of things",
    "Vehicle": "vehicles",
    "Bird": "birds",
    "Outside, rural or natural": "rural or natural outdoor sounds",
    "Environment and background": "background sounds of the environment",
    "Speech": "speech",
    "Music": "music",
    "Noise": "noise",
    "Animal": "animal sounds",
}

#: (preposition, place) of each scene: "In this park", "On this street with traffic".
SCENE_WORDS: dict[str, tuple[str, str]] = {
    "park": ("in", "park"),
    "public_square": ("in", "public square"),
    "street_traffic": ("on", "street with traffic"),
}

#: The quality across the circumplex from each one (for "neither pleasant nor annoying").
OPPOSITE: dict[str, str] = {
    "pleasant": "annoying", "annoying": "pleasant", "eventful": "uneventful", "uneventful": "eventful",
    "chaotic": "calm", "calm": "chaotic", "vibrant": "monotonous", "monotonous": "vibrant",
}

# Sentence shapes. {At}/{at}: "In this park" / "in this park"; {clear}/{faint}: lists of event words.
_BOTH = (
    "{At}, you hear {clear}, with {faint} now and then.",
    "{At}, the sound is dominated by {clear}, while {faint} can be heard from time to time.",
    "Standing {at}, you clearly hear {clear}, and now and then {faint}.",
)
_CLEAR_ONLY = (
    "{At}, you hear {clear}.",
    "{At}, the sound is dominated by {clear}.",
    "Standing {at}, you clearly hear {clear}.",
)
_FAINT_ONLY = (
    "{At}, you may hear {faint}.",
    "{At}, {faint} can be heard now and then.",
    "Standing {at}, you hear {faint} from time to time.",
)
_NONE = (
    "{At}, no sound event stands out.",
    "{At}, it is quiet, with no distinct sound events.",
    "Standing {at}, you hear no distinct sound events.",
)
# Feelings. {pos}: "pleasant and calm"; {neg}: "chaotic or annoying" (said with "not").
_POS_NEG = (
    "It feels {pos}, and {neg}.",
    "The atmosphere is {pos}; it is {neg}.",
    "Overall the soundscape feels {pos}, {neg}.",
)
_POS_ONLY = (
    "It feels {pos}.",
    "The atmosphere is {pos}.",
    "Overall the soundscape feels {pos}.",
)
_NEG_ONLY = (
    "It is {neg}.",
    "The atmosphere is {neg}.",
    "Overall the soundscape is {neg}.",
)


def join_words(words: Sequence[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def _pick(key: str, shapes: Sequence[str], salt: str) -> str:
    digest = hashlib.sha256(f"{salt}|{key}".encode()).digest()
    return shapes[int.from_bytes(digest[:4], "big") % len(shapes)]


def events_sentence(facts: PromptFacts, key: str) -> str:
    """The first sentence: scene, then the kept events (clear ones, then the others), no numbers."""
    prep, place = SCENE_WORDS[facts.scene]
    at = f"{prep} this {place}"
    clear = [EVENT_WORDS[e] for e, p in facts.events if p >= CLEAR]
    faint = [EVENT_WORDS[e] for e, p in facts.events if p < CLEAR]
    shapes = _BOTH if clear and faint else _CLEAR_ONLY if clear else _FAINT_ONLY if faint else _NONE
    text = _pick(key, shapes, "events").format(At=at[0].upper() + at[1:], at=at, clear=join_words(clear),
                                                 faint=join_words(faint))
    return text[0].upper() + text[1:]


def feelings_sentence(facts: PromptFacts, key: str) -> str:
    """The second sentence: what the kept qualities say (Agree: "calm", Strongly Agree: "very calm",
    Disagree: "not chaotic", Strongly Disagree: "not at all chaotic"; a lone Neutral quality:
    "neither pleasant nor annoying").
    """
    pos = [("very " if w == "Strongly Agree" else "") + q for q, w in facts.qualities if w.endswith("Agree")
           and not w.endswith("Disagree")]
    neg_plain = [q for q, w in facts.qualities if w == "Disagree"]
    neg_strong = [q for q, w in facts.qualities if w == "Strongly Disagree"]
    neutral = [q for q, w in facts.qualities if w == NEUTRAL]
    if neutral and not (pos or neg_plain or neg_strong):
        q = neutral[0]
        return f"It feels neither {q} nor {OPPOSITE[q]}."
    parts = []
    if neg_plain:
        parts.append("not " + join_words(neg_plain, "or"))
    if neg_strong:
        parts.append("not at all " + join_words(neg_strong, "or"))
    neg = " and ".join(parts)
    shapes = _POS_NEG if pos and neg else _POS_ONLY if pos else _NEG_ONLY
    return _pick(key, shapes, "feelings").format(pos=join_words(pos), neg=neg)


def template_caption(facts: PromptFacts, clip: str, window: str = "all", seed: int = 0) -> str:
    """A two-sentence caption of one clip (or window) from its prompt facts.

    Args:
        facts: :func:`soundaq.captions.prompt.prompt_facts` of the prediction.
        clip: the clip id (with ``window`` and ``seed``, it picks the sentence shapes: same inputs, same
            caption).
        window: the window label (``all`` for the whole clip).
        seed: the template's shape seed.

    Returns:
        e.g. "In this park, you hear animal sounds, human sounds, speech and birds, with sounds of
        things now and then. It feels pleasant and calm, and not chaotic or annoying."
    """
    key = f"{clip}|{window}|{seed}"
    return f"{events_sentence(facts, key)} {feelings_sentence(facts, key)}"
