"""Fast ISO 532-1:2017 time-varying (Zwicker) loudness, free or diffuse field.

The same steps as the standard's reference program and mosqito's ``loudness_zwtv`` (the reference
backend), computed with compiled loops (numba, cached on disk) instead of per-sample Python:

1. resample to 48 kHz (FFT resampling, as mosqito), third-octave filter bank (28 bands, 3 biquads
   each), squaring and three first-order low-passes (tau = 2 / (3 fc), at most 2/3 ms), levels every
   0.5 ms (2 kHz);
2. core loudness of 21 critical bands per 0.5 ms frame (low-frequency weighting, outer-ear
   transmission, threshold in quiet, Zwicker's power law);
3. non-linear temporal decay (24 linearly interpolated sub-steps per frame);
4. upper slopes and total loudness per frame (quantised to 0.001 sone as the standard does);
5. temporal weighting 0.47 LP(3.5 ms) + 0.53 LP(70 ms) with 24 interpolated sub-steps; every 4th
   value is kept: one value per 2 ms.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from models_zoo.features import iso532_tables as T

FS = 48000
DECIMATION = 24          # 48 kHz -> 2 kHz
OUTPUT_STEP = 4          # 2 kHz -> 500 Hz (2 ms)
SUBSTEPS = 24            # interpolation sub-steps of the decay and weighting filters
I_REF = 4e-10
TINY = 1e-12


class LevelRangeError(ValueError):
    """A third-octave level above 120 dB in the 25-250 Hz bands: outside Zwicker's method."""


def _smoothing_coefficients() -> np.ndarray:
    tau = np.where(T.EXACT_CENTRES <= 1000.0, 2.0 / (3.0 * T.EXACT_CENTRES), 2.0 / 3000.0)
    return np.exp(-1.0 / (FS * tau))


_SMOOTH_A = _smoothing_coefficients()


@njit(cache=True, nogil=True)
def _band_intensities(x, a1, a2, gains, smooth_a, dec):  # pragma: no cover - compiled
    """Per band: biquad cascade, square, 3 x one-pole smoothing; keep every ``dec``-th sample."""
    n = x.size
    n_bands = a1.shape[0]
    n_out = (n + dec - 1) // dec
    out = np.empty((n_bands, n_out))
    for b in range(n_bands):
        a11 = a1[b, 0]; a21 = a2[b, 0]
        a12 = a1[b, 1]; a22 = a2[b, 1]
        a13 = a1[b, 2]; a23 = a2[b, 2]
        g = gains[b]
        sa = smooth_a[b]
        sb = 1.0 - sa
        p1 = 0.0; q1 = 0.0; p2 = 0.0; q2 = 0.0; p3 = 0.0; q3 = 0.0
        s1 = 0.0; s2 = 0.0; s3 = 0.0
        k = 0
        j = 0
        for t in range(n):
            xt = x[t]
            # section 1: b = (1, 2, 1), transposed direct form II
            y1 = xt + p1
            p1 = 2.0 * xt - a11 * y1 + q1
            q1 = xt - a21 * y1
            # section 2: b = (1, 0, -1)
            y2 = y1 + p2
            p2 = -a12 * y2 + q2
            q2 = -y1 - a22 * y2
            # section 3: b = (1, -2, 1)
            y3 = y2 + p3
            p3 = -2.0 * y2 - a13 * y3 + q3
            q3 = y2 - a23 * y3
            v = g * y3
            v = v * v
            s1 = sb * v + sa * s1
            s2 = sb * s1 + sa * s2
            s3 = sb * s2 + sa * s3
            if j == 0:
                out[b, k] = s3
                k += 1
            j += 1
            if j == dec:
                j = 0
    return out


def third_octave_levels(pascals48k: np.ndarray) -> np.ndarray:
    """Third-octave band levels in dB every 0.5 ms: [28, ceil(n / 24)]."""
    x = np.ascontiguousarray(pascals48k, dtype=np.float64)
    inten = _band_intensities(x, T.FILTER_A1, T.FILTER_A2, T.FILTER_GAINS, _SMOOTH_A, DECIMATION)
    return 10.0 * np.log10((inten + TINY) / I_REF)


def core_loudness(levels: np.ndarray, field: str = "free") -> np.ndarray:
    """Core loudness of 21 critical bands (sone/Bark) from third-octave levels [28, frames] -> [21, frames]."""
    levels = np.asarray(levels, dtype=np.float64)
    low = levels[:11]
    if low.size and low.max() > 120.0:
        raise LevelRangeError(f"a third-octave level of {low.max():.1f} dB in 25-250 Hz exceeds 120 dB")
    # low-frequency weighting: the range is the first one whose limit RAP - DLL the level does not
    # exceed, among the first 7; beyond them no correction (as mosqito's implementation)
    limits = (T.RAP[:7, None] - T.DLL[:7])[:, :, None]                  # [7, 11, 1]
    rng = (low[None, :, :] > limits).sum(axis=0)                          # [11, frames]
    dll = np.vstack([T.DLL[:7], np.zeros((1, 11))])                       # range 7 -> 0 dB
    corr = np.take_along_axis(dll.T, rng, axis=1)                          # [11, frames]
    ti = 10.0 ** ((low + corr) / 10.0)
    groups = np.stack([ti[0:6].sum(axis=0), ti[6:9].sum(axis=0), ti[9:11].sum(axis=0)])
    lcb = np.zeros_like(groups)
    pos = groups > 0
    lcb[pos] = 10.0 * np.log10(groups[pos])
    le = np.concatenate([lcb, levels[11:]], axis=0) - T.A0[:, None]      # [20, frames]
    if field == "diffuse":
        le = le + T.DDF[:, None]
    elif field != "free":
        raise ValueError(f"field must be 'free' or 'diffuse', got {field!r}")
    ltq = T.LTQ[:, None]
    above = le > ltq
    le = np.where(above, le - T.DCB[:, None], le)
    s = 0.25
    nm = 0.0635 * 10.0 ** (0.025 * ltq) * ((1.0 - s + s * 10.0 ** (0.1 * (le - ltq))) ** 0.25 - 1.0)
    nm = np.where(above & (nm > 0), nm, 0.0)
    out = np.zeros((21, levels.shape[1]))
    out[:20] = nm
    korry = 0.4 + 0.32 * out[0] ** 0.2
    out[0] = np.where(korry <= 1.0, out[0] * korry, out[0])
    return out


def _decay_coefficients() -> np.ndarray:
    fs = 2000.0
    t_short, t_long, t_var = 0.005, 0.015, 0.075
    dt = 1.0 / (fs * SUBSTEPS)
    p = (t_var + t_long) / (t_var * t_short)
    q = 1.0 / (t_short * t_var)
    l1 = -p / 2.0 + math.sqrt(p * p / 4.0 - q)
    l2 = -p / 2.0 - math.sqrt(p * p / 4.0 - q)
    den = t_var * (l1 - l2)
    e1, e2 = math.exp(l1 * dt), math.exp(l2 * dt)
    return np.array([
        (e1 - e2) / den,
        ((t_var * l2 + 1) * e1 - (t_var * l1 + 1) * e2) / den,
        ((t_var * l1 + 1) * e1 - (t_var * l2 + 1) * e2) / den,
        (t_var * l1 + 1) * (t_var * l2 + 1) * (e1 - e2) / den,
        math.exp(-dt / t_long),
        math.exp(-dt / t_var),
    ])


_DECAY_B = _decay_coefficients()


@njit(cache=True, nogil=True)
def _nonlinear_decay(core, B, steps):  # pragma: no cover - compiled
    """Non-linear temporal decay per band with ``steps`` interpolated sub-steps per frame.

    The state before the first frame is (uo = last interpolated input, u2 = 0), as mosqito's
    implementation (its first step reads the wrapped-around last column).
    """
    n_bands, n = core.shape
    out = np.empty((n_bands, n))
    for b in range(n_bands):
        if n == 0:
            continue
        last = core[b, n - 1]
        d_last = (0.0 - last) / steps
        uo_p = last
        for _ in range(steps - 1):
            uo_p = uo_p + d_last
        u2_p = 0.0
        for f in range(n):
            cur = core[b, f]
            nxt = core[b, f + 1] if f + 1 < n else 0.0
            d = (nxt - cur) / steps
            ui = cur
            for k in range(steps):
                if k > 0:
                    ui = ui + d
                uo = ui
                if uo_p > u2_p:
                    c = uo_p * B[2] - u2_p * B[3]
                    if c >= ui:
                        uo = c
                else:
                    c = uo_p * B[4]
                    if c >= ui:
                        uo = c
                u2 = uo
                if ui < uo_p and uo_p > u2_p:
                    c = uo_p * B[0] - u2_p * B[1]
                    if c <= uo:
                        u2 = c
                if ui >= uo_p and not (abs(ui - uo_p) < 1e-5 and uo <= u2_p):
                    u2 = (u2_p - ui) * B[5] + ui
                if k == 0:
                    out[b, f] = uo
                uo_p = uo
                u2_p = u2
    return out


@njit(cache=True, nogil=True)
def _r8(x):  # pragma: no cover - compiled
    """Scaled rounding to 8 decimals (numpy's round(x, 8) without the final division)."""
    return np.rint(x * 1e8)


@njit(cache=True, nogil=True)
def _range_index(n, rns_r8, or_equal):  # pragma: no cover - compiled
    """Number of RNS limits above n (or at or above n), capped at the last range."""
    rn = _r8(n)
    c = 0
    for k in range(rns_r8.size):
        if or_equal:
            if rn <= rns_r8[k]:
                c += 1
        elif rn < rns_r8[k]:
            c += 1
    if c >= rns_r8.size:
        c = rns_r8.size - 1
    return c


@njit(cache=True, nogil=True)
def _total_loudness(nm, zup, rns, rns_r8, usl, starts, ends):  # pragma: no cover - compiled
    """Total loudness per frame from 21 core loudnesses, with the upper slopes of ISO 532-1."""
    n_bands, n = nm.shape
    total = np.empty(n)
    for f in range(n):
        N = 0.0
        n1 = 0.0
        z1 = 0.0
        rns_last = rns[_range_index(nm[n_bands - 1, f], rns_r8, False)]
        for i in range(n_bands):
            zi = zup[i]
            nmi = nm[i, f]
            g = i - 1
            if g < 0 or g > 7:
                g = 7
            if not (_r8(n1) > _r8(nmi)):
                N += nmi * (zi - z1)
                n1 = nmi
                z1 = zi
                rns_last = rns[_range_index(nmi, rns_r8, False)]
                continue
            # decreasing: follow the upper slope from n1 down towards nmi
            k = _range_index(n1, rns_r8, False)
            slope = usl[k, g]
            rns_row = rns[k]
            top = max(rns_last, nmi)
            z2 = min((n1 - top) / slope + z1, zi)
            dz = z2 - z1
            n2 = n1 - dz * slope
            N += dz * (n1 + n2) / 2.0
            z = zup[i - 1] + 0.1
            finished_row = -1
            last_cond = False
            for row in range(starts[i], ends[i]):
                cond = _r8(z2) <= _r8(z)
                if cond:
                    k = _range_index(n2, rns_r8, True)
                    rns_row = rns[k]
                    slope = usl[k, g]
                    n1 = n2
                    z1 = z2
                    if _r8(n1) <= _r8(nmi):
                        n2 = nmi
                        z2 = zi
                        N += n2 * (z2 - z1)
                        finished_row = row
                    else:
                        top = max(rns_row, nmi)
                        z2 = min((n1 - top) / slope + z1, zi)
                        dz = z2 - z1
                        n2 = n1 - dz * slope
                        N += dz * (n1 + n2) / 2.0
                z += 0.1
                z1 = z2
                n1 = n2
                last_cond = cond
                if finished_row >= 0:
                    break
            if finished_row >= 0 and finished_row < ends[i] - 1:
                rns_last = rns[_range_index(nmi, rns_r8, False)]
            elif last_cond:
                rns_last = rns[_range_index(n2, rns_r8, True)]
            else:
                rns_last = rns_row
        if N < 0.0:
            N = 0.0
        if N <= 16.0:
            N = math.floor(N * 1000.0 + 0.5) / 1000.0
        else:
            N = math.floor(N * 100.0 + 0.5) / 100.0
        total[f] = N
    return total


_USL_BY_GROUP = np.ascontiguousarray(T.USL)
_RNS_R8 = np.rint(T.RNS * 1e8)
_ENDS = (T.ZUP * 10).astype(np.int32)
_STARTS = np.concatenate([[0], _ENDS[:-1]]).astype(np.int32)


def total_loudness(nm: np.ndarray) -> np.ndarray:
    """Total loudness (sone) per frame from core loudness [21, frames]."""
    nm = np.ascontiguousarray(nm, dtype=np.float64)
    return _total_loudness(nm, T.ZUP, T.RNS, _RNS_R8, _USL_BY_GROUP, _STARTS, _ENDS)


@njit(cache=True, nogil=True)
def _interpolated_lowpass(x, a, steps):  # pragma: no cover - compiled
    """First-order low-pass run on ``steps`` linearly interpolated sub-steps per input sample."""
    n = x.size
    out = np.empty(n)
    b0 = 1.0 - a
    y = 0.0
    for f in range(n):
        cur = x[f]
        nxt = x[f + 1] if f + 1 < n else 0.0
        d = (nxt - cur) / steps
        u = cur
        for k in range(steps):
            if k > 0:
                u = u + d
            y = b0 * u + a * y
            if k == 0:
                out[f] = y
    return out


def temporal_weighting(total: np.ndarray, rate: float = 2000.0) -> np.ndarray:
    """0.47 LP(3.5 ms) + 0.53 LP(70 ms) of the total loudness."""
    total = np.ascontiguousarray(total, dtype=np.float64)
    fast = _interpolated_lowpass(total, math.exp(-1.0 / (rate * SUBSTEPS * 3.5e-3)), SUBSTEPS)
    slow = _interpolated_lowpass(total, math.exp(-1.0 / (rate * SUBSTEPS * 70e-3)), SUBSTEPS)
    return 0.47 * fast + 0.53 * slow


def to_48k(pascals: np.ndarray, sample_rate: int) -> np.ndarray:
    """FFT resampling to 48 kHz to ``int(48000 * n / fs)`` samples, as mosqito does below 48 kHz."""
    x = np.asarray(pascals, dtype=np.float64)
    if int(sample_rate) == FS:
        return x
    from scipy.signal import resample

    return resample(x, int(FS * len(x) / sample_rate))


def loudness_zwtv_fast(pascals: np.ndarray, sample_rate: int, field: str = "free") -> np.ndarray:
    """ISO 532-1 time-varying loudness in sone, one value per 2 ms: [ceil(ceil(n48k / 24) / 4)]."""
    x = to_48k(pascals, sample_rate)
    levels = third_octave_levels(x)
    core = core_loudness(levels, field)
    decayed = _nonlinear_decay(np.ascontiguousarray(core), _DECAY_B, SUBSTEPS)
    total = total_loudness(decayed)
    return temporal_weighting(total)[::OUTPUT_STEP].copy()
