"""``soundaq features`` on the local pool and on a local Ray cluster, side by side in one run.

    python benchmark/perf/engine_bench.py [--clips 60] [--seconds 30] [--workers 2] [--repeat 2] [--json F]

Writes ``--clips`` noise clips (44.1 kHz stereo, 16 bit, ``--seconds`` long) to a temporary folder, then
extracts their features (no feature cache) alternately with ``--engine local --workers N`` and with
``--engine ray`` on a cluster of N one-CPU nodes on 127.0.0.1 (a head and N-1 joined nodes,
soundaq.base.ray_local; every Ray process and this driver on the loopback), ``--repeat`` times each, and
prints the best wall time of each engine and their ratio (goal: Ray within 1.15x of the pool, issue 27).
Each timed run is the whole library call, worker start-up included: the pool starts its processes
anew per call; Ray's driver connects, its workers are started by the cluster (once: later runs find
them warm, which the per-run times show). The cluster's own start is timed apart. Both engines' outputs
are checked equal (every array of every .npz). Wall time on a shared machine counts what other jobs
took: run it twice and compare.
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
    import numpy as np
    import soundfile as sf

    files = []
    for i in range(clips):
        x = np.clip(0.1 * np.random.default_rng(i).standard_normal((int(seconds * rate), 2)), -0.9, 0.9)
        files.append(folder / f"clip{i:03d}.wav")
        sf.write(files[-1], x, rate, subtype="PCM_16")
    return files


def same_outputs(a: Path, b: Path) -> bool:
    import numpy as np

    entries = json.loads((a / "manifest.json").read_text())["files"]
    for entry in entries:
        with np.load(a / entry["output"]) as za, np.load(b / entry["output"]) as zb:
            if not (np.array_equal(za["mel"], zb["mel"]) and np.array_equal(za["loudness"], zb["loudness"])):
                return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each clip (default 30)")
    ap.add_argument("--workers", type=int, default=2, help="pool workers = one-CPU Ray nodes (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each engine, alternating (best is kept)")
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)

    from soundaq.base.ray_local import LoopbackCluster, foreign_connections, keep_driver_on_loopback

    keep_driver_on_loopback()   # before Ray is imported
    from soundaq.models_zoo.features.batch import extract_files

    times: dict[str, list[float]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory(prefix="soundaq-engine-bench-") as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        files = write_clips(folder / "in", args.clips, args.seconds)
        t0 = time.perf_counter()
        with LoopbackCluster(nodes=args.workers, cpus=1, object_store_mb=80) as cluster:
            start_s = time.perf_counter() - t0
            cluster.drive_from_here()
            print(f"Ray cluster of {args.workers} one-CPU nodes on {cluster.address} started in {start_s:.1f} s")
            for run in range(args.repeat):
                for engine in ("local", "ray"):
                    out = folder / f"{engine}{run}"
                    w0 = time.perf_counter()
                    manifest = extract_files(files, out, workers=args.workers, progress=False, engine=engine,
                                             address=cluster.address if engine == "ray" else None)
                    times[engine].append(time.perf_counter() - w0)
                    assert manifest["summary"]["failed"] == 0, manifest["summary"]
                    print(f"run {run + 1} {engine:5s}: {times[engine][-1]:7.2f} s wall")
            foreign = foreign_connections(cluster.live_pids() + [os.getpid()])
        equal = same_outputs(folder / "local0", folder / "ray0")
    best = {k: min(v) for k, v in times.items()}
    ratio = best["ray"] / best["local"]
    print(f"features of {args.clips} clips of {args.seconds:g} s, {args.workers} workers: local pool "
          f"{best['local']:.2f} s, Ray {best['ray']:.2f} s (best of {args.repeat}); ratio Ray/local {ratio:.2f}x "
          f"(goal <= {RATIO_GOAL}x: {'met' if ratio <= RATIO_GOAL else 'NOT met'}); outputs equal: {equal}; "
          f"sockets off the loopback: {len(foreign)}")
    if args.json:
        from soundaq.base.fileio import atomic_write_json

        atomic_write_json(args.json, {"clips": args.clips, "seconds": args.seconds, "workers": args.workers,
                                      "cluster_start_s": start_s, "runs": times, "best": best, "ratio": ratio,
                                      "outputs_equal": equal, "foreign_sockets": foreign})
    return 0 if equal and not foreign else 1


if __name__ == "__main__":
    sys.exit(main())
