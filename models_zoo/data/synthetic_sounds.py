"""The sound generators of the embedded synthetic set: ten procedural sources and the calibrated mix.

Each source of :data:`soundaq.models_zoo.data.synthetic_mix.SOURCES` has a renderer here (traffic
noise, vehicle pass-bys with Doppler, birdsong, insects or a dog, speech-like babble with
footsteps, music-like tones, water, wind, rural rustle, urban noise with mains hum);
:func:`render` scales each to its level in the mix, sums them over a 25 dB SPL pink noise floor
and applies the silence gaps. The samples are calibrated: RMS 1.0 is 100 dB SPL
(:data:`PASCAL_PER_UNIT`).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.fft

from soundaq.models_zoo.data.synthetic_mix import DURATION_S, N_SAMPLES, SAMPLE_RATE, SOURCES, Mix, clip_rng

P_REF = 2e-5
#: Digital calibration of the synthetic audio: a signal of RMS 1.0 is 100 dB SPL (2 Pa).
PASCAL_PER_UNIT = 2.0
#: Self-noise floor under every mix (dB SPL, pink); not labelled.
NOISE_FLOOR_DB = 25.0

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
    if not isinstance(freq_hz, np.ndarray):
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
        sig = fn(clip_rng(mix.seed, mix.index, 1, k), t, SAMPLE_RATE / decim)
        sig *= (P_REF * 10 ** (mix.levels[src] / 20.0)) / (np.sqrt(np.mean(sig ** 2)) + 1e-30)
        groups[decim] = groups[decim] + sig if decim in groups else sig
    pascals = np.zeros(N_SAMPLES, dtype=np.float32)
    for part in groups.values():
        pascals += _fft_upsample(part, N_SAMPLES)
    if mix.gaps:
        pascals *= _silence_gate(_time(), mix.gaps).astype(np.float32)
    floor = _shaped_noise(clip_rng(mix.seed, mix.index, 3), N_SAMPLES, SAMPLE_RATE,
                          lambda f: _highpass(f, 20.0) / np.sqrt(np.maximum(f, 1.0)))
    pascals += (floor * (P_REF * 10 ** (NOISE_FLOOR_DB / 20.0))).astype(np.float32)
    pascals /= np.float32(PASCAL_PER_UNIT)
    return pascals


def level_db_spl(samples: np.ndarray) -> float:
    """Equivalent continuous level (unweighted) of synthetic samples in dB SPL."""
    rms = float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2))) * PASCAL_PER_UNIT
    return 20.0 * math.log10(max(rms, 1e-12) / P_REF)
