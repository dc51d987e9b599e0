"""Checkpoints: importing the original release's weights, and our own Lightning-compatible files.

Our checkpoint (``.ckpt``) is a ``torch.save`` of plain containers, loadable with
``torch.load(weights_only=True)`` and by ``SoundscapeModule.load_from_checkpoint``::

    {"state_dict": {"net.<key>": tensor, ...},
     "soundaq": {"model": NAME,
                 "norm_stats": {"log_mel": {"mean": [64], "std": [64]},
                                "loudness": {"mean": [1], "std": [1]}},
                 "provenance": {...}},
     "hyper_parameters": {"net_name": NAME},
     "pytorch-lightning_version": lightning.__version__}

Release files are read safely: weights with ``torch.load(weights_only=True)`` (tensors and plain
containers only), normalisation pickles with an unpickler that admits numpy arrays and nothing
else (no code can run), or JSON. Each net module's ``map_original_keys`` is the one documented
mapping from the release's keys to ours.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import io
import pickle
import platform
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from soundaq.base import filekinds
from soundaq.base.artifacts import zip_problem
from soundaq.base.errors import UserError, first_line, one_line
from soundaq.base.fileio import atomic_path, sha256_file
from soundaq.base.textio import TextFileError, read_json

#: Widths of the two normalised inputs.
NORM_WIDTHS = {"log_mel": 64, "loudness": 1}
#: Containers the release (or other tools) wrap a state dict in.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


class CheckpointError(UserError):
    """A weights, statistics or checkpoint file cannot be used; the message names it and the fix."""


#: Kinds a torch.load-able file may be sniffed as (anything else is another kind of file).
_TORCH_KINDS = ("torch", "zip", "pickle", "binary", "empty", "missing")


def torch_object_kind(obj) -> str:
    """What a ``torch.load``-ed object is: ``"soundaq-checkpoint"``, ``"lightning-checkpoint"``,
    ``"release-state-dict"`` (a mapping of names to tensors, possibly wrapped) or ``"torch"``.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        if isinstance(obj.get("soundaq"), Mapping) or (isinstance(obj.get("hyper_parameters"), Mapping)
                                                       and obj["hyper_parameters"].get("net_name")):
            return "soundaq-checkpoint"
        if "pytorch-lightning_version" in obj:
            return "lightning-checkpoint"
        if obj["state_dict"] and all(str(k).startswith("net.") for k in obj["state_dict"]):
            return "torch"   # our layout without its model name: load_checkpoint says what is missing
    if _is_tensor_dict(obj) or (isinstance(obj, Mapping) and any(_is_tensor_dict(obj.get(k)) for k in _WRAPPER_KEYS)):
        return "release-state-dict"
    return "torch"


# ---------------------------------------------------------------------------------------------
# Normalisation statistics: numpy-only pickles or JSON
# ---------------------------------------------------------------------------------------------

def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals a numpy-array pickle needs, under numpy 1 and numpy 2 module names."""
    try:
        _ma = importlib.import_module("numpy._core.multiarray")  # numpy >= 2
        _num = importlib.import_module("numpy._core.numeric")
    except ImportError:  # pragma: no cover - numpy 1
        _ma = importlib.import_module("numpy.core.multiarray")
        _num = importlib.import_module("numpy.core.numeric")
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = _ma._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = _ma.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = _num._frombuffer
    return allowed


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts/lists/numbers/strings and numpy arrays; any other global is refused."""

    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str):
        """The numpy class ``module.name`` if it is one of the allowed ones.

        Raises:
            pickle.UnpicklingError: any other global (no code from the file can run).
        """
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only numpy arrays are allowed") from None


def load_numpy_pickle(path: Path | str):
    """Read a pickle that may hold only numpy arrays in plain containers."""
    path = Path(path)
    with open(path, "rb") as fh:
        return NumpyOnlyUnpickler(io.BytesIO(fh.read())).load()


def _as_vector(value, path: Path, feature: str, key: str) -> list[float]:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CheckpointError(f"{path}: {feature} {key} is not numeric; fix: give the release's "
                              "norm_*.pickle or a JSON {\"mean\": [...], \"std\": [...]}") from None
    width = NORM_WIDTHS[feature]
    if arr.size != width:
        raise CheckpointError(f"{path}: {feature} {key} has {arr.size} values, expected {width}; "
                              f"fix: pass the {'norm_log_mel' if feature == 'log_mel' else 'norm_loudness'} "
                              "file of the same release")
    if not np.all(np.isfinite(arr)) or (key == "std" and np.any(arr <= 0)):
        raise CheckpointError(f"{path}: {feature} {key} holds non-finite{' or non-positive' if key == 'std' else ''} "
                              "values; fix: recompute the statistics")
    return [float(v) for v in arr]


def read_norm_file(path: Path | str, feature: str) -> dict[str, list[float]]:
    """Mean and std of one input (``log_mel`` or ``loudness``) from a release pickle or a JSON file.

    Accepted: the release's ``norm_log_mel.pickle``/``norm_loudness.pickle`` (a dict with numpy
    ``mean`` and ``std``), a JSON ``{"mean": [...], "std": [...]}``, or a JSON holding both inputs
    (``{"log_mel": {...}, "loudness": {...}}``, e.g. ``original_normalisation_stats.json``).
    """
    if feature not in NORM_WIDTHS:
        raise ValueError(f"feature must be one of {tuple(NORM_WIDTHS)}")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; fix: pass the release's norm_{feature}.pickle or a JSON file")
    filekinds.expect(path, ("pickle", "norm-stats"), f"{feature} normalisation statistics (norm_*.pickle or JSON)")
    if path.suffix.lower() == ".json":
        try:
            obj = read_json(path, fix='give {"mean": [...], "std": [...]} as JSON')
        except TextFileError as err:
            raise CheckpointError(str(err)) from None
    else:
        try:
            obj = load_numpy_pickle(path)
        except pickle.UnpicklingError as err:
            raise CheckpointError(f"{path}: refused ({first_line(err)}); fix: give a pickle of numpy arrays "
                                  "or the statistics as JSON") from None
        except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
            raise CheckpointError(f"{path}: not a pickle of mean/std statistics ({one_line(err)}); "
                                  "fix: give the release's norm_*.pickle or a JSON file") from None
    if isinstance(obj, Mapping) and feature in obj and isinstance(obj[feature], Mapping):
        obj = obj[feature]
    if not isinstance(obj, Mapping) or "mean" not in obj or "std" not in obj:
        raise CheckpointError(f"{path}: expected a mapping with 'mean' and 'std' for {feature}; "
                              "fix: give the release's norm_*.pickle or a JSON {\"mean\": [...], \"std\": [...]}")
    return {"mean": _as_vector(obj["mean"], path, feature, "mean"),
            "std": _as_vector(obj["std"], path, feature, "std")}


def file_holds_both(path: Path | str) -> bool:
    """True for a JSON file holding both inputs' statistics (``log_mel`` and ``loudness``)."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        obj = read_json(path)
    except TextFileError:
        return False
    return isinstance(obj, Mapping) and all(isinstance(obj.get(f), Mapping) for f in NORM_WIDTHS)


def validate_norm_stats(stats: object, where: str = "norm_stats") -> dict:
    """A clean copy of ``{"log_mel": {"mean", "std"}, "loudness": {"mean", "std"}}`` (lists of floats).

    Args:
        stats: the statistics as found (any object: a checkpoint's entry, a file's content).
        where: what to name in messages (a file, a checkpoint).

    Raises:
        CheckpointError: not a mapping, a feature missing, or values that are not vectors of the feature's width.
    """
    if not isinstance(stats, Mapping):
        raise CheckpointError(f"{where}: normalisation statistics missing or malformed; "
                              "fix: import the weights again with `soundaq import-original`")
    out = {}
    for feature in NORM_WIDTHS:
        block = stats.get(feature)
        if not isinstance(block, Mapping) or "mean" not in block or "std" not in block:
            raise CheckpointError(f"{where}: normalisation statistics lack {feature!r}; "
                                  "fix: import the weights again with `soundaq import-original`")
        out[feature] = {k: _as_vector(block[k], Path(where), feature, k) for k in ("mean", "std")}
    return out


# ---------------------------------------------------------------------------------------------
# Release weights
# ---------------------------------------------------------------------------------------------

def _torch_load(path: Path, expected: str = "a PyTorch weights file"):
    import torch

    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; fix: give the path of the weights file")
    kind = filekinds.expect(path, _TORCH_KINDS, expected)
    if kind in ("zip", "torch", "empty"):
        problem = zip_problem(path)
        if problem is not None:   # a torch.save file cut short by a kill, a full disk or a copy
            raise CheckpointError(f"{path}: damaged ({problem}); fix: write it again (`soundaq train` resumes, "
                                  "`soundaq import-original` rewrites) or copy it again")
    ckpt_fix = "give a .ckpt that `soundaq train`, `soundaq import-original` or `soundaq models download` wrote"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        what = f"it needs {found.group(1)}" if found else "it is not a tensors-only PyTorch file"
        fix = ckpt_fix if "checkpoint" in expected else "give a file holding only tensors (a state dict)"
        raise CheckpointError(f"{path}: refused by the safe loader (torch.load weights_only=True): {what}; "
                              f"fix: {fix}") from None
    except Exception as err:  # noqa: BLE001 - torch's unpickler raises anything (KeyError, IndexError, ...) on garbage
        fix = ckpt_fix if "checkpoint" in expected else "give the .pth state dict of the release"
        raise CheckpointError(f"{path}: not a PyTorch weights file (torch.load: {one_line(err)[:160]}; another kind "
                              f"of file, or {expected} damaged in a copy); fix: {fix}") from None


def _is_tensor_dict(obj) -> bool:
    import torch

    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state_dict(path: Path | str) -> OrderedDict:
    """The tensor dict inside a release weights file (unwrapping ``{"state_dict": ...}`` and the like)."""
    path = Path(path)
    obj = _torch_load(path, "a release state dict")
    if torch_object_kind(obj) == "soundaq-checkpoint":
        raise filekinds.wrong_kind(path, "soundaq-checkpoint", "a release state dict")
    for _ in range(3):
        if _is_tensor_dict(obj):
            return OrderedDict(obj)
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj), None)
            if inner is not None:
                obj = inner
                continue
        break
    raise CheckpointError(f"{path}: holds no state dict (a mapping of names to tensors); "
                          "fix: give the release's *_final_model.pth or a torch.save(model.state_dict()) file")


def map_original_keys(net_name: str, state_dict: Mapping) -> OrderedDict:
    """Apply the net module's documented ``map_original_keys`` (release keys -> ours)."""
    from soundaq.models_zoo.nets.common import strip_module_prefix
    from soundaq.models_zoo.registry import get_spec

    module = importlib.import_module(get_spec(net_name).target.partition(":")[0])
    mapper = getattr(module, "map_original_keys", strip_module_prefix)
    return OrderedDict(mapper(state_dict))


def _load_into(net, state_dict: Mapping, where: str, model: str) -> None:
    """Strict load with a readable report of missing, unexpected and mis-shaped keys."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[0]})")
        raise CheckpointError(f"{where}: weights do not fit {model}: {'; '.join(parts)}; "
                              f"fix: check that the file belongs to {model} (see `soundaq models`)")
    net.load_state_dict(state_dict, strict=True)


def load_original_weights(net_name: str, weights: Path | str):
    """A net of ``net_name`` holding the release's weights from ``weights`` (in eval mode)."""
    from soundaq.models_zoo.registry import build_net

    weights = Path(weights)
    state = map_original_keys(net_name, read_state_dict(weights))
    net = build_net(net_name)
    _load_into(net, state, str(weights), net_name)
    return net.eval()


# ---------------------------------------------------------------------------------------------
# Our checkpoints
# ---------------------------------------------------------------------------------------------

def _plain(obj):
    """JSON-like plain values only (numpy/tensors as lists), so weights_only=True loads them."""
    if obj is None or type(obj) in (bool, int, float):
        return obj
    if isinstance(obj, str):  # also str subclasses such as torch's TorchVersion, as plain str
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def versions() -> dict[str, str]:
    """Versions of soundaq, torch, Lightning, numpy and Python, as checkpoints record them ("source" for a checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    import lightning
    import torch

    try:
        soundaq = version("soundaq")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        soundaq = "source"
    return {"soundaq": str(soundaq), "torch": str(torch.__version__), "lightning": str(lightning.__version__),
            "numpy": str(np.__version__), "python": platform.python_version()}


def save_checkpoint(path: Path | str, net_name: str, state_dict: Mapping, norm_stats: Mapping,
                    provenance: Mapping | None = None) -> Path:
    """Write our Lightning-compatible checkpoint atomically; returns its path."""
    import lightning
    import torch

    from soundaq.models_zoo.registry import get_spec

    spec = get_spec(net_name)
    stats = validate_norm_stats(norm_stats)
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"state dict for {net_name} holds non-tensors ({', '.join(bad[:3])})")
    ckpt = {
        "state_dict": OrderedDict((f"net.{k}", v.detach().cpu()) for k, v in state_dict.items()),
        "soundaq": {"model": spec.name, "norm_stats": stats, "provenance": _plain(dict(provenance or {}))},
        "hyper_parameters": {"net_name": spec.name},
        "pytorch-lightning_version": str(lightning.__version__),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def _mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a mapping (an entry of a checkpoint), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def load_checkpoint(path: Path | str):
    """``(net, norm_stats, info)`` from one of our checkpoints (ours or SoundscapeModule's).

    Args:
        path: a checkpoint written by ``soundaq train``, ``import-original`` or ``models download``.

    Returns:
        ``(net, norm_stats, info)``: ``net`` is built from the registry, holds the weights and is in
        eval mode; ``norm_stats`` is ``{"log_mel": {"mean": [64], "std": [64]}, "loudness": {...}}``;
        ``info`` is the checkpoint's ``soundaq`` entry plus ``path``, ``sha256`` and ``params``.

    Raises:
        CheckpointError: a damaged file, a release state dict (use ``import-original``), or a
            checkpoint that names no model (one line naming the file and the fix).
    """
    from soundaq.models_zoo.registry import build_net, count_params

    path = Path(path)
    ckpt = _torch_load(path, "a soundaq checkpoint (.ckpt)")
    if torch_object_kind(ckpt) == "release-state-dict":
        raise filekinds.wrong_kind(path, "release-state-dict", "a soundaq checkpoint")
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"{path}: not a soundaq checkpoint (no state_dict); fix: for release weights "
                              "run `soundaq import-original` first")
    info = _mapping(ckpt.get("soundaq"))
    hparams = _mapping(ckpt.get("hyper_parameters"))
    model = info.get("model") or hparams.get("net_name")
    if not model:
        raise CheckpointError(f"{path}: names no model (soundaq.model / hyper_parameters.net_name); "
                              "fix: re-create it with `soundaq import-original` or `soundaq train`")
    norm_stats = validate_norm_stats(info.get("norm_stats"), str(path))
    net_kwargs = _mapping(hparams.get("net_kwargs"))
    if info.get("target"):                 # a plug-in net: make its name known in this process too
        from soundaq.models_zoo.registry import get_spec

        model = get_spec(str(info["target"])).name
    net = build_net(model, **net_kwargs)
    state = OrderedDict((k[len("net."):], v) for k, v in ckpt["state_dict"].items() if k.startswith("net."))
    _load_into(net, state, str(path), model)
    out_info = dict(info)
    out_info.update({"model": model, "path": str(path), "sha256": sha256_file(path),
                     "params": count_params(net)})
    return net.eval(), norm_stats, out_info


def import_original(net_name: str, weights: Path | str, norm_mel: Path | str,
                    norm_loudness: Path | str | None, out: Path | str,
                    extra_provenance: Mapping | None = None) -> dict:
    """Turn a release state dict plus its statistics into our checkpoint; returns a summary.

    ``extra_provenance`` is merged into the recorded provenance (e.g. the release commit and git
    blob id of a pinned download).
    """
    from soundaq.models_zoo.registry import count_params, get_spec

    spec = get_spec(net_name)
    weights, norm_mel, out = Path(weights), Path(norm_mel), Path(out)
    net = load_original_weights(spec.name, weights)
    stats = {"log_mel": read_norm_file(norm_mel, "log_mel")}
    sources: dict[str, dict[str, Any]] = {"log_mel": {"file": norm_mel.name, "sha256": sha256_file(norm_mel)}}
    loud_src = Path(norm_loudness) if norm_loudness is not None else (norm_mel if file_holds_both(norm_mel) else None)
    if loud_src is not None:
        stats["loudness"] = read_norm_file(loud_src, "loudness")
        sources["loudness"] = {"file": loud_src.name, "sha256": sha256_file(loud_src)}
    elif spec.uses_loudness:
        raise CheckpointError(f"{spec.name} reads the loudness input: pass --norm-loudness FILE "
                              "(the release's norm_loudness.pickle, or a JSON with mean/std)")
    else:
        # The net never reads loudness; identity statistics keep the checkpoint format complete.
        stats["loudness"] = {"mean": [0.0], "std": [1.0]}
        sources["loudness"] = {"file": None, "note": f"not supplied; identity stored ({spec.name} does not read loudness)"}
    provenance = {
        "source": "soundaq import-original",
        "release": "Yuanbo2020/SoundSCaper",
        "weights_file": weights.name,
        "weights_sha256": sha256_file(weights),
        "norm_stats_files": sources,
        "key_mapping": f"{spec.target.partition(':')[0]}.map_original_keys",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        **dict(extra_provenance or {}),
    }
    save_checkpoint(out, spec.name, net.state_dict(), stats, provenance)
    return {"model": spec.name, "out": str(out), "params": count_params(net),
            "tensors": len(net.state_dict()), "sha256": sha256_file(out), "provenance": provenance}
