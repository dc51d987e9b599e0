"""The release's prompt (soundaq.captions.prompt) and the template captioner, against hand-worked cases.

The release's sample clip (``LLM_scripts_for_generating_soundscape_caption/`` in Yuanbo2020/SoundSCaper:
``SoundAQnet_event_probability/fold_1_participant_00056_stimulus_13_event.txt`` and
``SoundAQnet_scene_ISOPl_ISOEv_PAQ8DAQs/..._scene_PAQ.txt``) is written below as numbers; the prompt
its script builds from them was worked out by hand from the script's f-string.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from soundaq.base.vocab import EVENTS, QUALITIES, SCENES
from soundaq.captions.prompt import (
    agreement,
    build_prompt,
    event_threshold,
    kept_events,
    kept_qualities,
    prompt_facts,
    prompt_sha256,
)
from soundaq.captions.template import EVENT_WORDS, SCENE_WORDS, template_caption

# -- the release's sample clip: 15 event probabilities (vocabulary order), scene, ISOP/ISOE, 8 PAQs --
SAMPLE_EVENTS = [5.695611471310257912e-04, 9.985634684562683105e-01, 3.673175582662224770e-03,
                 4.032098501920700073e-02, 3.349301591515541077e-02, 2.879400253295898438e-01,
                 4.966872036457061768e-01, 4.888364672660827637e-01, 9.953504800796508789e-01,
                 6.862598657608032227e-01, 7.989198565483093262e-01, 9.982454776763916016e-01,
                 1.640747338533401489e-01, 1.640405356884002686e-01, 9.998320341110229492e-01]
SAMPLE_SCENE = "park"
SAMPLE_PAQ = [3.9432704, 2.833214, 1.8872974, 3.217749, 2.985929, 3.9750671, 2.0713344, 2.7494504]

_LABELS = ("['Animal', 'Human sounds', 'Speech', 'Bird', 'Environment and background', "
           "'Outside, rural or natural', 'Sounds of things', 'Vehicle']")
_PROBS = "[1.0, 1.0, 1.0, 1.0, 0.8, 0.69, 0.5, 0.49]"
_FEELINGS = "['I Agree with pleasant', 'I Disagree with chaotic', 'I Agree with calm', 'I Disagree with annoying']"
# Worked by hand: threshold 0.4 (the largest probability, 0.9998, is above it); 8 events at or above it,
# sorted; PAQs -> Agree, Neutral, Disagree, Neutral, Neutral, Agree, Disagree, Neutral; the 4 neutral dropped.
SAMPLE_PROMPT = "\n".join([
    "",
    "    ",
    "        A  soundscape is defined as the an acoustic environment as perceived or experienced and/or understood by "
    "a person or people in context, accompanying physiological and psychological responses.",
    "    ",
    "        Consider this as a guided task to create an soundscape description:",
    "    ",
    "        As an expert in soundscape analysis, your task is to write a description based on provided affective "
    "responses and auditory events.",
    "    ",
    f"        To proceed, you are in this park, where you hear sound events, including {_LABELS}, each occurring with "
    f"a probability of {_PROBS}, ordered with the decreasing probability of being heard.",
    "    ",
    f"        step 1. According to the {_LABELS} and its corresponding probability of {_PROBS} happening in this park,",
    "          Identify which sound events will be present and describe the auditory scenario according to their "
    "occurrance,",
    f"          If the {_PROBS} is too low, you can ignore it, please do not mention the probability numbers {_PROBS}  "
    "directly in the description.",
    f"           Please do not add or relate any new sound events which is not belong to the {_LABELS} to the "
    "description. ",
    "           Please do not describe the sound events details, ",
    "           for example, vehicle sounds does not mean \"The constant hum of engines and occasional honking of "
    "horns\", please just write the sound events itself.",
    "    ",
    "    ",
    f"        step 2. Describe your feelings based on the ratings {_FEELINGS} on this soundscape:",
    "    ",
    "        Now, your task is to write a soundscape description within 200 tokens which summerize the steps above, "
    "please describe it in lay language, keeping it simple and concise.",
    "    ",
    "        example:",
    "        In this park,.....",
    "        ",
])


def _events(**named) -> dict[str, float]:
    probs = {e: 0.01 for e in EVENTS}
    probs.update({e.replace("_", " "): p for e, p in named.items()})
    return probs


def test_release_sample_clip_prompt_is_the_release_scripts():
    facts = prompt_facts(SAMPLE_SCENE, dict(zip(EVENTS, SAMPLE_EVENTS)), dict(zip(QUALITIES, SAMPLE_PAQ)))
    assert build_prompt(facts) == SAMPLE_PROMPT
    assert prompt_sha256(SAMPLE_PROMPT) == prompt_sha256(build_prompt(facts))
    assert facts.agreements == {"pleasant": "Agree", "eventful": "Neutral", "chaotic": "Disagree",
                                "vibrant": "Neutral", "uneventful": "Neutral", "calm": "Agree",
                                "annoying": "Disagree", "monotonous": "Neutral"}


def test_published_soundaqnet_outputs_of_the_sample_clip(sample_clip_dir):
    """The reference copy of SoundAQnet's published outputs (other PAQs than the release's sample file)."""
    pub = json.loads((sample_clip_dir / "soundaqnet_published_outputs.json").read_text())
    facts = prompt_facts(pub["scene"], dict(zip(pub["event_labels"], pub["event_probabilities"])),
                         dict(zip(pub["paq_order"], pub["paq"])))
    # 4.108 Agree, 3.084 Neutral, 2.012 Disagree, 3.406 Neutral, 2.814 Neutral, 4.002 Agree, 1.879 Disagree,
    # 2.463 Disagree
    assert facts.affective_responses == ["I Agree with pleasant", "I Disagree with chaotic", "I Agree with calm",
                                         "I Disagree with annoying", "I Disagree with monotonous"]
    assert facts.event_probability == [1.0, 1.0, 1.0, 1.0, 0.8, 0.69, 0.5, 0.49]


@pytest.mark.parametrize("probs, threshold, kept", [
    # some probability above 0.4: threshold 0.4, a probability equal to it is kept
    (dict(Bird=0.45, Speech=0.4, Traffic=0.39), 0.4, [("Bird", 0.45), ("Speech", 0.4)]),
    # nothing above 0.4, something above 0.3
    (dict(Wind=0.35, Water=0.3, Noise=0.29), 0.3, [("Wind", 0.35), ("Water", 0.3)]),
    # nothing above 0.3, something above 0.2
    (dict(Music=0.25, Silence=0.2, Animal=0.19), 0.2, [("Music", 0.25), ("Silence", 0.2)]),
    # exactly 0.4 is not *above* 0.4: the threshold falls to 0.3
    (dict(Bird=0.4, Speech=0.31, Wind=0.29), 0.3, [("Bird", 0.4), ("Speech", 0.31)]),
    # nothing above 0.2: no threshold, no events (the release fails here)
    (dict(Bird=0.2, Speech=0.15), None, []),
    # ties in probability: the name later in the alphabet first (sorted(..., reverse=True) of pairs)
    (dict(Animal=0.8, Bird=0.8, Speech=0.9), 0.4, [("Speech", 0.9), ("Bird", 0.8), ("Animal", 0.8)]),
    # numpy rounding of the release's numpy floats: 0.415 -> 0.42 and 0.405 -> 0.4 (Python's round: 0.41, 0.41)
    (dict(Speech=0.415, Bird=0.405, Water=0.9), 0.4, [("Water", 0.9), ("Speech", 0.42), ("Bird", 0.4)]),
])
def test_threshold_cascade_sort_and_rounding(probs, threshold, kept):
    full = _events(**probs)
    assert event_threshold(full.values()) == threshold
    assert kept_events(full) == kept


@pytest.mark.parametrize("rating, word", [
    (1.0, "Strongly Disagree"), (1.5, "Strongly Disagree"), (1.5000001, "Disagree"), (2.5, "Disagree"),
    (2.51, "Neutral"), (3.5, "Neutral"), (3.6, "Agree"), (4.5, "Agree"), (4.5000001, "Strongly Agree"),
    (5.0, "Strongly Agree"), (0.2, "Strongly Disagree"), (5.7, "Strongly Agree"),
])
def test_agreement_words(rating, word):
    assert agreement(rating) == word


def test_agreement_of_nan_is_an_error():
    with pytest.raises(ValueError):
        agreement(float("nan"))


def test_neutral_qualities_are_dropped_and_the_first_kept_when_all_are():
    ratings = dict(zip(QUALITIES, [3, 3, 1.2, 3, 3, 4.7, 3, 2]))
    assert kept_qualities(ratings) == [("chaotic", "Strongly Disagree"), ("calm", "Strongly Agree"),
                                       ("monotonous", "Disagree")]
    assert kept_qualities(dict(zip(QUALITIES, [3.0] * 8))) == [("pleasant", "Neutral")]


def test_prompt_lines_of_a_hand_worked_street_clip():
    facts = prompt_facts("street_traffic", _events(Traffic=0.93, Vehicle=0.614, Speech=0.35),
                         dict(zip(QUALITIES, [2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 4.2, 3.0])))
    lines = build_prompt(facts).split("\n")
    assert lines[8] == ("        To proceed, you are in this street_traffic, where you hear sound events, including "
                        "['Traffic', 'Vehicle'], each occurring with a probability of [0.93, 0.61], ordered with the "
                        "decreasing probability of being heard.")
    assert lines[18] == ("        step 2. Describe your feelings based on the ratings ['I Disagree with pleasant', "
                         "'I Agree with annoying'] on this soundscape:")
    assert lines[-2] == "        In this street_traffic,....."


def test_all_neutral_prompt_and_a_clip_without_events():
    facts = prompt_facts("public_square", _events(Bird=0.18), dict(zip(QUALITIES, [3.0] * 8)))
    prompt = build_prompt(facts)
    assert "['I Neutral with pleasant']" in prompt
    assert "no sound event is heard clearly" in prompt and "Bird" not in prompt
    assert "including" not in prompt and "[]" not in prompt
    assert prompt.endswith("        In this public_square,.....\n        ")


def test_prompt_facts_rejects_unknown_scene_and_missing_values():
    with pytest.raises(ValueError, match="unknown scene"):
        prompt_facts("beach", _events(), dict(zip(QUALITIES, [3.0] * 8)))
    with pytest.raises(ValueError, match="missing"):
        prompt_facts("park", {"Bird": 0.9}, dict(zip(QUALITIES, [3.0] * 8)))


# -- the template captioner ------------------------------------------------------------------------
def _mentioned(caption: str, scene: str) -> set[str]:
    _prep, place = SCENE_WORDS[scene]
    body = caption.replace(f"this {place}", "")
    return {e for e, word in EVENT_WORDS.items() if re.search(rf"\b{re.escape(word)}\b", body)}


def test_template_names_exactly_the_kept_events_without_numbers():
    rng = np.random.default_rng(5)
    shapes = set()
    for i in range(300):
        scene = SCENES[i % 3]
        probs = dict(zip(EVENTS, rng.beta(0.5, 1.3, len(EVENTS)) * rng.choice([1.0, 0.45, 0.32])))
        facts = prompt_facts(scene, probs, dict(zip(QUALITIES, rng.uniform(1, 5, 8))))
        text = template_caption(facts, f"c{i}", "all", seed=0)
        assert _mentioned(text, scene) == set(facts.event_labels), text
        assert not re.search(r"\d", text), text
        prep, place = SCENE_WORDS[scene]
        assert text.lower().startswith((f"{prep} this {place}", f"standing {prep} this {place}")), text
        assert text == template_caption(facts, f"c{i}", "all", seed=0)      # deterministic
        shapes.add(text.split(",")[0].split(" ")[0])
    assert shapes == {"In", "On", "Standing"}


def test_template_caption_of_the_release_sample_clip():
    facts = prompt_facts(SAMPLE_SCENE, dict(zip(EVENTS, SAMPLE_EVENTS)), dict(zip(QUALITIES, SAMPLE_PAQ)))
    texts = {template_caption(facts, "fold_1_participant_00056_stimulus_13", "all", seed) for seed in range(12)}
    assert len(texts) > 1                                      # the seed varies the sentence shapes
    for text in texts:
        events, feelings = text.split(". ", 1)
        assert "animal sounds, human sounds, speech, birds and background sounds of the environment" in events
        assert "rural or natural outdoor sounds, sounds of things and vehicles" in events   # the ones below 0.7
        assert "pleasant and calm" in feelings and "not chaotic or annoying" in feelings
        assert "eventful" not in feelings and "monotonous" not in feelings and "vibrant" not in feelings


@pytest.mark.parametrize("words, expected", [
    ({"pleasant": "Strongly Agree", "annoying": "Strongly Disagree"}, ("very pleasant", "not at all annoying")),
    ({"calm": "Agree", "chaotic": "Disagree", "monotonous": "Strongly Disagree"},
     ("calm", "not chaotic and not at all monotonous")),
])
def test_template_feelings_words(words, expected):
    word_to_rating = {"Strongly Disagree": 1.0, "Disagree": 2.0, "Agree": 4.0, "Strongly Agree": 5.0}
    ratings = {q: word_to_rating.get(words.get(q), 3.0) for q in QUALITIES}
    facts = prompt_facts("park", _events(Bird=0.9), ratings)
    text = template_caption(facts, "x")
    for piece in expected:
        assert piece in text


def test_template_of_a_neutral_clip_without_events():
    facts = prompt_facts("park", _events(), dict(zip(QUALITIES, [3.0] * 8)))
    text = template_caption(facts, "quiet")
    assert "no distinct sound events" in text or "no sound event stands out" in text
    assert text.endswith("It feels neither pleasant nor annoying.")
