"""CPU training and inference policy per net: numeric precision and the memory format of the weights.

Both choices come from measurements only (the registry entries' ``cpu_bf16`` and
``channels_last_cpu_gain``, measured by ``benchmark/perf/memory_format.py``); a net without a
measurement trains in 32-bit with contiguous tensors. GPU runs and the paper's schedule always keep
the original's 32-bit, contiguous set-up. Each choice comes with its reason, which goes into the
run's provenance.
"""
from __future__ import annotations

import torch

from soundaq.models_zoo.registry import NETS, find_spec
from soundaq.models_zoo.schedules import Schedule

#: Nets whose CPU training step bf16 autocast (with channels-last) sped up 1.6-2.5x on a CPU with native bf16
#: (AMX), outputs within 1e-2 (3e-2 MobileNetV2), as measured for issue 11; no gain for SoundAQnet and 2x
#: slower PANNs. On CPUs without native bf16 (AVX2 only) bf16 is emulated and slower for every net.
#: A view of the registry entries' ``cpu_bf16`` (the paper's eight).
BF16_CPU_NETS = tuple(name for name, spec in NETS.items() if spec.cpu_bf16)

#: CPU speed-up of the channels-last memory format over contiguous tensors, 32-bit, one thread, batch 8:
#: (training step on the embedded schedule's input, i.e. 4-s crops and whole clips for AD_CNN and
#: CNN-Transformer; inference on whole 30-s clips), as ``benchmark/perf/memory_format.py`` measured
#: them side by side on a 2-core AMD EPYC (AVX2, no native bf16). oneDNN's convolutions read
#: channels-last (NHWC) activations without reordering them. PANNs and SoundAQnet from a second run
#: (their first: training 0.94x and 0.98x, inference 1.05x and 1.41x; timings of these large nets vary
#: by about 15 % between runs on this shared machine).
#: A view of the registry entries' ``channels_last_cpu_gain`` (the paper's eight).
CHANNELS_LAST_CPU_GAIN: dict[str, tuple[float, float]] = {
    name: spec.channels_last_cpu_gain for name, spec in NETS.items() if spec.channels_last_cpu_gain}
#: Inference switches to channels-last only where it measured at least this much faster (the training
#: gains are kept for the record: training stays contiguous, see :func:`choose_memory_format`).
CHANNELS_LAST_MIN_GAIN = 1.1


def runs_on_cpu(accelerator: str) -> bool:
    """True when Lightning's ``accelerator`` setting puts the run on the CPU ("cpu", or "auto" without CUDA)."""
    return str(accelerator) == "cpu" or (str(accelerator) == "auto" and not torch.cuda.is_available())


def cpu_has_native_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def choose_memory_format(model: str, schedule: Schedule, accelerator: str, phase: str) -> tuple[str, str]:
    """``(memory format, reason)`` of ``model``'s weights for ``phase`` ("training" or "inference").

    ``channels_last`` for inference under a clip-budget schedule (the embedded preset) on a CPU where the
    net's registry entry (``channels_last_cpu_gain``) measured it at least :data:`CHANNELS_LAST_MIN_GAIN`
    times faster;
    ``contiguous`` otherwise: the paper's schedule, GPUs, nets not measured (plug-ins), and training:
    channels-last training steps gave different weights with one and with two threads (oneDNN splits
    the weight-gradient sums by thread), which would make the table depend on ``--workers``, while its
    inference, like contiguous training and inference, gave the same bits with one or two threads
    (tested). Inference outputs move by float rounding only (at most 2.6e-6 in the measured run). The
    reason goes into the run's provenance.

    Args:
        model: registry name of the net (a name the registry lacks gets ``contiguous``).
        schedule: the run's training schedule (a clip budget or the paper's epochs).
        accelerator: Lightning's accelerator setting ("cpu", "gpu", "auto", ...).
        phase: "training" or "inference".

    Returns:
        ``("contiguous" | "channels_last", one-line reason)``.

    Raises:
        ValueError: ``phase`` is neither "training" nor "inference".
    """
    if phase not in ("training", "inference"):
        raise ValueError(f"phase must be 'training' or 'inference', got {phase!r}")
    if schedule.budget_clips is None:
        return "contiguous", "the paper's schedule"
    if not runs_on_cpu(accelerator):
        return "contiguous", "not a CPU run"
    if phase == "training":
        return "contiguous", "channels-last training depends on the thread count (results must not)"
    spec = find_spec(model)
    gains = spec.channels_last_cpu_gain if spec is not None else None
    if gains is None:
        return "contiguous", f"channels-last not measured for {model}"
    gain = gains[1]
    if gain < CHANNELS_LAST_MIN_GAIN:
        return "contiguous", f"channels-last measured {gain:.2f}x for {model} inference (below {CHANNELS_LAST_MIN_GAIN}x)"
    return "channels_last", f"channels-last measured {gain:.2f}x faster for {model} inference on CPU"


def apply_memory_format(net: torch.nn.Module, memory_format: str) -> torch.nn.Module:
    """``net`` with its 4-D weights in ``memory_format`` ("contiguous" or "channels_last"), in place.

    Raises:
        ValueError: another memory format name.
    """
    fmt = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}.get(memory_format)
    if fmt is None:
        raise ValueError(f"memory format must be 'contiguous' or 'channels_last', got {memory_format!r}")
    # torch's stubs list no memory_format keyword for Module.to, which accepts it (nn.Module.to's docs)
    return net.to(memory_format=fmt)  # type: ignore[call-overload]


def choose_precision(model: str, schedule: Schedule, accelerator: str,
                     requested: str | int | None = None) -> tuple[str, str]:
    """``(precision, reason)`` for Lightning's ``Trainer(precision=...)``.

    What was asked for; else, for the embedded schedule on a CPU with native bf16, ``bf16-mixed`` for
    the nets where it was measured faster (their registry entry's ``cpu_bf16``); else full precision
    (the paper's schedule always trains in 32-bit, as the original). The reason goes into the run's
    provenance.

    Args:
        model: registry name of the net.
        schedule: the run's training schedule.
        accelerator: Lightning's accelerator setting.
        requested: a precision the user asked for (``--precision``), taken as it is; None: chosen here.

    Returns:
        ``(Lightning precision string, one-line reason)``.
    """
    if requested is not None:
        return str(requested), "asked for"
    if schedule.budget_clips is None or not runs_on_cpu(accelerator):
        return "32-true", "the paper's precision"
    spec = find_spec(model)
    if spec is None or not spec.cpu_bf16:
        return "32-true", f"bf16 measured no faster for {model}"
    if not cpu_has_native_bf16():
        return "32-true", f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16"
    return "bf16-mixed", "native bf16 on this CPU, measured 1.6-2.5x faster for this net"
