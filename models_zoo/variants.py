"""SoundAQnet's ablation variants by name: the grammar, their specs and the facts measured on the release.

One grammar wherever a model name is accepted (``train --model``, ``leaderboard --models``, checkpoints):

* ``SoundAQnet[kernels=3+5]``: the kernel branches kept (S1..S4 = kernels 3, 5, 7, 9), a non-empty subset;
* ``SoundAQnet[blocks=4]``: conv blocks per branch, 2, 3, 4 or 5;
* ``SoundAQnet[dilation=1-3-5]``: time dilation of the first three blocks, one of :data:`DILATION_VALUES`;
* combinations, comma-separated inside the brackets: ``SoundAQnet[blocks=2,dilation=1-1-1]``;
* ``SoundAQnet_AFF``: the release's ``SoundAQnet_CLAP_AFF_fusion`` (takes no settings).

A name is made canonical (keys in the order kernels, blocks, dilation; kernels ascending; settings equal to
the paper's net left out, so ``SoundAQnet[blocks=3]`` is ``SoundAQnet``); the canonical name is the one
tables, files and checkpoints carry. Nothing here imports torch or the registry (the registry turns a name into a
spec with :func:`parse` and the facts below); the net is
:class:`soundaq.models_zoo.nets.soundaqnet_variants.SoundAQnetVariant`.

:data:`RELEASE_VARIANTS` holds what the check against the release's own classes measured (their random
weights loaded key for key into ours; outputs equal): the release class of each named variant, its
trainable parameters as the class counts them (``release``), those its forward uses and soundaq builds
(``used``; they differ only for the kernel subsets, whose release classes define all four branches), and
the number of state-dict entries soundaq's net has (every one of them a key of the release class's
state dict with the same shape).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from soundaq.base.errors import UserError

FAMILY = "SoundAQnet"
AFF_NAME = "SoundAQnet_AFF"
TARGET = "soundaq.models_zoo.nets.soundaqnet_variants:SoundAQnetVariant"
KERNEL_VALUES = (3, 5, 7, 9)
BLOCK_VALUES = (2, 3, 4, 5)
DILATION_VALUES = ((1, 1, 1), (1, 2, 3), (1, 2, 5), (1, 3, 5), (2, 3, 5))
#: The paper's SoundAQnet: every setting's default.
DEFAULTS: dict[str, Any] = {"kernels": KERNEL_VALUES, "blocks": 3, "dilation": (1, 2, 3)}
#: Each key and, in words, the values it takes (the one-line errors quote these).
ALLOWED = {"kernels": "a non-empty '+'-joined subset of 3, 5, 7, 9 (e.g. kernels=3+5)",
           "blocks": "2, 3, 4 or 5 (e.g. blocks=4)",
           "dilation": "one of 1-1-1, 1-2-3, 1-2-5, 1-3-5, 2-3-5 (e.g. dilation=1-3-5)"}

_K = "SoundAQnet_different_kernels/framework/models_pytorch.py:"
_B = "SoundAQnet_blocks/framework/models_pytorch.py:"
_D = "SoundAQnet_dilation_rates/framework/models_pytorch.py:"
#: name -> (release class, trainable params as the release class counts them, params used = built here,
#: state-dict entries of our net). Measured on the release's code (CPU, torch 2.13).
RELEASE_VARIANTS: dict[str, tuple[str, int, int, int]] = {
    "SoundAQnet[kernels=3]": (_K + "SoundAQnet_S1", 2_505_204, 1_053_410, 157),
    "SoundAQnet[kernels=5]": (_K + "SoundAQnet_S2", 2_505_204, 1_196_546, 157),
    "SoundAQnet[kernels=7]": (_K + "SoundAQnet_S3", 2_505_204, 1_403_298, 157),
    "SoundAQnet[kernels=9]": (_K + "SoundAQnet_S4", 2_505_204, 1_673_666, 157),
    "SoundAQnet[kernels=3+5]": (_K + "SoundAQnet_S1_S2", 2_570_740, 1_374_920, 235),
    "SoundAQnet[kernels=7+9]": (_K + "SoundAQnet_S3_S4", 2_570_740, 2_201_928, 235),
    "SoundAQnet[kernels=3+5+7]": (_K + "SoundAQnet_S1_S2_S3", 2_636_276, 1_903_182, 313),
    "SoundAQnet[kernels=5+7+9]": (_K + "SoundAQnet_S2_S3_S4", 2_636_276, 2_523_438, 313),
    "SoundAQnet[blocks=2]": (_B + "SoundAQnet_block2", 1_538_136, 1_538_136, 335),
    "SoundAQnet[blocks=4]": (_B + "SoundAQnet_block4", 7_371_830, 7_371_830, 527),
    "SoundAQnet[blocks=5]": (_B + "SoundAQnet_block5", 25_930_797, 25_930_797, 623),
    "SoundAQnet[dilation=1-1-1]": (_D + "SoundAQnet_1_1_1", 2_712_628, 2_712_628, 431),
    "SoundAQnet[dilation=1-2-5]": (_D + "SoundAQnet_1_2_5", 2_712_628, 2_712_628, 431),
    "SoundAQnet[dilation=1-3-5]": (_D + "SoundAQnet_1_3_5", 2_712_628, 2_712_628, 431),
    "SoundAQnet[dilation=2-3-5]": (_D + "SoundAQnet_2_3_5", 2_712_628, 2_712_628, 431),
    AFF_NAME: ("SoundAQnet_CLAP_AFF/framework/models_pytorch.py:SoundAQnet_CLAP_AFF_fusion",
               2_715_540, 2_715_540, 475),
}

# The paper's ablation tables (the release publishes them as images; test-set scores on ARAUS): per study,
# the variant's name here and the row's values in the release's column order. Kernels: mean of 10 runs,
# receptive field in s, the 8 quality MSEs in vocab.QUALITIES order. Blocks and dilation: parameters (M)
# and training memory (GB, batch 32) as printed, and the GPU it was measured on. Loss weighting: the scheme
# as ``--loss-weighting`` names it.
_Q = "mse_pleasant mse_eventful mse_chaotic mse_vibrant mse_uneventful mse_calm mse_annoying mse_monotonous"
PAPER_COLUMNS: dict[str, tuple[str, ...]] = {
    "kernels": ("kernel_sizes", "sub_branches", "nodes", "rfs_time_s", "scene_acc_pct", "event_auc", *_Q.split()),
    "blocks": ("blocks", "conv2d_layers", "params_m", "train_batch_size", "train_gpu_memory_gb", "gpu_device",
               "scene_acc_pct", "event_auc", "aq_mse_mean"),
    "dilation": ("dilation", "params_m", "train_batch_size", "train_gpu_memory_gb", "gpu_device", "scene_acc_pct",
                 "event_auc", "aq_mse_mean"),
    "loss-weighting": ("scheme", "lambdas", "scene_acc_pct", "event_auc", "aq_mse_mean"),
}
_V100, _A100 = "Tesla V100-SXM3-32GB", "NVIDIA A100 80GB PCIe"
PAPER_ABLATIONS: dict[str, dict[str, tuple]] = {
    "kernels": {
        "SoundAQnet[kernels=3]": ("3", "S1", 2, 0.76, 93.67, 0.913, 0.919, 1.071, 1.088, 0.987, 1.166, 1.013, 1.110, 1.170),
        "SoundAQnet[kernels=5]": ("5", "S2", 2, 1.44, 93.73, 0.917, 0.904, 1.056, 1.071, 0.980, 1.141, 1.000, 1.080, 1.161),
        "SoundAQnet[kernels=7]": ("7", "S3", 2, 2.12, 94.03, 0.921, 0.910, 1.050, 1.067, 0.969, 1.145, 1.005, 1.092, 1.150),
        "SoundAQnet[kernels=9]": ("9", "S4", 2, 2.80, 93.91, 0.920, 0.916, 1.049, 1.058, 0.963, 1.150, 1.006, 1.091, 1.151),
        "SoundAQnet[kernels=3+5]": ("3+5", "S1+S2", 4, 1.44, 94.42, 0.922, 0.905, 1.082, 1.092, 0.986, 1.155, 1.003,
                                    1.089, 1.174),
        "SoundAQnet[kernels=7+9]": ("7+9", "S3+S4", 4, 2.80, 94.49, 0.931, 0.923, 1.054, 1.077, 0.985, 1.177, 1.028,
                                    1.108, 1.171),
        "SoundAQnet[kernels=3+5+7]": ("3+5+7", "S1+S2+S3", 6, 2.12, 94.92, 0.929, 0.918, 1.071, 1.079, 0.987, 1.171,
                                      1.010, 1.096, 1.186),
        "SoundAQnet[kernels=5+7+9]": ("5+7+9", "S2+S3+S4", 6, 2.80, 95.00, 0.935, 0.922, 1.070, 1.075, 0.984, 1.180,
                                      1.027, 1.114, 1.181),
        FAMILY: ("3+5+7+9", "S1+S2+S3+S4", 8, 2.80, 95.31, 0.941, 0.899, 1.068, 1.079, 0.979, 1.168, 0.999, 1.083, 1.159),
    },
    "blocks": {
        "SoundAQnet[blocks=2]": (2, 4, 1.53, 32, 11.67, _V100, 93.46, 0.926, 1.092),
        FAMILY: (3, 6, 2.70, 32, 13.54, _V100, 95.31, 0.941, 1.054),
        "SoundAQnet[blocks=4]": (4, 8, 7.36, 32, 21.48, _V100, 95.60, 0.938, 1.058),
        "SoundAQnet[blocks=5]": (5, 10, 25.92, 32, 58.69, _A100, 95.44, 0.933, 1.060),
    },
    "dilation": {
        "SoundAQnet[dilation=1-1-1]": ("1-1-1", 2.70, 32, 13.47, _V100, 95.06, 0.940, 1.076),
        FAMILY: ("1-2-3", 2.70, 32, 13.54, _V100, 95.31, 0.941, 1.054),
        "SoundAQnet[dilation=1-2-5]": ("1-2-5", 2.70, 32, 14.33, _V100, 94.76, 0.939, 1.066),
        "SoundAQnet[dilation=1-3-5]": ("1-3-5", 2.70, 32, 13.49, _V100, 95.09, 0.937, 1.078),
        "SoundAQnet[dilation=2-3-5]": ("2-3-5", 2.70, 32, 13.45, _V100, 94.97, 0.937, 1.071),
    },
    "loss-weighting": {
        "release-1": ("release-1", (1.0,) * 12, 91.37, 0.926, 1.098),
        "release-2": ("release-2", (1.0,) * 4 + (0.5,) * 8, 93.45, 0.938, 1.075),
        "release-3": ("release-3", (1.0,) * 2 + (0.5,) * 10, 93.88, 0.940, 1.083),
        "uncertainty": ("uncertainty", None, 95.31, 0.941, 1.054),
    },
}


def paper_scores(name: str) -> tuple[float, float, float] | None:
    """The paper's (scene accuracy %, event AUC, mean quality MSE) of a named variant, from its study's
    table (kernel rows: the mean of the 8 printed MSEs); None when no table has the name.
    """
    for study in ("kernels", "blocks", "dilation"):
        row = PAPER_ABLATIONS[study].get(name)
        if row is None or name == FAMILY:
            continue
        values = dict(zip(PAPER_COLUMNS[study], row))
        mse = (sum(values[c] for c in _Q.split()) / 8) if study == "kernels" else values["aq_mse_mean"]
        return float(values["scene_acc_pct"]), float(values["event_auc"]), round(float(mse), 4)
    return None


def _bad(name: str, what: str) -> UserError:
    return UserError(f"model {name!r}: {what}")


def _misspelt(name: str) -> str:
    """What is wrong with a name that has brackets but is not ``SoundAQnet[...]``, and the fix."""
    example = f"{FAMILY}[kernels=3+5]"
    family, _, rest = name.partition("[")
    if name.count("[") != 1 or name.count("]") != 1 or not rest or not name.endswith("]"):
        missing = "a missing `]`" if name.count("[") > name.count("]") else (
            "an unmatched `]`" if name.count("]") > name.count("[") else "unbalanced or misplaced brackets")
        return f"{missing}; fix: write the settings in one pair of brackets at the end, e.g. {example}"
    if family.strip() == AFF_NAME:
        return f"{AFF_NAME} takes no settings; fix: write {AFF_NAME}"
    if family.strip().lower() == FAMILY.lower():
        return f"the family is spelt {FAMILY}; fix: write {FAMILY}[{rest}"
    return f"settings in brackets go with {FAMILY} only, not {family.strip()!r}; fix: e.g. {example}"


def _value(name: str, key: str, text: str):
    hint = f"; {key} takes {ALLOWED[key]}"
    if key == "kernels":
        parts = [p for p in text.split("+") if p.strip()]
        if not parts:
            raise _bad(name, "an empty kernel subset" + hint)
        if any(not p.strip().isdigit() or int(p) not in KERNEL_VALUES for p in parts) or len(set(parts)) != len(parts):
            raise _bad(name, f"kernels={text}" + hint)
        return tuple(sorted(int(p) for p in parts))
    if key == "blocks":
        if not text.strip().isdigit() or int(text) not in BLOCK_VALUES:
            raise _bad(name, f"blocks={text}" + hint)
        return int(text)
    parts = text.split("-")
    value = tuple(int(p) for p in parts) if all(p.strip().isdigit() for p in parts) else None
    if value not in DILATION_VALUES:
        raise _bad(name, f"dilation={text}" + hint)
    return value


def parse(name: str) -> tuple[str, dict[str, Any]] | None:
    """``(canonical name, SoundAQnetVariant kwargs)`` of a variant name; None when ``name`` is not one.

    Raises:
        UserError: one line naming the allowed keys or values (an unknown key, a bad value, an empty
            kernel subset, a repeated key, settings on ``SoundAQnet_AFF``), or what is wrong with a
            name that has brackets but is not ``SoundAQnet[...]`` (a missing ``]``, another family).
    """
    name = name.strip()
    if name == AFF_NAME:
        return AFF_NAME, {"aff": True}
    if name.startswith(AFF_NAME + "["):
        raise _bad(name, f"{AFF_NAME} takes no settings; fix: write {AFF_NAME}")
    match = re.fullmatch(r"SoundAQnet\[(.*)\]", name, flags=re.S)
    if match is None or "[" in match.group(1) or "]" in match.group(1):
        if "[" in name or "]" in name:      # meant as a variant: say what is wrong with its spelling
            raise _bad(name, _misspelt(name))
        return None
    settings: dict[str, Any] = {}
    for item in match.group(1).split(","):
        key, eq, text = (part.strip() for part in item.partition("="))
        if key not in ALLOWED or not eq:
            raise _bad(name, f"unknown setting {item.strip()!r}; the keys are "
                             + ", ".join(f"{k} ({v})" for k, v in ALLOWED.items()))
        if key in settings:
            raise _bad(name, f"{key} given twice; fix: give each of kernels, blocks, dilation once")
        settings[key] = _value(name, key, text)
    chosen = {k: v for k, v in settings.items() if v != DEFAULTS[k]}
    if not chosen:
        return FAMILY, {}
    shown: dict[str, Callable[[Any], str]] = {"kernels": lambda v: "+".join(map(str, v)), "blocks": str,
                                              "dilation": lambda v: "-".join(map(str, v))}
    canonical = FAMILY + "[" + ",".join(f"{k}={shown[k](chosen[k])}" for k in ALLOWED if k in chosen) + "]"
    return canonical, chosen


def families() -> list[dict[str, Any]]:
    """The variant families for ``soundaq models --json``: keys with their values, and each of the
    release's named variants with its parameter counts (``params`` built here, ``release_params`` as the
    release's class counts them) and release class.
    """
    named = [{"name": n, "params": used, "release_params": rel, "release_class": cls, "state_dict_entries": keys}
             for n, (cls, rel, used, keys) in RELEASE_VARIANTS.items()]
    return [{"family": FAMILY, "grammar": "SoundAQnet[key=value,...]",
             "keys": {"kernels": ["3", "5", "7", "9", "3+5", "7+9", "3+5+7", "5+7+9", "3+5+7+9"],
                      "blocks": list(BLOCK_VALUES),
                      "dilation": ["-".join(map(str, d)) for d in DILATION_VALUES]},
             "defaults": {"kernels": "3+5+7+9", "blocks": 3, "dilation": "1-2-3"},
             "note": "kernels lists the release's subsets; any non-empty subset of 3, 5, 7, 9 builds",
             "variants": [v for v in named if v["name"] != AFF_NAME]},
            {"family": AFF_NAME, "grammar": AFF_NAME, "keys": {}, "defaults": {},
             "variants": [v for v in named if v["name"] == AFF_NAME]}]
