"""CPU training smoke run of the smallest net (AD_CNN) through the real ``soundaq train`` command.

    .venv/bin/python -m soundaq.benchmark.perf.train_smoke [--cache-dir DIR] [--batch-size 8]
        [--limit-train-batches 4] [--limit-val-batches 2] [--epochs 1] [--threads N] [--full]

Runs ``soundaq train --model AD_CNN --data embedded`` in a fresh process and a fresh run folder
(so the time includes interpreter start, imports, the data module, checkpoints and train.json),
then prints its wall-clock and CPU seconds beside the target (under 60 s). ``--full`` trains whole
epochs of the 360-clip embedded set (240 training clips) instead of the limited smoke run. The
embedded set must exist in the cache or is generated first (minutes; not part of the timing, which
is taken on a second run when generation happened). The load average is printed: on a shared
machine the wall-clock time grows with it, the CPU time much less.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 60.0
ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], env: dict) -> tuple[int, float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.returncode, wall, cpu, proc.stderr


def main(argv=None) -> int:
    """Run the smoke training through ``soundaq train`` and print its times; the command's exit code when it fails,
    else 0.
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", type=Path, default=None, help="soundaq cache holding the embedded set")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--limit-train-batches", default="4")
    ap.add_argument("--limit-val-batches", default="2")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the run (default: torch's)")
    ap.add_argument("--full", action="store_true", help="whole epochs of the embedded set, no batch limits")
    args = ap.parse_args(argv)

    from soundaq.base.paths import embedded_root
    from soundaq.models_zoo.data.synthetic import DEFAULT_CLIPS

    had_set = any(embedded_root(args.cache_dir).glob(f"v*-n{DEFAULT_CLIPS}-seed0-*/manifest.json"))
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="soundaq-smoke-") as tmp:
        def command(out: str) -> list[str]:
            cmd = [sys.executable, "-m", "soundaq", "train", "--model", "AD_CNN", "--data", "embedded",
                   "--max-epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--out", out,
                   "--no-progress", "--seed", "0"]
            if args.cache_dir:
                cmd += ["--cache-dir", str(args.cache_dir)]
            if not args.full:
                cmd += ["--limit-train-batches", args.limit_train_batches,
                        "--limit-val-batches", args.limit_val_batches]
            return cmd

        code, wall, cpu, err = _run(command(str(Path(tmp) / "run")), env)
        if code != 0:
            print(err[-3000:], file=sys.stderr)
            return code
        record = json.loads((Path(tmp) / "run" / "train.json").read_text())
        if not had_set:
            # The first call generated the embedded set: time a second, clean run.
            code, wall, cpu, err = _run(command(str(Path(tmp) / "run2")), env)
            record = json.loads((Path(tmp) / "run2" / "train.json").read_text())
    load = os.getloadavg()
    what = ("full epochs" if args.full else
            f"{args.limit_train_batches} train + {args.limit_val_batches} val batches of {args.batch_size}")
    print(f"AD_CNN CPU training smoke run ({args.epochs} epoch(s), {what}); "
          f"load average {load[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'measure':<34}{'ours':>10}{'target':>10}")
    print(f"{'wall-clock s (whole command)':<34}{wall:>10.1f}{'< ' + str(int(TARGET_S)):>10}")
    print(f"{'CPU s (user + system)':<34}{cpu:>10.1f}{'':>10}")
    print(f"{'fit s (train.json train_seconds)':<34}{record['train_seconds']:>10.1f}{'':>10}")
    print(f"{'best val/isop_mse':<34}{record['best_score']:>10.4f}{'':>10}")
    print("PASS" if wall < TARGET_S else "OVER TARGET (see the load average)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
