"""Feature pipeline speed: fast ISO 532-1 loudness vs mosqito side by side, and ARAUS throughput.

    python benchmark/perf/features_bench.py --reference ../shared/reference [--skip-mosqito] [--parallel 8]

Prints wall-clock and CPU (process) time of each stage on the sample 30-s clip, the agreement of
the two loudness backends, the mosqito / fast ratio, and the projected time to extract all 25,248
ARAUS clips on this machine's cores. CPU time is the fair basis on a shared machine: wall time
also counts the time other processes held the core.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ARAUS_CLIPS = 25248
SPEEDUP_TARGET = 100      # mosqito / fast, issue 3
ARAUS_TARGET_H = 2.0      # all ARAUS clips on this machine's cores, issue 3
CLIP = "sample_clip/fold_1_participant_00056_stimulus_13.flac"
CALIBRATION = "sample_clip/calibration_sine_1kHz_60dB.wav"


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=os.environ.get("SOUNDAQ_REFERENCE"),
                    help="the shared reference folder (or set SOUNDAQ_REFERENCE)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each fast stage (best is kept)")
    ap.add_argument("--skip-mosqito", action="store_true", help="do not time mosqito (about 40 s of CPU)")
    ap.add_argument("--parallel", type=int, default=0,
                    help="also extract this many copies of the clip with one process per core")
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    if args.reference is None or not (Path(args.reference) / CLIP).exists():
        print("features_bench: pass --reference DIR (the shared reference folder holding sample_clip/)",
              file=sys.stderr)
        return 2
    import numpy as np

    from soundaq.models_zoo.features import Calibration, load_audio, log_mel, loudness
    from soundaq.models_zoo.features.iso532 import loudness_zwtv_fast

    ref = Path(args.reference)
    clip = ref / CLIP
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    loudness_zwtv_fast(np.zeros(4800), 48000)  # compile / load the numba cache outside the timings
    (samples, rate), t_load, c_load = timed(load_audio, clip, repeat=args.repeat)
    pascals = samples * Calibration.from_recording(ref / CALIBRATION).pascal_per_unit
    _, t_mel, c_mel = timed(log_mel, samples, rate, repeat=args.repeat)
    fast, t_fast, c_fast = timed(loudness, pascals, rate, "fast", repeat=args.repeat)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference .npy was written by Python 2
        reference = np.load(ref / "sample_clip/reference_loudness_iso532_1.npy")[:, 0]
    rows = [("load flac (44.1 kHz stereo, 30 s)", t_load, c_load),
            ("log-mel [3001, 64]", t_mel, c_mel),
            ("loudness, fast backend [15000]", t_fast, c_fast)]
    out = {"clip": clip.name, "cores": cores, "load": [t_load, c_load], "log_mel": [t_mel, c_mel],
           "loudness_fast": [t_fast, c_fast],
           "fast_vs_reference": {"mean_abs": float(np.abs(fast - reference).mean()),
                                 "max_abs": float(np.abs(fast - reference).max())}}
    if not args.skip_mosqito:
        slow, t_mos, c_mos = timed(loudness, pascals, rate, "mosqito")
        rows.append(("loudness, mosqito backend", t_mos, c_mos))
        out["loudness_mosqito"] = [t_mos, c_mos]
        out["fast_vs_mosqito"] = {"mean_abs": float(np.abs(fast - slow).mean()),
                                  "max_abs": float(np.abs(fast - slow).max())}
        out["mosqito_vs_reference"] = {"mean_abs": float(np.abs(slow - reference).mean()),
                                       "max_abs": float(np.abs(slow - reference).max())}
        out["speedup"] = {"wall": t_mos / t_fast, "cpu": c_mos / c_fast}

    per_clip_cpu = c_load + c_mel + c_fast
    out["per_clip_cpu_s"] = per_clip_cpu
    out["araus_projection_h"] = ARAUS_CLIPS * per_clip_cpu / cores / 3600
    print(f"{'stage':36s} {'wall s':>9s} {'CPU s':>9s}")
    for name, wall, cpu in rows:
        print(f"{name:36s} {wall:9.3f} {cpu:9.3f}")
    print(f"fast vs reference program: mean |diff| {out['fast_vs_reference']['mean_abs']:.6f} sone, "
          f"max {out['fast_vs_reference']['max_abs']:.6f} sone")
    if "speedup" in out:
        print(f"mosqito vs reference program: mean |diff| {out['mosqito_vs_reference']['mean_abs']:.6f}, "
              f"max {out['mosqito_vs_reference']['max_abs']:.6f}")
        print(f"fast vs mosqito: mean |diff| {out['fast_vs_mosqito']['mean_abs']:.2e}, "
              f"max {out['fast_vs_mosqito']['max_abs']:.2e} sone")
        print(f"loudness of one 30-s clip: mosqito {c_mos:.2f} s CPU | fast {c_fast:.3f} s CPU | "
              f"speed-up {out['speedup']['cpu']:.0f}x (target >= {SPEEDUP_TARGET}x: "
              f"{'met' if out['speedup']['cpu'] >= SPEEDUP_TARGET else 'NOT met'}); wall-time ratio "
              f"{out['speedup']['wall']:.0f}x")
    print(f"per clip (load + log-mel + loudness): {per_clip_cpu:.3f} s CPU; "
          f"ARAUS {ARAUS_CLIPS} clips on {cores} cores: {out['araus_projection_h']:.2f} h "
          f"({ARAUS_CLIPS * per_clip_cpu / cores / 60:.0f} min; target < {ARAUS_TARGET_H:g} h: "
          f"{'met' if out['araus_projection_h'] < ARAUS_TARGET_H else 'NOT met'})")
    if "loudness_mosqito" in out:
        mos_h = ARAUS_CLIPS * out["loudness_mosqito"][1] / 3600
        print(f"mosqito alone for ARAUS: {mos_h:.0f} core-hours")
        out["araus_mosqito_core_h"] = mos_h
    if args.parallel:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(cores) as pool:
            list(pool.map(_one_clip, [str(clip)] * cores))  # warm the workers
            w0 = time.perf_counter()
            cpu = list(pool.map(_one_clip, [str(clip)] * args.parallel))
            wall = time.perf_counter() - w0
        out["parallel"] = {"clips": args.parallel, "workers": cores, "wall_s": wall,
                           "clips_per_s": args.parallel / wall, "cpu_per_clip_s": sum(cpu) / len(cpu)}
        print(f"parallel: {args.parallel} clips on {cores} workers in {wall:.2f} s wall "
              f"({args.parallel / wall:.2f} clips/s, {sum(cpu) / len(cpu):.3f} s CPU per clip); "
              f"ARAUS at this rate: {ARAUS_CLIPS / (args.parallel / wall) / 3600:.2f} h")
    if args.json:
        from soundaq.base.fileio import atomic_write_json

        atomic_write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
