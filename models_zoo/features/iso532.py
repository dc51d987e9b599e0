"""Fast ISO 532-1:2017 Zwicker loudness, free or diffuse field: time-varying N(t) and N'(z, t), and stationary.

Plain functions of (sound pressure in pascals, sample rate in Hz, field "free" | "diffuse") with the
steps and numbers of the standard's reference program (ISO 532-1:2017 Annex A) and of mosqito's
``loudness_zwtv`` (the reference backend), computed by compiled loops (numba, cached on disk):

1. FFT resampling to 48 kHz from any other rate (mosqito's method); the standard's 28 third-octave
   filters (Annex A.3: 25 Hz ... 12.5 kHz, three biquads each), squaring and three first-order
   low-passes (tau = 2 / (3 fc), at most 2/3 ms); band intensities every 0.5 ms (2 kHz);
2. core loudness of 21 critical bands per frame (low-frequency weighting of the 25-250 Hz bands,
   outer-ear transmission, threshold in quiet, Zwicker's power law);
3. non-linear temporal decay (24 linearly interpolated sub-steps per frame);
4. upper slopes: the total loudness of each frame (quantised to 0.001 sone, 0.01 above 16 sone, as the
   standard) and, on request, the specific loudness N'(z) on 240 bands of 0.1 Bark;
5. temporal weighting 0.47 LP(3.5 ms) + 0.53 LP(70 ms) with 24 interpolated sub-steps; every 4th
   value is kept: one value per 2 ms.

The stationary method (ISO 532-1 clause 5, as the reference program computes it from a time signal)
takes the mean square of each band's filter output over the whole signal, then steps 2 and 4 once.

Speed. The 28 band filters run side by side, one sample at a time for all bands (the inner loop over
bands is SIMD-vectorised); the core loudness works on band intensities directly (the level in dB
and its antilog cancel, so no logarithm or exponential is taken per band and frame); the decay
runs all bands of a frame together, branch-free.

Subnormal numbers. After a sound stops (digital silence, zero padding) every recursive state decays
geometrically towards zero and, left alone, passes through the subnormal range (below 2.2e-308),
where many CPUs compute 20-100x slower. Each recursion here (band filters, smoothing, decay,
temporal weighting) therefore sets a state whose magnitude is below :data:`SNAP` = 1e-100 to exactly
zero, once per 0.5 ms frame, and the band filters read input samples below 1e-100 Pa as zero. This
cannot change a level: a band's output y moves by about 1e-100 at most, its intensity by about
2 |y| 1e-100, which is below half the last place of ``intensity + 1e-12`` (the level's argument; 1e-12
is the standard's TINY_VALUE, whose last place is about 2e-28) whatever y is, so the levels are
bit-identical; the decayed core loudness, N' and N(t) change by less than 1e-100 sone (values below
that become exactly 0). Between two snaps the fastest recursion (the 12.5 kHz band, pole radius about 0.83 per
sample) shrinks a state by at most 1e-2, so nothing reaches the subnormal range. Numba's ``fastmath``
was not used instead: it changes the order of operations (so the quantised totals could differ from
the standard's in rare frames) and LLVM's flags do not set the CPU's flush-to-zero mode anyway.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from soundaq.base.errors import UserError
from soundaq.models_zoo.features import iso532_tables as T

FS = 48000
DECIMATION = 24          # 48 kHz -> 2 kHz
OUTPUT_STEP = 4          # 2 kHz -> 500 Hz (2 ms)
SUBSTEPS = 24            # interpolation sub-steps of the decay and weighting filters
I_REF = 4e-10            # reference intensity of the reference program (pascals squared, times the filter gain)
TINY = 1e-12             # the reference program's TINY_VALUE, added to every band intensity
SNAP = 1e-100            # recursive states smaller than this are set to zero (see the module docstring)
N_BANDS = 28             # third-octave bands 25 Hz ... 12.5 kHz
N_CRITICAL = 21          # core-loudness bands (the 21st, 23.6-24 Bark, is always zero)
N_SPECIFIC = 240         # specific-loudness bands of 0.1 Bark
#: Critical-band rate (Bark) of each specific-loudness band: 0.1, 0.2, ..., 24.0 (as mosqito).
BARK_AXIS = np.linspace(0.1, 24.0, N_SPECIFIC)
FIELDS = ("free", "diffuse")


class LevelRangeError(UserError, ValueError):
    """A third-octave level above 120 dB in the 25-250 Hz bands: outside Zwicker's method."""


# --- 1. third-octave band intensities --------------------------------------------------------------

def _smoothing_coefficients() -> np.ndarray:
    tau = np.where(T.EXACT_CENTRES <= 1000.0, 2.0 / (3.0 * T.EXACT_CENTRES), 2.0 / 3000.0)
    return np.exp(-1.0 / (FS * tau))


_SMOOTH_A = _smoothing_coefficients()
#: Per band: a1 and a2 of the three biquads, the gain, the smoothing pole a and 1 - a: [9, 28].
_FILTER_COEF = np.ascontiguousarray(np.stack([
    T.FILTER_A1[:, 0], T.FILTER_A2[:, 0], T.FILTER_A1[:, 1], T.FILTER_A2[:, 1], T.FILTER_A1[:, 2],
    T.FILTER_A2[:, 2], T.FILTER_GAINS, _SMOOTH_A, 1.0 - _SMOOTH_A]))


@njit(cache=True, nogil=True, inline="always")
def _biquads(xt, st, c, b):  # pragma: no cover - compiled
    """One sample of band ``b``'s three biquads (transposed direct form II, numerators (1, 2, 1),
    (1, 0, -1), (1, -2, 1)); returns the squared, gained output. ``st``/``c`` hold row r of a
    [rows, 28] table at r * 28.
    """
    y1 = xt + st[b]
    st[b] = 2.0 * xt - c[b] * y1 + st[N_BANDS + b]
    st[N_BANDS + b] = xt - c[N_BANDS + b] * y1
    y2 = y1 + st[2 * N_BANDS + b]
    st[2 * N_BANDS + b] = -c[2 * N_BANDS + b] * y2 + st[3 * N_BANDS + b]
    st[3 * N_BANDS + b] = -y1 - c[3 * N_BANDS + b] * y2
    y3 = y2 + st[4 * N_BANDS + b]
    st[4 * N_BANDS + b] = -2.0 * y2 - c[4 * N_BANDS + b] * y3 + st[5 * N_BANDS + b]
    st[5 * N_BANDS + b] = y2 - c[5 * N_BANDS + b] * y3
    v = c[6 * N_BANDS + b] * y3
    return v * v


@njit(cache=True, nogil=True, inline="always")
def _flushed(v, snap):  # pragma: no cover - compiled
    return 0.0 if abs(v) < snap else v


@njit(cache=True, nogil=True, inline="always")
def _snap(st, count, snap):  # pragma: no cover - compiled
    for i in range(count):
        st[i] = _flushed(st[i], snap)


@njit(cache=True, nogil=True)
def _band_intensities(x, coef, dec, snap):  # pragma: no cover - compiled
    """Band filters, squaring and 3 x one-pole smoothing; the intensity of every ``dec``-th sample
    (from the first): [ceil(n / dec), 28]. All 28 bands advance together, one sample at a time.
    Input samples and states below ``snap`` in magnitude are taken as zero (every ``dec`` samples).
    """
    n = x.size
    n_out = (n + dec - 1) // dec
    out = np.empty((n_out, N_BANDS))
    c = coef.ravel().copy()
    st = np.zeros(9 * N_BANDS)   # p, q of the three biquads, then the three smoothing states
    k = 0
    j = 0
    for t in range(n):
        xt = _flushed(x[t], snap)
        for b in range(N_BANDS):
            v = _biquads(xt, st, c, b)
            sa = c[7 * N_BANDS + b]
            sb = c[8 * N_BANDS + b]
            s1 = sb * v + sa * st[6 * N_BANDS + b]
            s2 = sb * s1 + sa * st[7 * N_BANDS + b]
            s3 = sb * s2 + sa * st[8 * N_BANDS + b]
            st[6 * N_BANDS + b] = s1
            st[7 * N_BANDS + b] = s2
            st[8 * N_BANDS + b] = s3
        if j == 0:
            for b in range(N_BANDS):
                out[k, b] = st[8 * N_BANDS + b]
            k += 1
            _snap(st, 9 * N_BANDS, snap)
        j += 1
        if j == dec:
            j = 0
    return out


@njit(cache=True, nogil=True)
def _band_mean_squares(x, coef, snap):  # pragma: no cover - compiled
    """Band filters and the mean square of each band's output over the whole signal: [28]."""
    n = x.size
    c = coef.ravel().copy()
    st = np.zeros(6 * N_BANDS)
    acc = np.zeros(N_BANDS)
    j = 0
    for t in range(n):
        xt = _flushed(x[t], snap)
        for b in range(N_BANDS):
            acc[b] += _biquads(xt, st, c, b)
        j += 1
        if j == DECIMATION:
            j = 0
            _snap(st, 6 * N_BANDS, snap)
    return acc / max(n, 1)


def intensity_to_level(intensity: np.ndarray) -> np.ndarray:
    """Band level in dB SPL of a band intensity, as the reference program: 10 log10((I + TINY) / I_REF)."""
    return 10.0 * np.log10((np.asarray(intensity, dtype=np.float64) + TINY) / I_REF)


# --- 2. core loudness ------------------------------------------------------------------------------

def _core_tables(field: str) -> tuple:
    """Constants of the core loudness on the intensity scale r = 10^(L / 10) (L in dB SPL).

    ``rlim`` [7, 11]: r at the upper limits RAP - DLL of the first seven ranges of the low-frequency
    weighting; ``dllf`` [8, 11]: the factor 10^(DLL / 10) of each range (row 7, above all ranges: 1,
    as mosqito); ``rthr`` [20]: r above which a critical band exceeds the threshold in quiet
    (L - a0 (+ ddf) > LTQ); ``kexc`` [20]: r -> 10^((L - a0 (+ ddf) - DCB - LTQ) / 10);
    ``mp1`` [20]: 0.0635 * 10^(0.025 LTQ).
    """
    ddf = T.DDF if field == "diffuse" else np.zeros(20)
    limits = T.RAP[:7, None] - T.DLL[:7]
    dllf = np.ones((8, 11))
    dllf[:7] = 10.0 ** (T.DLL[:7] / 10.0)
    rthr = 10.0 ** ((T.LTQ + T.A0 - ddf) / 10.0)
    kexc = 10.0 ** ((-T.A0 + ddf - T.DCB - T.LTQ) / 10.0)
    mp1 = 0.0635 * 10.0 ** (0.025 * T.LTQ)
    return (np.ascontiguousarray(10.0 ** (limits / 10.0)), dllf, rthr, kexc, mp1)


_CORE_TABLES = {field: _core_tables(field) for field in FIELDS}


@njit(cache=True, nogil=True)
def _core_loudness(v, offset, denom, rlim, dllf, rthr, kexc, mp1):  # pragma: no cover - compiled  # noqa: C901  (a numba kernel transcribing the standard's program)
    """Core loudness [frames, 21] (sone/Bark) from band values v [frames, 28], r = (v + offset) / denom.

    The standard's steps on r = 10^(L / 10) instead of L: a level test L > X is r > 10^(X / 10) and
    10^((L + c) / 10) is r * 10^(c / 10), so no logarithm or antilog is needed per band.
    """
    n = v.shape[0]
    out = np.zeros((n, N_CRITICAL))
    for f in range(n):
        g0 = 0.0
        g1 = 0.0
        g2 = 0.0
        for j in range(11):
            r = (v[f, j] + offset) / denom
            cnt = 0
            for i in range(7):
                if r > rlim[i, j]:
                    cnt += 1
            ti = r * dllf[cnt, j]
            if j < 6:
                g0 += ti
            elif j < 9:
                g1 += ti
            else:
                g2 += ti
        for jj in range(20):
            if jj == 0:
                r = g0
            elif jj == 1:
                r = g1
            elif jj == 2:
                r = g2
            else:
                r = (v[f, jj + 8] + offset) / denom
            if jj < 3 and not r > 0.0:
                r = 1.0          # the reference program takes 0 dB for an empty critical band
            if r > rthr[jj]:
                val = mp1[jj] * (math.sqrt(math.sqrt(0.75 + 0.25 * (r * kexc[jj]))) - 1.0)
                if val > 0.0:
                    out[f, jj] = val
        n0 = out[f, 0]
        if n0 > 0.0:
            korry = 0.4 + 0.32 * n0 ** 0.2
            if korry <= 1.0:
                out[f, 0] = n0 * korry
    return out


def _check_field(field: str) -> None:
    if field not in FIELDS:
        raise ValueError(f"field must be 'free' or 'diffuse', got {field!r}")


def _core(values: np.ndarray, offset: float, denom: float, field: str) -> np.ndarray:
    _check_field(field)
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.shape[0]:
        top = float(values[:, :11].max())
        level = 10.0 * math.log10(max((top + offset) / denom, 1e-300))
        if level > 120.0:
            raise LevelRangeError(f"a third-octave level of {level:.1f} dB in 25-250 Hz exceeds 120 dB")
    return _core_loudness(values, offset, denom, *_CORE_TABLES[field])


# --- 3. non-linear temporal decay ------------------------------------------------------------------

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


_NL = N_CRITICAL - 1   # decayed bands: the 21st is zero by construction


@njit(cache=True, nogil=True, inline="always")
def _decay_substep(st, b, u, B0, B1, B2, B3, B4, B5):  # pragma: no cover - compiled
    """One sub-step of band b: input u, state (uo, u2) at st[2 * 20 + b], st[3 * 20 + b]; returns uo."""
    p = st[2 * _NL + b]
    q = st[3 * _NL + b]
    rising = p > q
    c = p * B2 - q * B3 if rising else p * B4
    o = c if c >= u else u
    c3 = p * B0 - q * B1
    if u >= p:
        w = o if (abs(u - p) < 1e-5 and o <= q) else (q - u) * B5 + u
    else:
        w = c3 if (rising and c3 <= o) else o
    st[2 * _NL + b] = o
    st[3 * _NL + b] = w
    return o


@njit(cache=True, nogil=True)
def _nonlinear_decay(core, B, steps, snap):  # pragma: no cover - compiled
    """Non-linear temporal decay of core loudness [frames, 21] with ``steps`` interpolated sub-steps
    per frame; the 20 bands with an input advance together (the 21st, 23.6-24 Bark, has no
    third-octave band and is zero, so it stays zero). Recursive states below ``snap`` become zero.

    The state before the first frame is (uo = last interpolated input, u2 = 0), as mosqito's
    implementation (its first step reads the wrapped-around last column). A frame whose bands all
    sit at a fixed point of the recursion (input, next input and state equal, e.g. silence) is copied.
    """
    n = core.shape[0]
    out = np.zeros((n, N_CRITICAL))
    if n == 0:
        return out
    B0, B1, B2, B3, B4, B5 = B[0], B[1], B[2], B[3], B[4], B[5]
    st = np.zeros(4 * _NL)    # interpolated input, its step, uo, u2
    for b in range(_NL):
        last = core[n - 1, b]
        d_last = (0.0 - last) / steps
        v = last
        for _ in range(steps - 1):
            v = v + d_last
        st[2 * _NL + b] = v
    for f in range(n):
        steady = True
        for b in range(_NL):
            cur = core[f, b]
            nxt = core[f + 1, b] if f + 1 < n else 0.0
            if not (nxt == cur and st[2 * _NL + b] == cur and st[3 * _NL + b] == cur):
                steady = False
            st[b] = cur
            st[_NL + b] = (nxt - cur) / steps
        if steady:
            for b in range(_NL):
                out[f, b] = core[f, b]
            continue
        for b in range(_NL):
            out[f, b] = _decay_substep(st, b, st[b], B0, B1, B2, B3, B4, B5)
        for _ in range(1, steps):
            for b in range(_NL):
                u = st[b] + st[_NL + b]
                st[b] = u
                _decay_substep(st, b, u, B0, B1, B2, B3, B4, B5)
        _snap(st[2 * _NL:], 2 * _NL, snap)
    return out


# --- 4. upper slopes: total and specific loudness --------------------------------------------------

@njit(cache=True, nogil=True)
def _r8(x):  # pragma: no cover - compiled
    """Scaled rounding to 8 decimals (numpy's round(x, 8) without the final division)."""
    return np.rint(x * 1e8)


@njit(cache=True, nogil=True)
def _range_index(n, rns_r8, or_equal):  # pragma: no cover - compiled
    rn = _r8(n)
    lo = 0
    hi = rns_r8.size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if rn < rns_r8[mid] or (or_equal and rn == rns_r8[mid]):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _slopes(nm, zup, rns, rns_r8, usl, starts, ends, zrow, zrow_r8, spec, spec_step):  # pragma: no cover - compiled  # noqa: C901  (a numba kernel transcribing the standard's program)
    """Total loudness per frame from core loudness nm [frames, 21] with the upper slopes of ISO 532-1;
    when ``spec`` has rows, also the specific loudness of every ``spec_step``-th frame into
    spec [frames / spec_step, 240] (sone/Bark), as mosqito's ``_calc_slopes``.
    """
    n = nm.shape[0]
    n_bands = nm.shape[1]
    want_spec = spec.shape[0] > 0
    total = np.empty(n)
    for f in range(n):
        row_out = -1
        if want_spec and f % spec_step == 0:
            row_out = f // spec_step
            for i in range(n_bands):
                val = nm[f, i]
                for row in range(starts[i], ends[i]):
                    spec[row_out, row] = val
        N = 0.0
        n1 = 0.0
        z1 = 0.0
        # the range limit reached at the end of the previous band, kept as (value, or_equal) and
        # looked up only when a decreasing slope needs it
        last_n = nm[f, n_bands - 1]
        last_eq = False
        last_fixed = -1.0
        for i in range(n_bands):
            zi = zup[i]
            nmi = nm[f, i]
            g = i - 1
            if g < 0 or g > 7:
                g = 7
            if not (_r8(n1) > _r8(nmi)):
                N += nmi * (zi - z1)
                n1 = nmi
                z1 = zi
                last_n = nmi
                last_eq = False
                last_fixed = -1.0
                continue
            # decreasing: follow the upper slope from n1 down towards nmi
            k = _range_index(n1, rns_r8, False)
            slope = usl[k, g]
            rns_row = rns[k]
            if last_fixed >= 0.0:
                rns_last = last_fixed
            elif not last_eq and last_n == n1:
                rns_last = rns_row          # the same look-up as k's
            else:
                rns_last = rns[_range_index(last_n, rns_r8, last_eq)]
            top = max(rns_last, nmi)
            z2 = min((n1 - top) / slope + z1, zi)
            dz = z2 - z1
            n2 = n1 - dz * slope
            N += dz * (n1 + n2) / 2.0
            r8z2 = _r8(z2)
            finished_row = -1
            last_cond = False
            for row in range(starts[i], ends[i]):
                cond = r8z2 <= zrow_r8[row]
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
                        r8z2 = _r8(z2)
                        dz = z2 - z1
                        n2 = n1 - dz * slope
                        N += dz * (n1 + n2) / 2.0
                        if row_out >= 0:
                            spec[row_out, row] = n1 - (zrow[row] - z1) * slope
                elif row_out >= 0:
                    spec[row_out, row] = n1 - (zrow[row] - z1) * slope
                z1 = z2
                n1 = n2
                last_cond = cond
                if finished_row >= 0:
                    break
            last_fixed = -1.0
            if finished_row >= 0 and finished_row < ends[i] - 1:
                last_n = nmi
                last_eq = False
            elif last_cond:
                last_n = n2
                last_eq = True
            else:
                last_fixed = rns_row
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


def _row_rates() -> np.ndarray:
    """The critical-band rate of each specific-loudness row as the slope walk reaches it: band i's
    rows start at ZUP[i - 1] + 0.1 (ZUP[-1] = 24 for the first band, as mosqito) and add 0.1 per row.
    """
    z_rows = np.empty(N_SPECIFIC)
    for i in range(N_CRITICAL):
        z = T.ZUP[i - 1] + 0.1
        for row in range(_STARTS[i], _ENDS[i]):
            z_rows[row] = z
            z += 0.1
    return z_rows


_ZROW = _row_rates()
_ZROW_R8 = np.rint(_ZROW * 1e8)


def _slopes_of(nm: np.ndarray, specific: bool, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(total [frames], specific [ceil(frames / step), 240] or [0, 240]) from core loudness [frames, 21]."""
    nm = np.ascontiguousarray(nm, dtype=np.float64)
    rows = -(-nm.shape[0] // step) if specific else 0
    spec = np.zeros((rows, N_SPECIFIC))
    total = _slopes(nm, T.ZUP, T.RNS, _RNS_R8, _USL_BY_GROUP, _STARTS, _ENDS, _ZROW, _ZROW_R8, spec, step)
    return total, spec


# --- 5. temporal weighting -------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _temporal_weighting(x, a_fast, a_slow, steps, keep, snap):  # pragma: no cover - compiled
    """0.47 LP(fast) + 0.53 LP(slow) of x, both first-order low-passes run on ``steps`` linearly
    interpolated sub-steps per input sample; every ``keep``-th value from the first is returned.
    """
    n = x.size
    out = np.empty((n + keep - 1) // keep)
    bf = 1.0 - a_fast
    bs = 1.0 - a_slow
    yf = 0.0
    ys = 0.0
    for f in range(n):
        cur = x[f]
        nxt = x[f + 1] if f + 1 < n else 0.0
        d = (nxt - cur) / steps
        u = cur
        yf = bf * u + a_fast * yf
        ys = bs * u + a_slow * ys
        if f % keep == 0:
            out[f // keep] = 0.47 * yf + 0.53 * ys
        for _ in range(1, steps):
            u = u + d
            yf = bf * u + a_fast * yf
            ys = bs * u + a_slow * ys
        yf = _flushed(yf, snap)
        ys = _flushed(ys, snap)
    return out


def temporal_weighting(total: np.ndarray, rate: float = 2000.0, keep: int = 1, snap: float = SNAP) -> np.ndarray:
    """0.47 LP(3.5 ms) + 0.53 LP(70 ms) of the total loudness sampled at ``rate``; every ``keep``-th value."""
    total = np.ascontiguousarray(total, dtype=np.float64)
    return _temporal_weighting(total, math.exp(-1.0 / (rate * SUBSTEPS * 3.5e-3)),
                               math.exp(-1.0 / (rate * SUBSTEPS * 70e-3)), SUBSTEPS, keep, snap)


# --- resampling ------------------------------------------------------------------------------------

_TWIDDLES: dict[int, np.ndarray] = {}


def _twiddles(n: int) -> np.ndarray:
    """exp(-2 pi i k / n) for k = 0 ... n / 2 (kept for the last few lengths: clips repeat theirs)."""
    tw = _TWIDDLES.get(n)
    if tw is None:
        if len(_TWIDDLES) >= 4:
            _TWIDDLES.clear()
        tw = _TWIDDLES[n] = np.exp(-2j * np.pi * np.arange(n // 2 + 1) / n)
    return tw


@njit(cache=True, nogil=True)
def _split_packed_spectrum(z, tw, scale, out):  # pragma: no cover - compiled
    """The first out.size bins, times ``scale``, of the spectrum of a real signal x of length 2h from the
    FFT z [h] of x[0::2] + i x[1::2]: X[k] = E[k] + tw[k] O[k], E = (z[k] + conj z[h - k]) / 2,
    O = (z[k] - conj z[h - k]) / 2i.
    """
    h = z.size
    for k in range(out.size):
        a = z[k % h]
        b = np.conj(z[(h - k) % h])
        out[k] = (0.5 * (a + b) - 0.5j * (a - b) * tw[k]) * scale


def _rfft_into(x: np.ndarray, out: np.ndarray, scale: float) -> None:
    """The first out.size bins of ``scipy.fft.rfft(x) * scale`` into ``out`` (equal to 1e-15 relative).

    An even length is transformed as a complex signal of half the length: pocketfft's real transform
    has no fast radix-7 pass, and 44.1-kHz clips have lengths like 1,323,000 = 2^3 3^3 5^3 7^2,
    where this is about 1.6x faster.
    """
    import scipy.fft as sfft

    n = x.size
    if n % 2 or n < 4096:
        out[:] = sfft.rfft(x)[: out.size] * scale
        return
    _split_packed_spectrum(sfft.fft(x.view(np.complex128)), _twiddles(n), scale, out)


def rfft(x: np.ndarray) -> np.ndarray:
    """``scipy.fft.rfft`` of a real signal, even lengths through a half-length complex FFT (see
    :func:`_rfft_into`).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(x.size // 2 + 1, dtype=np.complex128)
    _rfft_into(x, out, 1.0)
    return out


def fft_resample(x: np.ndarray, m: int) -> np.ndarray:
    """Band-limited (periodic) resampling of a real signal to ``m`` samples by zero-padding or
    truncating its spectrum; the same result as ``scipy.signal.resample`` (to 1e-15 relative) with
    half the work (real FFTs only).
    """
    import scipy.fft as sfft

    x = np.ascontiguousarray(x, dtype=np.float64)
    n = x.size
    if m == n:
        return x.copy()
    out = np.zeros(m // 2 + 1, dtype=np.complex128)
    keep = min(n, m) // 2 + 1
    _rfft_into(x, out[:keep], m / n)
    if m > n and n % 2 == 0:
        out[n // 2] *= 0.5        # the input's Nyquist bin is shared by +/- n/2
    elif m < n and m % 2 == 0:
        out[m // 2] = 2.0 * out[m // 2].real  # +/- m/2 fold onto the output's Nyquist bin
    return sfft.irfft(out, m)


def to_48k(pascals: np.ndarray, sample_rate: int) -> np.ndarray:
    """FFT resampling to 48 kHz, to ``int(48000 * n / fs)`` samples, as mosqito does below 48 kHz."""
    x = np.asarray(pascals, dtype=np.float64)
    if int(sample_rate) == FS:
        return x
    return fft_resample(x, int(FS * len(x) / sample_rate))


def _signal(pascals, sample_rate) -> np.ndarray:
    x = np.asarray(pascals, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"ISO 532-1 loudness expects a mono 1-D signal in pascals, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("loudness of an empty signal")
    if not sample_rate > 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    return np.ascontiguousarray(to_48k(x, sample_rate))


# --- the methods -----------------------------------------------------------------------------------

def _zwtv(pascals, sample_rate, field: str, specific: bool, snap: float = SNAP) -> tuple[np.ndarray, np.ndarray]:
    """(N [frames], N' [frames, 240] or [0, 240]); ``snap`` = 0 turns the flush-to-zero off (tests)."""
    _check_field(field)
    x = _signal(pascals, sample_rate)
    inten = _band_intensities(x, _FILTER_COEF, DECIMATION, snap)
    core = _core(inten, TINY, I_REF, field)
    decayed = _nonlinear_decay(core, _DECAY_B, SUBSTEPS, snap)
    total, spec = _slopes_of(decayed, specific, OUTPUT_STEP)
    return temporal_weighting(total, keep=OUTPUT_STEP, snap=snap), spec


def loudness_zwtv_fast(pascals: np.ndarray, sample_rate: int, field: str = "free") -> np.ndarray:
    """ISO 532-1 time-varying loudness N(t) in sone, one value per 2 ms: float64 [frames].

    Args:
        pascals: mono sound pressure in Pa, [n] at ``sample_rate`` Hz (any rate; FFT-resampled to
            48 kHz, the filter bank's rate, to ``int(48000 n / rate)`` samples).
        sample_rate: Hz.
        field: "free" (frontal free field) or "diffuse".

    Returns:
        [ceil(ceil(n48 / 24) / 4)] sone; 30 s give 15000 values.

    Raises:
        LevelRangeError: a 25-250 Hz third-octave level above 120 dB.
        ValueError: not a non-empty 1-D signal, a bad rate or field.
    """
    return _zwtv(pascals, sample_rate, field, False)[0]


def specific_loudness_zwtv_fast(pascals: np.ndarray, sample_rate: int,
                                field: str = "free") -> tuple[np.ndarray, np.ndarray]:
    """ISO 532-1 time-varying loudness with its specific loudness, one frame per 2 ms.

    Returns (N [frames] in sone, N' [240, frames] in sone/Bark over :data:`BARK_AXIS`); N' is the
    specific loudness after the temporal decay and before the temporal weighting (as the standard's
    program and mosqito's ``loudness_zwtv``), of every 4th 0.5-ms frame from the first, so that
    N'[:, k] and N[k] describe the same instant k x 2 ms. Arguments and errors as
    :func:`loudness_zwtv_fast`.
    """
    n, spec = _zwtv(pascals, sample_rate, field, True)
    return n, spec.T


def loudness_zwst_fast(pascals: np.ndarray, sample_rate: int, field: str = "free") -> tuple[float, np.ndarray]:
    """ISO 532-1 loudness of a stationary signal (clause 5): (N in sone, N' [240] in sone/Bark).

    The third-octave levels are those of the standard's filter bank over the whole signal (the mean
    square of each band, ``10 log10((mean + TINY) / I_REF)``, as the reference program computes them
    from a time signal), then core loudness and slopes. Arguments and errors as :func:`loudness_zwtv_fast`.
    """
    _check_field(field)
    x = _signal(pascals, sample_rate)
    ms = _band_mean_squares(x, _FILTER_COEF, SNAP)[None, :]
    total, spec = _slopes_of(_core(ms, TINY, I_REF, field), True)
    return float(total[0]), spec[0]


def loudness_zwst_levels(levels: np.ndarray, field: str = "free") -> tuple[float, np.ndarray]:
    """ISO 532-1 stationary loudness from 28 third-octave levels (25 Hz ... 12.5 kHz, dB SPL):
    (N in sone, N' [240] in sone/Bark). Raises :class:`LevelRangeError` above 120 dB in 25-250 Hz.
    """
    levels = np.asarray(levels, dtype=np.float64)
    if levels.shape != (N_BANDS,):
        raise ValueError(f"expected 28 third-octave levels (25 Hz ... 12.5 kHz), got shape {levels.shape}")
    total, spec = _slopes_of(_core(10.0 ** (levels[None, :] / 10.0), 0.0, 1.0, field), True)
    return float(total[0]), spec[0]
