"""Feature pipeline speed: fast ISO 532-1 loudness vs mosqito side by side, and the ARAUS projection.

    python benchmark/perf/features_bench.py --reference ../shared/reference [--annex-b DIR] [--skip-mosqito]
                                            [--repeat 5] [--parallel 8] [--json F]

Prints the CPU (process) time and wall time of each stage on the sample 30-s clip; the time of the
loudness of that clip and of ISO 532-1 Annex B(-like) signals through both backends, run side by side
in this one process, with their ratio and agreement; and the projected time to extract both features
(log-mel and loudness) of all 25,248 ARAUS clips on 2 cores. CPU time is the fair basis on a shared
machine: wall time also counts the time other processes held the core. Everything runs with one
BLAS thread, as each worker of ``soundaq features --workers N`` does (soundaq.base.parallel).

Annex B: with ``--annex-b DIR``, every ``Test signal N (...).wav`` under DIR (the standard's own
files, e.g. those in mosqito's ``validations/`` folder; full scale = 2 sqrt(2) Pa peak) is timed;
without it, signals generated after the descriptions of Annex B.4 (tone and pink-noise level ramps
of 1 dB per 0.2 s between 0.1 s and 0.5 s of digital silence, 1-kHz tone pulses then silence).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ARAUS_CLIPS = 25248
SPEEDUP_TARGET = 300      # mosqito / fast, CPU time (issue 17)
ARAUS_CORES = 2           # the projection's machine (issue 17)
ARAUS_TARGET_MIN = 45.0   # both features of all ARAUS clips on ARAUS_CORES cores (issue 17)
CLIP = "sample_clip/fold_1_participant_00056_stimulus_13.flac"
CALIBRATION = "sample_clip/calibration_sine_1kHz_60dB.wav"
FS = 48000


def timed(fn, *args, repeat: int = 1):
    """(result, best wall seconds, best CPU seconds) over ``repeat`` runs."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn(*args)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return result, best_wall, best_cpu


def _one_clip(path: str) -> float:
    from soundaq.models_zoo.features import compute_file_features

    c0 = time.process_time()
    compute_file_features(path)
    return time.process_time() - c0


def _at_db(x, db):
    import numpy as np

    return x * (2e-5 * 10 ** (db / 20) / np.sqrt(np.mean(x ** 2)))


def annex_b_like(seed: int = 0) -> list[tuple[str, object, int, str]]:
    """Signals shaped like ISO 532-1 Annex B.4 test signals 6-13: (name, pascals, rate, field)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(0.2 * FS)) / FS

    def ramp(make_step):
        steps = [make_step(db, i) for i, db in enumerate(range(30, 80))]
        return np.concatenate([np.zeros(FS // 10), *steps, np.zeros(FS // 2)])

    def tone_step(freq):
        return lambda db, i: _at_db(np.sin(2 * np.pi * freq * (t + 0.2 * i)), db)

    def pink_step(db, i):
        spec = np.fft.rfft(rng.standard_normal(t.size))
        spec[1:] /= np.sqrt(np.fft.rfftfreq(t.size, 1 / FS)[1:])
        spec[0] = 0
        return _at_db(np.fft.irfft(spec, t.size), db - 5)

    def pulse(ms, db=70.0):
        n = int(ms * FS / 1000)
        return np.concatenate([_at_db(np.sin(2 * np.pi * 1000 * np.arange(n) / FS), db), np.zeros(FS - n)])

    combined = np.concatenate([_at_db(np.sin(2 * np.pi * 1000 * np.arange(4800) / FS), 60),
                               _at_db(np.sin(2 * np.pi * 1000 * np.arange(2400) / FS), 73), np.zeros(FS - 7200)])
    return [("like 6: tone 250 Hz 30-80 dB", ramp(tone_step(250)), FS, "free"),
            ("like 7: tone 1 kHz 30-80 dB", ramp(tone_step(1000)), FS, "free"),
            ("like 8: tone 4 kHz 30-80 dB", ramp(tone_step(4000)), FS, "free"),
            ("like 9: pink noise rising", ramp(pink_step), FS, "free"),
            ("like 10: tone pulse 10 ms", pulse(10), FS, "free"),
            ("like 11: tone pulse 50 ms", pulse(50), FS, "free"),
            ("like 12: tone pulse 500 ms", pulse(500), FS, "free"),
            ("like 13: combined pulses", combined, FS, "free")]


def annex_b_files(folder: Path) -> list[tuple[str, object, int, str]]:
    """The standard's time-varying test signals (6-25) found under ``folder``."""
    import soundfile as sf

    out = []
    for path in sorted(folder.rglob("Test signal *.wav"), key=lambda p: int(p.name.split()[2])):
        number = int(path.name.split()[2])
        if number < 6:      # 2-5 are the stationary ones
            continue
        x, rate = sf.read(path, dtype="int16")
        out.append((path.stem, 2 * 2 ** 0.5 * x / (2 ** 15 - 1), rate, "diffuse" if number == 15 else "free"))
    return out


def compare_signals(signals, repeat: int, with_mosqito: bool) -> list[dict]:
    """Fast N(t), fast N(t) + N'(z, t) and (optionally) mosqito's loudness_zwtv on each signal."""
    import numpy as np
    from mosqito.sq_metrics import loudness_zwtv

    from soundaq.models_zoo.features.iso532 import loudness_zwtv_fast, specific_loudness_zwtv_fast

    rows = []
    for name, x, rate, field in signals:
        n, _, c_fast = timed(loudness_zwtv_fast, x, rate, field, repeat=repeat)
        (_n2, spec), _, c_spec = timed(specific_loudness_zwtv_fast, x, rate, field, repeat=repeat)
        row = {"signal": name, "seconds": len(x) / rate, "fast_cpu_s": c_fast, "fast_specific_cpu_s": c_spec}
        if with_mosqito:
            with contextlib.redirect_stdout(io.StringIO()):
                (m, m_spec, _, _), _, c_mos = timed(loudness_zwtv, x, rate, field)
            row.update(mosqito_cpu_s=c_mos, ratio=c_mos / c_fast, ratio_with_specific=c_mos / c_spec,
                       max_abs_N=float(np.abs(n - m).max()), max_abs_specific=float(np.abs(spec - m_spec).max()))
        rows.append(row)
    return rows


def print_signal_table(title: str, rows: list[dict]) -> dict:
    """Print one line per signal (CPU s of each backend, their ratio and agreement) and the totals.

    Returns:
        The totals: CPU seconds of each backend, speed-ups, and the largest differences (sone, sone/Bark).
    """
    print(f"\n{title}")
    mos = "mosqito_cpu_s" in rows[0]
    print(f"{'signal':44s} {'s':>6s} {'fast N':>8s} {'N + Nspec':>9s}" +
          (f" {'mosqito':>8s} {'ratio':>6s} {'ratio2':>6s} {'max|dN|':>8s} {'max|dN`|':>8s}" if mos else ""))
    for r in rows:
        line = f"{r['signal'][:44]:44s} {r['seconds']:6.2f} {r['fast_cpu_s']:8.4f} {r['fast_specific_cpu_s']:9.4f}"
        if mos:
            line += (f" {r['mosqito_cpu_s']:8.2f} {r['ratio']:6.0f} {r['ratio_with_specific']:6.0f}"
                     f" {r['max_abs_N']:8.1e} {r['max_abs_specific']:8.1e}")
        print(line)
    total = {"fast_cpu_s": sum(r["fast_cpu_s"] for r in rows),
             "fast_specific_cpu_s": sum(r["fast_specific_cpu_s"] for r in rows)}
    if mos:
        total["mosqito_cpu_s"] = sum(r["mosqito_cpu_s"] for r in rows)
        total["ratio"] = total["mosqito_cpu_s"] / total["fast_cpu_s"]
        total["ratio_with_specific"] = total["mosqito_cpu_s"] / total["fast_specific_cpu_s"]
        total["min_ratio"] = min(r["ratio"] for r in rows)
        total["max_abs_N"] = max(r["max_abs_N"] for r in rows)
        total["max_abs_specific"] = max(r["max_abs_specific"] for r in rows)
        print(f"all: mosqito {total['mosqito_cpu_s']:.1f} s CPU | fast {total['fast_cpu_s']:.3f} s "
              f"({total['fast_specific_cpu_s']:.3f} s with N') | speed-up {total['ratio']:.0f}x "
              f"({total['ratio_with_specific']:.0f}x with N'), smallest single {total['min_ratio']:.0f}x "
              f"(target >= {SPEEDUP_TARGET}x: {'met' if total['ratio'] >= SPEEDUP_TARGET else 'NOT met'}); "
              f"max |N - N_mosqito| {total['max_abs_N']:.1e} sone, max |N' - N'_mosqito| "
              f"{total['max_abs_specific']:.1e} sone/Bark")
    return total


def _parse(argv) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--reference", type=Path, default=os.environ.get("SOUNDAQ_REFERENCE"),
                    help="the shared reference folder (or set SOUNDAQ_REFERENCE)")
    ap.add_argument("--annex-b", type=Path, default=os.environ.get("SOUNDAQ_ISO532_ANNEX_B"),
                    help="folder with the ISO 532-1 Annex B WAV files (default: generated Annex-B-like signals)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each fast stage (best is kept)")
    ap.add_argument("--skip-mosqito", action="store_true", help="do not time mosqito (minutes of CPU)")
    ap.add_argument("--parallel", type=int, default=0,
                    help="also extract this many copies of the clip with one process per core")
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    return ap.parse_args(argv)


def _time_clip(ref: Path, repeat: int, cores: int) -> tuple[list[tuple[str, float, float]], dict, tuple]:
    """Time each stage on the sample clip, fast loudness against the reference program's.

    Returns:
        ``(rows (stage, wall s, CPU s), numbers, (pascals, rate, fast N(t), fast N'(z, t), the reference
        program's N(t)))``.
    """
    import warnings

    import numpy as np

    from soundaq.models_zoo.features import Calibration, load_audio, log_mel, loudness
    from soundaq.models_zoo.features.iso532 import loudness_zwtv_fast, specific_loudness_zwtv_fast

    clip = ref / CLIP
    loudness_zwtv_fast(np.zeros(4800), 44100)  # compile / load the numba cache, plan the FFTs outside the timings
    specific_loudness_zwtv_fast(np.zeros(4800), 48000)
    (samples, rate), t_load, c_load = timed(load_audio, clip, repeat=repeat)
    log_mel(samples[:rate], rate)
    pascals = samples * Calibration.from_recording(ref / CALIBRATION).pascal_per_unit
    _, t_mel, c_mel = timed(log_mel, samples, rate, repeat=repeat)
    fast, t_fast, c_fast = timed(loudness, pascals, rate, "fast", repeat=repeat)
    (_, spec), t_spec, c_spec = timed(specific_loudness_zwtv_fast, pascals, rate, repeat=repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference .npy was written by Python 2
        reference = np.load(ref / "sample_clip/reference_loudness_iso532_1.npy")[:, 0]
    rows = [("load flac (44.1 kHz stereo, 30 s)", t_load, c_load),
            ("log-mel [3001, 64]", t_mel, c_mel),
            ("loudness N(t), fast backend [15000]", t_fast, c_fast),
            ("N(t) + N'(z,t) [240, 15000], fast", t_spec, c_spec)]
    out = {"clip": clip.name, "cores": cores, "load": [t_load, c_load], "log_mel": [t_mel, c_mel],
           "loudness_fast": [t_fast, c_fast], "specific_fast": [t_spec, c_spec],
           "fast_vs_reference": {"mean_abs": float(np.abs(fast - reference).mean()),
                                 "max_abs": float(np.abs(fast - reference).max())}}
    return rows, out, (pascals, rate, fast, spec, reference)


def _time_mosqito(rows: list[tuple[str, float, float]], out: dict, signal: tuple) -> None:
    """Time mosqito's loudness_zwtv on the sample clip; add its row and its agreement numbers."""
    import numpy as np
    from mosqito.sq_metrics import loudness_zwtv

    pascals, rate, fast, spec, reference = signal
    with contextlib.redirect_stdout(io.StringIO()):
        (slow, slow_spec, _, _), t_mos, c_mos = timed(loudness_zwtv, pascals, rate)
    rows.append(("loudness N(t) + N'(z,t), mosqito", t_mos, c_mos))
    out["loudness_mosqito"] = [t_mos, c_mos]
    out["fast_vs_mosqito"] = {"max_abs": float(np.abs(fast - slow).max()),
                              "max_abs_specific": float(np.abs(spec - slow_spec).max())}
    out["mosqito_vs_reference"] = {"mean_abs": float(np.abs(slow - reference).mean()),
                                   "max_abs": float(np.abs(slow - reference).max())}
    out["speedup"] = {"wall": t_mos / out["loudness_fast"][0], "cpu": c_mos / out["loudness_fast"][1],
                      "cpu_with_specific": c_mos / out["specific_fast"][1]}


def _print_clip(rows: list[tuple[str, float, float]], out: dict) -> None:
    """Print the sample clip's stage table and agreement lines."""
    print(f"{'stage, sample clip':40s} {'wall s':>9s} {'CPU s':>9s}")
    for name, wall, cpu in rows:
        print(f"{name:40s} {wall:9.3f} {cpu:9.3f}")
    print(f"fast vs reference program: mean |diff| {out['fast_vs_reference']['mean_abs']:.6f} sone, "
          f"max {out['fast_vs_reference']['max_abs']:.6f} sone")
    if "speedup" in out:
        s = out["speedup"]
        c_mos, c_fast, c_spec = out["loudness_mosqito"][1], out["loudness_fast"][1], out["specific_fast"][1]
        print(f"mosqito vs reference program: mean |diff| {out['mosqito_vs_reference']['mean_abs']:.6f}, "
              f"max {out['mosqito_vs_reference']['max_abs']:.6f}")
        print(f"fast vs mosqito: max |diff| N {out['fast_vs_mosqito']['max_abs']:.1e} sone, "
              f"N' {out['fast_vs_mosqito']['max_abs_specific']:.1e} sone/Bark")
        print(f"loudness of one 30-s clip: mosqito {c_mos:.2f} s CPU | fast {c_fast:.3f} s CPU "
              f"({c_spec:.3f} s with N') | speed-up {s['cpu']:.0f}x ({s['cpu_with_specific']:.0f}x with N'; "
              f"target >= {SPEEDUP_TARGET}x: {'met' if s['cpu'] >= SPEEDUP_TARGET else 'NOT met'}); "
              f"wall-time ratio {s['wall']:.0f}x")


def _project_araus(out: dict, cores: int) -> None:
    """Project both features of all ARAUS clips from the per-clip CPU time; print and record it."""
    per_clip_cpu = out["load"][1] + out["log_mel"][1] + out["loudness_fast"][1]
    out["per_clip_cpu_s"] = per_clip_cpu
    minutes = ARAUS_CLIPS * per_clip_cpu / ARAUS_CORES / 60
    out["araus_projection_min"] = {f"{ARAUS_CORES}_cores": minutes, f"{cores}_cores_here": minutes * ARAUS_CORES / cores}
    print(f"\nper clip (load + log-mel + loudness): {per_clip_cpu:.3f} s CPU; ARAUS {ARAUS_CLIPS} clips, both "
          f"features, on {ARAUS_CORES} cores: {minutes:.0f} min (target < {ARAUS_TARGET_MIN:g} min: "
          f"{'met' if minutes < ARAUS_TARGET_MIN else 'NOT met'})")
    if "loudness_mosqito" in out:
        mos_h = ARAUS_CLIPS * out["loudness_mosqito"][1] / 3600
        print(f"mosqito alone for ARAUS: {mos_h:.0f} core-hours")
        out["araus_mosqito_core_h"] = mos_h


def _time_parallel(clip: Path, n: int, cores: int) -> dict:
    """Extract ``n`` copies of the clip with one process per core; print and return the rate."""
    from concurrent.futures import ProcessPoolExecutor

    from soundaq.base.parallel import one_thread_each

    with ProcessPoolExecutor(cores, initializer=one_thread_each) as pool:
        list(pool.map(_one_clip, [str(clip)] * cores))  # warm the workers
        w0 = time.perf_counter()
        cpu = list(pool.map(_one_clip, [str(clip)] * n))
        wall = time.perf_counter() - w0
    print(f"parallel: {n} clips on {cores} workers in {wall:.2f} s wall "
          f"({n / wall:.2f} clips/s, {sum(cpu) / len(cpu):.3f} s CPU per clip); "
          f"ARAUS at this rate: {ARAUS_CLIPS / (n / wall) / 60:.0f} min")
    return {"clips": n, "workers": cores, "wall_s": wall, "clips_per_s": n / wall, "cpu_per_clip_s": sum(cpu) / len(cpu)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring); exit code 2 on a missing reference or Annex B folder."""
    args = _parse(argv)
    if args.reference is None or not (Path(args.reference) / CLIP).exists():
        print("features_bench: pass --reference DIR (the shared reference folder holding sample_clip/)",
              file=sys.stderr)
        return 2
    if args.annex_b is not None and not Path(args.annex_b).is_dir():
        print(f"features_bench: --annex-b {args.annex_b}: not a folder", file=sys.stderr)
        return 2
    from soundaq.base.parallel import one_thread_each

    one_thread_each()   # one BLAS thread, as each worker of `soundaq features --workers N` runs
    ref = Path(args.reference)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    rows, out, signal = _time_clip(ref, args.repeat, cores)
    if not args.skip_mosqito:
        _time_mosqito(rows, out, signal)
    _print_clip(rows, out)

    signals = annex_b_files(Path(args.annex_b)) if args.annex_b else annex_b_like()
    title = (f"ISO 532-1 Annex B test signals from {args.annex_b}" if args.annex_b
             else "Annex-B-like signals (generated; pass --annex-b DIR for the standard's files)")
    if not signals:
        print(f"features_bench: no 'Test signal N (...).wav' (N >= 6) under {args.annex_b}", file=sys.stderr)
        return 2
    annex_rows = compare_signals(signals, args.repeat, not args.skip_mosqito)
    out["annex_b"] = {"source": str(args.annex_b) if args.annex_b else "generated", "signals": annex_rows,
                      "total": print_signal_table(title, annex_rows)}
    _project_araus(out, cores)
    if args.parallel:
        out["parallel"] = _time_parallel(ref / CLIP, args.parallel, cores)
    if args.json:
        from soundaq.base.fileio import atomic_write_json

        atomic_write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
