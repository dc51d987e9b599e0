"""SoundAQnet's ablation variants by name: the grammar, their specs and the facts measured on the release.

One grammar wherever a model name is accepted (``train --model``, ``leaderboard --models``, checkpoints):

* ``SoundAQnet[kernels=3+5]``: the kernel branches kept (S1..S4 = kernels 3, 5, 7, 9), a non-empty subset;
* ``SoundAQnet[blocks=4]``: conv blocks per branch, 2, 3, 4 or 5;
* ``SoundAQnet[dilation=1-3-5]``: time dilation of the first three blocks, one of :data:`DILATION_VALUES`;
* combinations, comma-separated inside the brackets: ``SoundAQnet[blocks=2,dilation=1-1-1]``;
* ``SoundAQnet_AFF``: the release's ``SoundAQnet_CLAP_AFF_fusion`` (takes no settings).

A name is made canonical (keys in the order kernels, blocks, dilation; kernels ascending; settings equal to
the paper's net left out, so ``SoundAQnet[blocks=3]`` is ``SoundAQnet``); the canonical name is the one
tables, files and checkpoints carry. Nothing here imports torch: the net is
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
from typing import Any, Callable

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
_SPECS: dict[str, Any] = {}


def _bad(name: str, what: str) -> UserError:
    return UserError(f"model {name!r}: {what}")


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
            kernel subset, a repeated key, settings on ``SoundAQnet_AFF``)."""
    name = name.strip()
    if name == AFF_NAME:
        return AFF_NAME, {"aff": True}
    if name.startswith(AFF_NAME + "["):
        raise _bad(name, f"{AFF_NAME} takes no settings; fix: write {AFF_NAME}")
    match = re.fullmatch(r"SoundAQnet\[(.*)\]", name, flags=re.S)
    if match is None:
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


def _count(kwargs: dict[str, Any]) -> int:
    from soundaq.models_zoo.nets.soundaqnet_variants import SoundAQnetVariant

    net = SoundAQnetVariant(**kwargs)
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def variant_spec(name: str):
    """The :class:`~soundaq.models_zoo.registry.NetSpec` of a variant name (None when not a variant name).

    Its ``params`` are the measured fact for the release's variants, else counted on the built net.
    Raises:
        UserError: see :func:`parse`."""
    from soundaq.models_zoo.registry import INPUT_LOUDNESS, INPUT_MEL, NETS, NetSpec

    parsed = parse(name)
    if parsed is None:
        return None
    canonical, kwargs = parsed
    if canonical == FAMILY:
        return NETS[FAMILY]
    if canonical not in _SPECS:
        fact = RELEASE_VARIANTS.get(canonical)
        params = fact[2] if fact else _count(kwargs)
        notes = ("the release's class, as in its code" if fact else
                 "a combination the release has no class for: each setting applied to its layout")
        if fact and fact[1] != fact[2]:
            notes += f"; the release's class counts {fact[1]:,} parameters, its forward uses {fact[2]:,}"
        _SPECS[canonical] = NetSpec(canonical, TARGET, (INPUT_MEL, INPUT_LOUDNESS), params, None, None, None,
                                    None, original=fact[0] if fact else "", notes=notes, kwargs=dict(kwargs),
                                    cost_hint_s=NETS[FAMILY].cost_hint_s)
    return _SPECS[canonical]


def families() -> list[dict[str, Any]]:
    """The variant families for ``soundaq models --json``: keys with their values, and each of the
    release's named variants with its parameter counts (``params`` built here, ``release_params`` as the
    release's class counts them) and release class."""
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
