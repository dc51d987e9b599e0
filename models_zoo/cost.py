"""What a net costs: parameters, MACs per 30-s clip, training and inference time per clip, peak memory.

The columns of the release's cost table (``Table/overhead.png`` of Yuanbo2020/SoundSCaper; its V100
figures are :data:`soundaq.models_zoo.registry.PAPER_OVERHEAD`), measured on the device at hand:

* ``params``: trainable parameters of the built net (:func:`~soundaq.models_zoo.registry.count_params`).
* ``macs``: multiply-accumulates of one eval-mode forward pass over one 30-s clip (the registry's
  input shapes, :data:`~soundaq.models_zoo.registry.INPUT_SHAPES`), counted by torch's own
  ``torch.utils.flop_counter.FlopCounterMode``, which counts 2 FLOPs per multiply-add of the matrix
  products and convolutions (and attention), and nothing for element-wise layers (batch norm,
  activations, pooling): MACs = FLOPs / 2 (:func:`count_macs`).
* ``train_s_per_clip``: seconds of one optimisation step at ``batch`` clips (forward, the twelve task
  losses of :class:`~soundaq.models_zoo.losses.MultiTaskLoss`, ``zero_grad``, backward, an Adam step
  with the release's learning rate 5e-4), divided by ``batch``.
* ``infer_s_per_clip``: seconds of one eval-mode forward pass under ``torch.inference_mode`` at
  ``batch`` clips, divided by ``batch``.
* Times: the median of ``torch.utils.benchmark.Timer.blocked_autorange`` (its first call is an
  untimed warm-up; then blocks of calls until ``min_time`` seconds have been timed, at least one),
  with torch's intra-op threads as set (``threads``). On CUDA the timer synchronises the device.
* ``train_peak_mb`` / ``infer_peak_mb`` (MB = 10**6 bytes): each phase (net, phase) runs in a fresh
  process (``multiprocessing`` spawn), so that its peak is its own. On CUDA: ``torch.cuda.max_memory_allocated``
  over the phase (every tensor torch allocated on the GPU: weights, inputs, activations, gradients,
  Adam's state; not the CUDA context nor the caching allocator's reserve). On CPU: the process's peak
  resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` after the imports) minus its
  resident set just before the net is built: the same tensors, plus what the CPU allocator keeps,
  oneDNN's scratch buffers and the library code first paged in by the phase. ``None`` where the
  platform has no ``/proc`` (not Linux).

Inputs are random normal tensors of the clip's shape; targets random labels in their ranges; nets
are freshly initialised (the cost does not depend on the weights' values).
"""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

#: Keys of one model's measured cost (soundaq models --cost --json).
COST_KEYS = ("params", "macs", "train_s_per_clip", "train_peak_mb", "infer_s_per_clip", "infer_peak_mb", "device")
#: The learning rate of the release's training loops (Adam).
RELEASE_LR = 5e-4
PHASES = ("train", "infer")


def count_macs(net, *inputs) -> int:
    """Multiply-accumulates of one forward pass ``net(*inputs)``, without gradients.

    Args:
        net: any ``torch.nn.Module``; put it in the mode to count (the zoo's nets: ``eval()``).
        *inputs: its positional inputs (tensors or None), e.g. ``mel [1, 3001, 64]``.

    Returns:
        ``FlopCounterMode``'s total FLOPs / 2 (it counts a multiply-add as 2 FLOPs, for matrix
        products, convolutions and attention only; attention runs on torch's math backend so that
        its products are counted). E.g. ``nn.Linear(64, 10)`` on ``[1, 3001, 64]``:
        3001 * 64 * 10 = 1,920,640.
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # the math backend: FlopCounterMode has no formula for the CPU's fused attention kernel (it counted 0
    # for CNN_Transformer's attention, torch 2.13); the math path's two matrix products are counted
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        net(*inputs)
    return int(counter.get_total_flops()) // 2


def net_macs(name: str) -> int:
    """Multiply-accumulates of the registry net (or variant) ``name`` over one 30-s clip, eval mode.

    Args:
        name: a registry name or variant (``SoundAQnet[blocks=4]``).

    Returns:
        :func:`count_macs` of a freshly built net on one random clip of :func:`clip_inputs`.
    """
    from soundaq.models_zoo.registry import build_net

    net = build_net(name).eval()
    mel, loud = clip_inputs(name, 1)
    return count_macs(net, mel, loud)


def clip_inputs(name: str, batch: int, device: str = "cpu", seed: int = 0):
    """Random inputs of ``batch`` 30-s clips for the registry net ``name``: ``(mel [B, 3001, 64],
    loudness [B, 15000, 1] or None)``, shapes from the registry's :data:`INPUT_SHAPES`.
    """
    import torch

    from soundaq.models_zoo.registry import INPUT_LOUDNESS, INPUT_MEL, INPUT_SHAPES, get_spec

    spec = get_spec(name)
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(batch, *INPUT_SHAPES[INPUT_MEL], generator=g).to(device)
    loud = (torch.randn(batch, *INPUT_SHAPES[INPUT_LOUDNESS], generator=g).to(device)
            if INPUT_LOUDNESS in spec.inputs else None)
    return mel, loud


def _targets(batch: int, device: str, seed: int = 1) -> dict:
    import torch

    from soundaq.base.vocab import EVENTS, QUALITIES, SCENES

    g = torch.Generator().manual_seed(seed)
    t = {"scene": torch.randint(0, len(SCENES), (batch,), generator=g),
         "events": (torch.rand(batch, len(EVENTS), generator=g) > 0.5).float(),
         "qualities": torch.rand(batch, len(QUALITIES), generator=g) * 4 + 1,
         "isop": torch.rand(batch, generator=g) * 2 - 1, "isoe": torch.rand(batch, generator=g) * 2 - 1}
    return {k: v.to(device) for k, v in t.items()}


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")        # Linux >= 4.0: the peak resident set becomes the current one
        return True
    except OSError:
        return False


def _phase_callable(net, phase: str, mel, loud, batch: int, device: str) -> Callable[[], None]:
    import torch

    if phase == "infer":
        net.eval()

        def infer() -> None:
            with torch.inference_mode():
                net(mel, loud)
        return infer
    from soundaq.models_zoo.losses import MultiTaskLoss

    net.train()
    loss = MultiTaskLoss()
    targets = _targets(batch, device)
    optimizer = torch.optim.Adam(net.parameters(), lr=RELEASE_LR)

    def step() -> None:       # Lightning's order: forward, loss, zero_grad, backward, step
        total, _ = loss(net(mel, loud), targets)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    return step


def measure_phase(name: str, phase: str, batch: int = 4, min_time: float = 1.0, device: str = "cpu",
                  threads: int | None = None) -> dict[str, Any]:
    """Time one phase of one net and take its peak memory (see the module docstring); run it in a fresh
    process (:func:`measure_cost` does) for an honest peak.

    Args:
        name: a registry name (or import path).
        phase: ``train`` (one optimisation step) or ``infer`` (one forward pass).
        batch: clips per call.
        min_time: seconds to time after the warm-up.
        device: ``cpu`` or ``cuda[:N]``.
        threads: torch intra-op threads (default: torch's).

    Returns:
        ``{"seconds": median s per call, "runs": timed calls, "peak_mb": MB or None, "params": int,
        "macs": int (infer only)}``.

    Raises:
        ValueError: an unknown phase.
    """
    import gc

    import torch
    from torch.utils.benchmark import Timer

    from soundaq.models_zoo.registry import build_net, count_params

    if phase not in PHASES:
        raise ValueError(f"phase {phase!r}: choose {' or '.join(PHASES)}")
    if threads:
        torch.set_num_threads(threads)
    cuda = device.startswith("cuda")
    gc.collect()
    base: int | None = None       # bytes in use before the net is built
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    elif _reset_peak_rss():
        rss = _status_kib("VmRSS")
        base = None if rss is None else rss * 1024
    torch.manual_seed(0)
    net = build_net(name).to(device)
    mel, loud = clip_inputs(name, batch, device)
    fn = _phase_callable(net, phase, mel, loud, batch, device)
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), label=name,
                  sub_label=phase)
    m = timer.blocked_autorange(min_run_time=min_time)
    peak: float | None = None     # MB
    if base is not None:
        hwm = _status_kib("VmHWM")
        used = torch.cuda.max_memory_allocated(device) if cuda else None if hwm is None else hwm * 1024
        peak = None if used is None else (used - base) / 1e6
    out: dict[str, Any] = {"seconds": float(m.median), "runs": int(len(m.times) * m.number_per_run),
                           "peak_mb": peak, "params": count_params(net)}
    if phase == "infer":       # after the peak was read: the count's own forward pass is not in it
        net.eval()
        out["macs"] = count_macs(net, mel[:1], None if loud is None else loud[:1])
    return out


def device_label(device: str, threads: int) -> str:
    """``cuda: <GPU name>`` or ``cpu: <processor> (<threads> threads)``."""
    if device.startswith("cuda"):
        import torch

        return f"cuda: {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"cpu: {cpu} ({threads} thread{'s' if threads != 1 else ''})"


def resolve_device(device: str | None) -> str:
    """``device`` as given, else ``cuda`` when torch sees a GPU, else ``cpu``.

    Raises:
        UserError: ``cuda`` asked for where torch sees no GPU, or a device torch does not know.
    """
    import torch

    from soundaq.base.errors import UserError

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: torch sees no CUDA device here; fix: leave --device out (the CPU)")
    try:
        torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device}: not a torch device; choose cpu or cuda[:N]") from None
    return device


#: What the peak memory columns count, per kind of device (see the module docstring).
MEMORY_COUNTS = {
    "cpu": "peak resident set of a fresh process minus its resident set before the net is built (Linux VmHWM): "
           "weights, inputs, activations, gradients, Adam's state, allocator and oneDNN buffers, code paged in",
    "cuda": "torch.cuda.max_memory_allocated over the phase, in a fresh process: every tensor on the GPU "
            "(weights, inputs, activations, gradients, Adam's state); not the CUDA context or the allocator's reserve",
}


def _run_isolated(name: str, phase: str, batch: int, min_time: float, device: str, threads: int) -> dict:
    """:func:`measure_phase` in a fresh spawned process (its peak memory is the phase's own)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_phase, name, phase, batch, min_time, device, threads).result()


def measure_cost(names: list[str], batch: int = 4, min_time: float = 1.0, device: str | None = None,
                 threads: int | None = None, report: Callable[[dict], None] | None = None) -> list[dict]:
    """The cost table's rows: each net's :data:`COST_KEYS` measured on ``device``, the paper's figures beside.

    Args:
        names: registry names or import paths (checked before anything is measured).
        batch: clips per training step and per forward pass (per-clip figures divide by it).
        min_time: seconds timed per phase after the warm-up call (at least one call is timed).
        device: ``cpu``, ``cuda[:N]`` or None (a GPU when torch sees one, else the CPU).
        threads: torch intra-op threads in the measuring processes (default: torch's default here).
        report: called with ``{"model", "phase", "index", "total", "status": "start"|"done"|"failed",
            "result" | "error", "wall_s"}`` around each of the ``2 * len(names)`` phases (progress output).

    Returns:
        One dict per net, in ``names`` order: the :data:`COST_KEYS` (``params``, ``macs`` int; seconds per
        clip; peak MB; ``device`` as :func:`device_label` words it), ``model``, ``batch``, ``threads``,
        ``timed_runs``, ``load_average`` (1-min, when it started: timings on a shared machine vary with it),
        ``memory_counts``, ``paper`` (the release's V100 row as a dict, or None) and ``error`` (None, or the
        one-line reason the net could not be measured; its figures are then None).

    Raises:
        UserError: an unknown model name or device (before any measurement).
    """
    from concurrent.futures.process import BrokenProcessPool
    from dataclasses import asdict

    import torch

    from soundaq.base.errors import one_line
    from soundaq.models_zoo.registry import PAPER_OVERHEAD, get_spec

    specs = [get_spec(n) for n in names]       # unknown names: one line, nothing measured
    device = resolve_device(device)
    threads = threads or torch.get_num_threads()
    label = device_label(device, threads)
    say = report or (lambda event: None)
    total, index, rows = 2 * len(names), 0, []
    for given, spec in zip(names, specs):
        row: dict[str, Any] = {"model": spec.name, **{k: None for k in COST_KEYS}, "device": label, "batch": batch,
                               "threads": threads, "timed_runs": {}, "load_average": _load_average(),
                               "memory_counts": MEMORY_COUNTS["cuda" if device.startswith("cuda") else "cpu"],
                               "paper": asdict(PAPER_OVERHEAD[spec.name]) if spec.name in PAPER_OVERHEAD else None,
                               "error": None}
        for phase in PHASES:
            index += 1
            event = {"model": spec.name, "phase": phase, "index": index, "total": total}
            say({**event, "status": "start"})
            started = time.perf_counter()
            try:
                res = _run_isolated(given, phase, batch, min_time, device, threads)
            except BrokenProcessPool:
                row["error"] = f"{phase}: the measuring process died (out of memory at batch {batch}?); fix: a smaller --batch"
            except Exception as err:  # noqa: BLE001 - one net's failure is reported; the others are measured
                row["error"] = f"{phase}: {one_line(err)}"
            if row["error"]:
                say({**event, "status": "failed", "error": row["error"], "wall_s": time.perf_counter() - started})
                break
            row["params"] = res["params"]
            row[f"{phase}_s_per_clip"] = res["seconds"] / batch
            row[f"{phase}_peak_mb"] = res["peak_mb"]
            row["timed_runs"][phase] = res["runs"]
            if "macs" in res:
                row["macs"] = res["macs"]
            say({**event, "status": "done", "result": res, "wall_s": time.perf_counter() - started})
        if row["error"]:
            row.update({k: None for k in COST_KEYS if k != "device"})
        rows.append(row)
    return rows


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _num(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _printed(x) -> str:
    """A published figure as the paper prints it (0.000029, not 2.9e-05)."""
    return "-" if x is None else f"{x:.6f}".rstrip("0").rstrip(".")


#: The cost table's columns: the release's order (params, training time, training memory, inference time,
#: inference memory, scores), each measured figure beside the paper's (MACs, not in the release's table,
#: after the parameters).
MARKDOWN_HEADER = ("model", "params", "paper params (M)", "MACs per clip (G)", "train s/clip", "paper train time (s)",
                   "train peak MB", "paper train GPU (GB)", "infer s/clip", "paper infer time (s)", "infer peak MB",
                   "paper infer GPU (GB)", "paper scene acc % (mean ± sd)", "paper event AUC (mean ± sd)",
                   "paper AQ MSE (mean ± sd)")


def cost_markdown(rows: list[dict]) -> str:
    """The rows of :func:`measure_cost` as a Markdown table (:data:`MARKDOWN_HEADER`) with its notes."""
    from soundaq.models_zoo.registry import PAPER_OVERHEAD_DEVICE

    lines = ["| " + " | ".join(MARKDOWN_HEADER) + " |", "|" + "|".join(["---"] + ["---:"] * (len(MARKDOWN_HEADER) - 1)) + "|"]
    for r in rows:
        p = r.get("paper") or {}
        cells = [r["model"], _num(r["params"], ","), _num(p.get("params_m"), ".2f"),
                 _num(None if r["macs"] is None else r["macs"] / 1e9, ".2f"),
                 _num(r["train_s_per_clip"], "#.3g"), _printed(p.get("training_time_s")),
                 _num(r["train_peak_mb"], ",.0f"), _printed(p.get("training_gpu_memory_gb")),
                 _num(r["infer_s_per_clip"], "#.3g"), _printed(p.get("inference_time_s")),
                 _num(r["infer_peak_mb"], ",.0f"), _printed(p.get("inference_gpu_memory_gb"))]
        for key, nd in (("scene_acc_pct", ".2f"), ("event_auc", ".2f"), ("aq_mse_mean", ".3f")):
            mean, sd = p.get(f"{key}_mean"), p.get(f"{key}_sd")
            cells.append("-" if mean is None else f"{mean:{nd}} ± {sd:{nd}}")
        lines.append("| " + " | ".join(cells) + " |")
    first = rows[0] if rows else {}
    loads = sorted({r["load_average"] for r in rows if r.get("load_average") is not None})
    notes = [f"Measured on {first.get('device', '?')}, batch {first.get('batch', '?')} clips of 30 s"
             + (f", 1-min load average {loads[0]:g}-{loads[-1]:g} (timings vary with other work on the machine)"
                if loads else "") + ".",
             "MACs: one eval-mode forward pass over one 30-s clip, counted by torch.utils.flop_counter.FlopCounterMode "
             "(matrix products, convolutions, attention); MACs = FLOPs / 2.",
             "Times: median of torch.utils.benchmark.Timer.blocked_autorange's timed calls after a warm-up call, "
             "per clip (a training step: forward, 12 task losses, backward, Adam; inference: forward under "
             "inference_mode); a call longer than the autorange window is timed once (`timed_runs` in --json says how "
             "many, per phase), so its figure is that one call's.",
             f"Peak MB (10^6 bytes): {first.get('memory_counts', '')}.",
             f"paper: the release's Table/overhead.png ({PAPER_OVERHEAD_DEVICE}, 30-s clips), as printed; its scores "
             "are mean ± sd over the release's repeated runs on the ARAUS test set."]
    failed = [f"{r['model']}: {r['error']}" for r in rows if r.get("error")]
    if failed:
        notes.append("Not measured: " + "; ".join(failed) + ".")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
