"""The mix sampler of the embedded synthetic set: which sources sound in each clip, how loud, with what gaps.

Each clip of the embedded set (:mod:`soundaq.models_zoo.data.synthetic`) is a mix of procedurally
made sources drawn per acoustic scene (``SCENE_PRIORS``), brought into 50-80 dB SPL as a whole
and labelled with the ARAUS events the sources stand for (``SOURCE_EVENTS``, parents included as
:data:`soundaq.base.vocab.EVENT_IMPLIES` asks). Everything is a function of ``(seed, clip index)``:
:func:`clip_rng` gives each use of randomness (mix, audio per source, raters, noise floor) its own
``numpy.random.SeedSequence`` branch, so clips come out bit-identical in any order.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from soundaq.base.vocab import EVENT_IMPLIES, EVENTS

SAMPLE_RATE = 44100
DURATION_S = 30.0
N_SAMPLES = int(SAMPLE_RATE * DURATION_S)
#: Level range of a whole mix (dB SPL, energetic sum of the sources).
MIX_RANGE_DB = (50.0, 80.0)
#: Split of the clips of each scene, by position modulo 6: 4 training, 1 validation, 1 test
#: (validation and test come early in the cycle so that small sets have every split).
SPLIT_CYCLE = ("training", "validation", "training", "test", "training", "training")

#: Each source and the events it is labelled with (parents included, as EVENT_IMPLIES asks).
SOURCE_EVENTS: dict[str, tuple[str, ...]] = {
    "traffic": ("Traffic", "Sounds of things"),
    "vehicle": ("Vehicle", "Sounds of things"),
    "birdsong": ("Bird", "Animal"),
    "animal": ("Animal",),
    "people": ("Speech", "Human sounds"),
    "music": ("Music",),
    "water": ("Water", "Natural sounds"),
    "wind": ("Wind", "Natural sounds"),
    "rural": ("Outside, rural or natural", "Environment and background"),
    "noise": ("Noise", "Environment and background"),
}
SOURCES: tuple[str, ...] = tuple(SOURCE_EVENTS)
SILENCE_EVENT = "Silence"

#: Per scene: source -> (probability present, lowest level, highest level in dB SPL LAeq-like).
SCENE_PRIORS: dict[str, dict[str, tuple[float, float, float]]] = {
    "park": {
        "traffic": (0.30, 42, 56), "vehicle": (0.35, 48, 62), "birdsong": (0.75, 48, 66),
        "animal": (0.35, 45, 60), "people": (0.50, 48, 64), "music": (0.20, 48, 62),
        "water": (0.40, 48, 66), "wind": (0.15, 45, 62), "rural": (0.40, 42, 55), "noise": (0.30, 40, 52),
    },
    "public_square": {
        "traffic": (0.45, 48, 62), "vehicle": (0.50, 52, 68), "birdsong": (0.40, 45, 60),
        "animal": (0.25, 45, 60), "people": (0.85, 55, 70), "music": (0.60, 52, 68),
        "water": (0.40, 50, 68), "wind": (0.10, 45, 60), "rural": (0.08, 40, 50), "noise": (0.40, 45, 58),
    },
    "street_traffic": {
        "traffic": (0.90, 60, 76), "vehicle": (0.80, 60, 78), "birdsong": (0.25, 45, 58),
        "animal": (0.15, 45, 58), "people": (0.55, 52, 66), "music": (0.20, 50, 64),
        "water": (0.12, 48, 62), "wind": (0.12, 45, 62), "rural": (0.04, 40, 50), "noise": (0.65, 50, 64),
    },
}
#: Probability of silence gaps (all sources muted for a few seconds) per scene.
SILENCE_PROB = {"park": 0.12, "public_square": 0.05, "street_traffic": 0.04}


@dataclass(frozen=True)
class Mix:
    """Everything that defines one synthetic clip (its audio follows from it and the seed)."""

    index: int
    seed: int
    clip: str
    scene: str
    split: str
    levels: dict[str, float]               # present sources -> level in dB SPL (after the mix gain)
    gaps: tuple[tuple[float, float], ...]  # silence gaps (start s, end s)
    mix_db: float                          # energetic sum of the source levels

    @property
    def silence(self) -> bool:
        """Whether the clip has silence gaps (it is then labelled ``Silence``)."""
        return bool(self.gaps)

    def events(self) -> tuple[str, ...]:
        """The clip's event labels: those of its sources (parents included), in :data:`EVENTS` order."""
        present: set[str] = set()
        for src in self.levels:
            present.update(SOURCE_EVENTS[src])
        if self.silence:
            present.add(SILENCE_EVENT)
        return tuple(e for e in EVENTS if e in present)


def clip_id(index: int) -> str:
    """The clip id of clip ``index`` (``synthetic_0042``), used for file names and label rows."""
    return f"synthetic_{index:04d}"


def scene_and_split(index: int) -> tuple[str, str]:
    """Scenes cycle over clip indices; within a scene, positions cycle through :data:`SPLIT_CYCLE`."""
    scene = ("park", "public_square", "street_traffic")[index % 3]
    split = SPLIT_CYCLE[(index // 3) % len(SPLIT_CYCLE)]
    return scene, split


def clip_rng(seed: int, index: int, branch: int, *more: int) -> np.random.Generator:
    """The random generator of one use of randomness: ``SeedSequence([seed, index, branch, *more])``.

    Branches in use: 0 the mix, 1 the audio (``more`` = the source's position in :data:`SOURCES`),
    2 the raters, 3 the noise floor; :mod:`.synthetic_araus` uses its own index ranges.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, index, branch, *more]))


def energy_sum(levels: Iterable[float]) -> float:
    """Energetic sum of levels in dB: ``10 log10(sum 10^(L/10))``; ``-inf`` for none."""
    values = list(levels)
    return 10.0 * math.log10(sum(10.0 ** (lv / 10.0) for lv in values)) if values else -math.inf


def draw_mix(seed: int, index: int) -> Mix:
    """Draw the sources, levels and silence gaps of clip ``index`` (cheap; no audio)."""
    scene, split = scene_and_split(index)
    rng = clip_rng(seed, index, 0)
    priors = SCENE_PRIORS[scene]
    levels: dict[str, float] = {}
    for src in SOURCES:
        prob, lo, hi = priors[src]
        draw_present, draw_level = rng.random(), rng.uniform(lo, hi)
        if draw_present < prob:
            levels[src] = float(draw_level)
    if not levels:  # every clip has at least one source: the scene's most likely one
        src = max(priors, key=lambda s: priors[s][0])
        levels[src] = float(rng.uniform(priors[src][1], priors[src][2]))
    total = energy_sum(levels.values())
    lo, hi = MIX_RANGE_DB
    gain = 0.0
    if total > hi:
        gain = hi - rng.uniform(0.0, 3.0) - total
    elif total < lo:
        gain = lo + rng.uniform(0.0, 3.0) - total
    levels = {s: round(v + gain, 3) for s, v in levels.items()}
    gaps: list[tuple[float, float]] = []
    if rng.random() < SILENCE_PROB[scene]:
        for _ in range(int(rng.integers(1, 4))):
            start = float(rng.uniform(1.0, DURATION_S - 6.0))
            gaps.append((round(start, 3), round(start + float(rng.uniform(2.5, 5.0)), 3)))
        gaps.sort()
    return Mix(index, seed, clip_id(index), scene, split, levels, tuple(gaps), round(energy_sum(levels.values()), 3))


def check_hierarchy() -> None:
    """Check that every source's events keep the label hierarchy of :data:`EVENT_IMPLIES`.

    Raises:
        AssertionError: a source labels a child event without its parents (a bug in
            :data:`SOURCE_EVENTS`, not a user error).
    """
    for src, events in SOURCE_EVENTS.items():
        for child, parents in EVENT_IMPLIES.items():
            if child in events and not set(parents) <= set(events):
                raise AssertionError(f"source {src} labels {child} without {parents}")
