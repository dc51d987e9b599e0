"""Part-B zoo networks: MobileNetV2, YAMNet, CNN-Transformer, PANNs, and pretrained-backbone loading.

References used here are independent of the code under test: parameter counts and tensor shapes
worked out by hand from the release's definitions, scipy's correlate2d for TensorFlow "SAME"
padding, and a numpy re-computation of the attention block.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from soundaq.base.vocab import EVENTS, QUALITIES, SCENES
from soundaq.models_zoo.nets import cnn_transformer, mobilenetv2, panns, yamnet
from soundaq.models_zoo.nets.cnn_transformer import CNNTransformer
from soundaq.models_zoo.nets.mobilenetv2 import MobileNetV2
from soundaq.models_zoo.nets.panns import PANNs
from soundaq.models_zoo.nets.pretrained import PretrainedWeightsError, load_pretrained_backbone, read_state_dict
from soundaq.models_zoo.nets.yamnet import YAMNet
from soundaq.models_zoo.outputs import NetOutput
from soundaq.models_zoo.registry import get_spec, with_backbone

# Trainable parameter counts of the release's models (the paper's table).
PARAMS = {MobileNetV2: 2_259_164, YAMNet: 3_235_100, CNNTransformer: 12_293_996, PANNs: 79_731_036}
# Shortest convenient input per net for quick tests (CNN-Transformer needs a 30-s window).
SHORT = {MobileNetV2: 64, YAMNet: 64, CNNTransformer: 3001, PANNs: 32}
MODULES = {MobileNetV2: mobilenetv2, YAMNet: yamnet, CNNTransformer: cnn_transformer, PANNs: panns}
NETS = list(PARAMS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {cls: cls() for cls in NETS}


def _ids(cls):
    return cls.__name__


@pytest.mark.parametrize("cls", NETS, ids=_ids)
def test_parameter_count_exact(nets, cls):
    net = nets[cls]
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == PARAMS[cls]
    assert sum(p.numel() for p in net.parameters()) == PARAMS[cls]
    assert cls.uses_loudness is False


def test_cnn_transformer_unused_layers_counted():
    """The layers the release defines but never runs account for exactly these parameters."""
    net = CNNTransformer()
    unused = sum(p.numel() for name in cnn_transformer.UNUSED_MODULES for p in getattr(net, name).parameters())
    # bn0 128, conv2 2304 + bn2 32, conv4 25600 + bn4 64, conv6 200704 + bn6 128, mha_d_model_to_one 65536*128+128
    assert unused == 128 + 2304 + 32 + 25600 + 64 + 200704 + 128 + 65536 * 128 + 128


# Keys and shapes of the release's state dicts, derived by hand from its models_pytorch.py files.
RELEASE_KEYS = {
    MobileNetV2: {
        "features.0.0.weight": (32, 1, 3, 3), "features.0.2.running_var": (32,),
        "features.1.conv.0.weight": (32, 1, 3, 3), "features.1.conv.2.weight": (32,),
        "features.1.conv.4.weight": (16, 32, 1, 1), "features.1.conv.5.bias": (16,),
        "features.2.conv.0.weight": (96, 16, 1, 1), "features.2.conv.3.weight": (96, 1, 3, 3),
        "features.2.conv.5.weight": (96,), "features.2.conv.7.weight": (24, 96, 1, 1),
        "features.17.conv.7.weight": (320, 960, 1, 1), "features.18.0.weight": (1280, 320, 1, 1),
        "features.18.1.running_mean": (1280,), "fc_final_event.weight": (15, 1280),
        "fc_final_scene.weight": (3, 1280), "fc_final_ISOPls.weight": (1, 1280), "fc_final_monotonous.bias": (1,),
    },
    YAMNet: {
        "layer1.fused.conv.weight": (32, 1, 3, 3), "layer1.fused.bn.running_mean": (32,),
        "layer2.depthwise_conv.conv.weight": (32, 1, 3, 3), "layer2.pointwise_conv.conv.weight": (64, 32, 1, 1),
        "layer14.depthwise_conv.conv.weight": (1024, 1, 3, 3), "layer14.pointwise_conv.bn.weight": (1024,),
        "fc_final_event.weight": (15, 1024), "fc_final_ISOEvs.bias": (1,), "fc_final_calm.weight": (1, 1024),
    },
    CNNTransformer: {
        "bn0.weight": (64,), "conv1.weight": (16, 1, 3, 3), "conv2.weight": (16, 16, 3, 3),
        "conv3.weight": (32, 16, 5, 5), "conv4.weight": (32, 32, 5, 5), "conv5.weight": (64, 32, 7, 7),
        "conv6.weight": (64, 64, 7, 7), "conv7.weight": (128, 64, 9, 9), "bn7.running_var": (128,),
        "mha.mel_projection.weight": (512, 23), "mha.layers.0.enc_self_attn.W_Q.weight": (512, 512),
        "mha.layers.0.enc_self_attn.W_V.bias": (512,), "mha.layers.0.enc_self_attn.fc.weight": (512, 512),
        "mha.layers.0.enc_self_attn.layernorm.weight": (512,), "mha_d_model_to_one.weight": (128, 65536),
        "fc_final_event.weight": (15, 65536), "fc_final_pleasant.weight": (1, 65536),
    },
    PANNs: {
        "conv_block1.conv1.weight": (64, 1, 3, 3), "conv_block1.bn2.running_var": (64,),
        "conv_block6.conv1.weight": (2048, 1024, 3, 3), "conv_block6.conv2.weight": (2048, 2048, 3, 3),
        "fc1.weight": (2048, 2048), "fc_final_scene.weight": (3, 2048), "fc_final_annoying.bias": (1,),
    },
}


@pytest.mark.parametrize("cls", NETS, ids=_ids)
def test_state_dict_uses_release_names(nets, cls):
    sd = nets[cls].state_dict()
    for key, shape in RELEASE_KEYS[cls].items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key
    heads = {f"fc_final_{q}.weight" for q in QUALITIES} | {"fc_final_event.weight", "fc_final_scene.weight",
                                                           "fc_final_ISOPls.weight", "fc_final_ISOEvs.weight"}
    assert heads <= set(sd)
    if cls is PANNs:
        assert not any(k.startswith("bn0.") for k in sd)  # built with batchnormal=False


@pytest.mark.parametrize("cls", NETS, ids=_ids)
def test_map_original_keys_loads_a_dataparallel_state_dict(nets, cls):
    src = cls()
    wrapped = {f"module.{k}": v.clone() for k, v in src.state_dict().items()}
    mapped = MODULES[cls].map_original_keys(wrapped)
    dst = nets[cls]
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    try:
        dst.load_state_dict(mapped, strict=True)
        for k, v in src.state_dict().items():
            assert torch.equal(dst.state_dict()[k], v), k
    finally:
        dst.load_state_dict(before)
    # keys without the prefix pass through untouched
    assert list(MODULES[cls].map_original_keys(src.state_dict())) == list(src.state_dict())


def _check_output(out, batch):
    assert isinstance(out, NetOutput)
    assert out.scene_logits.shape == (batch, len(SCENES))
    assert out.event_logits.shape == (batch, len(EVENTS))
    assert out.qualities.shape == (batch, len(QUALITIES))
    assert out.isop.shape == (batch,) and out.isoe.shape == (batch,)
    for t in out.as_dict().values():
        assert torch.isfinite(t).all()


@pytest.mark.parametrize("cls", NETS, ids=_ids)
def test_forward_backward_small_batch(nets, cls):
    torch.manual_seed(1)
    net = nets[cls]
    net.train()
    net.zero_grad(set_to_none=True)
    mel = torch.randn(2, SHORT[cls], 64)
    out = net(mel)
    _check_output(out, 2)
    total = sum(t.float().square().mean() for t in out.as_dict().values())
    total.backward()
    unused = cnn_transformer.UNUSED_MODULES if cls is CNNTransformer else ()
    for name, p in net.named_parameters():
        if name.split(".")[0] in unused:
            assert p.grad is None, f"{name} is not in the release's forward pass"
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in net.parameters() if p.grad is not None)
    net.zero_grad(set_to_none=True)


@pytest.mark.parametrize("cls", NETS, ids=_ids)
def test_eval_output_independent_of_batch(nets, cls):
    """Eval mode: each clip's output does not depend on its batch mates (any batch size works)."""
    torch.manual_seed(2)
    net = nets[cls].eval()
    mel = torch.randn(3, SHORT[cls], 64)
    with torch.no_grad():
        together = net(mel)
        alone = [net(mel[i:i + 1]) for i in range(3)]
    for field, value in together.as_dict().items():
        stacked = torch.cat([getattr(a, field) for a in alone])
        torch.testing.assert_close(value, stacked, rtol=1e-4, atol=1e-4)


def test_full_clip_feature_map_shapes():
    """The 30-s clip goes through the release's down-sampling: shapes worked out from its comments."""
    mel = torch.randn(1, 3001, 64)
    with torch.no_grad():
        m = MobileNetV2().eval()
        assert m.features(mel.unsqueeze(1)).shape == (1, 1280, 93, 2)
        c = CNNTransformer().eval()
        x = mel.unsqueeze(1)
        x = F.max_pool2d(F.relu(c.bn1(c.conv1(x))), (2, 2))
        assert x.shape == (1, 16, 1500, 32)
        x = F.max_pool2d(F.relu(c.bn3(c.conv3(x))), (3, 2))
        assert x.shape == (1, 32, 499, 15)
        x = F.max_pool2d(F.relu(c.bn5(c.conv5(x))), (4, 1))
        assert x.shape == (1, 64, 123, 11)
        x = F.max_pool2d(F.relu(c.bn7(c.conv7(x))), (5, 2))
        assert x.shape == (1, 128, 23, 1)
    assert cnn_transformer.pooled_steps(3001) == 23
    lo, hi = cnn_transformer.FRAME_RANGE
    assert lo <= 3001 <= hi and cnn_transformer.pooled_steps(lo - 1) == 22 and cnn_transformer.pooled_steps(hi + 1) == 24


@pytest.mark.parametrize("cls,frames", [(MobileNetV2, 32), (YAMNet, 1), (YAMNet, 7), (PANNs, 32)], ids=str)
def test_short_inputs_work(nets, cls, frames):
    with torch.no_grad():
        _check_output(nets[cls].eval()(torch.randn(2, frames, 64)), 2)


@pytest.mark.parametrize("cls,shape", [
    (MobileNetV2, (2, 16, 64)), (PANNs, (2, 31, 64)), (YAMNet, (2, 100, 40)), (YAMNet, (100, 64)),
    (CNNTransformer, (1, 2000, 64)), (CNNTransformer, (1, 3200, 64)),
], ids=str)
def test_bad_input_shape_is_a_clear_error(nets, cls, shape):
    with pytest.raises(ValueError, match=cls.__name__):
        nets[cls](torch.randn(*shape))


# ---------------------------------------------------------------------------------------------------
# Independent references for the unusual pieces
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [5, 6, 7, 64, 3001])
@pytest.mark.parametrize("stride", [1, 2])
def test_yamnet_same_padding_matches_tensorflow_semantics(size, stride):
    """TF "SAME": output ceil(n / s); compare a depthwise conv with scipy on a hand-padded input."""
    from scipy.signal import correlate2d

    torch.manual_seed(3)
    conv = yamnet.Conv2dSame(2, 2, 3, stride, groups=2)
    x = torch.randn(1, 2, size, 9)
    with torch.no_grad():
        y = conv(x).numpy()
    assert y.shape[2:] == (math.ceil(size / stride), math.ceil(9 / stride))
    for axis_len, s in ((size, stride), (9, stride)):
        before, after = yamnet.same_padding(axis_len, 3, s)
        total = max(0, (math.ceil(axis_len / s) - 1) * s + 3 - axis_len)
        assert before + after == total and after - before in (0, 1)  # TF puts the odd pixel at the end
    tb, ta = yamnet.same_padding(size, 3, stride)
    fb, fa = yamnet.same_padding(9, 3, stride)
    for c in range(2):
        padded = np.pad(x[0, c].numpy(), ((tb, ta), (fb, fa)))
        ref = correlate2d(padded, conv.weight[c, 0].detach().numpy(), mode="valid")[::stride, ::stride]
        np.testing.assert_allclose(y[0, c], ref, rtol=1e-5, atol=1e-5)


def test_cnn_transformer_attention_matches_numpy():
    torch.manual_seed(4)
    att = cnn_transformer.MultiHeadSelfAttention().eval()
    x = torch.randn(2, 128, 512)
    with torch.no_grad():
        got = att(x).numpy()
    p = {k: v.detach().double().numpy() for k, v in att.state_dict().items()}
    xn = x.double().numpy()

    def heads(w, b):
        return (xn @ w.T + b).reshape(2, 128, 8, 64).transpose(0, 2, 1, 3)

    q, k, v = heads(p["W_Q.weight"], p["W_Q.bias"]), heads(p["W_K.weight"], p["W_K.bias"]), heads(p["W_V.weight"], p["W_V.bias"])
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(64.0)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    attn = scores / scores.sum(-1, keepdims=True)
    ctx = (attn @ v).transpose(0, 2, 1, 3).reshape(2, 128, 512)
    y = ctx @ p["fc.weight"].T + p["fc.bias"] + xn
    y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5)
    y = y * p["layernorm.weight"] + p["layernorm.bias"]
    np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-4)


def test_panns_embedding_pools_max_plus_mean():
    """PANNs: mean over frequency, then max + mean over time, then relu(fc1)."""
    torch.manual_seed(5)
    net = PANNs().eval()
    mel = torch.randn(2, 64, 64)
    with torch.no_grad():
        x = mel.unsqueeze(1)
        for i in range(1, 7):
            x = getattr(net, f"conv_block{i}")(x, pool_size=(2, 2) if i < 6 else (1, 1), pool_type="avg")
        fmap = x.numpy()
        emb = net.embed(mel).numpy()
    pooled = fmap.mean(axis=3)
    pooled = pooled.max(axis=2) + pooled.mean(axis=2)
    ref = np.maximum(pooled @ net.fc1.weight.detach().numpy().T + net.fc1.bias.detach().numpy(), 0)
    np.testing.assert_allclose(emb, ref, rtol=1e-4, atol=1e-4)


def test_heads_follow_vocab_names(nets):
    """Quality i of the output is the head named after vocab.QUALITIES[i]."""
    net = YAMNet().eval()
    with torch.no_grad():
        for q in QUALITIES:
            getattr(net, f"fc_final_{q}").bias.fill_(float(QUALITIES.index(q) + 1) * 100)
        out = net(torch.randn(1, 32, 64))
    np.testing.assert_allclose(out.qualities[0].numpy() // 100, np.arange(1, 9))


# ---------------------------------------------------------------------------------------------------
# Overfitting 8 clips
# ---------------------------------------------------------------------------------------------------

def _targets(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    y = {"scene": torch.arange(n) % len(SCENES), "events": (torch.rand(n, len(EVENTS), generator=g) < 0.5).float(),
         "qualities": torch.randn(n, len(QUALITIES), generator=g), "isop": torch.randn(n, generator=g),
         "isoe": torch.randn(n, generator=g)}
    for k in ("qualities", "isop", "isoe"):   # centred: a constant output cannot fit them
        y[k] = y[k] - y[k].mean(0)
    return y


def _loss(out: NetOutput, y: dict) -> torch.Tensor:
    return (F.cross_entropy(out.scene_logits, y["scene"])
            + F.binary_cross_entropy_with_logits(out.event_logits, y["events"])
            + F.mse_loss(out.qualities, y["qualities"], reduction="none").mean(0).sum()
            + F.mse_loss(out.isop, y["isop"]) + F.mse_loss(out.isoe, y["isoe"]))


def _constant_baseline(y: dict) -> float:
    """Loss of the best clip-independent prediction (class frequencies, target means)."""
    freq = torch.bincount(y["scene"], minlength=3).double() / len(y["scene"])
    ce = float(-(freq[freq > 0] * freq[freq > 0].log()).sum())
    p = y["events"].double().mean(0).clamp(1e-12, 1 - 1e-12)
    bce = float((-(p * p.log() + (1 - p) * (1 - p).log())).mean())
    mse = float(y["qualities"].double().var(0, unbiased=False).sum()
                + y["isop"].double().var(unbiased=False) + y["isoe"].double().var(unbiased=False))
    return ce + bce + mse


def _overfit(cls, frames: int, steps: int, lr: float) -> tuple[float, float, float]:
    torch.manual_seed(6)
    net = cls().train()
    mel = torch.randn(8, frames, 64, generator=torch.Generator().manual_seed(7))
    y = _targets(8, 8)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = _loss(net(mel), y)
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    with torch.no_grad():
        last = float(_loss(net(mel), y))
    return first, last, _constant_baseline(y)


def _assert_overfits(first, last, baseline):
    # Falls by half, and below half of what any clip-independent prediction can reach (memorisation).
    assert last < 0.5 * first, (first, last)
    assert last < 0.5 * baseline, (last, baseline)


@pytest.mark.parametrize("cls,frames,steps,lr", [(MobileNetV2, 32, 25, 1e-3), (YAMNet, 32, 25, 1e-3)], ids=str)
def test_overfits_8_clips(cls, frames, steps, lr):
    _assert_overfits(*_overfit(cls, frames, steps, lr))


@pytest.mark.slow
@pytest.mark.parametrize("cls,frames,steps,lr", [(CNNTransformer, 3001, 15, 1e-5), (PANNs, 64, 30, 3e-4)], ids=str)
def test_overfits_8_clips_big_nets(cls, frames, steps, lr):
    _assert_overfits(*_overfit(cls, frames, steps, lr))


# ---------------------------------------------------------------------------------------------------
# Pretrained AudioSet backbones from a user's file
# ---------------------------------------------------------------------------------------------------

def _cnn14_like_file(tmp_path, donor: PANNs, **changes):
    """A file shaped like the PANNs release's CNN14 checkpoint: {"model": sd} with its extra keys."""
    sd = {k: v.clone() for k, v in donor.state_dict().items() if k.startswith(("conv_block", "fc1."))}
    sd.update({
        "spectrogram_extractor.stft.conv_real.weight": torch.randn(257, 1, 512),
        "logmel_extractor.melW": torch.randn(257, 64),
        "bn0.weight": torch.ones(64), "bn0.bias": torch.zeros(64),
        "fc_audioset.weight": torch.randn(527, 2048), "fc_audioset.bias": torch.zeros(527),
    })
    sd.update(changes)
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"model": sd, "iteration": 1000}, path)
    return path


def test_load_panns_backbone_from_cnn14_file(tmp_path, nets):
    torch.manual_seed(9)
    donor = nets[PANNs]   # any weights other than net's fresh ones
    path = _cnn14_like_file(tmp_path, donor)
    net = PANNs()
    heads_before = net.fc_final_event.weight.clone()
    report = load_pretrained_backbone(net, path, get_spec(type(net).__name__).backbone)
    assert report.model == "PANNs" and len(report.sha256) == 64
    for k, v in donor.state_dict().items():
        if k.startswith(("conv_block", "fc1.")):
            assert torch.equal(net.state_dict()[k], v), k
    assert torch.equal(net.fc_final_event.weight, heads_before)
    backbone = sum(p.numel() for n, p in donor.named_parameters() if n.startswith(("conv_block", "fc1.")))
    assert report.loaded_parameters == backbone
    assert set(report.ignored) == {"spectrogram_extractor.stft.conv_real.weight", "logmel_extractor.melW",
                                   "bn0.weight", "bn0.bias", "fc_audioset.weight", "fc_audioset.bias"}
    assert report.unexpected == []


def test_load_yamnet_backbone_from_torch_audioset_file(tmp_path):
    torch.manual_seed(10)
    donor = YAMNet()
    sd = {k: v for k, v in donor.state_dict().items() if k.startswith("layer")}
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}   # older files lack them
    sd["classifier.weight"], sd["classifier.bias"] = torch.randn(521, 1024), torch.zeros(521)
    path = tmp_path / "yamnet.pth"
    torch.save(sd, path)
    net = YAMNet()
    report = load_pretrained_backbone(net, path, get_spec(type(net).__name__).backbone)
    for k in sd:
        if k.startswith("layer"):
            assert torch.equal(net.state_dict()[k], sd[k]), k
    assert report.ignored == ["classifier.weight", "classifier.bias"]
    assert report.absent_counters and all(k.endswith("num_batches_tracked") for k in report.absent_counters)
    assert with_backbone() == ["PANNs", "YAMNet"] and get_spec("AD_CNN").backbone is None


def test_wrong_pretrained_files_are_refused_untouched(tmp_path, nets):
    torch.manual_seed(11)
    yam_path = tmp_path / "yamnet.pth"
    donor = YAMNet().state_dict()
    torch.save(donor, yam_path)
    panns = nets[PANNs]
    fc1_before = panns.fc1.weight.detach().clone()
    with pytest.raises(PretrainedWeightsError, match=r"yamnet\.pth: not a PANNs backbone.*Cnn14"):
        load_pretrained_backbone(panns, yam_path, get_spec("PANNs").backbone)
    assert torch.equal(panns.fc1.weight, fc1_before)

    # shape and NaN checks, on YAMNet-sized files (a CNN14 file is 320 MB)
    net = YAMNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    bad_shape = tmp_path / "bad_shape.pth"
    torch.save({**donor, "layer14.pointwise_conv.conv.weight": torch.randn(1024, 512, 1, 1)}, bad_shape)
    with pytest.raises(PretrainedWeightsError, match=r"bad_shape\.pth: 1 backbone tensors have the wrong shape "
                                                     r"\(first: layer14\.pointwise_conv\.conv\.weight is "
                                                     r"\[1024, 512, 1, 1\], YAMNet needs \[1024, 1024, 1, 1\]"):
        load_pretrained_backbone(net, bad_shape, get_spec("YAMNet").backbone)
    nan_file = tmp_path / "nan.pth"
    torch.save({**donor, "layer2.pointwise_conv.bn.bias": torch.full((64,), float("nan"))}, nan_file)
    with pytest.raises(PretrainedWeightsError, match=r"nan\.pth: tensor layer2\.pointwise_conv\.bn\.bias holds NaN"):
        load_pretrained_backbone(net, nan_file, get_spec("YAMNet").backbone)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k

    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(PretrainedWeightsError, match=r"notes\.pth: not a PyTorch weights file"):
        read_state_dict(text)
    with pytest.raises(PretrainedWeightsError, match="no such file"):
        read_state_dict(tmp_path / "missing.pth")
    pickled = tmp_path / "object.pth"
    torch.save({"model": _Opaque()}, pickled)   # weights_only refuses arbitrary objects
    with pytest.raises(PretrainedWeightsError, match=r"object\.pth: not a PyTorch weights file"):
        read_state_dict(pickled)
    listy = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], listy)
    with pytest.raises(PretrainedWeightsError, match="not a state dict"):
        read_state_dict(listy)


class _Opaque:
    pass


def test_pretrained_error_is_a_user_error():
    from soundaq.base.errors import UserError

    assert issubclass(PretrainedWeightsError, UserError)
