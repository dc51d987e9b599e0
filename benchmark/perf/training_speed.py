"""Training speed of every zoo net, old settings against new, measured side by side in one run.

    .venv/bin/python -m soundaq.benchmark.perf.training_speed [--nets all|NAME,...] [--threads 1]
        [--batch 8] [--min-time 2] [--out results/perf]

For each net one optimisation step (forward, the 12-task loss, backward, Adam) at batch ``--batch``,
timed with ``torch.utils.benchmark.Timer.blocked_autorange`` (median of blocks of at least
``--min-time`` seconds), in the same process, the two settings alternating so that load changes on
a shared machine hit both alike:

* **old**: what the leaderboard did before the embedded schedule: whole 30-s clips (3001 log-mel
  frames, 15000 loudness samples) and ReLUs that allocate a new tensor after every batch norm;
* **new**: the embedded schedule (soundaq.models_zoo.schedules.EMBEDDED): random crops of
  ``crop_seconds`` for the nets that accept them (whole clips for AD_CNN and CNN-Transformer, whose
  layers are sized for 30 s) and the in-place ReLUs the nets now use.

Prints per net the seconds per step, steps/s and training clips/s of both and their ratio, and writes
``training_speed.json`` / ``.md`` to ``--out``. ``--threads`` sets torch's intra-op threads (the
leaderboard's model workers run one each on a 2-core machine).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def out_of_place_relu(net):
    """The old ReLUs: F.relu_ and nn.ReLU(inplace=True) made to allocate, as before the change."""
    import torch.nn as nn
    import torch.nn.functional as F

    saved = F.relu_
    modules = [m for m in net.modules() if isinstance(m, nn.ReLU) and m.inplace]
    F.relu_ = lambda x: F.relu(x)
    for m in modules:
        m.inplace = False
    try:
        yield
    finally:
        F.relu_ = saved
        for m in modules:
            m.inplace = True


def step_timer(net, crop_frames: int | None, batch: int, threads: int, old: bool):
    """A ``torch.utils.benchmark.Timer`` running one optimisation step of ``net``."""
    import torch
    from torch.utils.benchmark import Timer

    from soundaq.models_zoo.losses import MultiTaskLoss
    from soundaq.models_zoo.outputs import NetOutput  # noqa: F401 - the nets return it

    frames = 3001 if old or crop_frames is None else crop_frames
    gen = torch.Generator().manual_seed(0)
    data = {"mel": torch.randn(batch, frames, 64, generator=gen),
            "loudness": torch.randn(batch, 5 * frames if frames < 3001 else 15000, 1, generator=gen),
            "scene": torch.randint(0, 3, (batch,), generator=gen), "events": (torch.rand(batch, 15, generator=gen) > .5).float(),
            "qualities": torch.rand(batch, 8, generator=gen) * 4 + 1, "isop": torch.rand(batch, generator=gen) * 2 - 1,
            "isoe": torch.rand(batch, generator=gen) * 2 - 1}
    loss = MultiTaskLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)
    loud = data["loudness"] if net.uses_loudness else None

    def step():
        out = net(data["mel"], loud)
        total, _ = loss(out, data)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    return Timer(stmt="step()", globals={"step": step}, num_threads=threads,
                 label=net.__class__.__name__, sub_label="old" if old else "new")


def measure(name: str, batch: int, threads: int, min_time: float) -> dict:
    """Time one net's optimisation step with the old and the new settings, alternating.

    Returns:
        The net's row: seconds per step of each (best of two medians), clips/s and the speed-up.
    """
    import torch

    from soundaq.models_zoo.registry import build_net
    from soundaq.models_zoo.schedules import EMBEDDED, crop_frames_for

    torch.manual_seed(0)
    net = build_net(name).train()
    crop = crop_frames_for(net, EMBEDDED)
    new_timer = step_timer(net, crop, batch, threads, old=False)
    old_timer = step_timer(net, crop, batch, threads, old=True)
    medians: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(2):                     # alternate: a load change on the machine hits both
        with out_of_place_relu(net):
            medians["old"].append(old_timer.blocked_autorange(min_run_time=min_time).median)
        medians["new"].append(new_timer.blocked_autorange(min_run_time=min_time).median)
    old_s, new_s = min(medians["old"]), min(medians["new"])
    return {"net": name, "crop_frames": crop, "batch": batch, "threads": threads,
            "old_step_s": round(old_s, 4), "new_step_s": round(new_s, 4),
            "old_clips_per_s": round(batch / old_s, 3), "new_clips_per_s": round(batch / new_s, 3),
            "speedup": round(old_s / new_s, 2)}


def markdown(rows: list[dict], meta: dict) -> str:
    """The report: one table row per net of :func:`measure`'s numbers, under the machine and settings."""
    lines = [f"# Training speed, old vs new settings ({meta['machine']}, {meta['threads']} thread(s), "
             f"batch {meta['batch']}, load average {meta['load_average']})", "",
             "| net | new input | old s/step | new s/step | old clips/s | new clips/s | speed-up |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        inp = f"{r['crop_frames']}-frame crops" if r["crop_frames"] else "whole clips"
        lines.append(f"| {r['net']} | {inp} | {r['old_step_s']:.3f} | {r['new_step_s']:.3f} | "
                     f"{r['old_clips_per_s']:.2f} | {r['new_clips_per_s']:.2f} | {r['speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def run_per_net(script: str, description: str, measure, markdown, summary, argv: list[str] | None = None,
                min_time: float = 2.0) -> int:
    """The command line shared by the per-net speed scripts: ``--nets --threads --batch --min-time
    --out``; ``measure(name, batch, threads, min_time) -> row`` per net (``summary(row)`` printed as it
    comes), then ``markdown(rows, meta)`` printed and written with the rows to ``OUT/<script>.md/.json``.
    """
    from soundaq.base.fileio import atomic_write_json, atomic_write_text
    from soundaq.models_zoo.registry import NETS

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--nets", default="all")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--min-time", type=float, default=min_time)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "perf")
    args = p.parse_args(argv)
    nets = list(NETS) if args.nets == "all" else [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = [n for n in nets if n not in NETS]
    if unknown:
        print(f"{script}: unknown net(s) {', '.join(unknown)}; choose from {', '.join(NETS)}", file=sys.stderr)
        return 2
    rows = []
    for name in nets:
        rows.append(measure(name, args.batch, args.threads, args.min_time))
        print(f"{name:17s} {summary(rows[-1])}", flush=True)
    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "threads": args.threads, "batch": args.batch, "load_average": round(os.getloadavg()[0], 2),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    text = markdown(rows, meta)
    print(text)
    atomic_write_json(args.out / f"{script}.json", {"meta": meta, "rows": rows})
    atomic_write_text(args.out / f"{script}.md", text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The per-net command line (:func:`run_per_net`) for this script."""
    return run_per_net("training_speed", __doc__.split("\n\n")[0], measure, markdown,
                       lambda r: f"old {r['old_step_s']:7.3f} s/step  new {r['new_step_s']:7.3f} s/step  "
                                 f"x{r['speedup']:.2f}", argv)


if __name__ == "__main__":
    raise SystemExit(main())
