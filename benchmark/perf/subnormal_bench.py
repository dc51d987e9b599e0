"""Cost of the audio path on silence, pulses, zero padding and DC offsets against full noise (F2-15).

    python -m soundaq.benchmark.perf.subnormal_bench [--seconds 30] [--rates 48000 44100] [--repeat 5] [--json F]

Every recursive filter or accumulator on the feature path (ISO 532-1 band filters and smoothing,
non-linear decay, temporal weighting; FFT resampling to 48 kHz; soxr resampling and the STFT of the
log-mel) runs on each signal below, all of the same length, and its CPU time is divided by its time
on full noise: the cost per second of audio relative to noise (the issue's limit: 1.5). The ISO 532-1
stages run twice, with the flush-to-zero of their recursive states (``iso532.SNAP``, the shipped code)
and without it (snap = 0: the code before the fix), side by side. Where the CPU computes subnormal
numbers slowly (many Intel cores: 20-100x per operation), the "without" columns show the slowdown
of F2-15; CPUs that handle subnormals at full speed show about the same numbers in both.
CPU (process) time is measured, best of ``--repeat`` runs, so other load on a shared machine inflates
it little; ratios come from one run.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

LIMIT = 1.5
PA_RMS = 0.02                     # 60 dB SPL


def cases(seconds: float, rate: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The signals (pascals; also used as full-scale samples for the log-mel), all ``seconds`` long."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    noise = PA_RMS * rng.standard_normal(n)
    one = min(n, rate)

    def padded(head: np.ndarray) -> np.ndarray:
        return np.concatenate([head, np.zeros(n - head.size)])

    return {
        "noise": noise,
        "silence": np.zeros(n),
        "10-ms pulse": padded(noise[: rate // 100]),
        "1 s + zero padding": padded(noise[:one]),
        "DC offset": np.full(n, PA_RMS),
        "noise + DC, padded": padded(noise[:one] + PA_RMS),
        "subnormal input": padded(noise[:one]) + np.where(np.arange(n) >= one, 1e-310, 0.0),
    }


def _cpu(fn) -> tuple[float, object]:
    t0 = time.process_time()
    result = fn()
    return time.process_time() - t0, result


def subnormals(result) -> int:
    """How many subnormal float64 values (0 < |v| < 2.2e-308) an output holds."""
    arrays = result if isinstance(result, tuple) else (result,)
    tiny = np.finfo(np.float64).tiny
    return int(sum(((a != 0) & (np.abs(a) < tiny)).sum() for a in arrays if isinstance(a, np.ndarray)))


def stages(x: np.ndarray, rate: int) -> dict[str, object]:
    """Stage name -> zero-argument callable on signal ``x``: each ISO 532-1 recursion with the shipped
    flush-to-zero and, as "... [no flush]", without it; the stages without recursion once.
    """
    from soundaq.models_zoo.features import iso532 as I
    from soundaq.models_zoo.features import logmel

    x48 = np.ascontiguousarray(I.to_48k(x, rate))
    inputs = {}
    for snap in (I.SNAP, 0.0):
        inten = I._band_intensities(x48, I._FILTER_COEF, I.DECIMATION, snap)
        core = I._core(inten, I.TINY, I.I_REF, "free")
        decayed = I._nonlinear_decay(core, I._DECAY_B, I.SUBSTEPS, snap)
        inputs[snap] = (inten, core, decayed, I._slopes_of(decayed, False)[0])
    out: dict[str, object] = {}
    if rate != I.FS:
        out["FFT resampling to 48 kHz"] = lambda: I.to_48k(x, rate)
    for snap, label in ((I.SNAP, ""), (0.0, " [no flush]")):
        inten, core, decayed, total = inputs[snap]
        out["band filters + smoothing" + label] = \
            lambda snap=snap: I._band_intensities(x48, I._FILTER_COEF, I.DECIMATION, snap)
        if not label:
            out["core loudness"] = lambda inten=inten: I._core(inten, I.TINY, I.I_REF, "free")
        out["non-linear decay" + label] = lambda core=core, snap=snap: I._nonlinear_decay(core, I._DECAY_B,
                                                                                         I.SUBSTEPS, snap)
        if not label:
            out["slopes (total loudness)"] = lambda decayed=decayed: I._slopes_of(decayed, False)
        out["temporal weighting" + label] = lambda total=total, snap=snap: I.temporal_weighting(total, keep=4,
                                                                                              snap=snap)
        out["loudness N(t), whole" + label] = lambda snap=snap: I._zwtv(x, rate, "free", False, snap)
    if rate != logmel.MEL_SAMPLE_RATE:
        out["soxr resampling to 16 kHz"] = lambda: logmel.resample(x, rate, logmel.MEL_SAMPLE_RATE)
    out["log-mel, whole"] = lambda: logmel.log_mel(x, rate)
    order = ["FFT resampling to 48 kHz", "band filters + smoothing", "core loudness", "non-linear decay",
             "slopes (total loudness)", "temporal weighting", "loudness N(t), whole", "soxr resampling to 16 kHz",
             "log-mel, whole"]
    ranked = [k for base in order for k in (base, base + " [no flush]") if k in out]
    return {k: out[k] for k in ranked}


def run(seconds: float, rates: list[int], repeat: int) -> dict:
    """Time every stage on every signal at each rate, round robin, and count subnormal outputs.

    Args:
        seconds: length of every signal (s).
        rates: sample rates (Hz).
        repeat: runs of each stage; the fastest counts.

    Returns:
        Per rate: the CPU seconds on noise, each signal's ratio to them and the subnormal counts.
    """
    from soundaq.models_zoo.features import iso532 as I
    from soundaq.models_zoo.features import logmel

    I._zwtv(np.zeros(4800), I.FS, "free", False)       # load the compiled kernels outside the timings
    I._zwtv(np.zeros(4800), I.FS, "free", False, 0.0)
    report: dict = {"seconds": seconds, "limit": LIMIT, "repeat": repeat, "rates": {}}
    for rate in rates:
        logmel.log_mel(np.zeros(rate), rate)            # import librosa, plan the FFTs
        signals = cases(seconds, rate)
        plan = {name: stages(x, rate) for name, x in signals.items()}
        best = {name: {stage: float("inf") for stage in plan[name]} for name in plan}
        subs: dict[str, dict[str, int]] = {name: {} for name in plan}
        for _ in range(repeat):      # round robin: a change of load on the machine hits every case alike
            for name, calls in plan.items():
                for stage, call in calls.items():
                    cpu, result = _cpu(call)
                    best[name][stage] = min(best[name][stage], cpu)
                    subs[name][stage] = subnormals(result)
        base = best["noise"]
        ratios = {stage: {name: best[name][stage] / base[stage] if base[stage] > 0 else float("nan")
                          for name in signals} for stage in base}
        counts = {stage: {name: subs[name][stage] for name in signals} for stage in base}
        report["rates"][rate] = {"noise_cpu_s": base, "ratios": ratios, "subnormal_outputs": counts}
    return report


def print_report(report: dict) -> bool:
    """Print one table per rate; True when every shipped stage is within the limit."""
    ok = True
    for rate, data in report["rates"].items():
        ratios, base = data["ratios"], data["noise_cpu_s"]
        names = list(next(iter(ratios.values())))[1:]
        print(f"\n{rate} Hz, {report['seconds']:g} s per signal: CPU time per second of audio relative to noise "
              f"(limit {report['limit']:g}; '!' above it)")
        head = f"{'stage':40s} {'noise s':>8s} " + " ".join(f"{n[:18]:>18s}" for n in names)
        print(head)
        print("-" * len(head))
        for stage, row in ratios.items():
            cells = []
            for name in names:
                r = row[name]
                bad = r > report["limit"]
                if bad and "[no flush]" not in stage:
                    ok = False
                cells.append(f"{r:17.2f}{'!' if bad else ' '}")
            print(f"{stage:40s} {base[stage]:8.3f} " + " ".join(cells))
        counts = data["subnormal_outputs"]
        print(f"\nsubnormal numbers in each stage's output, {rate} Hz")
        print(f"{'stage':40s} {'noise':>8s} " + " ".join(f"{n[:18]:>18s}" for n in names))
        for stage, row in counts.items():
            print(f"{stage:40s} {row['noise']:8d} " + " ".join(f"{row[n]:18d}" for n in names))
    print("\n[no flush]: the same stage with iso532's flush-to-zero of recursive states turned off "
          "(the code before the F2-15 fix).")
    print("all shipped stages within the limit" if ok else "SOME SHIPPED STAGE EXCEEDS THE LIMIT")
    return ok


def main(argv=None) -> int:
    """Run the benchmark and print its tables; exit code 0 when every shipped stage is within the limit."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of every signal (default 30, one ARAUS clip)")
    ap.add_argument("--rates", type=int, nargs="+", default=[48000, 44100],
                    help="sample rates to run (default 48000, where the band filters see exact zeros, and 44100)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each stage (round robin over the signals); the fastest counts")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    report = run(args.seconds, args.rates, args.repeat)
    ok = print_report(report)
    if args.json:
        from soundaq.base.fileio import atomic_write_json

        atomic_write_json(args.json, report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
