"""The model registry: registry name -> every fact about the net (one :class:`NetSpec` entry each).

An entry holds how to build the net, its inputs, its schedule, the paper's scores, the release's pinned
weights, its AudioSet backbone, the release's cost-table row and the CPU training policies measured for
it; the per-net tables other modules expose (``pretrained_weights.RELEASES``, ``cpu_policy.BF16_CPU_NETS``,
:data:`PAPER_OVERHEAD`, ...) are views of the entries. Adding a net is its file plus one entry.

Registry names are used everywhere (CLI, tables, files): AD_CNN, Baseline_CNN, Hierarchical_CNN,
MobileNetV2, YAMNet, CNN_Transformer, PANNs, SoundAQnet. Net classes are imported lazily from
``"module:Class"`` paths, so listing the registry needs no torch import and a net whose module is
missing or broken only fails when that net is built.

A net from outside the project joins the zoo in one of two ways (docs/extending.md):

* a Python entry point in the group :data:`ENTRY_POINT_GROUP` (``soundaq.models``) naming a
  :class:`~soundaq.models_zoo.nets.common.ZooNet` subclass or a :class:`NetSpec`
  (``[project.entry-points."soundaq.models"] MyNet = "my_package.nets:MyNet"``): it is listed with the
  built-in nets everywhere (``soundaq models``, ``--models all``);
* an import path ``"my_package.nets:MyNet"`` wherever a model name is accepted (``--model``, ``--models``).

A class declares what the registry needs as class attributes: ``name`` (default: the class name),
``uses_loudness``, ``min_frames``/``max_frames`` (the input it accepts, which decides whether it trains
on crops) and ``schedule`` (overrides of the training schedule it needs, e.g. ``{"lr": 1e-3}``; only
``lr``, ``warmup_fraction`` and ``grad_clip``, so a budget stays equal for every model).

Paper scores are the SoundSCaper paper's test-set results (3,576 ARAUS clips): scene accuracy is the
macro mean of per-class accuracies (%), event AUC is the per-clip AUC averaged over clips, PAQ MSE
is the mean over the 8 qualities of each quality's MSE. ``None`` where the paper gives no number.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from soundaq.base.errors import UserError
from soundaq.base.plugins import import_target
from soundaq.base.vocab import QUALITIES

#: Shape [time steps, features] of each input of one 30-s clip: log-mel frames (hop 10 ms) x mel bands,
#: ISO 532-1 loudness samples (2 ms) x 1. What a net is fed per clip (e.g. by soundaq.models_zoo.cost).
CLIP_MEL_SHAPE = (3001, 64)
CLIP_LOUDNESS_SHAPE = (15000, 1)
INPUT_MEL = f"log-mel [{CLIP_MEL_SHAPE[0]}, {CLIP_MEL_SHAPE[1]}]"
INPUT_LOUDNESS = f"loudness [{CLIP_LOUDNESS_SHAPE[0]}, {CLIP_LOUDNESS_SHAPE[1]}]"
#: A net's ``inputs`` entry -> the shape of that input for one 30-s clip.
INPUT_SHAPES: dict[str, tuple[int, int]] = {INPUT_MEL: CLIP_MEL_SHAPE, INPUT_LOUDNESS: CLIP_LOUDNESS_SHAPE}


@dataclass(frozen=True)
class PaperOverhead:
    """One row of the release's cost table (``Table/overhead.png`` of Yuanbo2020/SoundSCaper, measured on a
    :data:`PAPER_OVERHEAD_DEVICE` with 30-s clips): the figures as printed there. Times are in seconds as
    printed (the release does not say per what unit of work); memories are GPU memory in GB; the scores are
    the mean and standard deviation over the release's repeated runs (scene accuracy in %, event AUC, the
    mean of the 8 quality MSEs), not the single-run test scores of :class:`NetSpec`.
    """

    params_m: float
    training_time_s: float
    training_gpu_memory_gb: float
    inference_time_s: float
    inference_gpu_memory_gb: float
    scene_acc_pct_mean: float
    scene_acc_pct_sd: float
    event_auc_mean: float
    event_auc_sd: float
    aq_mse_mean_mean: float
    aq_mse_mean_sd: float

    def over_runs(self) -> dict[str, tuple[float, float]]:
        """``(mean, sd)`` per headline metric over the release's runs: scene accuracy as a fraction, event
        AUC, mean PAQ MSE (the names of the leaderboard's columns).
        """
        return {"scene_acc": (self.scene_acc_pct_mean / 100.0, self.scene_acc_pct_sd / 100.0),
                "event_auc": (self.event_auc_mean, self.event_auc_sd),
                "aq_mse_mean": (self.aq_mse_mean_mean, self.aq_mse_mean_sd)}


@dataclass(frozen=True)
class ReleaseFile:
    """One trained-weights file the release publishes for a net, pinned by its git blob id at
    :data:`soundaq.models_zoo.pretrained_weights.RELEASE_COMMIT` (which reads these entries).
    """

    name: str                         # its file name in the cache, e.g. "AD_CNN_final_model.pth"
    path: str                         # its path in Yuanbo2020/SoundSCaper at that commit
    blob: str                         # git blob id (40 hex digits)
    size: int | None = None           # bytes, where the reference copies confirm the tree's (None: the server's)
    variant: str | None = None        # a SoundAQnet checkpoint's name by its PAQ MSE ("PAQ1027"); None: one file
    scores: tuple[float, float, float] | None = None   # (scene acc %, event AUC, PAQ MSE) the release prints
    #                                                    for this file; None: the net's paper scores


@dataclass(frozen=True)
class BackboneSpec:
    """Which of a net's state-dict keys form its AudioSet-pretrained backbone and which file holds them
    (``soundaq train --pretrained FILE``; :func:`soundaq.models_zoo.nets.pretrained.load_pretrained_backbone`
    copies the keys by name).
    """

    keep_prefixes: tuple[str, ...]    # key prefixes copied from the file
    ignore_prefixes: tuple[str, ...]  # prefixes of the file's keys that are expected and skipped
    expected_file: str                # what the user should pass, said in every error


@dataclass(frozen=True)
class NetSpec:
    """What the registry knows about one net: every fact about it lives here (docs/extending.md)."""

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
    notes: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)   # overrides of the training schedule (see above)
    plugin: bool = False                                      # joined from outside the project
    # Seconds one embedded-default leaderboard run of the net took (training, validation, test; one of
    # two workers on a 2-core machine), measured by `soundaq leaderboard`: only the order in which
    # parallel workers start the models (slowest first), never a result. None: unknown (started last).
    cost_hint_s: float | None = None
    # The release's trained weights (the first is what `--model NAME` loads), and where they are published
    # when the release pins none (e.g. behind a file-sharing link).
    releases: tuple[ReleaseFile, ...] = ()
    weights_elsewhere: str | None = None
    backbone: BackboneSpec | None = None       # the AudioSet backbone `soundaq train --pretrained` loads
    paper_overhead: PaperOverhead | None = None   # the release's cost-table row
    # CPU training policies (soundaq.models_zoo.cpu_policy.choose_precision / choose_memory_format), chosen
    # from measurements only: bf16 autocast measured faster for the training step on a CPU with native
    # bf16 (issue 11), and the channels-last speed-ups (training, inference) that
    # benchmark/perf/memory_format.py measured on CPU. None: not measured (contiguous).
    cpu_bf16: bool = False
    channels_last_cpu_gain: tuple[float, float] | None = None

    @property
    def uses_loudness(self) -> bool:
        """True when the net reads the ISO 532-1 loudness input (``inputs`` holds it)."""
        return INPUT_LOUDNESS in self.inputs

    @property
    def released_weights(self) -> str | None:
        """The file name of the weights ``--model NAME`` loads (None: the release pins none)."""
        return self.releases[0].name if self.releases else None

    def as_dict(self) -> dict[str, Any]:
        """The fields ``soundaq models --json`` prints (the release pins, cost row and CPU policies are
        shown by their own tables).
        """
        return {"name": self.name, "target": self.target, "inputs": list(self.inputs), "params": self.params,
                "paper_params_m": self.paper_params_m, "paper_scene_acc": self.paper_scene_acc,
                "paper_event_auc": self.paper_event_auc, "paper_paq_mse": self.paper_paq_mse,
                "paper_paq_mse_per_quality": (dict(self.paper_paq_mse_per_quality)
                                              if self.paper_paq_mse_per_quality is not None else None),
                "original": self.original, "released_weights": self.released_weights, "notes": self.notes,
                "schedule": dict(self.schedule), "plugin": self.plugin, "cost_hint_s": self.cost_hint_s,
                "uses_loudness": self.uses_loudness}


def _release(net: str, folder: str, blob: str, size: int | None = None) -> tuple[ReleaseFile]:
    """A net's one released file: ``<folder>/application/system/model/final_model.pth``."""
    return (ReleaseFile(f"{net}_final_model.pth", f"{folder}/application/system/model/final_model.pth", blob, size),)


def _soundaqnet_release(variant: str, file: str, blob: str, scores: tuple[float, float, float]) -> ReleaseFile:
    return ReleaseFile(file, f"SoundAQnet/application/system/model/{file}", blob, variant=variant, scores=scores)


_MEL = (INPUT_MEL,)
_SOUNDAQNET_PAQ = dict(zip(QUALITIES, (0.880, 1.029, 1.043, 0.972, 1.126, 0.969, 1.055, 1.140)))
_UNUSED_LAYERS = "bn0, conv2, conv4, conv6 defined but unused, as in the original"

# One entry per net, in the paper's table order. Scores: the paper's table; releases: the git blob ids of the
# release's tree at pretrained_weights.RELEASE_COMMIT (SoundAQnet's variant scores are the ones its
# application/Inference.py prints for each file; PAQ1027 is the paper's); paper_overhead: its Table/overhead.png.
_SPECS = (
    NetSpec("AD_CNN", "soundaq.models_zoo.nets.ad_cnn:ADCNN", _MEL, 521_472, 0.521472, 89.30, 0.84, 1.137,
            original="Other_AD_CNN/framework/models_pytorch.py", notes="fixed input length: 3000-3019 frames",
            cost_hint_s=234,
            releases=_release("AD_CNN", "Other_AD_CNN", "d7f0ee1b908c7193f1c45c519e1a965dbe40de5a", 2_099_681),
            paper_overhead=PaperOverhead(0.52, 0.000029, 2.93, 0.0056, 1.791, 89.63, 2.21, 0.84, 0.02, 1.128, 0.077),
            cpu_bf16=True, channels_last_cpu_gain=(1.28, 1.38)),
    NetSpec("Baseline_CNN", "soundaq.models_zoo.nets.baseline_cnn:BaselineCNN", _MEL, 1_009_900, None,
            88.37, 0.92, 1.250, original="Other_Baseline_CNN/framework/models_pytorch.py", notes=_UNUSED_LAYERS,
            cost_hint_s=67,
            releases=_release("Baseline_CNN", "Other_Baseline_CNN", "a62231a37df3496f8b4b58b496bc10f48a36cd81",
                              4_064_400),
            paper_overhead=PaperOverhead(1.01, 0.000004, 3.27, 0.0043, 1.181, 87.87, 1.76, 0.92, 0.01, 1.315, 0.144),
            cpu_bf16=True, channels_last_cpu_gain=(1.25, 1.77)),
    NetSpec("Hierarchical_CNN", "soundaq.models_zoo.nets.hierarchical_cnn:HierarchicalCNN", _MEL, 1_009_633,
            1.009633, 90.68, 0.88, 1.240, original="Other_Hierarchical_CNN/framework/models_pytorch.py",
            notes=_UNUSED_LAYERS, cost_hint_s=32,
            releases=_release("Hierarchical_CNN", "Other_Hierarchical_CNN", "dc34ada893f59bab2f4f8ed8f18a1a73c688502a",
                              4_064_580),
            paper_overhead=PaperOverhead(1.01, 0.000004, 3.27, 0.0046, 1.181, 89.82, 2.75, 0.89, 0.02, 1.293, 0.198),
            cpu_bf16=True, channels_last_cpu_gain=(1.02, 1.39)),
    NetSpec("MobileNetV2", "soundaq.models_zoo.nets.mobilenetv2:MobileNetV2", _MEL, 2_259_164, 2.259164,
            88.79, 0.92, 1.139, original="Other_MobileNetV2/framework/models_pytorch.py", cost_hint_s=78,
            releases=_release("MobileNetV2", "Other_MobileNetV2", "7397a3ed0ef6652a77ce4053dd40f27703e6af55"),
            paper_overhead=PaperOverhead(2.26, 0.000012, 13.06, 0.0055, 1.937, 89.67, 0.88, 0.92, 0.01, 1.145, 0.112),
            cpu_bf16=True, channels_last_cpu_gain=(1.81, 1.91)),
    NetSpec("YAMNet", "soundaq.models_zoo.nets.yamnet:YAMNet", _MEL, 3_235_100, 3.2351, 89.17, 0.91, 1.197,
            original="Other_YAMNet/framework/models_pytorch.py", cost_hint_s=67,
            releases=_release("YAMNet", "Other_YAMNet", "100795547f079b71ac00ecad9503c4123a4ef69d"),
            backbone=BackboneSpec(tuple(f"layer{i}." for i in range(1, 15)), ("classifier.",),
                                  "yamnet.pth of the torch_audioset YAMNet port"),
            paper_overhead=PaperOverhead(3.21, 0.000004, 6.82, 0.0049, 2.161, 88.84, 1.59, 0.90, 0.01, 1.199, 0.109),
            cpu_bf16=True, channels_last_cpu_gain=(1.31, 1.35)),
    NetSpec("CNN_Transformer", "soundaq.models_zoo.nets.cnn_transformer:CNNTransformer", _MEL, 12_293_996,
            12.293996, 93.10, 0.93, 1.318, original="Other_CNN_Transformer/framework/models_pytorch.py",
            cost_hint_s=131,
            releases=_release("CNN_Transformer", "Other_CNN_Transformer", "57309fd0160dd3736ee02718675fce06b871c670"),
            paper_overhead=PaperOverhead(12.29, 0.000004, 3.44, 0.0044, 1.241, 92.80, 0.59, 0.93, 0.01, 1.339, 0.134),
            cpu_bf16=True, channels_last_cpu_gain=(1.27, 1.65)),
    NetSpec("PANNs", "soundaq.models_zoo.nets.panns:PANNs", _MEL, 79_731_036, 79.731036, 93.28, 0.89, 1.139,
            original="Other_PANNs/framework/models_pytorch.py", cost_hint_s=770,
            weights_elsewhere="a file-sharing link in the release README (Other_PANNs)",
            backbone=BackboneSpec(
                (*tuple(f"conv_block{i}." for i in range(1, 7)), "fc1."),
                ("spectrogram_extractor.", "logmel_extractor.", "bn0.", "fc_audioset."),
                "a PANNs CNN14 AudioSet checkpoint such as Cnn14_16k_mAP=0.438.pth (zenodo 3987831)"),
            paper_overhead=PaperOverhead(79.73, 0.000085, 19.71, 0.0190, 5.665, 93.57, 1.18, 0.90, 0.02, 1.156, 0.107),
            channels_last_cpu_gain=(0.82, 1.20)),
    NetSpec("SoundAQnet", "soundaq.models_zoo.nets.soundaqnet:SoundAQnet", (INPUT_MEL, INPUT_LOUDNESS), 2_701_812,
            2.701812, 96.09, 0.94, 1.027, paper_paq_mse_per_quality=_SOUNDAQNET_PAQ,
            original="SoundAQnet/framework/models_pytorch.py",
            notes="gated graph convolution over 8 nodes in plain PyTorch (no dgl)", cost_hint_s=442,
            releases=(_soundaqnet_release("PAQ1027", "SoundAQnet_ASC96_AEC94_PAQ1027.pth",
                                          "80d1eef31b89490852e0a7ad11a512ca86b3c512", (96.09, 0.94, 1.027)),
                      _soundaqnet_release("PAQ1039", "SoundAQnet_ASC96_AEC94_PAQ1039.pth",
                                          "b9fbb31a9a7299193aee402ffe029ae04176b407", (95.69, 0.94, 1.039)),
                      _soundaqnet_release("PAQ1041", "SoundAQnet_ASC96_AEC94_PAQ1041.pth",
                                          "56e9b0ff4271889cd66fe3e74a0ebc22866c2afa", (95.99, 0.94, 1.041)),
                      _soundaqnet_release("PAQ1052", "SoundAQnet_ASC96_AEC95_PAQ1052.pth",
                                          "a312214ab0a8953815bc84ab707319cc6c43270f", (95.52, 0.95, 1.052))),
            paper_overhead=PaperOverhead(2.70, 0.000091, 13.54, 0.0189, 3.219, 95.31, 0.77, 0.94, 0.01, 1.054, 0.091),
            channels_last_cpu_gain=(0.87, 1.71)),
)

#: Registry name -> spec of the eight nets of the paper, in its table order.
NETS: dict[str, NetSpec] = {s.name: s for s in _SPECS}
#: The GPU the release's cost table was measured on.
PAPER_OVERHEAD_DEVICE = "Tesla V100-SXM3-32GB"
#: Registry name -> the release's cost table row (published facts; soundaq models --cost shows them beside
#: its own measurements, labelled as the paper's); a view of the entries' ``paper_overhead``.
PAPER_OVERHEAD: dict[str, PaperOverhead] = {s.name: s.paper_overhead for s in _SPECS if s.paper_overhead}
#: The paper's mean and standard deviation over its 10 training runs per net (its cost table, "model
#: overhead": scene accuracy as a fraction, the per-clip event AUC, the mean PAQ MSE), published facts
#: shown beside a repeated-runs leaderboard (soundaq.benchmark.leaderboard.seeds); ``(mean, sd)``.
PAPER_OVER_RUNS: dict[str, dict[str, tuple[float, float]]] = {
    name: row.over_runs() for name, row in PAPER_OVERHEAD.items()}
#: Entry-point group through which installed packages add nets.
ENTRY_POINT_GROUP = "soundaq.models"


def paper_nets() -> list[str]:
    """The nets of the paper's tables, in its order: the entries of :data:`NETS` that carry its published cost
    row (``paper_overhead``). A net added to the project's table without the paper's facts is in :data:`NETS`
    (listed, trained, predicted) but not here, so the checks of the paper's facts leave it alone.
    """
    return [name for name, spec in NETS.items() if spec.paper_overhead is not None]

#: Schedule fields a net may override (the budget and the batch stay the run's).
SCHEDULE_OVERRIDES = ("lr", "warmup_fraction", "grad_clip", "head_lr_width")
_PLUGINS: dict[str, NetSpec] = {}
_VARIANTS: dict[str, NetSpec] = {}   # SoundAQnet variants resolved so far, by canonical name
_ENTRY_POINTS: dict[str, NetSpec] | None = None


def spec_from_class(cls, name: str | None = None, target: str | None = None) -> NetSpec:
    """A :class:`NetSpec` from a net class's attributes (see the module docstring)."""
    name = name or getattr(cls, "name", None) or cls.__name__
    schedule = dict(getattr(cls, "schedule", None) or {})
    unknown = sorted(set(schedule) - set(SCHEDULE_OVERRIDES))
    if unknown:
        raise UserError(f"model {name}: schedule may override {', '.join(SCHEDULE_OVERRIDES)} only, "
                        f"not {', '.join(unknown)}; fix: remove them from {cls.__qualname__}.schedule")
    inputs = (INPUT_MEL, INPUT_LOUDNESS) if getattr(cls, "uses_loudness", False) else (INPUT_MEL,)
    doc = (cls.__doc__ or "").strip().splitlines()
    return NetSpec(str(name), target or f"{cls.__module__}:{cls.__qualname__}", inputs,
                   int(getattr(cls, "params", 0) or 0), None, None, None, None,
                   original=str(getattr(cls, "original", "")), notes=doc[0] if doc else "", schedule=schedule,
                   plugin=True)


def _import_target(target: str, label: str | None = None):
    """The object a ``"package.module:Attribute"`` target names (one-line UserErrors naming ``label``)."""
    return import_target(target, "model", label)


def _as_spec(obj, target: str, name: str | None = None) -> NetSpec:
    if isinstance(obj, NetSpec):
        return obj if obj.plugin else replace(obj, plugin=True)   # it joined from outside the project
    if isinstance(obj, type):
        return spec_from_class(obj, name=name, target=target)
    raise UserError(f"model {target}: is neither a net class nor a NetSpec; fix: point at the class")


def _entry_points() -> dict[str, NetSpec]:
    """Nets that installed packages register under :data:`ENTRY_POINT_GROUP` (loaded once)."""
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        found: dict[str, NetSpec] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in NETS:
                continue      # a plugin cannot replace a net of the paper
            found[ep.name] = _as_spec(_import_target(ep.value), ep.value, name=ep.name)
        _ENTRY_POINTS = found
    return _ENTRY_POINTS


def nets() -> dict[str, NetSpec]:
    """Every known net: the paper's eight, those of installed plug-ins, those added by import path."""
    return {**NETS, **_entry_points(), **_PLUGINS}


def find_spec(name: str) -> NetSpec | None:
    """The registered spec of ``name`` (the paper's eight, plug-ins, nets added by import path so far), or
    None: no variant resolution, no import (for per-net policies that fall back when a net is unknown).
    """
    return nets().get(name)


def with_backbone() -> list[str]:
    """Registry names whose entry declares an AudioSet backbone (``--pretrained``), in alphabetical order:
    ``["PANNs", "YAMNet"]`` and plug-ins that declare one.
    """
    return sorted(name for name, spec in nets().items() if spec.backbone is not None)


def list_nets() -> list[str]:
    """Registry names: the paper's eight in its table order, then plug-ins.

    Returns:
        ``["AD_CNN", "Baseline_CNN", ..., "SoundAQnet", <plug-ins>]`` (entry points of the
        ``soundaq.models`` group, loaded on first call).
    """
    return list(nets())


def get_spec(name: str) -> NetSpec:
    """The spec of ``name``: a registry name, a SoundAQnet variant (``SoundAQnet[blocks=4]``,
    ``SoundAQnet_AFF``: :func:`_variant_spec`; its spec's ``name`` is the canonical spelling), or an
    import path ``"package.module:Class"`` (added to the registry under the class's
    name for the rest of the process).

    Raises:
        UserError: an unknown name (listing the valid ones), a variant with a bad key or value (naming
            the allowed ones) or an import path that does not resolve.
    """
    known = nets()
    if name in known:
        return known[name]
    variant = _variant_spec(name)
    if variant is not None:
        return variant
    if ":" in name:
        spec = _as_spec(_import_target(name), name)
        if spec.name in NETS and NETS[spec.name].target != spec.target:
            raise UserError(f"model {name}: its name {spec.name} is a net of the paper; fix: give the class "
                            "another `name` attribute")
        _PLUGINS[spec.name] = spec
        return spec
    raise UserError(f"unknown model {name!r}; choose one of: {', '.join(known)}, a SoundAQnet variant such as "
                    "SoundAQnet[blocks=4] (see `soundaq models`), or an import path package.module:Class")


def _variant_spec(name: str) -> NetSpec | None:
    """The spec of a SoundAQnet variant name (None when ``name`` is not one; grammar and facts in
    :mod:`soundaq.models_zoo.variants`). ``params`` is the fact measured on the release's class for its
    named variants, else counted on the built net; the paper's scores are its ablation table's row.

    Raises:
        UserError: a bad variant name (one line naming the allowed keys or values).
    """
    from soundaq.models_zoo import variants

    parsed = variants.parse(name)
    if parsed is None:
        return None
    canonical, kwargs = parsed
    if canonical == variants.FAMILY:
        return NETS[variants.FAMILY]
    if canonical not in _VARIANTS:
        fact = variants.RELEASE_VARIANTS.get(canonical)
        if fact:
            params = fact[2]
        else:
            net = _import_target(variants.TARGET, canonical)(**kwargs)
            params = count_params(net)
        notes = ("the release's class, as in its code" if fact else
                 "a combination the release has no class for: each setting applied to its layout")
        if fact and fact[1] != fact[2]:
            notes += f"; the release's class counts {fact[1]:,} parameters, its forward uses {fact[2]:,}"
        acc, auc, mse = variants.paper_scores(canonical) or (None, None, None)
        _VARIANTS[canonical] = NetSpec(canonical, variants.TARGET, (INPUT_MEL, INPUT_LOUDNESS), params, None,
                                       acc, auc, mse, original=fact[0] if fact else "", notes=notes,
                                       kwargs=dict(kwargs), cost_hint_s=NETS[variants.FAMILY].cost_hint_s)
    return _VARIANTS[canonical]


def is_known(name: str) -> bool:
    """Whether :func:`get_spec` resolves ``name`` (registry name, variant or import path)."""
    try:
        get_spec(name)
    except UserError:
        return False
    return True


def split_model_list(text: str) -> list[str]:
    """A comma-separated ``--models`` list, commas inside ``[...]`` kept:
    ``"AD_CNN,SoundAQnet[blocks=2,dilation=1-1-1]"`` -> ``["AD_CNN", "SoundAQnet[blocks=2,dilation=1-1-1]"]``.

    Raises:
        UserError: unbalanced brackets.
    """
    names: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += (char == "[") - (char == "]")
        if depth < 0 or depth > 1:
            break
        if char == "," and depth == 0:
            names.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise UserError(f"--models {text!r}: unbalanced brackets; fix: write variants as "
                        "SoundAQnet[key=value,key=value]")
    names.append("".join(current).strip())
    return [n for n in names if n]


def net_class(name: str):
    """Import and return the class of ``name`` (lazy: only this net's module is imported)."""
    spec = get_spec(name)
    return _import_target(spec.target, spec.name)


def build_net(name: str, **kwargs):
    """A freshly initialised net by registry name (the original's initialisation).

    Args:
        name: a registry name (:func:`list_nets`) or an import path ``package.module:Class``.
        **kwargs: passed to the net's constructor.

    Returns:
        the ``torch.nn.Module`` (a :class:`~soundaq.models_zoo.nets.common.ZooNet`): ``forward(mel
        [B, T, 64], loudness [B, T', 1] | None) -> NetOutput``.

    Raises:
        UserError: an unknown name (the message lists the known ones).
    """
    cls = net_class(name)
    return cls(**{**get_spec(name).kwargs, **kwargs})


def count_params(net, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)
