"""``soundaq import-original`` and our checkpoint format.

The produced ``.ckpt`` must reproduce what the original code computed from the release's weights
(``checkpoints/expected_outputs``), using the normalisation statistics stored *inside* it; release
files are read only through safe loaders (``torch.load(weights_only=True)`` for weights, a
numpy-only unpickler for the normalisation pickles), so a malicious file can run no code.
"""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from input_builders import only_line, run_cli

from soundaq.base.fileio import sha256_file
from soundaq.models_zoo.checkpoints import CheckpointError, load_checkpoint, load_numpy_pickle, read_norm_file, save_checkpoint

RELEASED = ("AD_CNN", "Baseline_CNN", "Hierarchical_CNN")
TOL = 1e-4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


_run, _one_line_error = run_cli, only_line


def _norm_pickle(path, stats: dict, numpy1_names: bool = False):
    """A pickle like the release's ``norm_*.pickle``: ``{"mean": ndarray, "std": ndarray}``.

    ``numpy1_names`` rewrites the globals to numpy 1's ``numpy.core`` (the release was pickled under
    numpy 1); protocol 3 writes globals as text lines, so the rename keeps the pickle valid.
    """
    data = pickle.dumps({"mean": np.asarray(stats["mean"], dtype=np.float32),
                         "std": np.asarray(stats["std"], dtype=np.float32)}, protocol=3)
    if numpy1_names:
        data = data.replace(b"numpy._core", b"numpy.core")
        assert b"numpy.core.multiarray" in data
    path.write_bytes(data)
    return path


class _Boom:
    """Unpickling this creates a directory: proof of code execution if a loader lets it through."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return os.mkdir, (self.target,)


@pytest.fixture(scope="module")
def ref_stats(sample_clip_dir) -> dict:
    return json.loads((sample_clip_dir / "original_normalisation_stats.json").read_text())


@pytest.mark.parametrize("name", RELEASED)
def test_imported_checkpoint_reproduces_original_outputs(name, tmp_path, capsys, checkpoints_dir, sample_clip_dir,
                                                         ref_stats):
    weights = checkpoints_dir / f"{name}_final_model.pth"
    norm_mel = _norm_pickle(tmp_path / "norm_log_mel.pickle", ref_stats["log_mel"], numpy1_names=True)
    out = tmp_path / f"{name}.ckpt"
    code, stdout, err = _run(capsys, "import-original", "--model", name, "--weights", weights,
                             "--norm-mel", norm_mel, "--out", out, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["model"] == name and summary["sha256"] == sha256_file(out)
    assert summary["provenance"]["weights_sha256"] == sha256_file(weights)

    # The raw file: plain containers and tensors only, in the documented layout.
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert set(raw) >= {"state_dict", "soundaq", "hyper_parameters", "pytorch-lightning_version"}
    assert all(k.startswith("net.") for k in raw["state_dict"])
    assert raw["soundaq"]["model"] == raw["hyper_parameters"]["net_name"] == name
    assert raw["soundaq"]["norm_stats"]["loudness"] == {"mean": [0.0], "std": [1.0]}  # not read by this net

    # Outputs of the original code, from the checkpoint's own statistics (float32 from the pickle).
    net, stats, info = load_checkpoint(out)
    assert info["params"] == sum(p.numel() for p in net.parameters())
    np.testing.assert_allclose(stats["log_mel"]["mean"], ref_stats["log_mel"]["mean"], rtol=1e-6)
    mel = np.load(sample_clip_dir / "reference_log_mel.npy")
    mel = (mel - np.asarray(stats["log_mel"]["mean"], np.float32)) / np.asarray(stats["log_mel"]["std"], np.float32)
    with torch.inference_mode():
        got = net(torch.from_numpy(mel.astype(np.float32))[None])
    expected = np.load(checkpoints_dir / "expected_outputs" / f"{name}_sample_clip.npz")
    ours = {"scene_logits": got.scene_logits, "event_logits": got.event_logits,
            "event_prob": torch.sigmoid(got.event_logits), "PAQ8": got.qualities,
            "ISOPl": got.isop[:, None], "ISOEv": got.isoe[:, None]}
    diffs = {k: float(np.abs(expected[k] - v.numpy()).max()) for k, v in ours.items()}
    assert max(diffs.values()) < TOL, diffs


def test_lightning_module_reads_the_imported_checkpoint(tmp_path, capsys, checkpoints_dir, sample_clip_dir, ref_stats):
    from soundaq.models_zoo.module import SoundscapeModule

    out = tmp_path / "ad.ckpt"
    code, _, err = _run(capsys, "import-original", "--model", "AD_CNN", "--weights",
                        checkpoints_dir / "AD_CNN_final_model.pth", "--norm-mel",
                        sample_clip_dir / "original_normalisation_stats.json", "--out", out)
    assert code == 0, err
    module = SoundscapeModule.load_from_checkpoint(out, map_location="cpu")
    net, stats, _ = load_checkpoint(out)
    assert module.net_name == "AD_CNN" and module.norm_stats["log_mel"] == stats["log_mel"]
    for k, v in net.state_dict().items():
        assert torch.equal(module.net.state_dict()[k], v), k


def test_soundaqnet_import_needs_loudness_stats(tmp_path, capsys, checkpoints_dir, sample_clip_dir, ref_stats):
    weights = checkpoints_dir / "soundaqnet_random_init" / "state_dict.pt"
    mel_only = tmp_path / "mel.json"
    mel_only.write_text(json.dumps(ref_stats["log_mel"]))
    code, _, err = _run(capsys, "import-original", "--model", "SoundAQnet", "--weights", weights,
                        "--norm-mel", mel_only, "--out", tmp_path / "s.ckpt")
    assert code == 2 and "--norm-loudness" in _one_line_error(err)
    assert not (tmp_path / "s.ckpt").exists()

    loud = _norm_pickle(tmp_path / "norm_loudness.pickle", ref_stats["loudness"])
    code, _, err = _run(capsys, "import-original", "--model", "SoundAQnet", "--weights", weights,
                        "--norm-mel", mel_only, "--norm-loudness", loud, "--out", tmp_path / "s.ckpt")
    assert code == 0, err
    net, stats, info = load_checkpoint(tmp_path / "s.ckpt")
    assert info["model"] == "SoundAQnet" and net.uses_loudness
    np.testing.assert_allclose(stats["loudness"]["std"], ref_stats["loudness"]["std"], rtol=1e-6)
    # the random-init reference outputs come back through the checkpoint
    ref = np.load(checkpoints_dir / "soundaqnet_random_init" / "inputs_and_outputs.npz")
    with torch.inference_mode():
        got = net(torch.from_numpy(ref["input_mel_norm"]), torch.from_numpy(ref["input_loud_norm"]))
    assert np.abs(got.scene_logits.numpy() - ref["scene_logits"]).max() < TOL
    assert np.abs(got.qualities.numpy() - ref["PAQ8"]).max() < TOL


def test_numpy_only_unpickler_refuses_code(tmp_path, capsys, checkpoints_dir):
    target = tmp_path / "pwned"
    evil = tmp_path / "norm_log_mel.pickle"
    evil.write_bytes(pickle.dumps({"mean": _Boom(target), "std": np.ones(64)}))
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os|nt)\.mkdir"):
        load_numpy_pickle(evil)
    code, _, err = _run(capsys, "import-original", "--model", "AD_CNN", "--weights",
                        checkpoints_dir / "AD_CNN_final_model.pth", "--norm-mel", evil,
                        "--out", tmp_path / "x.ckpt")
    line = _one_line_error(err)
    assert code == 2 and "norm_log_mel.pickle" in line and "refused" in line
    assert not target.exists() and not (tmp_path / "x.ckpt").exists()
    # numpy arrays and plain containers are admitted
    ok = _norm_pickle(tmp_path / "ok.pickle", {"mean": np.arange(64), "std": np.ones(64)})
    assert read_norm_file(ok, "log_mel")["mean"][:3] == [0.0, 1.0, 2.0]


def test_weights_are_loaded_weights_only(tmp_path, capsys, sample_clip_dir):
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _Boom(target)}, evil)
    code, _, err = _run(capsys, "import-original", "--model", "AD_CNN", "--weights", evil, "--norm-mel",
                        sample_clip_dir / "original_normalisation_stats.json", "--out", tmp_path / "x.ckpt")
    line = _one_line_error(err)
    assert code == 2 and "evil.pth" in line and "weights_only" in line
    assert not target.exists()


@pytest.mark.parametrize("case", ["wrong_model", "missing_weights", "bad_stats_width", "not_json"])
def test_bad_inputs_are_one_line_errors(case, tmp_path, capsys, checkpoints_dir, sample_clip_dir):
    weights = checkpoints_dir / "AD_CNN_final_model.pth"
    norm = sample_clip_dir / "original_normalisation_stats.json"
    model, expect = "AD_CNN", None
    if case == "wrong_model":
        model, expect = "Baseline_CNN", "do not fit Baseline_CNN"
    elif case == "missing_weights":
        weights, expect = tmp_path / "nope.pth", "nope.pth: no such file"
    elif case == "bad_stats_width":
        norm = tmp_path / "short.json"
        norm.write_text(json.dumps({"mean": [0.0] * 10, "std": [1.0] * 10}))
        expect = "10 values, expected 64"
    else:
        norm = tmp_path / "broken.json"
        norm.write_text("{mean: ")
        expect = "broken.json:1: not valid JSON"   # file:line of the syntax error
    code, _, err = _run(capsys, "import-original", "--model", model, "--weights", weights, "--norm-mel", norm,
                        "--out", tmp_path / "x.ckpt")
    assert code == 2 and expect in _one_line_error(err)
    assert not (tmp_path / "x.ckpt").exists()


def test_save_checkpoint_round_trip_and_refusals(tmp_path):
    from soundaq.models_zoo.registry import build_net

    torch.manual_seed(0)
    net = build_net("Baseline_CNN")
    stats = {"log_mel": {"mean": list(np.linspace(-50, -10, 64)), "std": [2.0] * 64},
             "loudness": {"mean": [0.5], "std": [1.5]}}
    path = save_checkpoint(tmp_path / "c.ckpt", "Baseline_CNN", net.state_dict(), stats, {"seed": 3})
    loaded, got_stats, info = load_checkpoint(path)
    assert got_stats == stats and info["provenance"] == {"seed": 3}
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    with pytest.raises(CheckpointError, match="lack 'loudness'"):
        save_checkpoint(tmp_path / "d.ckpt", "Baseline_CNN", net.state_dict(), {"log_mel": stats["log_mel"]})
    with pytest.raises(CheckpointError, match="std holds non-finite or non-positive"):
        save_checkpoint(tmp_path / "d.ckpt", "Baseline_CNN", net.state_dict(),
                        {**stats, "loudness": {"mean": [0.0], "std": [0.0]}})
    assert not (tmp_path / "d.ckpt").exists()
    torch.save({"state_dict": {"net.x": torch.zeros(1)}}, tmp_path / "anon.ckpt")
    with pytest.raises(CheckpointError, match="names no model"):
        load_checkpoint(tmp_path / "anon.ckpt")
