"""The model registry: registry name -> how to build the net, its inputs, and the paper's scores.

Registry names are used everywhere (CLI, tables, files): AD_CNN, Baseline_CNN, Hierarchical_CNN,
MobileNetV2, YAMNet, CNN_Transformer, PANNs, SoundAQnet. Net classes are imported lazily from
``"module:Class"`` paths, so listing the registry needs no torch import and a net whose module is
missing or broken only fails when that net is built.

Paper scores are the SoundSCaper paper's test-set results (3,576 ARAUS clips): scene accuracy is the
macro mean of per-class accuracies (%), event AUC is the per-clip AUC averaged over clips, PAQ MSE
is the mean over the 8 qualities of each quality's MSE. ``None`` where the paper gives no number.
"""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any

from soundaq.base.errors import UserError, one_line
from soundaq.base.vocab import QUALITIES

INPUT_MEL = "log-mel [3001, 64]"
INPUT_LOUDNESS = "loudness [15000, 1]"


@dataclass(frozen=True)
class NetSpec:
    """What the registry knows about one net."""

    name: str
    target: str                       # "package.module:Class"
    inputs: tuple[str, ...]
    params: int                       # exact trainable parameter count of the original
    paper_params_m: float | None      # parameters (millions) as printed in the paper's table
    paper_scene_acc: float | None     # %
    paper_event_auc: float | None
    paper_paq_mse: float | None       # mean of the 8 per-quality MSEs
    paper_paq_mse_per_quality: dict[str, float] | None = None
    original: str = ""                # where the original definition lives in Yuanbo2020/SoundSCaper
    released_weights: str | None = None
    notes: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def uses_loudness(self) -> bool:
        return INPUT_LOUDNESS in self.inputs

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        d["uses_loudness"] = self.uses_loudness
        del d["kwargs"]
        return d


_SOUNDAQNET_PAQ = dict(zip(QUALITIES, (0.880, 1.029, 1.043, 0.972, 1.126, 0.969, 1.055, 1.140)))

_SPECS = (
    NetSpec("AD_CNN", "soundaq.models_zoo.nets.ad_cnn:ADCNN", (INPUT_MEL,), 521_472, 0.521472, 89.30, 0.84, 1.137,
            original="Other_AD_CNN/framework/models_pytorch.py", released_weights="AD_CNN_final_model.pth",
            notes="fixed input length: 3000-3019 frames"),
    NetSpec("Baseline_CNN", "soundaq.models_zoo.nets.baseline_cnn:BaselineCNN", (INPUT_MEL,), 1_009_900, None,
            88.37, 0.92, 1.250, original="Other_Baseline_CNN/framework/models_pytorch.py",
            released_weights="Baseline_CNN_final_model.pth",
            notes="bn0, conv2, conv4, conv6 defined but unused, as in the original"),
    NetSpec("Hierarchical_CNN", "soundaq.models_zoo.nets.hierarchical_cnn:HierarchicalCNN", (INPUT_MEL,), 1_009_633,
            1.009633, 90.68, 0.88, 1.240, original="Other_Hierarchical_CNN/framework/models_pytorch.py",
            released_weights="Hierarchical_CNN_final_model.pth",
            notes="bn0, conv2, conv4, conv6 defined but unused, as in the original"),
    NetSpec("MobileNetV2", "soundaq.models_zoo.nets.mobilenetv2:MobileNetV2", (INPUT_MEL,), 2_259_164, 2.259164,
            88.79, 0.92, 1.139, original="Other_MobileNetV2/framework/models_pytorch.py"),
    NetSpec("YAMNet", "soundaq.models_zoo.nets.yamnet:YAMNet", (INPUT_MEL,), 3_235_100, 3.2351, 89.17, 0.91, 1.197,
            original="Other_YAMNet/framework/models_pytorch.py"),
    NetSpec("CNN_Transformer", "soundaq.models_zoo.nets.cnn_transformer:CNNTransformer", (INPUT_MEL,), 12_293_996,
            12.293996, 93.10, 0.93, 1.318, original="Other_CNN_Transformer/framework/models_pytorch.py"),
    NetSpec("PANNs", "soundaq.models_zoo.nets.panns:PANNs", (INPUT_MEL,), 79_731_036, 79.731036, 93.28, 0.89, 1.139,
            original="Other_PANNs/framework/models_pytorch.py"),
    NetSpec("SoundAQnet", "soundaq.models_zoo.nets.soundaqnet:SoundAQnet", (INPUT_MEL, INPUT_LOUDNESS), 2_701_812,
            2.701812, 96.09, 0.94, 1.027, paper_paq_mse_per_quality=_SOUNDAQNET_PAQ,
            original="SoundAQnet/framework/models_pytorch.py",
            notes="gated graph convolution over 8 nodes in plain PyTorch (no dgl)"),
)

#: Registry name -> spec, in the paper's table order.
NETS: dict[str, NetSpec] = {s.name: s for s in _SPECS}


def list_nets() -> list[str]:
    """Registry names in the paper's table order."""
    return list(NETS)


def get_spec(name: str) -> NetSpec:
    """The spec of ``name``; an unknown name is a UserError listing the valid ones."""
    try:
        return NETS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(NETS)}") from None


def net_class(name: str):
    """Import and return the class of ``name`` (lazy: only this net's module is imported)."""
    spec = get_spec(name)
    module_name, _, class_name = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"model {name}: cannot import {module_name} ({one_line(err)}); "
                        "check the installation of soundaq") from err
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise UserError(f"model {name}: {module_name} defines no class {class_name}; "
                        "check the installation of soundaq") from None


def build_net(name: str, **kwargs):
    """A freshly initialised net by registry name; ``kwargs`` go to its constructor."""
    cls = net_class(name)
    return cls(**{**get_spec(name).kwargs, **kwargs})


def count_params(net, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)
