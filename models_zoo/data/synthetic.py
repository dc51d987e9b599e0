"""The embedded default dataset: deterministic synthetic 30-s soundscapes with ARAUS-style labels.

Nothing here is real data. Every clip is a mix of procedurally made sources (traffic, vehicle
pass-bys, birdsong, other animals, speech-like babble with footsteps, music-like tones, water,
wind, rural rustle, urban background noise, silence gaps), drawn per acoustic scene, mixed at
calibrated sound pressure levels (50-80 dB SPL), labelled with the 15 events the sources stand
for (keeping the label hierarchy of the real annotation) and rated on the 8 affective qualities
by a documented rule of the mix plus simulated rater noise (see :func:`aq_expectation` and
docs/data.md).

Everything is a function of ``(seed, clip index)``: the mix parameters, the audio and the rater
noise each come from their own ``numpy.random.SeedSequence`` branch, so clips can be generated in
any order, in parallel, or resumed, and always come out bit-identical.

Layout of a prepared set (``prepare_embedded``)::

    <cache>/embedded/<key>/
        manifest.json                  provenance; written last (its presence = complete)
        labels/<split>_set_*.txt       the 15 ARAUS-style label files (read by labels.read_split)
        features/Feature_log_mel/<clip>.npy            float32 [3001, 64]
        features/Feature_loudness_ISO532_1/<clip>.npy  float32 [15000, 1] (sone)
        mixes.csv                      per clip: scene, split, source levels, LAeq, N5, rule output
        norm_stats.json                normalisation statistics of the training split
        audio/<clip>.flac              only with ``with_audio=True``
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft

from soundaq.base.artifacts import read_record, set_aside
from soundaq.base.errors import UserError, first_line
from soundaq.base.fileio import atomic_path, atomic_write_json, atomic_write_text
from soundaq.base.vocab import EVENT_IMPLIES, EVENTS, QUALITIES, iso_coordinates

#: Bump when anything that changes the generated clips or labels changes (part of the cache key).
GENERATOR_VERSION = 1
SAMPLE_RATE = 44100
DURATION_S = 30.0
N_SAMPLES = int(SAMPLE_RATE * DURATION_S)
P_REF = 2e-5
#: Digital calibration of the synthetic audio: a signal of RMS 1.0 is 100 dB SPL (2 Pa).
PASCAL_PER_UNIT = 2.0
#: Self-noise floor under every mix (dB SPL, pink); not labelled.
NOISE_FLOOR_DB = 25.0
#: Level range of a whole mix (dB SPL, energetic sum of the sources).
MIX_RANGE_DB = (50.0, 80.0)
DEFAULT_CLIPS = 360
#: Fewest clips that give every scene a training, validation and test clip.
MIN_CLIPS = 12
DEFAULT_SEED = 0
#: Simulated raters per clip; a label is the mean of their integer 1-5 ratings.
RATERS = 5
RATER_BIAS_SD = 0.4
RATER_NOISE_SD = 0.9
#: Split of the clips of each scene, by position modulo 6: 4 training, 1 validation, 1 test
#: (validation and test come early in the cycle so that small sets have every split).
SPLIT_CYCLE = ("training", "validation", "training", "test", "training", "training")
FEATURE_SUBDIRS = ("Feature_log_mel", "Feature_loudness_ISO532_1")
SYNTHETIC_LABEL = "synthetic"

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


class SyntheticError(UserError):
    """The embedded set cannot be prepared (message names the folder and the fix)."""


# ----------------------------------------------------------------------------------------- mixes
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
        return bool(self.gaps)

    def events(self) -> tuple[str, ...]:
        present = set()
        for src in self.levels:
            present.update(SOURCE_EVENTS[src])
        if self.silence:
            present.add(SILENCE_EVENT)
        return tuple(e for e in EVENTS if e in present)


def clip_id(index: int) -> str:
    return f"synthetic_{index:04d}"


def scene_and_split(index: int) -> tuple[str, str]:
    """Scenes cycle over clip indices; within a scene, positions cycle through :data:`SPLIT_CYCLE`."""
    scene = ("park", "public_square", "street_traffic")[index % 3]
    split = SPLIT_CYCLE[(index // 3) % len(SPLIT_CYCLE)]
    return scene, split


def _rng(seed: int, index: int, branch: int, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index, branch, *more]))


def _energy_sum(levels) -> float:
    levels = list(levels)
    return 10.0 * math.log10(sum(10.0 ** (lv / 10.0) for lv in levels)) if levels else -math.inf


def draw_mix(seed: int, index: int) -> Mix:
    """Draw the sources, levels and silence gaps of clip ``index`` (cheap; no audio)."""
    scene, split = scene_and_split(index)
    rng = _rng(seed, index, 0)
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
    total = _energy_sum(levels.values())
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
    return Mix(index, seed, clip_id(index), scene, split, levels, tuple(gaps), round(_energy_sum(levels.values()), 3))


# ------------------------------------------------------------------------------------- the AQ rule
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
    rng = _rng(mix.seed, mix.index, 2)
    bias = rng.normal(0.0, RATER_BIAS_SD, size=RATERS)
    noise = rng.normal(0.0, RATER_NOISE_SD, size=(RATERS, len(QUALITIES)))
    mu = np.array([expected[q] for q in QUALITIES])
    ratings = np.clip(np.rint(mu[None, :] + bias[:, None] + noise), 1, 5)
    return {q: float(v) for q, v in zip(QUALITIES, ratings.mean(axis=0))}


# ------------------------------------------------------------------------------------------ audio
_SEGMENT = 1 << 18  # noise is shaped on 5.9-s segments and tiled (cheap FFTs)


def _time(n: int = N_SAMPLES, sr: int = SAMPLE_RATE) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / sr


def _shaped_noise(rng: np.random.Generator, n: int, sr: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Gaussian noise with amplitude response ``gain(f)``: one shaped segment, tiled with a random offset."""
    f = np.fft.rfftfreq(_SEGMENT, 1.0 / sr)
    spec = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) * gain(f)
    spec[0] = 0.0
    seg = np.fft.irfft(spec, _SEGMENT)
    seg /= np.sqrt(np.mean(seg ** 2)) + 1e-12
    reps = -(-n // _SEGMENT) + 1
    start = int(rng.integers(0, _SEGMENT))
    return np.tile(seg, reps)[start:start + n]


def _wander(rng: np.random.Generator, t: np.ndarray, rate_hz: float) -> np.ndarray:
    """A slow random curve (unit-variance knots every 1/rate s, linearly interpolated)."""
    knots_t = np.arange(0.0, t[-1] + 2.0 / rate_hz, 1.0 / rate_hz)
    return np.interp(t, knots_t, rng.standard_normal(knots_t.size))


def _highpass(f, fc, order=2):
    return (f / fc) ** order / np.sqrt(1.0 + (f / fc) ** (2 * order))


def _lowpass(f, fc, order=1):
    return 1.0 / np.sqrt(1.0 + (f / fc) ** (2 * order))


def _place(out: np.ndarray, start: int, burst: np.ndarray) -> None:
    """Add ``burst`` into ``out`` from sample ``start`` (cut at the ends)."""
    if start >= out.size or start + burst.size <= 0:
        return
    lo = max(start, 0)
    hi = min(start + burst.size, out.size)
    out[lo:hi] += burst[lo - start:hi - start]


def _tone(freq_hz: np.ndarray | float, n: int, sr: int, phase0: float = 0.0) -> np.ndarray:
    """Sine with an instantaneous frequency (array or constant); phase kept wrapped for precision."""
    if np.isscalar(freq_hz):
        phase = phase0 + 2 * np.pi * float(freq_hz) * np.arange(n) / sr
    else:
        phase = phase0 + 2 * np.pi * np.cumsum(freq_hz) / sr
    return np.sin(np.mod(phase, 2 * np.pi))


def _harmonic_sum(phase: np.ndarray, amps) -> np.ndarray:
    """``sum_h amps[h-1] sin(h phase)`` by the Chebyshev recursion (two sines, whatever the count)."""
    phase = np.mod(phase, 2 * np.pi)
    cur = np.sin(phase)
    two_cos = 2.0 * np.cos(phase)
    total = amps[0] * cur
    prev = np.zeros_like(cur)
    for a in amps[1:]:
        prev, cur = cur, two_cos * cur - prev
        total += a * cur
    return total


def _src_traffic(rng, t, sr):
    x = _shaped_noise(rng, t.size, sr, lambda f: _highpass(f, 30.0) * (250.0 / (250.0 + f)) * _lowpass(f, 5000.0))
    return x * 10 ** (3.0 * _wander(rng, t, 0.15) / 20.0)


def _src_vehicle(rng, t, sr):
    n = t.size
    tyre = _shaped_noise(rng, n, sr, lambda f: _highpass(f, 200.0) * _lowpass(f, 1500.0, 2))
    out = np.zeros(n)
    for _ in range(int(rng.integers(2, 7))):
        t0, sigma = rng.uniform(1.0, DURATION_S - 1.0), rng.uniform(1.0, 2.5)
        f0, speed = rng.uniform(30.0, 70.0), rng.uniform(8.0, 20.0)
        lo, hi = max(int((t0 - 3 * sigma) * sr), 0), min(int((t0 + 3 * sigma) * sr), n)
        tw = t[lo:hi] - t0
        env = np.exp(-0.5 * (tw / sigma) ** 2)
        doppler = 1.0 / (1.0 + (speed / 343.0) * np.tanh(tw / (0.5 * sigma)))
        phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * f0 * np.cumsum(doppler) / sr
        engine = _harmonic_sum(phase, (1.0, 0.5, 0.33, 0.25))
        out[lo:hi] += env * (0.6 * engine + tyre[lo:hi])
    return out


def _src_birdsong(rng, t, sr):
    out = np.zeros(t.size)
    for _ in range(int(rng.integers(1, 4))):
        base, gain = rng.uniform(2000.0, 5000.0), rng.uniform(0.5, 1.0)
        when = rng.uniform(0.0, 2.0)
        while when < DURATION_S:
            pos = when
            for _ in range(int(rng.integers(3, 11))):
                dur = rng.uniform(0.04, 0.15)
                m = int(dur * sr)
                u = np.linspace(0.0, 1.0, m)
                f_start, f_end = base * (1 + rng.uniform(-0.3, 0.4)), base * (1 + rng.uniform(-0.3, 0.4))
                freq = (f_start + (f_end - f_start) * u) * (1 + 0.05 * np.sin(2 * np.pi * 30.0 * u * dur))
                _place(out, int(pos * sr), gain * np.sin(np.pi * u) ** 2 * _tone(freq, m, sr))
                pos += dur + rng.uniform(0.03, 0.08)
            when = pos + rng.exponential(2.5) + 0.5
    return out


def _src_animal(rng, t, sr):
    n = t.size
    if rng.random() < 0.5:  # insects: pulsed high tone, chirping on and off
        carrier = _tone(rng.uniform(4000.0, 6000.0), n, sr)
        pulses = np.maximum(np.sin(2 * np.pi * rng.uniform(15.0, 30.0) * t), 0.0) ** 4
        gate = np.clip(_wander(rng, t, 1.5) + 0.8, 0.0, 1.0)
        return carrier * pulses * gate
    out = np.zeros(n)  # a dog: harmonic barks with falling pitch
    for _ in range(int(rng.integers(4, 13))):
        dur = rng.uniform(0.15, 0.3)
        m = int(dur * sr)
        u = np.linspace(0.0, 1.0, m)
        f0 = rng.uniform(400.0, 800.0) * (1.0 - 0.25 * u)
        bark = _harmonic_sum(2 * np.pi * np.cumsum(f0) / sr, (1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6)) \
            + 0.3 * rng.standard_normal(m)
        _place(out, int(rng.uniform(0.0, DURATION_S) * sr), bark * np.exp(-4.0 * u) * np.minimum(u * 20, 1.0))
    return out


def _src_people(rng, t, sr):
    n = t.size
    voices = np.zeros(n)
    for _ in range(int(rng.integers(1, 6))):
        f0 = (rng.uniform(90.0, 140.0) if rng.random() < 0.5 else rng.uniform(170.0, 260.0))
        contour = f0 * (1.0 + 0.12 * _wander(rng, t, 2.0))
        phase = np.cumsum(contour) / sr
        saw = 2.0 * np.mod(phase, 1.0) - 1.0
        syllables = np.sin(np.pi * np.mod(rng.uniform(3.0, 6.0) * t + rng.uniform(), 1.0)) ** 2
        utterance = np.clip(2.0 * (_wander(rng, t, 0.5) + 0.3), 0.0, 1.0)
        voices += rng.uniform(0.4, 1.0) * saw * syllables * utterance
    # one formant-like shaping for the babble: a speech band with peaks near 500, 1500 and 2500 Hz
    f = np.fft.rfftfreq(n, 1.0 / sr)
    shape = _highpass(f, 150.0) * _lowpass(f, 3500.0, 2) * (
        1.0 + sum(2.0 * np.exp(-0.5 * ((f - fc) / 150.0) ** 2) for fc in (500.0, 1500.0, 2500.0)))
    voices = scipy.fft.irfft(scipy.fft.rfft(voices.astype(np.float32)) * shape.astype(np.float32), n)
    voices /= np.sqrt(np.mean(voices ** 2)) + 1e-12
    hiss = _shaped_noise(rng, n, sr, lambda f: _highpass(f, 3000.0) * _lowpass(f, 8000.0))
    fricatives = np.clip(_wander(rng, t, 4.0) - 1.0, 0.0, None)
    out = voices + 0.5 * hiss * fricatives
    if rng.random() < 0.5:  # footsteps
        period = rng.uniform(0.45, 0.6)
        m = int(0.03 * sr)
        start = rng.uniform(0.0, 10.0)
        for k in range(int(rng.uniform(10.0, 20.0) / period)):
            burst = np.convolve(rng.standard_normal(m), np.ones(8) / 8, mode="same") * np.exp(-np.arange(m) / (0.006 * sr))
            _place(out, int((start + k * period + rng.normal(0, 0.01)) * sr), 3.0 * burst)
    return out


def _src_music(rng, t, sr):
    out = np.zeros(t.size)
    beat = 60.0 / rng.uniform(80.0, 140.0)
    root = rng.uniform(55.0, 67.0)
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16])
    degree, when = 2, 0.0
    decay = rng.uniform(0.3, 0.8)
    while when < DURATION_S:
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, scale.size - 1))
        dur = beat * rng.choice([0.5, 1.0, 1.0, 2.0])
        freq = 440.0 * 2 ** ((root + scale[degree] - 69) / 12)
        m = int(min(dur * 1.5, DURATION_S - when) * sr)
        if m > 0:
            u = np.arange(m) / sr
            env = np.minimum(u / 0.01, 1.0) * np.exp(-u / decay)
            note = _harmonic_sum(2 * np.pi * freq * u, (1.0, 0.35, 0.19, 0.125))
            _place(out, int(when * sr), env * note)
            if (when / beat) % 4 < 1e-6 or rng.random() < 0.15:  # a bass note on bar starts
                bass = _harmonic_sum(2 * np.pi * (freq / 4) * u, (1.0, 0.4))
                _place(out, int(when * sr), 0.8 * env * bass)
        when += dur
    return out


def _src_water(rng, t, sr):
    x = _shaped_noise(rng, t.size, sr, lambda f: _highpass(f, 300.0) * np.sqrt(f / 1500.0 + 1e-9) * _lowpass(f, 3000.0, 2))
    bubbles = np.clip(1.0 + 0.6 * _wander(rng, t, 25.0), 0.1, None)
    return x * bubbles


def _src_wind(rng, t, sr):
    x = _shaped_noise(rng, t.size, sr, lambda f: _highpass(f, 15.0) * _lowpass(f, 120.0, 1))
    return x * 10 ** (8.0 * _wander(rng, t, 0.2) / 20.0)


def _src_rural(rng, t, sr):
    x = _shaped_noise(rng, t.size, sr, lambda f: _highpass(f, 1000.0) * _lowpass(f, 8000.0))
    return x * 10 ** (5.0 * _wander(rng, t, 0.5) / 20.0) * np.clip(1.0 + 0.5 * _wander(rng, t, 8.0), 0.0, None)


def _src_noise(rng, t, sr):
    pink = _shaped_noise(rng, t.size, sr, lambda f: _highpass(f, 20.0) / np.sqrt(np.maximum(f, 1.0)) * _lowpass(f, 10000.0))
    mains = rng.choice([50.0, 60.0])
    hum = _harmonic_sum(2 * np.pi * 2 * mains * t + rng.uniform(0, 2 * np.pi), (1.0, 0.5, 0.33))
    return pink + 0.5 * hum


#: Each source's renderer and the decimation of the rate it is drawn at (bandwidth allowing):
#: sources of one rate are summed, then brought to :data:`SAMPLE_RATE` by one FFT resampling.
RENDERERS: dict[str, tuple[Callable, int]] = {
    "traffic": (_src_traffic, 2), "vehicle": (_src_vehicle, 4), "birdsong": (_src_birdsong, 1),
    "animal": (_src_animal, 1), "people": (_src_people, 4), "music": (_src_music, 4),
    "water": (_src_water, 2), "wind": (_src_wind, 4), "rural": (_src_rural, 1), "noise": (_src_noise, 2),
}


def _fft_upsample(x: np.ndarray, n: int) -> np.ndarray:
    """Band-limited resampling of ``x`` to ``n`` samples (zero-padded spectrum; float32 for speed)."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == n:
        return x
    return scipy.fft.irfft(scipy.fft.rfft(x), n) * np.float32(n / x.size)


def _silence_gate(t: np.ndarray, gaps) -> np.ndarray:
    gate = np.ones(t.size)
    floor = 10 ** (-40.0 / 20.0)
    for start, end in gaps:
        ramp = 0.3
        g = np.interp(t, [start - ramp, start, end, end + ramp], [1.0, floor, floor, 1.0])
        gate = np.minimum(gate, g)
    return gate


def render(mix: Mix) -> np.ndarray:
    """The mix as mono float32 samples at :data:`SAMPLE_RATE`, in units where 1.0 RMS is 100 dB SPL."""
    groups: dict[int, np.ndarray] = {}
    for k, src in enumerate(SOURCES):
        if src not in mix.levels:
            continue
        fn, decim = RENDERERS[src]
        t = _time(N_SAMPLES // decim, SAMPLE_RATE // decim)
        sig = fn(_rng(mix.seed, mix.index, 1, k), t, SAMPLE_RATE / decim)
        sig *= (P_REF * 10 ** (mix.levels[src] / 20.0)) / (np.sqrt(np.mean(sig ** 2)) + 1e-30)
        groups[decim] = groups[decim] + sig if decim in groups else sig
    pascals = np.zeros(N_SAMPLES, dtype=np.float32)
    for part in groups.values():
        pascals += _fft_upsample(part, N_SAMPLES)
    if mix.gaps:
        pascals *= _silence_gate(_time(), mix.gaps).astype(np.float32)
    floor = _shaped_noise(_rng(mix.seed, mix.index, 3), N_SAMPLES, SAMPLE_RATE,
                          lambda f: _highpass(f, 20.0) / np.sqrt(np.maximum(f, 1.0)))
    pascals += (floor * (P_REF * 10 ** (NOISE_FLOOR_DB / 20.0))).astype(np.float32)
    pascals /= np.float32(PASCAL_PER_UNIT)
    return pascals


def level_db_spl(samples: np.ndarray) -> float:
    """Equivalent continuous level (unweighted) of synthetic samples in dB SPL."""
    rms = float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2))) * PASCAL_PER_UNIT
    return 20.0 * math.log10(max(rms, 1e-12) / P_REF)


def n5(loudness) -> float:
    """N5: the loudness exceeded 5 % of the time (95th percentile of the time series, sone)."""
    return float(np.percentile(np.asarray(loudness, dtype=np.float64).reshape(-1), 95))


# ------------------------------------------------------------------------------------ preparation
def calibration():
    """The calibration the loudness feature uses for synthetic audio (RMS 1.0 = 100 dB SPL)."""
    from soundaq.models_zoo.features import Calibration

    return Calibration(PASCAL_PER_UNIT, source="soundaq synthetic audio (RMS 1.0 = 100 dB SPL)")


def data_label(n_clips: int = DEFAULT_CLIPS, seed: int = DEFAULT_SEED) -> str:
    """What every table, figure and report made from the embedded set writes in its data column."""
    return f"synthetic (soundaq embedded set v{GENERATOR_VERSION}, {n_clips} clips, seed {seed})"


def embedded_key(n_clips: int, seed: int) -> str:
    """Folder name of a prepared set: generator version, size, seed and a digest of the feature parameters."""
    import hashlib

    from soundaq.models_zoo.features import feature_parameters

    params = json.dumps(feature_parameters(backend="fast", calibration=calibration()), sort_keys=True)
    digest = hashlib.sha256(params.encode()).hexdigest()[:10]
    return f"v{GENERATOR_VERSION}-n{n_clips}-seed{seed}-f{digest}"


@dataclass
class EmbeddedSet:
    """A prepared embedded set on disk."""

    root: Path
    manifest: dict = field(default_factory=dict)

    @property
    def labels_dir(self) -> Path:
        return self.root / "labels"

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    @property
    def norm_stats_path(self) -> Path:
        return self.root / "norm_stats.json"

    @property
    def mixes_path(self) -> Path:
        return self.root / "mixes.csv"

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    def mixes(self):
        import pandas as pd

        return pd.read_csv(self.mixes_path)


def _feature_paths(root: Path, clip: str) -> tuple[Path, Path]:
    return (root / "features" / FEATURE_SUBDIRS[0] / f"{clip}.npy",
            root / "features" / FEATURE_SUBDIRS[1] / f"{clip}.npy")


def _features_ok(root: Path, clip: str) -> bool:
    """Both feature files exist with the right shape and size (a truncated file fails)."""
    for path, shape in zip(_feature_paths(root, clip), ((3001, 64), (15000, 1))):
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return False
        if tuple(arr.shape) != shape or arr.dtype != np.float32:
            return False
    return True


def _derived_files_problem(root: Path) -> tuple[Path, str] | None:
    """A damaged file among those a complete set derives from its clips (statistics, label files,
    mixes table): ``(path, why)``, or None. The per-clip features are checked when generation resumes.
    """
    from soundaq.models_zoo.data.normalisation import load_norm_stats

    stats = root / "norm_stats.json"
    try:
        load_norm_stats(stats)
    except UserError as err:
        return stats, first_line(err)
    for split in ("training", "validation", "test"):
        path = root / "labels" / f"{split}_set_audio_file_ids.txt"
        if not path.is_file() or path.stat().st_size == 0:
            return path, "missing or empty"
    mixes = root / "mixes.csv"
    if not mixes.is_file() or mixes.stat().st_size == 0:
        return mixes, "missing or empty"
    return None


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr, dtype=np.float32))


def make_clip(root: Path | str, mix: Mix, with_audio: bool = False) -> dict:
    """Render one clip, compute its features and write them (and optionally its audio) atomically."""
    from soundaq.models_zoo.features import clip_features

    root = Path(root)
    samples = render(mix)
    mel, loud = clip_features(samples, SAMPLE_RATE, calibration())
    mel_path, loud_path = _feature_paths(root, mix.clip)
    _save_npy(mel_path, mel[0])
    _save_npy(loud_path, loud[0])
    if with_audio:
        write_audio(root / "audio" / f"{mix.clip}.flac", samples)
    return {"clip": mix.clip, "n5": n5(loud[0]), "laeq_measured": level_db_spl(samples)}


def write_audio(path: Path, samples: np.ndarray) -> None:
    """24-bit FLAC at :data:`SAMPLE_RATE` (the calibration above applies to it)."""
    import soundfile as sf

    if float(np.max(np.abs(samples))) >= 1.0:
        raise SyntheticError(f"{path}: synthetic mix clips at full scale; fix: report this as a generator bug")
    with atomic_path(path, suffix=".flac") as tmp:
        sf.write(str(tmp), samples, SAMPLE_RATE, subtype="PCM_24", format="FLAC")


def _make_clip_job(job: tuple[str, Mix, bool]) -> dict:
    root, mix, with_audio = job
    return make_clip(root, mix, with_audio)


def _fmt(v: float) -> str:
    return repr(float(v))


def write_label_files(folder: Path, mixes: list[Mix], ratings: dict[str, dict[str, float]]) -> None:
    """The 15 ARAUS-style label files (five per split), one line per clip in index order."""
    for split in ("training", "validation", "test"):
        part = [m for m in mixes if m.split == split]
        if not part:
            continue
        files = {
            "audio_file_ids": [m.clip for m in part],
            "acoustic_scene_labels": [m.scene for m in part],
            "audio_event_labels": ["\t".join(m.events()) for m in part],
            "PAQ_8D_AQs": [" ".join(_fmt(ratings[m.clip][q]) for q in QUALITIES) for m in part],
            "ISOP_ISOE": [" ".join(_fmt(v) for v in iso_coordinates(*(ratings[m.clip][q] for q in QUALITIES)))
                          for m in part],
        }
        for role, lines in files.items():
            atomic_write_text(folder / f"{split}_set_{role}.txt", "\n".join(lines) + "\n")


def _check_hierarchy() -> None:
    for src, events in SOURCE_EVENTS.items():
        for child, parents in EVENT_IMPLIES.items():
            if child in events and not set(parents) <= set(events):
                raise AssertionError(f"source {src} labels {child} without {parents}")


def prepare_embedded(cache_dir: Path | str | None = None, n_clips: int = DEFAULT_CLIPS, seed: int = DEFAULT_SEED,
                     workers: int = 2, with_audio: bool = False, progress: bool = True,
                     force: bool = False) -> EmbeddedSet:
    """Generate the embedded set into ``<cache>/embedded/<key>`` unless it is already complete there.

    Resumable: clips whose features are already on disk are not generated again. The manifest is
    written last, so an interrupted run is finished by the next call.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from soundaq.base.paths import embedded_root

    if n_clips < MIN_CLIPS:
        raise SyntheticError(f"{n_clips} clips is too few for a training/validation/test split of every scene; "
                             f"fix: ask for at least {MIN_CLIPS} clips")
    _check_hierarchy()
    root = embedded_root(cache_dir) / embedded_key(n_clips, seed)
    manifest_path = root / "manifest.json"
    if manifest_path.is_file() and not force:
        manifest, problem = read_record(manifest_path)
        if problem is not None:
            set_aside(manifest_path, problem, "the set is completed again (generated clips are kept)")
        elif manifest.get("complete") and (not with_audio or manifest.get("with_audio")):
            problem = _derived_files_problem(root)
            if problem is None:
                return EmbeddedSet(root, manifest)
            set_aside(problem[0], problem[1], "the set's labels and statistics are written again")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SyntheticError(f"{root}: cannot create the cache folder ({exc.strerror}); "
                             "fix: set SOUNDAQ_CACHE or --cache-dir to a writable folder") from None
    if force and manifest_path.exists():
        manifest_path.unlink()
    started = time.perf_counter()
    mixes = [draw_mix(seed, i) for i in range(n_clips)]
    todo = [m for m in mixes if force or not _features_ok(root, m.clip)
            or (with_audio and not (root / "audio" / f"{m.clip}.flac").is_file())]
    measured: dict[str, dict] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("embedded set (synthetic)", total=n_clips, completed=n_clips - len(todo))
        jobs = [(str(root), m, with_audio) for m in todo]
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                res = _make_clip_job(job)
                measured[res["clip"]] = res
                bar.advance(task)
        else:
            import multiprocessing as mp

            from soundaq.base.parallel import one_thread_each

            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                     initializer=one_thread_each) as pool:
                for res in pool.map(_make_clip_job, jobs, chunksize=1):
                    measured[res["clip"]] = res
                    bar.advance(task)
    generated_s = time.perf_counter() - started
    rows, ratings = [], {}
    for m in mixes:
        if m.clip in measured:
            clip_n5 = measured[m.clip]["n5"]
        else:
            clip_n5 = n5(np.load(_feature_paths(root, m.clip)[1], mmap_mode="r"))
        expected = aq_expectation(m.levels, m.silence, clip_n5)
        ratings[m.clip] = simulate_ratings(m, expected)
        p, e = latent_pe(m.levels, m.silence, clip_n5)
        exp_isop, exp_isoe = iso_coordinates(*(expected[q] for q in QUALITIES))
        row = {"clip": m.clip, "split": m.split, "scene": m.scene, "data": SYNTHETIC_LABEL,
               **{f"level_{s}": m.levels.get(s, float("nan")) for s in SOURCES},
               "silence_gaps": ";".join(f"{a:g}-{b:g}" for a, b in m.gaps), "mix_db": m.mix_db, "n5": clip_n5,
               "rule_p": p, "rule_e": e, **{f"rule_{q}": expected[q] for q in QUALITIES},
               "rule_isop": float(exp_isop), "rule_isoe": float(exp_isoe)}
        rows.append(row)
    write_label_files(root / "labels", mixes, ratings)
    _write_csv(root / "mixes.csv", rows)
    es = EmbeddedSet(root)
    from soundaq.models_zoo.data.normalisation import compute_norm_stats, save_norm_stats

    train = [m.clip for m in mixes if m.split == "training"]
    stats = compute_norm_stats((np.load(a, mmap_mode="r"), np.load(b, mmap_mode="r"))
                               for a, b in (_feature_paths(root, c) for c in train))
    save_norm_stats(es.norm_stats_path, stats, origin=f"training split of the embedded set ({len(train)} clips)")
    manifest = {
        "data": data_label(n_clips, seed), "synthetic": True, "complete": True,
        "generator_version": GENERATOR_VERSION, "seed": seed, "n_clips": n_clips, "key": root.name,
        "root": str(root), "sample_rate": SAMPLE_RATE, "duration_s": DURATION_S,
        "calibration": {"pascal_per_unit": PASCAL_PER_UNIT, "db_spl_at_rms_1": 100.0},
        "split_sizes": {s: sum(m.split == s for m in mixes) for s in ("training", "validation", "test")},
        "raters": RATERS, "with_audio": bool(with_audio),
        "generated_clips": len(todo), "seconds": round(generated_s, 1), "workers": workers,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "what": "procedurally generated soundscapes with rule-based ratings; not recordings, not human ratings",
    }
    atomic_write_json(manifest_path, manifest)
    es.manifest = manifest
    return es


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else
                             "" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())
