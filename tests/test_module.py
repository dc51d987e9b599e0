"""SoundscapeModule and the multi-task loss: formulas against independent references (torch's own
loss classes, sklearn metrics), checkpoint contents and round trips, and a short training run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from soundaq.base.vocab import EVENTS, QUALITIES, SCENES, iso_from_matrix
from soundaq.models_zoo.eval_data import EvalData
from soundaq.models_zoo.losses import ORIGINAL_ALPHA, TASKS, MultiTaskLoss, UncertaintyWeighting, task_losses
from soundaq.models_zoo.metrics import METRICS, score
from soundaq.models_zoo.module import MONITOR, SoundscapeModule
from soundaq.models_zoo.outputs import BATCH_KEYS, NetOutput

sklearn_metrics = pytest.importorskip("sklearn.metrics")

FRAMES = 40  # the throwaway net takes any length; short clips keep the tests fast


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tiny nets: faster on one thread (conftest)


class TinyNet(nn.Module):
    """A throwaway net that follows the zoo contract (mean-pooled mel -> MLP -> 12 heads)."""

    uses_loudness = False

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, hidden), nn.ReLU())
        self.scene = nn.Linear(hidden, len(SCENES))
        self.events = nn.Linear(hidden, len(EVENTS))
        self.rest = nn.Linear(hidden, len(QUALITIES) + 2)

    def forward(self, mel, loudness=None):
        h = self.body(mel.mean(dim=1))
        rest = self.rest(h)
        return NetOutput(self.scene(h), self.events(h), rest[:, :8] + 3.0, rest[:, 8], rest[:, 9])


class LoudTinyNet(TinyNet):
    """Like TinyNet but reads the loudness input too (as SoundAQnet does)."""

    uses_loudness = True

    def forward(self, mel, loudness=None):
        assert loudness is not None
        out = super().forward(mel)
        out.isop = out.isop + loudness.mean(dim=(1, 2))
        return out


class SyntheticSet(Dataset):
    """Clips whose labels are functions of their features, so a net can learn them."""

    def __init__(self, n: int, seed: int = 0, frames: int = FRAMES):
        g = torch.Generator().manual_seed(seed)
        self.mel = torch.randn(n, frames, 64, generator=g)
        self.loudness = torch.randn(n, 50, 1, generator=g)
        proj = torch.randn(64, 3 + 15 + 8, generator=torch.Generator().manual_seed(1234))
        z = self.mel.mean(dim=1) @ proj * 3
        self.scene = z[:, :3].argmax(dim=1)
        self.events = (z[:, 3:18] > 0).float()
        self.qualities = (3 + z[:, 18:26]).clamp(1, 5)
        iso = torch.tensor(iso_from_matrix(self.qualities.numpy()), dtype=torch.float32)
        self.isop, self.isoe = iso[:, 0], iso[:, 1]

    def __len__(self):
        return len(self.scene)

    def __getitem__(self, i):
        return {"mel": self.mel[i], "loudness": self.loudness[i], "scene": self.scene[i],
                "events": self.events[i], "qualities": self.qualities[i], "isop": self.isop[i],
                "isoe": self.isoe[i], "clip": f"clip_{i:03d}"}


def _batch(n=6, seed=0):
    ds = SyntheticSet(n, seed)
    return next(iter(DataLoader(ds, batch_size=n)))


def _random_output(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return NetOutput(torch.randn(n, 3, generator=g), torch.randn(n, 15, generator=g) * 2,
                     3 + torch.randn(n, 8, generator=g), torch.randn(n, generator=g) * 0.3,
                     torch.randn(n, generator=g) * 0.3)


def test_batch_fixture_follows_the_batch_contract():
    assert set(_batch()) == set(BATCH_KEYS)


def test_task_losses_match_the_originals_formulation():
    batch, out = _batch(), _random_output()
    parts = task_losses(out, batch)
    assert tuple(parts) == TASKS
    # The original: nll_loss(log_softmax(x)), BCELoss(sigmoid(x)), MSELoss per head.
    ref_scene = nn.NLLLoss()(torch.log_softmax(out.scene_logits, -1), batch["scene"])
    ref_events = nn.BCELoss()(torch.sigmoid(out.event_logits), batch["events"])
    assert torch.allclose(parts["scene"], ref_scene, atol=1e-6)
    assert torch.allclose(parts["events"], ref_events, atol=1e-6)
    assert parts["isop"].item() == pytest.approx(
        sklearn_metrics.mean_squared_error(batch["isop"].numpy(), out.isop.numpy()), rel=1e-5)
    for k, q in enumerate(QUALITIES):
        ref = sklearn_metrics.mean_squared_error(batch["qualities"][:, k].numpy(), out.qualities[:, k].numpy())
        assert parts[q].item() == pytest.approx(ref, rel=1e-5), q
    total, _ = MultiTaskLoss()(out, batch)
    assert total.item() == pytest.approx(sum(v.item() for v in parts.values()), rel=1e-6)


def test_uncertainty_weighting_is_the_original_formula():
    batch, out = _batch(), _random_output()
    loss = MultiTaskLoss(uncertainty_weighting=True)
    sigma = torch.linspace(0.5, 2.0, len(TASKS))
    with torch.no_grad():
        loss.uncertainty.sigma.copy_(sigma)
    total, parts = loss(out, batch)
    expected = sum(ORIGINAL_ALPHA[t] / sigma[i].item() ** 2 * parts[t].item() + math.log(1 + sigma[i].item())
                   for i, t in enumerate(TASKS))
    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert ORIGINAL_ALPHA["scene"] == ORIGINAL_ALPHA["events"] == 1.0
    assert all(ORIGINAL_ALPHA[t] == 0.5 for t in TASKS[2:])
    total.backward()
    assert loss.uncertainty.sigma.grad is not None and torch.all(loss.uncertainty.sigma.grad != 0)
    # At sigma = 1 the factors are alpha itself.
    assert UncertaintyWeighting().weights() == pytest.approx(ORIGINAL_ALPHA)


def _fit(module, train, val, tmp_path, epochs=3, batch_size=8, **trainer_kwargs):
    import lightning as L

    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, deterministic=True, **trainer_kwargs)
    trainer.fit(module, DataLoader(train, batch_size=batch_size, shuffle=False),
                DataLoader(val, batch_size=batch_size))
    return trainer


def _validate(module, dataset, tmp_path, batch_size=7):
    import lightning as L

    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    return trainer.validate(module, DataLoader(dataset, batch_size=batch_size), verbose=False)[0]


def _eval_data(module, dataset) -> EvalData:
    module.eval()
    with torch.no_grad():
        out = module(dataset.mel)
    return EvalData(scene_true=dataset.scene.numpy(), scene_prob=torch.softmax(out.scene_logits, 1),
                    event_true=dataset.events.numpy(), event_prob=torch.sigmoid(out.event_logits),
                    quality_true=dataset.qualities.numpy(), quality_pred=out.qualities,
                    iso_true=torch.stack([dataset.isop, dataset.isoe], 1).numpy(),
                    iso_pred=torch.stack([out.isop, out.isoe], 1))


def test_validation_logs_the_evaluation_metrics_of_the_whole_set(tmp_path):
    """The module logs soundaq.models_zoo.metrics' own definitions, over the whole set (not batch means)."""
    import lightning as L

    L.seed_everything(0, verbose=False)
    module = SoundscapeModule("tiny", net=TinyNet())
    val = SyntheticSet(30, seed=5)
    logged = _validate(module, val, tmp_path)
    assert {f"val/{name}" for name in METRICS} | {"val/loss"} == set(logged)
    data = _eval_data(module, val)
    ref = score(data)
    for name in METRICS:
        # float32 streaming vs float64 table: Pearson r differs in the 6th digit
        assert logged[f"val/{name}"] == pytest.approx(ref[name], rel=1e-4, abs=1e-5, nan_ok=True), name
    # Independent spot checks (sklearn), so the test does not rest on soundaq.models_zoo.metrics alone.
    truth, probs = val.events.numpy(), data.event_prob
    per_clip = [sklearn_metrics.roc_auc_score(truth[i], probs[i]) for i in range(len(truth))
                if 0 < truth[i].sum() < 15]
    assert logged["val/event_auc"] == pytest.approx(np.mean(per_clip), abs=1e-6)
    assert logged["val/isop_mse"] == pytest.approx(
        sklearn_metrics.mean_squared_error(val.isop.numpy(), data.iso_pred[:, 0]), rel=1e-5)
    assert logged["val/aq_mse_mean"] == pytest.approx(
        sklearn_metrics.mean_squared_error(val.qualities.numpy(), data.quality_pred), rel=1e-5)
    if len(set(val.scene.tolist())) == len(SCENES):  # every scene present: paper accuracy = balanced accuracy
        assert logged["val/scene_acc"] == pytest.approx(
            sklearn_metrics.balanced_accuracy_score(val.scene.numpy(), data.scene_pred), abs=1e-6)
    assert MONITOR in logged


def test_each_epoch_scores_only_its_own_clips(tmp_path):
    """Metric states are reset between epochs: validating on A then on B gives B's scores."""
    import lightning as L

    L.seed_everything(0, verbose=False)
    module = SoundscapeModule("tiny", net=TinyNet())
    _validate(module, SyntheticSet(20, seed=6), tmp_path)
    second = _validate(module, SyntheticSet(12, seed=7), tmp_path)
    ref = score(_eval_data(module, SyntheticSet(12, seed=7)))
    for name in ("isop_mse", "event_auc", "aq_mse_mean", "scene_acc_plain", "pearson_calm"):
        assert second[f"val/{name}"] == pytest.approx(ref[name], rel=1e-4, abs=1e-5), name


def test_training_lowers_the_loss_and_checkpoints_carry_stats_and_provenance(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    L.seed_everything(0, verbose=False)
    stats = {"log_mel": {"mean": np.zeros(64), "std": np.ones(64)}, "loudness": {"mean": [0.0], "std": [1.0]}}
    module = SoundscapeModule("tiny", lr=1e-2, norm_stats=stats, provenance={"data": "synthetic", "seed": 0},
                              net=TinyNet())
    train, val = SyntheticSet(64, seed=1), SyntheticSet(16, seed=2)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", monitor=MONITOR, mode="min", save_last=True)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[ckpt])
    first = trainer.validate(module, DataLoader(train, batch_size=8), verbose=False)[0]["val/loss"]
    trainer.fit(module, DataLoader(train, batch_size=8), DataLoader(val, batch_size=8))
    trainer2 = L.Trainer(max_epochs=15, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer2.fit(module, DataLoader(train, batch_size=8), DataLoader(val, batch_size=8))
    last = trainer2.validate(module, DataLoader(train, batch_size=8), verbose=False)[0]["val/loss"]
    assert last < 0.5 * first  # measured on the training clips: the module can fit them

    path = tmp_path / "ck" / "last.ckpt"
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain types only
    assert raw["soundaq"]["model"] == "tiny"
    assert raw["soundaq"]["norm_stats"]["log_mel"]["std"] == [1.0] * 64
    assert raw["soundaq"]["provenance"] == {"data": "synthetic", "seed": 0}
    assert raw["hyper_parameters"]["net_name"] == "tiny"
    assert all(k.startswith(("net.", "loss.")) for k in raw["state_dict"])
    back = SoundscapeModule.load_from_checkpoint(path, net=TinyNet(), map_location="cpu")
    assert back.norm_stats["loudness"]["mean"] == [0.0]
    assert back.provenance["data"] == "synthetic"
    for k, v in raw["state_dict"].items():
        assert torch.equal(back.state_dict()[k], v), k


def test_checkpoint_without_soundaq_block_still_loads(tmp_path):
    """The import-original layout: state_dict with net.* keys and hyper_parameters {net_name}."""
    net = TinyNet()
    path = tmp_path / "imported.ckpt"
    torch.save({"state_dict": {"net." + k: v for k, v in net.state_dict().items()},
                "hyper_parameters": {"net_name": "tiny"},
                "soundaq": {"model": "tiny", "norm_stats": None, "provenance": {"source": "release"}}}, path)
    back = SoundscapeModule.load_from_checkpoint(path, net=TinyNet(), map_location="cpu")
    assert back.provenance == {"source": "release"}
    x = torch.randn(2, FRAMES, 64)
    back.eval()
    net.eval()
    assert torch.allclose(back(x).scene_logits, net(x).scene_logits)


def test_uncertainty_weighting_trains_its_sigmas(tmp_path):
    import lightning as L

    L.seed_everything(0, verbose=False)
    module = SoundscapeModule("tiny", uncertainty_weighting=True, net=TinyNet())
    before = module.loss.uncertainty.sigma.detach().clone()
    _fit(module, SyntheticSet(32, 1), SyntheticSet(8, 2), tmp_path, epochs=2)
    assert not torch.equal(before, module.loss.uncertainty.sigma.detach())
    assert module.count_parameters() == sum(p.numel() for p in TinyNet().parameters())


def test_predict_step_gives_probabilities_and_uses_loudness_only_when_asked():
    batch = _batch(4)
    module = SoundscapeModule("tiny", net=TinyNet()).eval()
    with torch.no_grad():
        pred = module.predict_step(batch, 0)
    assert pred["clip"] == [f"clip_{i:03d}" for i in range(4)]
    assert torch.allclose(pred["scene_probabilities"].sum(1), torch.ones(4))
    assert pred["event_probabilities"].min() >= 0 and pred["event_probabilities"].max() <= 1
    assert pred["qualities"].shape == (4, 8) and pred["isop"].shape == (4,)
    loud = SoundscapeModule("tiny", net=LoudTinyNet()).eval()
    with torch.no_grad():
        a = loud.predict_step(batch, 0)["isop"]
        b = loud.predict_step({**batch, "loudness": batch["loudness"] + 1}, 0)["isop"]
    assert torch.allclose(b - a, torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError, match="loudness"):
        loud.predict_step({**batch, "loudness": None}, 0)


def test_same_seed_same_weights(tmp_path):
    import lightning as L

    finals = []
    for _ in range(2):
        L.seed_everything(7, verbose=False)
        module = SoundscapeModule("tiny", net=TinyNet())
        _fit(module, SyntheticSet(24, 1), SyntheticSet(8, 2), tmp_path, epochs=2)
        finals.append(torch.cat([p.detach().flatten() for p in module.parameters()]))
    assert torch.equal(finals[0], finals[1])
