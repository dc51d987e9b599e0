"""Throughput of the zoo's nets on CPU: inference clips/s, one training step, peak memory.

    .venv/bin/python -m soundaq.benchmark.perf.nets_throughput [--nets all|NAME,...] [--batches 8,32]
        [--train-batch 8] [--repeats 3] [--warmup 1] [--threads N] [--omp-wait-policy passive]
        [--no-plain] [--no-train] [--merge]
        [--original FILE.json] [--out results/perf]

For each net (a fresh subprocess per net and phase, so that peak memory is that phase's own):

* inference: the registry's net in eval mode under ``torch.inference_mode``, fed a full 30-s input
  (log-mel ``[B, 3001, 64]``; SoundAQnet also loudness ``[B, 15000, 1]``) made once before the timed
  loop (no feature computation is timed); ``--warmup`` untimed calls, then ``--repeats`` timed calls;
  clips/s = B / median time of a call.
* plain: the same net, same weights, as a ``torch.jit.trace`` graph: the architecture's tensor
  operations alone, without our Python forward (input checks, output dataclass, heads as modules).
  Timed calls of ours and plain alternate, so that load changes on the machine hit both alike.
  ``ratio = plain time / ours`` close to 1 means our forward adds nothing; the traced outputs are
  checked against ours (max abs difference reported).
* train: one optimisation step at ``--train-batch`` (forward, the 12-task loss of
  soundaq.models_zoo.losses, backward, Adam 5e-4), median of ``--repeats`` steps after ``--warmup``.
* peak memory: the process's peak resident set (``ru_maxrss``) and the part of it added by the
  timed work (peak minus the resident set just before it: activations, gradients, optimiser state).

The report also gives the clips/s gain from batch 8 to 32 (about 1 on CPU for full 30-s clips,
whose convolutions are compute-bound already at batch 8). The original release's numbers are
shown beside ours when ``--original`` gives them as JSON (``{"NET": {"clips_per_s_b8": x,
"clips_per_s_b32": y, "train_step_s_b8": z}}``); the reference README records none so far, which
the report says.

Writes ``nets_throughput.json`` and ``nets_throughput.md`` to ``--out`` (atomically) and prints the
table. Load average and thread count are recorded: on a shared machine, numbers vary with load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path
from typing import Any

from soundaq.models_zoo.registry import CLIP_LOUDNESS_SHAPE, CLIP_MEL_SHAPE, NETS

ROOT = Path(__file__).resolve().parents[2]
ALL_NETS = tuple(NETS)      # the registry's nets of the paper, in its table order
(FRAMES, MEL_BINS), (LOUDNESS_SAMPLES, _) = CLIP_MEL_SHAPE, CLIP_LOUDNESS_SHAPE


# ---------------------------------------------------------------------------------------------
# Worker: one net, one phase, in its own process
# ---------------------------------------------------------------------------------------------

def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _inputs(net, batch: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(batch, FRAMES, MEL_BINS, generator=g)
    loud = torch.randn(batch, LOUDNESS_SAMPLES, 1, generator=g) if net.uses_loudness else None
    return mel, loud


def _timed(fn, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (``timeit.repeat``
    with one call per repeat: ``time.perf_counter``, the garbage collector paused while timing).
    """
    for _ in range(warmup):
        fn()
    return timeit.repeat(fn, number=1, repeat=repeats) if repeats > 0 else []


def _worker_infer(name: str, batch: int, warmup: int, repeats: int, plain: bool) -> dict:
    import warnings

    import torch

    from soundaq.models_zoo.registry import build_net, count_params

    torch.manual_seed(0)
    net = build_net(name).eval()
    mel, loud = _inputs(net, batch)
    args = (mel,) if loud is None else (mel, loud)
    rss0 = _rss_mib()
    with torch.inference_mode():
        ours_out = net(*args)                       # first warm-up call; peak memory of one forward
        peak = _peak_mib()
        for _ in range(max(warmup - 1, 0)):
            net(*args)
    result = {"net": name, "phase": "infer", "batch": batch, "params": count_params(net),
              "peak_rss_mib": peak, "peak_added_mib": peak - rss0}
    if not plain:
        with torch.inference_mode():
            result["times_s"] = _timed(lambda: net(*args), 0, repeats)
        return result

    class _AsTuple(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *x):
            out = self.inner(*x)
            return out.scene_logits, out.event_logits, out.qualities, out.isop, out.isoe

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(_AsTuple(net), args, check_trace=False)
    with torch.inference_mode():
        plain_out = traced(*args)
        for _ in range(max(warmup - 1, 0)):
            traced(*args)
        # ours and plain alternate, so that a change of load on the machine hits both alike
        ours_t, plain_t = [], []
        for _ in range(repeats):
            ours_t += _timed(lambda: net(*args), 0, 1)
            plain_t += _timed(lambda: traced(*args), 0, 1)
    ref = (ours_out.scene_logits, ours_out.event_logits, ours_out.qualities, ours_out.isop, ours_out.isoe)
    result.update(times_s=ours_t, plain_times_s=plain_t,
                  plain_max_abs_diff=max(float((a - b).abs().max()) for a, b in zip(ref, plain_out)))
    return result


def _worker_train(name: str, batch: int, warmup: int, repeats: int) -> dict:
    import torch

    from soundaq.models_zoo.losses import MultiTaskLoss
    from soundaq.models_zoo.registry import build_net, count_params

    torch.manual_seed(0)
    net = build_net(name).train()
    mel, loud = _inputs(net, batch)
    g = torch.Generator().manual_seed(1)
    target = {"scene": torch.randint(0, 3, (batch,), generator=g),
              "events": (torch.rand(batch, 15, generator=g) < 0.3).float(),
              "qualities": 1 + 4 * torch.rand(batch, 8, generator=g),
              "isop": torch.rand(batch, generator=g) * 2 - 1, "isoe": torch.rand(batch, generator=g) * 2 - 1}
    loss_fn = MultiTaskLoss()
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        total, _ = loss_fn(net(mel, loud), target)
        total.backward()
        opt.step()
        losses.append(float(total))

    rss0 = _rss_mib()
    times = _timed(step, warmup, repeats)
    return {"net": name, "phase": "train", "batch": batch, "params": count_params(net), "times_s": times,
            "peak_rss_mib": _peak_mib(), "peak_added_mib": _peak_mib() - rss0, "losses": losses}


def _worker(spec: dict) -> dict:
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    if spec["phase"] == "infer":
        out = _worker_infer(spec["net"], spec["batch"], spec["warmup"], spec["repeats"], spec["plain"])
    else:
        out = _worker_train(spec["net"], spec["batch"], spec["warmup"], spec["repeats"])
    out.update(threads=torch.get_num_threads(), warmup=spec["warmup"], repeats=spec["repeats"],
               omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "default"))
    return out


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def _run_phase(spec: dict, timeout: float, omp_wait_policy: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "soundaq.benchmark.perf.nets_throughput", "--worker", json.dumps(spec)]
    env = dict(os.environ)
    if omp_wait_policy:
        env["OMP_WAIT_POLICY"] = omp_wait_policy.upper()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**spec, "error": f"exit {proc.returncode}: {tail[:300]}"}
    return json.loads(lines[-1])


def _median(xs):
    return statistics.median(xs) if xs else None


def summarise(raw: list[dict], batches: list[int], train_batch: int) -> list[dict]:
    """One row per net from the raw phase results: medians, clips/s, peak memory, failures.

    Args:
        raw: the workers' results (one per net, phase and batch), failed ones with ``error``.
        batches: the inference batch sizes; the smallest and largest give the scaling column.
        train_batch: the training step's batch size (unused: each train result carries its batch).

    Returns:
        Rows keyed ``clips_per_s_b<B>``, ``train_step_s_b<B>`` (s), ``peak_rss_mib_*`` (MiB), ``errors``, ...
    """
    rows = []
    for name in dict.fromkeys(r["net"] for r in raw):
        mine = [r for r in raw if r["net"] == name]
        row = {"net": name, "params": next((r["params"] for r in mine if "params" in r), None), "errors": []}
        for r in mine:
            if "error" in r:
                row["errors"].append(f"{r['phase']} b{r['batch']}: {r['error']}")
                continue
            t = _median(r["times_s"])
            b = r["batch"]
            if r["phase"] == "infer":
                row[f"infer_b{b}_s"] = t
                row[f"clips_per_s_b{b}"] = b / t
                row[f"peak_rss_mib_infer_b{b}"] = r["peak_rss_mib"]
                row[f"peak_added_mib_infer_b{b}"] = r["peak_added_mib"]
                if "plain_times_s" in r:
                    tp = _median(r["plain_times_s"])
                    row[f"plain_clips_per_s_b{b}"] = b / tp
                    row[f"plain_over_ours_b{b}"] = tp / t
                    row[f"plain_max_abs_diff_b{b}"] = r["plain_max_abs_diff"]
            else:
                row[f"train_step_s_b{b}"] = t
                row[f"peak_rss_mib_train_b{b}"] = r["peak_rss_mib"]
                row[f"peak_added_mib_train_b{b}"] = r["peak_added_mib"]
            row["threads"] = r.get("threads")
            row.setdefault("timed_calls", {})[f"{r['phase']}_b{b}"] = len(r["times_s"])
        lo, hi = min(batches), max(batches)
        if lo != hi and f"clips_per_s_b{lo}" in row and f"clips_per_s_b{hi}" in row:
            row[f"scaling_b{hi}_over_b{lo}"] = row[f"clips_per_s_b{hi}"] / row[f"clips_per_s_b{lo}"]
        rows.append(row)
    return rows


def _f(x, spec):
    return "-" if x is None else format(x, spec)


def markdown(report: dict) -> str:
    """``nets_throughput.md``: the machine and method, one table row per net, failed phases, the original's note."""
    s, rows, orig = report["settings"], report["results"], report.get("original") or {}
    batches, tb = s["batches"], s["train_batch"]
    has_plain = any(k.startswith("plain_over_ours") for r in rows for k in r)
    has_train = any(f"train_step_s_b{tb}" in r for r in rows)
    m = report["machine"]
    lines = [
        "# Zoo nets: CPU throughput",
        "",
        f"Measured {report['created']} on {m['cpu']} ({m['cores']} cores, torch threads {m['torch_threads']}), "
        f"torch {m['torch']}, OMP_WAIT_POLICY {m['omp_wait_policy']}, "
        f"load average {m['load_start'][0]:.1f} at start and {m['load_end'][0]:.1f} at end "
        "(other work on the machine slows the numbers).",
        f"Input: a full 30-s clip (log-mel [{FRAMES}, {MEL_BINS}]; SoundAQnet also loudness [{LOUDNESS_SAMPLES}, 1]), "
        f"random, made before timing. Median of {s['repeats']} timed calls after {s['warmup']} warm-up"
        f"{' (other nets: see timed_calls in the JSON)' if s.get('merged_from') else ''}; "
        "eval mode under torch.inference_mode; a fresh process per net and phase.",
        "`vs plain`: our clips/s divided by those of the same net and weights run as a torch.jit.trace graph "
        "(its tensor operations alone); 1.00 = our forward adds nothing, below 1 = slower. "
        f"`b{max(batches)}/b{min(batches)}`: clips/s gain from the smaller to the larger batch (full 30-s clips keep "
        "CPU convolutions busy already at batch 8, so about 1 is expected; the plain ratio is the overhead check). "
        "Peak: resident set of the process; + = added by the timed work. "
        "`-`: not measured in this run.",
        "",
    ]
    head = ["net", "params"]
    for b in batches:
        head += [f"clips/s b{b}"] + ([f"vs plain b{b}"] if has_plain else [])
    if len(batches) > 1:
        head.append(f"b{max(batches)}/b{min(batches)}")
    if has_train:
        head += [f"train step b{tb} (s)", f"peak MiB train b{tb}"]
    head.append(f"peak MiB infer b{max(batches)}")
    if orig:
        head += [f"original clips/s b{b}" for b in batches] + [f"original train b{tb} (s)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["net"], _f(r["params"], ",")]
        for b in batches:
            cells.append(_f(r.get(f"clips_per_s_b{b}"), ".2f"))
            if has_plain:
                cells.append(_f(r.get(f"plain_over_ours_b{b}"), ".2f"))
        if len(batches) > 1:
            cells.append(_f(r.get(f"scaling_b{max(batches)}_over_b{min(batches)}"), ".2f"))
        if has_train:
            cells.append(_f(r.get(f"train_step_s_b{tb}"), ".2f"))
            rss, add = r.get(f"peak_rss_mib_train_b{tb}"), r.get(f"peak_added_mib_train_b{tb}")
            cells.append("-" if rss is None else f"{rss:,.0f} (+{add:,.0f})")
        rss, add = r.get(f"peak_rss_mib_infer_b{max(batches)}"), r.get(f"peak_added_mib_infer_b{max(batches)}")
        cells.append("-" if rss is None else f"{rss:,.0f} (+{add:,.0f})")
        if orig:
            o = orig.get(r["net"], {})
            cells += [_f(o.get(f"clips_per_s_b{b}"), ".2f") for b in batches] + [_f(o.get(f"train_step_s_b{tb}"), ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [f"- {r['net']}: {e}" for r in rows for e in r["errors"]]
    if failed:
        lines += ["", "Failed phases:", *failed]
    lines += ["", f"Original release: {report['original_note']}", ""]
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _original(path: str | None) -> tuple[dict | None, str]:
    if path:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"nets_throughput: --original {path}: cannot read JSON ({err}); "
                             'give {"NET": {"clips_per_s_b8": x, ...}}') from err
        if not isinstance(data, dict):
            raise SystemExit(f"nets_throughput: --original {path}: expected an object keyed by net name")
        return data, f"numbers from {path}."
    readme = ROOT.parent / "shared" / "reference" / "README.md"
    where = str(readme) if readme.exists() else "the reference README"
    return None, (f"no throughput numbers of the original release are recorded ({where} has none); "
                  "pass --original FILE.json to show them beside ours.")


def _parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--nets", default="all", help="all, or comma-separated registry names")
    p.add_argument("--batches", default="8,32", help="inference batch sizes (comma-separated)")
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--omp-wait-policy", choices=("active", "passive"), default=None,
                   help="OMP_WAIT_POLICY of the measuring processes (default: inherited). On a machine shared "
                        "with other work, 'passive' stops idle OpenMP threads spinning (much steadier numbers)")
    p.add_argument("--no-plain", action="store_true", help="skip the traced plain-forward comparison")
    p.add_argument("--no-train", action="store_true", help="skip the training step")
    p.add_argument("--original", default=None, help="JSON with the original release's numbers per net")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per net and phase")
    p.add_argument("--out", default="results/perf", help="folder for nets_throughput.json/.md")
    p.add_argument("--merge", action="store_true",
                   help="keep the other nets' results already in --out (re-measure some nets, or big ones "
                        "with other settings); timed calls per net are in the JSON")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _nets_and_batches(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    """The nets and inference batch sizes asked for (SystemExit with the fix when unusable)."""
    nets = list(ALL_NETS) if args.nets == "all" else [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = [n for n in nets if n not in ALL_NETS]
    if unknown:
        raise SystemExit(f"nets_throughput: unknown net(s) {', '.join(unknown)}; choose from {', '.join(ALL_NETS)}")
    try:
        batches = sorted({int(b) for b in args.batches.split(",") if b.strip()})
    except ValueError:
        raise SystemExit(f"nets_throughput: --batches {args.batches!r}: give integers such as 8,32") from None
    if not batches or min(batches) < 1 or args.repeats < 1 or args.train_batch < 1 or args.warmup < 0:
        raise SystemExit("nets_throughput: batches, --repeats and --train-batch must be >= 1, --warmup >= 0")
    return nets, batches


def _phase_line(res: dict) -> str:
    """The progress line's result of one phase: clips/s (and the plain graph's), s/step, or the failure."""
    if "error" in res:
        return f"FAILED: {res['error']}"
    if res["phase"] == "infer":
        t = _median(res["times_s"])
        msg = f"{res['batch'] / t:7.2f} clips/s"
        if "plain_times_s" in res:
            msg += f" (plain {res['batch'] / _median(res['plain_times_s']):.2f})"
        return msg
    return f"{_median(res['times_s']):7.2f} s/step"


def _measure(nets: list[str], batches: list[int], args: argparse.Namespace) -> list[dict]:
    """Run every net's phases, each in a fresh process, printing one line per phase; the raw results."""
    raw = []
    common = {"warmup": args.warmup, "repeats": args.repeats, "threads": args.threads}
    for name in nets:
        phases = [{"net": name, "phase": "infer", "batch": b, "plain": not args.no_plain, **common} for b in batches]
        if not args.no_train:
            phases.append({"net": name, "phase": "train", "batch": args.train_batch, **common})
        for spec in phases:
            t0 = time.time()
            res = _run_phase(spec, args.timeout, args.omp_wait_policy)
            raw.append(res)
            print(f"{name:17s} {spec['phase']:5s} b{spec['batch']:<3d} {_phase_line(res)}   [{time.time() - t0:.0f} s]",
                  flush=True)
    return raw


def _merge(report: dict, previous: Path, nets: list[str], batches: list[int], train_batch: int) -> None:
    """Keep the other nets' raw results of an earlier report and summarise them with this run's."""
    old = json.loads(previous.read_text())
    kept = [r for r in old.get("raw", []) if r.get("net") not in nets]
    report["raw"] = kept + report["raw"]
    order = {n: i for i, n in enumerate(ALL_NETS)}
    report["raw"].sort(key=lambda r: order.get(r.get("net"), 99))
    report["settings"]["batches"] = batches = sorted({*batches, *(r["batch"] for r in kept if r["phase"] == "infer")})
    report["settings"]["nets"] = list(dict.fromkeys(r["net"] for r in report["raw"]))
    report["settings"]["merged_from"] = {"created": old.get("created"), "nets": sorted({r["net"] for r in kept})}
    report["results"] = summarise(report["raw"], batches, train_batch)


def main(argv: list[str] | None = None) -> int:
    """Measure the nets (see the module docstring); exit code 1 when a phase failed."""
    args = _parser().parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0
    nets, batches = _nets_and_batches(args)
    original, note = _original(args.original)

    import torch

    from soundaq.base.fileio import atomic_write_json, atomic_write_text

    machine = {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch": str(torch.__version__),
               "torch_threads": args.threads or torch.get_num_threads(), "python": platform.python_version(),
               "omp_wait_policy": (args.omp_wait_policy or os.environ.get("OMP_WAIT_POLICY") or "default").upper(),
               "load_start": list(os.getloadavg())}
    started = time.time()
    raw = _measure(nets, batches, args)
    machine["load_end"] = list(os.getloadavg())
    report: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "wall_s": time.time() - started,
        "machine": machine,
        "settings": {"nets": nets, "batches": batches, "train_batch": args.train_batch, "repeats": args.repeats,
                     "warmup": args.warmup, "plain": not args.no_plain, "train": not args.no_train,
                     "frames": FRAMES, "loudness_samples": LOUDNESS_SAMPLES},
        "results": summarise(raw, batches, args.train_batch),
        "raw": raw,
        "original": original,
        "original_note": note,
    }
    out = Path(args.out)
    previous = out / "nets_throughput.json"
    if args.merge and previous.is_file():
        _merge(report, previous, nets, batches, args.train_batch)
    atomic_write_json(out / "nets_throughput.json", report)
    md = markdown(report)
    atomic_write_text(out / "nets_throughput.md", md)
    print()
    print(md)
    print(f"wrote {out / 'nets_throughput.json'} and {out / 'nets_throughput.md'}")
    return 1 if any(r["errors"] for r in report["results"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
