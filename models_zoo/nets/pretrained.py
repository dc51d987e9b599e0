"""Load AudioSet-pretrained backbone weights for PANNs and YAMNet from a file the user supplies.

Nothing is downloaded. The user fetches one of these files and passes its path:

* **PANNs**: a CNN14 checkpoint of the PANNs release (Kong et al. 2020, zenodo record 3987831).
  ``Cnn14_16k_mAP=0.438.pth`` was trained on 16 kHz audio with 64 mel bands 50-8000 Hz, hop 160,
  window 512: the same front end as ours, so it is the recommended file. ``Cnn14_mAP=0.431.pth``
  (32 kHz, 50-14000 Hz) loads too (same shapes) but sees differently scaled features.
  The file holds ``{"model": state_dict}``; we take ``conv_block1..6.*`` and ``fc1.*`` and ignore
  ``spectrogram_extractor.*``, ``logmel_extractor.*``, ``bn0.*`` (the release's PANNs has no input
  batch norm; our inputs are normalised with the training set's statistics instead) and
  ``fc_audioset.*`` (the 527 AudioSet classes).
* **YAMNet**: ``yamnet.pth`` of the torch_audioset port of Google's YAMNet (the port the
  release's YAMNet code is built on). We take ``layer1..14.*`` and ignore ``classifier.*`` (521
  AudioSet classes).

Keys are matched by name: every backbone tensor of the net must be in the file with the same
shape (only ``num_batches_tracked`` counters may be absent), otherwise
:class:`PretrainedWeightsError` names the file and what is wrong, and the net is left untouched.
The heads (``fc_final_*``) keep their initialisation. Files are read with
``torch.load(weights_only=True)``: a file holding anything but tensors and plain containers is refused.
A Lightning/ours-style checkpoint (``{"state_dict": ...}``) and DataParallel ``module.`` prefixes
are accepted as well.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from soundaq.base.errors import UserError, first_line

__all__ = ["Backbone", "LoadReport", "PretrainedWeightsError", "load_pretrained_backbone", "read_state_dict"]


class PretrainedWeightsError(UserError):
    """The pretrained-weights file cannot be used; the message names the file and the fix."""


class Backbone(Protocol):
    """What the loader needs of a backbone: a net's registry entry's ``backbone``
    (:class:`soundaq.models_zoo.registry.BackboneSpec`).
    """

    keep_prefixes: tuple[str, ...]
    ignore_prefixes: tuple[str, ...]
    expected_file: str


@dataclass
class LoadReport:
    """What :func:`load_pretrained_backbone` did."""

    model: str
    path: str
    sha256: str
    #: Keys copied into the net (parameters and buffers), and the number of parameter values
    #: (trainable weights, not batch-norm statistics) among them.
    loaded: list[str] = field(default_factory=list)
    loaded_parameters: int = 0
    #: Keys of the file the spec expects and skips (front end, AudioSet classifier).
    ignored: list[str] = field(default_factory=list)
    #: Other keys of the file, not used (e.g. the heads of a full release checkpoint).
    unexpected: list[str] = field(default_factory=list)
    #: BatchNorm ``num_batches_tracked`` counters the file lacks (they keep their value).
    absent_counters: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The report as JSON-ready values (the key lists in full, the loaded tensors counted)."""
        return {"model": self.model, "path": self.path, "sha256": self.sha256,
                "loaded_tensors": len(self.loaded), "loaded_parameters": self.loaded_parameters,
                "ignored_keys": self.ignored, "unexpected_keys": self.unexpected,
                "absent_counters": self.absent_counters}


def _is_tensor_dict(obj) -> bool:
    import torch

    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state_dict(path: Path | str) -> OrderedDict:
    """Read a state dict (name -> tensor) from ``path`` with ``torch.load(weights_only=True)``.

    Unwraps ``{"model": sd}`` (PANNs release) and ``{"state_dict": sd}`` (Lightning) and a
    ``module.`` prefix. Raises :class:`PretrainedWeightsError` for a missing, unreadable or
    non-state-dict file.
    """
    import pickle

    import torch

    from soundaq.models_zoo.nets.common import strip_module_prefix

    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: no such file; pass the path of a downloaded .pth weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError) as err:
        first = first_line(err)
        raise PretrainedWeightsError(
            f"{path}: not a PyTorch weights file that can be loaded safely ({first[:160]}); "
            "pass a .pth state dict saved with torch.save") from None
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, Mapping) and not _is_tensor_dict(obj) and _is_tensor_dict(obj.get(wrapper)):
            obj = obj[wrapper]
            break
    if not _is_tensor_dict(obj):
        what = (f"a dict with keys {sorted(map(str, obj))[:5]}" if isinstance(obj, Mapping)
                else type(obj).__name__)
        raise PretrainedWeightsError(f"{path}: holds {what}, not a state dict of tensors; "
                                     "pass the .pth file itself (a name -> tensor mapping)")
    return strip_module_prefix(obj)


def load_pretrained_backbone(net, path: Path | str, backbone: Backbone, model: str | None = None) -> LoadReport:
    """Copy the AudioSet backbone weights in ``path`` into ``net`` (a PANNs or YAMNet), in place.

    ``backbone`` is the net's registry entry's (``get_spec(name).backbone``); ``model`` the registry name
    for messages, by default the class name of ``net``. All-or-nothing: on any mismatch
    :class:`PretrainedWeightsError` is raised before a single tensor is copied.
    """
    import torch

    from soundaq.base.fileio import sha256_file

    name = model or type(net).__name__
    spec = backbone
    path = Path(path)
    source = read_state_dict(path)
    target = net.state_dict()
    wanted = [k for k in target if k.startswith(spec.keep_prefixes)]
    missing = [k for k in wanted if k not in source and not k.endswith("num_batches_tracked")]
    hint = f"expected {spec.expected_file}"
    if missing:
        sample = ", ".join(list(source)[:3])
        raise PretrainedWeightsError(
            f"{path}: not a {name} backbone: {len(missing)} of {len(wanted)} tensors missing "
            f"(first: {missing[0]}; the file has keys like {sample}); {hint}")
    wrong = [(k, tuple(source[k].shape), tuple(target[k].shape)) for k in wanted
             if k in source and tuple(source[k].shape) != tuple(target[k].shape)]
    if wrong:
        k, got, want = wrong[0]
        raise PretrainedWeightsError(
            f"{path}: {len(wrong)} backbone tensors have the wrong shape (first: {k} is {list(got)}, "
            f"{name} needs {list(want)}); {hint}")
    for k in wanted:
        if k in source and source[k].is_floating_point() and not bool(torch.isfinite(source[k]).all()):
            raise PretrainedWeightsError(f"{path}: tensor {k} holds NaN or infinite values; the file is corrupt, "
                                         "download it again")
    report = LoadReport(model=name, path=str(path), sha256=sha256_file(path))
    parameter_names = {n for n, _ in net.named_parameters()}   # buffers (BN running stats) are not parameters
    with torch.no_grad():
        for k in wanted:
            if k not in source:
                report.absent_counters.append(k)
                continue
            target[k].copy_(source[k].to(dtype=target[k].dtype))
            report.loaded.append(k)
            if k in parameter_names:
                report.loaded_parameters += math.prod(target[k].shape)
    kept = set(wanted)
    report.ignored = [k for k in source if k not in kept and k.startswith(spec.ignore_prefixes)]
    report.unexpected = [k for k in source if k not in kept and not k.startswith(spec.ignore_prefixes)]
    return report
