"""Contiguous against channels-last weights on CPU, every zoo net, measured side by side in one run.

    .venv/bin/python -m soundaq.benchmark.perf.memory_format [--nets all|NAME,...] [--threads 1]
        [--batch 8] [--min-time 1] [--out results/perf]

For each net, in one process and alternating so that load changes on a shared machine hit both:

* **training**: one optimisation step at the embedded schedule's input (4-s crops; whole clips for
  AD_CNN and CNN-Transformer), as ``training_speed.py`` times it;
* **inference**: a forward pass in evaluation mode, without gradients, on whole 30-s clips (the
  leaderboard's validation and test predictions).

Each is timed with ``torch.utils.benchmark.Timer.blocked_autorange`` (median of blocks of at least
``--min-time`` seconds, best of two rounds) for the net's weights in the contiguous (NCHW) and the
channels-last (NHWC) memory format, from the same initial weights; it prints the ratio
contiguous / channels-last per phase, the largest difference of the inference outputs between the two
formats, and what :func:`soundaq.models_zoo.cpu_policy.choose_memory_format` picks with the gains it
holds (``CHANNELS_LAST_CPU_GAIN``, copied from a run of this script). Writes ``memory_format.json``
and ``.md`` to ``--out``.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmark.perf.training_speed import run_per_net, step_timer  # noqa: E402  (after the path set-up, as a script)


def inference_timer(net, batch: int, threads: int):
    """A ``Timer`` running the net on ``batch`` whole 30-s clips without gradients, and its inputs."""
    import torch
    from torch.utils.benchmark import Timer

    gen = torch.Generator().manual_seed(1)
    mel = torch.randn(batch, 3001, 64, generator=gen)
    loud = torch.randn(batch, 15000, 1, generator=gen) if net.uses_loudness else None

    def forward():
        with torch.no_grad():
            return net(mel, loud)

    return Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads), forward


def _max_output_difference(a, b) -> float:
    import torch

    diffs = [(x - y).abs().max().item() for x, y in zip(a, b) if isinstance(x, torch.Tensor)]
    return max(diffs) if diffs else 0.0


def measure(name: str, batch: int, threads: int, min_time: float) -> dict:
    """Time one net's training step and inference batch in both memory formats, alternating.

    Returns:
        The net's row: seconds of each phase and format (best of two medians), the gains
        (contiguous / channels-last), the format ``choose_memory_format`` picks and the largest
        output difference between the two formats.
    """
    import torch

    from soundaq.models_zoo.cpu_policy import apply_memory_format, choose_memory_format
    from soundaq.models_zoo.registry import build_net
    from soundaq.models_zoo.schedules import EMBEDDED, crop_frames_for

    torch.manual_seed(0)
    base = build_net(name)
    crop = crop_frames_for(base, EMBEDDED)
    nets = {"contiguous": base, "channels_last": apply_memory_format(copy.deepcopy(base), "channels_last")}
    medians: dict[tuple[str, str], list[float]] = {}
    outputs = {}
    for fmt, net in nets.items():
        net.eval()
        timer, forward = inference_timer(net, batch, threads)
        out = forward()
        outputs[fmt] = (out.scene_logits, out.event_logits, out.qualities, out.isop, out.isoe)
        nets[fmt] = (net, timer)
    for _ in range(2):
        for fmt, (net, timer) in nets.items():
            net.eval()
            medians.setdefault(("inference", fmt), []).append(timer.blocked_autorange(min_run_time=min_time).median)
            net.train()
            train = step_timer(net, crop, batch, threads, old=False)
            medians.setdefault(("training", fmt), []).append(train.blocked_autorange(min_run_time=min_time).median)
    row = {"net": name, "crop_frames": crop, "batch": batch, "threads": threads,
           "max_output_difference": _max_output_difference(outputs["contiguous"], outputs["channels_last"])}
    for phase in ("training", "inference"):
        plain, last = min(medians[(phase, "contiguous")]), min(medians[(phase, "channels_last")])
        row[f"{phase}_contiguous_s"] = round(plain, 4)
        row[f"{phase}_channels_last_s"] = round(last, 4)
        row[f"{phase}_gain"] = round(plain / last, 2)
        row[f"{phase}_chosen"] = choose_memory_format(name, EMBEDDED, "cpu", phase)[0]
    return row


def markdown(rows: list[dict], meta: dict) -> str:
    """The report: one table row per net of :func:`measure`'s numbers, under the machine and settings."""
    lines = [f"# Channels-last against contiguous weights on CPU ({meta['machine']}, {meta['threads']} thread(s), "
             f"batch {meta['batch']}, load average {meta['load_average']})", "",
             "Seconds per training step (embedded-schedule input) and per inference batch (whole 30-s clips); "
             "gain = contiguous / channels-last; chosen = what `choose_memory_format` picks.", "",
             "| net | training: contiguous s | channels-last s | gain | chosen | inference: contiguous s | "
             "channels-last s | gain | chosen | max output difference |",
             "|---|---:|---:|---:|---|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['training_contiguous_s']:.3f} | {r['training_channels_last_s']:.3f} | "
                     f"{r['training_gain']:.2f}x | {r['training_chosen']} | {r['inference_contiguous_s']:.3f} | "
                     f"{r['inference_channels_last_s']:.3f} | {r['inference_gain']:.2f}x | {r['inference_chosen']} | "
                     f"{r['max_output_difference']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """The per-net command line (:func:`~soundaq.benchmark.perf.training_speed.run_per_net`) for this script."""
    return run_per_net("memory_format", __doc__.split("\n\n")[0], measure, markdown,
                       lambda r: f"training x{r['training_gain']:.2f}  inference x{r['inference_gain']:.2f}  "
                                 f"max |output difference| {r['max_output_difference']:.1e}", argv, min_time=1.0)


if __name__ == "__main__":
    raise SystemExit(main())
