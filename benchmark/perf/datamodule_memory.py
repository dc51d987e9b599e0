"""Peak memory of streaming a 3,576-clip test split through SoundscapeDataModule (target: < 1.5 GB RSS).

    python benchmark/perf/datamodule_memory.py [--clips 3576] [--batch-size 32] [--workdir DIR] [--keep]

Writes a synthetic ARAUS-layout split into a temporary folder -- five label files of the test
split and ``Feature_log_mel/<clip>.npy`` float32 [3001, 64] plus
``Feature_loudness_ISO532_1/<clip>.npy`` float32 [15000, 1] per clip, i.e. the original
release's feature layout -- then, in a fresh Python process, builds
``SoundscapeDataModule("araus", labels_dir=..., features_dir=...)`` and iterates over every batch
of ``test_dataloader()`` as an evaluation would. That process reports its own peak resident set
size (``getrusage`` ``ru_maxrss``: the high-water mark, including torch's import and the
memory-mapped feature pages it touched) next to what holding the split in memory would take.

The features are random numbers (synthetic, not ARAUS features): memory does not depend on values.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TEST_CLIPS = 3576
LIMIT_GB = 1.5
MEL_SHAPE, LOUD_SHAPE = (3001, 64), (15000, 1)


def make_split(root: Path, n_clips: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``n_clips`` synthetic test clips in the ARAUS layout under ``root``; returns (labels, features)."""
    import numpy as np

    from soundaq.base.fileio import atomic_write_text
    from soundaq.base.vocab import QUALITIES, SCENES, iso_coordinates
    from soundaq.models_zoo.data.synthetic_mix import draw_mix

    labels, features = root / "labels", root / "features"
    mel_dir, loud_dir = features / "Feature_log_mel", features / "Feature_loudness_ISO532_1"
    mel_dir.mkdir(parents=True, exist_ok=True)
    loud_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # one random base block per feature, shifted per clip: cheap to write, still distinct per clip
    mel_base = rng.normal(-40.0, 15.0, size=MEL_SHAPE).astype(np.float32)
    loud_base = rng.gamma(2.0, 4.0, size=LOUD_SHAPE).astype(np.float32)
    ids, scenes, events, paqs, isos = [], [], [], [], []
    for i in range(n_clips):
        clip = f"synthetic_mem_{i:05d}"
        ids.append(clip)
        scenes.append(SCENES[i % len(SCENES)])
        events.append("\t".join(draw_mix(seed, i).events()))  # label hierarchy kept, as in the embedded set
        ratings = rng.integers(1, 6, size=len(QUALITIES)).astype(float)
        paqs.append(" ".join(repr(float(r)) for r in ratings))
        isos.append(" ".join(repr(float(v)) for v in iso_coordinates(*ratings)))
        mel_path, loud_path = mel_dir / f"{clip}.npy", loud_dir / f"{clip}.npy"
        if not (mel_path.is_file() and loud_path.is_file()):
            np.save(mel_path, mel_base + np.float32(i % 17))
            np.save(loud_path, loud_base * np.float32(1.0 + (i % 5) / 10.0))
    for role, lines in (("audio_file_ids", ids), ("acoustic_scene_labels", scenes), ("audio_event_labels", events),
                        ("PAQ_8D_AQs", paqs), ("ISOP_ISOE", isos)):
        atomic_write_text(labels / f"test_set_{role}.txt", "\n".join(lines) + "\n")
    return labels, features


def _peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB, macOS bytes
    return max(peak, peak_children) * scale


def stream(labels: Path, features: Path, batch_size: int, num_workers: int) -> dict:
    """Iterate every test batch through the data module (run in a fresh process); returns measurements."""
    import numpy as np
    import torch

    from soundaq.models_zoo.data.datamodule import SoundscapeDataModule

    after_import = _peak_rss_bytes()
    # supplied statistics: the test split alone is read, as in an evaluation with a model's own stats
    stats = {"log_mel": {"mean": [-40.0] * 64, "std": [15.0] * 64}, "loudness": {"mean": [8.0], "std": [5.0]}}
    dm = SoundscapeDataModule("araus", labels_dir=labels, features_dir=features, norm_stats=stats,
                              batch_size=batch_size, num_workers=num_workers)
    dm.setup("test")
    started = time.perf_counter()
    clips = batches = 0
    checksum = 0.0
    for batch in dm.test_dataloader():
        clips += len(batch["clip"])
        batches += 1
        checksum += float(batch["mel"][:, 0, 0].sum()) + float(batch["loudness"][:, 0, 0].sum())
        assert batch["mel"].shape[1:] == MEL_SHAPE and batch["mel"].dtype == torch.float32
    seconds = time.perf_counter() - started
    return {"clips": clips, "batches": batches, "seconds": round(seconds, 2), "checksum": checksum,
            "split_sizes": dm.split_sizes, "rss_after_import_bytes": after_import, "peak_rss_bytes": _peak_rss_bytes(),
            "data": "synthetic (random features in the ARAUS layout)", "numpy": np.__version__}


def main(argv=None) -> int:
    """Write the split and measure its peak RSS in a fresh process; exit code 0 when every clip was streamed under the
    limit, 1 otherwise, 2 on bad arguments.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=TEST_CLIPS, help=f"clips in the test split (default {TEST_CLIPS})")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size (default 32, the data module's default)")
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    ap.add_argument("--workdir", type=Path, default=None, help="folder for the split (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated split (reused when run again)")
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    ap.add_argument("--_stream", nargs=2, metavar=("LABELS", "FEATURES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._stream:
        print(json.dumps(stream(Path(args._stream[0]), Path(args._stream[1]), args.batch_size, args.num_workers)))
        return 0
    if args.clips < 1:
        print("datamodule_memory: --clips must be at least 1", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="soundaq_mem_"))
    try:
        t0 = time.perf_counter()
        labels, features = make_split(workdir, args.clips)
        made_s = time.perf_counter() - t0
        disk = sum(p.stat().st_size for p in features.rglob("*.npy"))
        proc = subprocess.run([sys.executable, __file__, "--batch-size", str(args.batch_size),
                               "--num-workers", str(args.num_workers), "--_stream", str(labels), str(features)],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "streaming failed", file=sys.stderr)
            return 1
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    in_memory = args.clips * 4 * (MEL_SHAPE[0] * MEL_SHAPE[1] + LOUD_SHAPE[0] * LOUD_SHAPE[1])
    gb = 1e9
    peak = res["peak_rss_bytes"]
    rows = [
        ("data", res["data"]),
        ("clips streamed (test split)", f"{res['clips']} in {res['batches']} batches of {args.batch_size}, "
                                        f"{args.num_workers} workers"),
        ("features on disk", f"{disk / gb:.2f} GB (written in {made_s:.1f} s)"),
        ("whole split held in memory would be", f"{in_memory / gb:.2f} GB"),
        ("RSS after importing torch + the module", f"{res['rss_after_import_bytes'] / gb:.2f} GB"),
        ("peak RSS while streaming", f"{peak / gb:.2f} GB"),
        ("target", f"< {LIMIT_GB:.1f} GB -> {'PASS' if peak < LIMIT_GB * gb else 'FAIL'}"),
        ("streaming time", f"{res['seconds']:.1f} s ({res['clips'] / max(res['seconds'], 1e-9):.0f} clips/s)"),
    ]
    width = max(len(k) for k, _ in rows)
    print("SoundscapeDataModule memory, streaming a synthetic test split (ARAUS feature layout)")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    if args.json:
        out = {**res, "disk_bytes": disk, "in_memory_bytes": in_memory, "limit_bytes": LIMIT_GB * gb,
               "batch_size": args.batch_size, "num_workers": args.num_workers, "write_seconds": made_s,
               "machine": {"cpus": os.cpu_count(), "platform": sys.platform}}
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if res["clips"] == args.clips and peak < LIMIT_GB * gb else 1


if __name__ == "__main__":
    raise SystemExit(main())
