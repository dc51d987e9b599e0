"""Start the output heads at the training labels' base rates (an option of training, off in the original).

Every zoo net ends in the release's linear heads (``fc_final_scene``, ``fc_final_event``,
``fc_final_ISOPls``, ``fc_final_ISOEvs``, ``fc_final_<quality>``; soundaq.models_zoo.nets.common). The
original initialises their biases to 0, so a quality head starts by predicting about 0 for ratings
that lie between 1 and 5, and at Adam's 5e-4 a bias needs thousands of steps to walk to ~3. That is
fine for the paper's 100 ARAUS epochs, but on a CPU budget of a few epochs it would measure how fast
a bias moves rather than what a net learns from the clips. :func:`init_heads_from_labels` sets

* each quality head's bias to the training mean of that quality, ISOP/ISOE heads to the mean ISOP/ISOE;
* the event head's biases to the log-odds of each event's training frequency (clipped to [1%, 99%]);
* the scene head's biases to the log of each scene's training share,

and (``zero_weights=True``, the default) the heads' weights to 0, so that the untrained net *is* the
training-mean predictor (the leaderboard's reference row) and every later step is about the clips.
Without it, the random head weights of the wide nets (CNN_Transformer reads a 65,536-d embedding,
PANNs 2,048-d) add outputs of tens of rating points that a few CPU epochs cannot undo. The backbone
keeps its original initialisation; architectures and parameter counts are unchanged, and release
checkpoints load as before.

Chained heads: some nets feed a head from other heads' outputs (Hierarchical CNN: scene from the event
logits, ISOP/ISOE from the 8 predicted qualities). Once the heads it reads are zeroed, such a head's
input is the same for every clip, and zero weights on top of it would leave no gradient for anything
behind it (a product of two zeros): measured on the embedded set, Hierarchical CNN then stayed at
scene accuracy 0.333 after a 240-clip budget. :func:`chained_heads` finds these heads by probing the
net with two different random inputs; they keep their random weights and their bias becomes
``target - W x`` for the constant input ``x``, so the net still starts as the training-mean predictor
while the gradient reaches the layers behind them from the first step.

Missing labels: only the heads of the label groups the training labels have are set (the others keep
the net's own initialisation: no loss ever reaches them). :func:`base_rates` says which groups it
found (``tasks``) and gives neutral values for the others (uniform scene shares, event rates of 0.5,
ratings at the scale's middle 3, ISOP/ISOE 0), so that the training-mean reference still predicts
something for every output; its scores for those groups are left empty.
"""
from __future__ import annotations

import math

from soundaq.base.vocab import EVENT_COLUMNS, EVENTS, GROUP_COLUMNS, LABEL_GROUPS, QUALITIES, SCENES

#: The release's output heads of each label group (soundaq.models_zoo.nets.common).
HEADS = {"scene": ("fc_final_scene",), "events": ("fc_final_event",),
         "qualities": (*[f"fc_final_{q}" for q in QUALITIES], "fc_final_ISOPls", "fc_final_ISOEvs")}
#: Event frequencies are clipped to this range before the log-odds (no infinite biases).
EVENT_CLIP = (0.01, 0.99)


#: What :func:`base_rates` gives for a label group the labels lack (neutral, never scored).
NEUTRAL = {"scene": [1.0 / len(SCENES)] * len(SCENES), "events": [0.5] * len(EVENTS),
           "qualities": [3.0] * len(QUALITIES), "isop": 0.0, "isoe": 0.0}


def labelled_groups(labels) -> tuple[str, ...]:
    """The label groups (vocab.LABEL_GROUPS) whose columns a label table has, without an empty cell."""
    return tuple(g for g in LABEL_GROUPS
                 if all(c in labels.columns for c in GROUP_COLUMNS[g]) and not labels[list(GROUP_COLUMNS[g])].isna().any().any())


def base_rates(labels) -> dict:
    """Training base rates from a label table (``soundaq.models_zoo.data.labels`` / ``datamodule.labels``):
    scene shares [3], event frequencies [15], mean ratings [8], mean ISOP and ISOE, and ``tasks``, the
    groups they were computed for (:data:`NEUTRAL` values stand for the others).

    Raises:
        ValueError: an empty table.
    """
    n = len(labels)
    if n == 0:
        raise ValueError("an empty label table has no base rates")
    tasks = labelled_groups(labels)
    rates = {**NEUTRAL, "tasks": list(tasks)}
    if "scene" in tasks:
        scenes = labels["scene"].value_counts(normalize=True)
        rates["scene"] = [float(scenes.get(s, 0.0)) for s in SCENES]
    if "events" in tasks:
        rates["events"] = [float(labels[c].astype(float).mean()) for c in EVENT_COLUMNS]
    if "qualities" in tasks:
        rates["qualities"] = [float(labels[q].astype(float).mean()) for q in QUALITIES]
        rates["isop"] = float(labels["isop"].astype(float).mean())
        rates["isoe"] = float(labels["isoe"].astype(float).mean())
    return rates


def init_heads_from_labels(net, labels, zero_weights: bool = True) -> dict:
    """Set the head biases of ``net`` from ``labels`` (and zero the head weights unless
    ``zero_weights=False``), for the label groups ``labels`` has (see the module docstring); returns the
    rates used.

    Raises:
        ValueError: an empty table, or a net without the release's head names.
    """
    import torch

    rates = base_rates(labels)
    lo, hi = EVENT_CLIP

    def head(name: str):
        layer = getattr(net, name, None)
        if layer is None or getattr(layer, "bias", None) is None:
            raise ValueError(f"{type(net).__name__} has no head {name} with a bias; "
                             "head initialisation needs the release's head names")
        return layer

    def set_scene():
        scene = head("fc_final_scene")
        scene.bias.copy_(torch.tensor([math.log(max(p, 1e-3)) for p in rates["scene"]], dtype=scene.bias.dtype))

    def set_events():
        event = head("fc_final_event")
        logits = [math.log(min(max(p, lo), hi) / (1.0 - min(max(p, lo), hi))) for p in rates["events"]]
        if len(logits) != len(EVENTS) or event.bias.numel() != len(EVENTS):
            raise ValueError("event head width differs from the 15 events")
        event.bias.copy_(torch.tensor(logits, dtype=event.bias.dtype))

    def set_qualities():
        for q, mean in zip(QUALITIES, rates["qualities"]):
            head(f"fc_final_{q}").bias.fill_(mean)
        head("fc_final_ISOPls").bias.fill_(rates["isop"])
        head("fc_final_ISOEvs").bias.fill_(rates["isoe"])

    setters = {"scene": set_scene, "events": set_events, "qualities": set_qualities}
    names = [name for group in rates["tasks"] for name in HEADS[group]]
    with torch.no_grad():
        for group in rates["tasks"]:
            setters[group]()
            for name in HEADS[group] if zero_weights else ():
                head(name).weight.zero_()
        if zero_weights:
            for name, x in chained_heads(net, names).items():
                layer = head(name)
                target = layer.bias.clone()              # what the head must output at the constant input
                layer.weight.normal_(0.0, 1.0 / math.sqrt(layer.in_features))
                layer.bias.copy_(target - layer.weight @ x.to(layer.weight.dtype))
    return rates


def chained_heads(net, names) -> dict:
    """The heads among ``names`` whose input does not depend on the clip: the net is run (eval mode,
    no gradient) on two different random inputs of ``max(min_frames, 401)`` frames (``max_frames`` for
    nets of a fixed length) and a head whose input is equal on both is returned with that input
    ``[in_features]``.

    Returns:
        ``{head name: constant input tensor}``; empty for nets whose heads all read the embedding.
    """
    import torch

    frames = max(int(getattr(net, "min_frames", 1)), 401)
    if getattr(net, "max_frames", None) is not None:
        frames = int(net.max_frames)
    seen: dict[str, list] = {name: [] for name in names}
    hooks = [getattr(net, name).register_forward_hook(
        lambda _m, args, _out, name=name: seen[name].append(args[0].detach().reshape(args[0].shape[0], -1)))
        for name in names]
    was_training = net.training
    net.eval()
    generator = torch.Generator().manual_seed(0)
    try:
        with torch.no_grad():
            mel = torch.randn(2, frames, 64, generator=generator)
            loudness = torch.randn(2, max(int(getattr(net, "min_loudness_samples", 1)), frames * 5), 1,
                                   generator=generator) if getattr(net, "uses_loudness", False) else None
            net(mel, loudness)
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    constant = {}
    for name, inputs in seen.items():
        if len(inputs) == 1 and inputs[0].shape[0] == 2 and torch.allclose(inputs[0][0], inputs[0][1], atol=1e-6):
            constant[name] = inputs[0][0].clone()
    return constant


def start_net(model: str, seed: int, labels):
    """``model``'s net as every soundaq training run starts it by default (``soundaq train``, each
    leaderboard and ablation unit): torch seeded with ``seed``, built by the registry, then
    :func:`init_heads_from_labels` with ``labels`` (the training split's), so that ``train`` reruns a
    leaderboard row's training exactly.

    Raises:
        ValueError: as :func:`init_heads_from_labels`.
        UserError: an unknown model name (:func:`~soundaq.models_zoo.registry.build_net`).
    """
    import torch

    from soundaq.models_zoo.registry import build_net

    torch.manual_seed(seed)          # the same initial weights in every session
    net = build_net(model)
    init_heads_from_labels(net, labels)
    return net
