"""The rating rule of the embedded synthetic set: the eight affective qualities of a mix, and its raters.

A clip's expected rating of each quality follows from its latent pleasantness P and eventfulness
E (weighted source saliences plus a loudness term from N5) projected onto the quality's direction
on the ISO/TS 12913-3 circumplex (:func:`aq_expectation`); its label is the mean of
:data:`RATERS` simulated integer ratings around it (:func:`simulate_ratings`). docs/data.md
describes the rule and how close it comes to the real ARAUS ratings.
"""
from __future__ import annotations

import math

import numpy as np

from soundaq.base.vocab import QUALITIES
from soundaq.models_zoo.data.synthetic_mix import SOURCES, Mix, clip_rng

#: Simulated raters per clip; a label is the mean of their integer 1-5 ratings.
RATERS = 5
RATER_BIAS_SD = 0.4
RATER_NOISE_SD = 0.9

#: Angle of each quality on the ISO/TS 12913-3 circumplex (degrees from "pleasant" towards "eventful").
QUALITY_ANGLE = {"pleasant": 0, "vibrant": 45, "eventful": 90, "chaotic": 135, "annoying": 180,
                 "monotonous": 225, "uneventful": 270, "calm": 315}
#: Weights of the AQ rule: latent pleasantness P and eventfulness E from source saliences.
RULE_P_WEIGHTS = {"birdsong": 0.9, "water": 0.7, "music": 0.5, "rural": 0.6, "wind": 0.1, "animal": 0.2,
                  "people": 0.0, "traffic": -1.0, "vehicle": -0.8, "noise": -0.8}
RULE_E_WEIGHTS = {"people": 1.0, "vehicle": 0.6, "music": 0.6, "birdsong": 0.3, "animal": 0.3,
                  "traffic": 0.2, "water": 0.0, "wind": 0.1, "rural": -0.2, "noise": -0.1}
RULE_P_OFFSET, RULE_P_LOUD = 0.75, -0.9
RULE_E_OFFSET, RULE_E_LOUD, RULE_E_SILENCE = -1.35, 0.8, -0.6
RULE_SCALE = 1.7  # rating points per unit of P or E along a quality's direction


def n5(loudness) -> float:
    """N5: the loudness exceeded 5 % of the time (95th percentile of the time series, sone)."""
    return float(np.percentile(np.asarray(loudness, dtype=np.float64).reshape(-1), 95))


def salience(level_db: float | None) -> float:
    """How prominent a source is: 0 when absent or at 40 dB SPL, 1 at 70 dB SPL and above."""
    if level_db is None or not math.isfinite(level_db):
        return 0.0
    return min(max((level_db - 40.0) / 30.0, 0.0), 1.0)


def loudness_term(n5_sone: float) -> float:
    """0 at N5 = 4 sone, 1 at N5 = 64 sone (log2 scale), clipped."""
    return min(max((math.log2(max(n5_sone, 1e-3)) - 2.0) / 4.0, 0.0), 1.0)


def latent_pe(levels: dict[str, float], silence: bool, n5_sone: float) -> tuple[float, float]:
    """The rule's latent pleasantness P and eventfulness E of a mix."""
    sal = {s: salience(levels.get(s)) for s in SOURCES}
    loud = loudness_term(n5_sone)
    p = RULE_P_OFFSET + sum(RULE_P_WEIGHTS[s] * sal[s] for s in SOURCES) + RULE_P_LOUD * loud
    e = RULE_E_OFFSET + sum(RULE_E_WEIGHTS[s] * sal[s] for s in SOURCES) + RULE_E_LOUD * loud
    if silence:
        e += RULE_E_SILENCE
    return p, e


def aq_expectation(levels: dict[str, float], silence: bool, n5_sone: float) -> dict[str, float]:
    """Noise-free rating of each quality: ``3 + 1.7 (P cos a + E sin a)`` clipped to 1-5.

    ``a`` is the quality's angle on the circumplex (pleasant 0, vibrant 45, eventful 90, chaotic
    135, annoying 180, monotonous 225, uneventful 270, calm 315 degrees).
    """
    p, e = latent_pe(levels, silence, n5_sone)
    out = {}
    for q in QUALITIES:
        a = math.radians(QUALITY_ANGLE[q])
        out[q] = min(max(3.0 + RULE_SCALE * (p * math.cos(a) + e * math.sin(a)), 1.0), 5.0)
    return out


def simulate_ratings(mix: Mix, expected: dict[str, float]) -> dict[str, float]:
    """Mean of :data:`RATERS` integer ratings: each rater adds a personal bias and per-item noise."""
    rng = clip_rng(mix.seed, mix.index, 2)
    bias = rng.normal(0.0, RATER_BIAS_SD, size=RATERS)
    noise = rng.normal(0.0, RATER_NOISE_SD, size=(RATERS, len(QUALITIES)))
    mu = np.array([expected[q] for q in QUALITIES])
    ratings = np.clip(np.rint(mu[None, :] + bias[:, None] + noise), 1, 5)
    return {q: float(v) for q, v in zip(QUALITIES, ratings.mean(axis=0))}
