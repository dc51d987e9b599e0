"""Head-bias initialisation from training base rates (soundaq.models_zoo.head_init)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from soundaq.base.vocab import EVENT_COLUMNS, QUALITIES, SCENES
from soundaq.models_zoo.head_init import EVENT_CLIP, base_rates, chained_heads, init_heads_from_labels
from soundaq.models_zoo.registry import build_net, count_params, list_nets


def _labels(n=40, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.DataFrame({"clip": [f"c{i}" for i in range(n)], "scene": rng.choice(list(SCENES[:2]), n)})
    for i, c in enumerate(EVENT_COLUMNS):
        t[c] = (rng.random(n) < i / 15).astype(int)       # event 0 never occurs: clipped, not -inf
    for q in QUALITIES:
        t[q] = rng.uniform(1, 5, n)
    t["isop"], t["isoe"] = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    return t


@pytest.mark.parametrize("name", ["AD_CNN", "Baseline_CNN", "SoundAQnet"])
def test_biases_take_the_base_rates_and_nothing_else_changes(name):
    labels = _labels()
    torch.manual_seed(0)
    net = build_net(name)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rates = init_heads_from_labels(net, labels)
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    heads = ("scene", "event", "ISOPls", "ISOEvs", *QUALITIES)
    assert changed <= {f"fc_final_{h}.{p}" for h in heads for p in ("bias", "weight")}
    assert all(not after[f"fc_final_{h}.weight"].any() for h in heads)
    assert count_params(net) == count_params(build_net(name))
    for q in QUALITIES:
        assert after[f"fc_final_{q}.bias"].item() == pytest.approx(labels[q].mean(), rel=1e-6)
    assert after["fc_final_ISOPls.bias"].item() == pytest.approx(labels["isop"].mean(), rel=1e-5, abs=1e-7)
    p = np.clip(labels[list(EVENT_COLUMNS)].mean().to_numpy(), *EVENT_CLIP)
    np.testing.assert_allclose(after["fc_final_event.bias"].numpy(), np.log(p / (1 - p)), rtol=1e-5)
    scene_p = torch.softmax(after["fc_final_scene.bias"], 0).numpy()
    np.testing.assert_allclose(scene_p[:2], labels["scene"].value_counts(normalize=True)[list(SCENES[:2])], atol=2e-3)
    assert rates["scene"][2] == 0.0 and math.isfinite(after["fc_final_scene.bias"][2].item())


def test_every_zoo_net_has_the_heads():
    for name in list_nets():
        init_heads_from_labels(build_net(name), _labels())


def test_empty_table_is_refused():
    with pytest.raises(ValueError):
        base_rates(_labels().iloc[:0])


def test_the_untrained_net_is_the_training_mean_predictor():
    labels = _labels()
    torch.manual_seed(0)
    net = build_net("CNN_Transformer").eval()
    init_heads_from_labels(net, labels)
    with torch.no_grad():
        out = net(torch.randn(2, 3001, 64))
    np.testing.assert_allclose(out.qualities.numpy(), np.tile(labels[list(QUALITIES)].mean().to_numpy(), (2, 1)),
                               rtol=1e-5)
    np.testing.assert_allclose(out.isoe.numpy(), [labels["isoe"].mean()] * 2, rtol=1e-5, atol=1e-7)
    # without zeroing, the random weights of the 65,536-wide heads dominate
    torch.manual_seed(0)
    net = build_net("CNN_Transformer").eval()
    init_heads_from_labels(net, labels, zero_weights=False)
    assert net.fc_final_pleasant.weight.abs().sum() > 0



def test_chained_heads_keep_random_weights_and_still_start_at_the_base_rates():
    """Hierarchical CNN reads scene from the event logits and ISOP/ISOE from the qualities: with the
    heads behind them zeroed their input is constant, so zero weights there would block every gradient
    (the net stayed at chance scene accuracy); they keep random weights, biases offset to the targets."""
    labels = _labels()
    torch.manual_seed(0)
    net = build_net("Hierarchical_CNN")
    init_heads_from_labels(net, labels)
    assert set(chained_heads(net, ["fc_final_scene", "fc_final_event", "fc_final_ISOPls", "fc_final_ISOEvs",
                                   "fc_final_pleasant"])) == {"fc_final_scene", "fc_final_ISOPls", "fc_final_ISOEvs"}
    for h in ("scene", "ISOPls", "ISOEvs"):
        assert net.state_dict()[f"fc_final_{h}.weight"].abs().sum() > 0
    assert not net.fc_final_event.weight.any() and not net.fc_final_pleasant.weight.any()
    net.eval()
    out = net(torch.randn(3, 401, 64))
    scene_p = torch.softmax(out.scene_logits, 1).detach().numpy()
    np.testing.assert_allclose(scene_p[:, :2], np.tile(labels["scene"].value_counts(normalize=True)[list(SCENES[:2])], (3, 1)),
                               atol=2e-3)
    np.testing.assert_allclose(out.isop.detach().numpy(), [labels["isop"].mean()] * 3, rtol=1e-4, atol=1e-6)
    # the scene loss reaches the layer behind the scene head at the very first step
    torch.nn.functional.cross_entropy(out.scene_logits, torch.tensor([0, 1, 0])).backward()
    assert net.event_embedding_layer.weight.grad.abs().sum() > 0
    # nets whose heads all read the embedding have none
    assert chained_heads(build_net("Baseline_CNN"), ["fc_final_scene", "fc_final_ISOPls"]) == {}


def test_train_starts_the_net_as_a_leaderboard_unit(monkeypatch, soundaq_cache, tmp_path):
    """`soundaq train` starts the heads at the training base rates as the leaderboard does (trial fault C:
    train started them at zero, so `train --schedule embedded` gave aq_mse_mean 2.56 where the leaderboard
    row of the same model and budget gave 1.10); `--zero-head-bias` is the original's start, and the run
    identity says which."""
    from soundaq.benchmark.cli import main
    from soundaq.models_zoo import training
    from soundaq.models_zoo.head_init import start_net

    seen: list[dict] = []

    def fake_train(model, datamodule, **kw):
        seen.append({**kw, "labels": datamodule.labels("training")})
        raise SystemExit(0)

    monkeypatch.setattr(training, "train_model", fake_train)
    args = ["train", "--model", "AD_CNN", "--data", "embedded", "--embedded-clips", "12", "--cache-dir",
            str(soundaq_cache), "--schedule", "embedded", "--seed", "3", "--out", str(tmp_path / "run")]
    for extra in ([], ["--zero-head-bias"]):
        with pytest.raises(SystemExit):
            main(args + extra)
    headed, zero = seen
    assert headed["identity"]["head_init"] is True and zero["identity"]["head_init"] is False
    assert zero["net"] is None and zero["provenance"]["head_init"] == "zero (original)"
    expected = start_net("AD_CNN", 3, headed["labels"]).state_dict()
    got = headed["net"].state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    rates = base_rates(headed["labels"])
    assert got["fc_final_pleasant.bias"].item() == pytest.approx(rates["qualities"][QUALITIES.index("pleasant")])


def test_a_train_folder_from_before_head_init_is_told_what_differs(tmp_path):
    """A train run.json written before `head_init` joined the identity was trained with zero heads: it
    resumes under --zero-head-bias, and without it is refused in one line naming the option."""
    from soundaq.base.runs import identity_problem

    old = {"model": "AD_CNN", "seed": 0, "lr": 0.0005}
    assert identity_problem(tmp_path, old, {**old, "head_init": False}) is None
    line = identity_problem(tmp_path, old, {**old, "head_init": True})
    assert line is not None and "--zero-head-bias on there, off now" in line and "\n" not in line
