"""``soundaq features`` and a small leaderboard grid on the local pool and on a local Ray cluster, side by
side in one run.

    python benchmark/perf/engine_bench.py [--clips 60] [--seconds 30] [--workers 2] [--repeat 2]
                                          [--only features|grid] [--budget-clips 16] [--json F]

Starts a Ray cluster of N one-CPU nodes on 127.0.0.1 (a head and N-1 joined nodes,
soundaq.base.ray_local; every Ray process and this driver on the loopback), then times, ``--repeat``
times each and alternating:

- features: ``--clips`` noise clips (44.1 kHz stereo, 16 bit, ``--seconds`` long) extracted (no feature
  cache) with ``--engine local --workers N`` and with ``--engine ray``; every array of every .npz equal.
- grid: the leaderboard grid of 2 models (Baseline_CNN, Hierarchical_CNN) x 2 training seeds, trained on
  CPU for ``--budget-clips`` clips each on the 12-clip embedded set, with the local pool of N workers and
  with one Ray task per (model, seed); leaderboard.csv of each seed and of the grid equal (timing columns
  aside).

and prints the best wall time of each engine and their ratio (goal: Ray within 1.15x of the pool, issue 27).
Each timed run is the whole library call, worker start-up included: the pool starts its processes
anew per call; Ray's driver connects, and the cluster starts its workers (for each driver anew). The
cluster's own start is timed apart. Wall time on a shared machine counts what other jobs took: run it
twice and compare.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

RATIO_GOAL = 1.15


def write_clips(folder: Path, clips: int, seconds: float, rate: int = 44100) -> list[Path]:
    """Write ``clips`` seeded noise clips (stereo, 16-bit WAV, ``seconds`` long at ``rate`` Hz) into ``folder``;
    returns their paths.
    """
    import numpy as np
    import soundfile as sf

    files = []
    for i in range(clips):
        x = np.clip(0.1 * np.random.default_rng(i).standard_normal((int(seconds * rate), 2)), -0.9, 0.9)
        files.append(folder / f"clip{i:03d}.wav")
        sf.write(files[-1], x, rate, subtype="PCM_16")
    return files


def same_outputs(a: Path, b: Path) -> bool:
    """Whether two ``soundaq features`` output folders hold equal mel and loudness arrays for every file of ``a``'s
    manifest.
    """
    import numpy as np

    entries = json.loads((a / "manifest.json").read_text())["files"]
    for entry in entries:
        with np.load(a / entry["output"]) as za, np.load(b / entry["output"]) as zb:
            if not (np.array_equal(za["mel"], zb["mel"]) and np.array_equal(za["loudness"], zb["loudness"])):
                return False
    return True


TIMING = ["train_seconds", "clips_per_second", "checkpoint_sha256"]
GRID_MODELS = ["Baseline_CNN", "Hierarchical_CNN"]
GRID_SEEDS = [0, 1]


def same_tables(a: Path, b: Path) -> bool:
    """leaderboard.csv of the grid and of each seed equal, timing columns aside."""
    import pandas as pd

    for rel in ["leaderboard.csv", *(f"seed_{k}/leaderboard.csv" for k in GRID_SEEDS)]:
        x, y = (pd.read_csv(d / rel).drop(columns=TIMING, errors="ignore") for d in (a, b))
        if not x.equals(y):
            return False
    return True


def time_features(args, folder: Path, address: str) -> tuple[dict[str, list[float]], bool]:
    """Extract the clips with the local pool and with Ray, alternating, ``args.repeat`` times each; returns (seconds
    per engine, whether their outputs are equal).
    """
    from soundaq.models_zoo.features.batch import extract_files

    (folder / "in").mkdir()
    files = write_clips(folder / "in", args.clips, args.seconds)
    times: dict[str, list[float]] = {"local": [], "ray": []}
    for run in range(args.repeat):
        for engine in ("local", "ray"):
            out = folder / f"{engine}{run}"
            w0 = time.perf_counter()
            manifest = extract_files(files, out, workers=args.workers, progress=False, engine=engine,
                                     address=address if engine == "ray" else None)
            times[engine].append(time.perf_counter() - w0)
            assert manifest["summary"]["failed"] == 0, manifest["summary"]
            print(f"features run {run + 1} {engine:5s}: {times[engine][-1]:7.2f} s wall", flush=True)
    return times, same_outputs(folder / "local0", folder / "ray0")


def time_grid(args, folder: Path, address: str) -> tuple[dict[str, list[float]], bool]:
    """Run the small leaderboard grid with the local pool and with Ray, alternating; returns (seconds per engine,
    whether their tables are equal up to timing columns).
    """
    from soundaq.base.engine import open_engine
    from soundaq.benchmark.leaderboard import Settings, quiet_lightning, run_leaderboard

    quiet_lightning()
    times: dict[str, list[float]] = {"local": [], "ray": []}
    for run in range(args.repeat):
        for engine in ("local", "ray"):
            s = Settings(out=folder / f"grid_{engine}{run}", models=list(GRID_MODELS), seeds=list(GRID_SEEDS),
                         budget_clips=args.budget_clips, batch_size=4, embedded_clips=12, n_resamples=50,
                         workers=args.workers, accelerator="cpu", progress=False, correlate=False)
            w0 = time.perf_counter()
            with open_engine(engine, workers=args.workers, address=address if engine == "ray" else None) as e:
                outcome = run_leaderboard(s, engine=e)
            times[engine].append(time.perf_counter() - w0)
            assert not outcome.failed, outcome.failed
            print(f"grid run {run + 1} {engine:5s}: {times[engine][-1]:7.2f} s wall", flush=True)
    return times, same_tables(folder / "grid_local0", folder / "grid_ray0")


def main(argv=None) -> int:
    """Time both engines (see the module docstring); exit code 0 when the outputs agree and no foreign process was
    left, else 1.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each clip (default 30)")
    ap.add_argument("--workers", type=int, default=2, help="pool workers = one-CPU Ray nodes (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each engine, alternating (best is kept)")
    ap.add_argument("--only", choices=("features", "grid"), default=None, help="time one of the two (default both)")
    ap.add_argument("--budget-clips", type=int, default=16, help="training clips per grid unit (default 16)")
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)

    from soundaq.base.ray_local import LoopbackCluster, foreign_connections, keep_driver_on_loopback

    keep_driver_on_loopback()   # before Ray is imported
    parts = [args.only] if args.only else ["features", "grid"]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="soundaq-engine-bench-") as tmp:
        t0 = time.perf_counter()
        with LoopbackCluster(nodes=args.workers, cpus=1, object_store_mb=80) as cluster:
            start_s = time.perf_counter() - t0
            cluster.drive_from_here()
            assert cluster.address is not None
            print(f"Ray cluster of {args.workers} one-CPU nodes on {cluster.address} started in {start_s:.1f} s")
            for part in parts:
                timer = time_features if part == "features" else time_grid
                times, equal = timer(args, Path(tmp), cluster.address)
                best = {k: min(v) for k, v in times.items()}
                results[part] = {"runs": times, "best": best, "ratio": best["ray"] / best["local"], "equal": equal}
            foreign = foreign_connections([*cluster.live_pids(), os.getpid()])
    what = {"features": f"features of {args.clips} clips of {args.seconds:g} s",
            "grid": f"grid of {len(GRID_MODELS)} models x {len(GRID_SEEDS)} seeds, {args.budget_clips} clips each"}
    for part, r in results.items():
        print(f"{what[part]}, {args.workers} workers: local pool {r['best']['local']:.2f} s, Ray {r['best']['ray']:.2f} "
              f"s (best of {args.repeat}); ratio Ray/local {r['ratio']:.2f}x (goal <= {RATIO_GOAL}x: "
              f"{'met' if r['ratio'] <= RATIO_GOAL else 'NOT met'}); outputs equal: {r['equal']}")
    print(f"sockets off the loopback: {len(foreign)}")
    if args.json:
        from soundaq.base.fileio import atomic_write_json

        atomic_write_json(args.json, {"clips": args.clips, "seconds": args.seconds, "workers": args.workers,
                                      "budget_clips": args.budget_clips, "cluster_start_s": start_s,
                                      **results, "foreign_sockets": foreign})
    return 0 if all(r["equal"] for r in results.values()) and not foreign else 1


if __name__ == "__main__":
    sys.exit(main())
