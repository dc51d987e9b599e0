"""The shared data module: batches, normalisation, sources (embedded, ARAUS features, ARAUS audio), bad items."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from soundaq.base.vocab import EVENT_COLUMNS, QUALITIES, SCENES
from soundaq.benchmark.cli import main
from soundaq.models_zoo.data import synthetic as S
from soundaq.models_zoo.data.clip_dataset import SkippedClipWarning, collate_clips
from soundaq.models_zoo.data.datamodule import DataError, SoundscapeDataModule
from soundaq.models_zoo.data.normalisation import NormStatsError, RunningMoments
from soundaq.models_zoo.outputs import BATCH_KEYS


def _features_copy(es, dest):
    """An ARAUS-style copy of a prepared set: labels/ and features/ (what a user would point us at)."""
    shutil.copytree(es.labels_dir, dest / "labels")
    shutil.copytree(es.features_dir, dest / "features")
    return dest / "labels", dest / "features"


def _stack_raw(es, split):
    labels = SoundscapeDataModule("araus", labels_dir=es.labels_dir, features_dir=es.features_dir).labels(split)
    mel = np.stack([np.load(es.features_dir / S.FEATURE_SUBDIRS[0] / f"{c}.npy") for c in labels["clip"]])
    loud = np.stack([np.load(es.features_dir / S.FEATURE_SUBDIRS[1] / f"{c}.npy") for c in labels["clip"]])
    return labels, mel, loud


def test_running_moments_match_numpy():
    rng = np.random.default_rng(0)
    blocks = [rng.normal(3.0, 2.0, size=(rng.integers(1, 50), 4)) for _ in range(20)]
    rm = RunningMoments(4)
    for b in blocks:
        rm.update(b)
    whole = np.concatenate(blocks)
    assert np.allclose(rm.mean, whole.mean(axis=0), rtol=1e-12)
    assert np.allclose(rm.std, whole.std(axis=0), rtol=1e-12)


def test_embedded_batches(embedded_set, soundaq_cache):
    dm = SoundscapeDataModule(cache_dir=soundaq_cache, batch_size=8)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == set(BATCH_KEYS)
    assert batch["mel"].shape == (8, 3001, 64) and batch["mel"].dtype == torch.float32
    assert batch["loudness"].shape == (8, 15000, 1) and batch["loudness"].dtype == torch.float32
    assert batch["scene"].dtype == torch.int64 and batch["scene"].shape == (8,)
    assert batch["events"].shape == (8, 15) and batch["events"].dtype == torch.float32
    assert batch["qualities"].shape == (8, 8) and batch["qualities"].dtype == torch.float32
    assert batch["isop"].shape == (8,) and batch["isoe"].dtype == torch.float32
    assert isinstance(batch["clip"], list) and len(batch["clip"]) == 8
    assert dm.split_sizes == {"training": 240, "validation": 60, "test": 60}
    info = dm.describe()
    assert info["synthetic"] is True and "synthetic" in info["data"] and info["seed"] == 0
    assert info["split_sizes"] == dm.split_sizes and "embedded" in info["norm_stats_origin"]
    assert info["embedded"]["key"] == embedded_set.root.name and dm.data_label() == embedded_set.manifest["data"]
    # a training run's seed reshuffles, it does not make another data set
    other = SoundscapeDataModule(cache_dir=soundaq_cache, seed=5)
    assert other.describe()["embedded"]["key"] == embedded_set.root.name and other.describe()["seed"] == 5
    assert other.data_label() == dm.data_label() and "seed 0" in dm.data_label()
    assert other.labels("test").equals(dm.labels("test")) and len(other.labels("test")) == 60
    # labels of a batch are those of the tidy table
    table = dm.labels("training").set_index("clip")
    for i, clip in enumerate(batch["clip"]):
        row = table.loc[clip]
        assert SCENES[int(batch["scene"][i])] == row["scene"]
        assert np.allclose(batch["events"][i].numpy(), row[list(EVENT_COLUMNS)].to_numpy(dtype=float))
        assert np.allclose(batch["qualities"][i].numpy(), row[list(QUALITIES)].to_numpy(dtype=float), atol=1e-6)
        assert float(batch["isop"][i]) == pytest.approx(row["isop"], abs=1e-6)


def test_feature_folder_source_stats_and_normalisation(small_embedded_set, tmp_path):
    """ARAUS feature-folder layout; statistics streamed over training equal numpy over the stacked split."""
    labels_dir, features_dir = _features_copy(small_embedded_set, tmp_path)
    dm = SoundscapeDataModule("araus", labels_dir=labels_dir, features_dir=features_dir, cache_dir=tmp_path / "c",
                              batch_size=4)
    dm.setup("fit")
    _, mel, loud = _stack_raw(small_embedded_set, "training")
    mel, loud = mel.astype(np.float64), loud.astype(np.float64)
    assert np.allclose(dm.norm_stats["log_mel"]["mean"], mel.reshape(-1, 64).mean(axis=0), rtol=1e-6, atol=1e-6)
    assert np.allclose(dm.norm_stats["log_mel"]["std"], mel.reshape(-1, 64).std(axis=0), rtol=1e-5)
    assert dm.norm_stats["loudness"]["mean"][0] == pytest.approx(float(loud.mean()), rel=1e-6)
    assert dm.norm_stats["loudness"]["std"][0] == pytest.approx(float(loud.std()), rel=1e-5)
    assert "computed on the training split (6 clips)" in dm.norm_stats_origin
    assert dm.describe()["synthetic"] is False
    # the training split, normalised with its own statistics, has mean 0 and std 1 per bin
    mels = torch.cat([b["mel"] for b in dm.train_dataloader()]).reshape(-1, 64)
    assert torch.allclose(mels.mean(0), torch.zeros(64), atol=1e-3)
    assert torch.allclose(mels.std(0), torch.ones(64), atol=1e-3)
    # statistics are cached: a second module finds them without reading features
    dm2 = SoundscapeDataModule("araus", labels_dir=labels_dir, features_dir=features_dir, cache_dir=tmp_path / "c")
    dm2.setup("test")
    assert "cached" in dm2.norm_stats_origin and dm2.norm_stats == dm.norm_stats
    assert set(dm.norm_stats) == {"log_mel", "loudness"}  # the contract's shape, no provenance keys
    # replacing a training feature file in place invalidates that cache
    victim = features_dir / S.FEATURE_SUBDIRS[0] / f"{dm.labels('training')['clip'][0]}.npy"
    np.save(victim, np.load(victim) + 1.0)
    dm3 = SoundscapeDataModule("araus", labels_dir=labels_dir, features_dir=features_dir, cache_dir=tmp_path / "c")
    dm3.setup("test")
    assert dm3.norm_stats["log_mel"]["mean"] != dm.norm_stats["log_mel"]["mean"]


def test_supplied_original_stats(small_embedded_set, sample_clip_dir, tmp_path):
    path = sample_clip_dir / "original_normalisation_stats.json"
    original = json.loads(path.read_text())
    es = small_embedded_set
    dm = SoundscapeDataModule("araus", labels_dir=es.labels_dir, features_dir=es.features_dir,
                              norm_stats=path, batch_size=3, cache_dir=tmp_path)
    dm.setup("test")
    assert dm.norm_stats_origin == f"file {path}"
    batch = next(iter(dm.test_dataloader()))
    raw = np.load(es.features_dir / S.FEATURE_SUBDIRS[0] / f"{batch['clip'][0]}.npy")
    expected = (raw - np.array(original["log_mel"]["mean"])) / np.array(original["log_mel"]["std"])
    assert np.allclose(batch["mel"][0].numpy(), expected, atol=1e-4)
    raw_l = np.load(es.features_dir / S.FEATURE_SUBDIRS[1] / f"{batch['clip'][0]}.npy")
    expected_l = (raw_l - original["loudness"]["mean"][0]) / original["loudness"]["std"][0]
    assert np.allclose(batch["loudness"][0].numpy(), expected_l, atol=1e-4)
    # a dict works as well, and only the test split needed reading
    dm2 = SoundscapeDataModule("araus", labels_dir=es.labels_dir, features_dir=es.features_dir, norm_stats=original)
    dm2.setup("test")
    assert dm2.norm_stats_origin == "supplied (dict)"


def test_bad_norm_stats_file(small_embedded_set, tmp_path):
    bad = tmp_path / "stats.json"
    bad.write_text(json.dumps({"log_mel": {"mean": [0.0] * 63, "std": [1.0] * 64}, "loudness": {"mean": [0], "std": [1]}}))
    dm = SoundscapeDataModule("araus", labels_dir=small_embedded_set.labels_dir,
                              features_dir=small_embedded_set.features_dir, norm_stats=bad)
    with pytest.raises(NormStatsError, match=r"log_mel\.mean has 63 values, expected 64"):
        dm.setup("test")
    bad.write_text("{not json")
    with pytest.raises(NormStatsError, match="not valid JSON"):
        SoundscapeDataModule("araus", labels_dir=small_embedded_set.labels_dir,
                             features_dir=small_embedded_set.features_dir, norm_stats=bad).setup("test")


def test_bad_items_are_skipped_and_batches_go_on(small_embedded_set, tmp_path):
    labels_dir, features_dir = _features_copy(small_embedded_set, tmp_path)
    dm = SoundscapeDataModule("araus", labels_dir=labels_dir, features_dir=features_dir, batch_size=2,
                              norm_stats=small_embedded_set.norm_stats_path)
    dm.setup("fit")
    clips = dm.labels("training")["clip"].tolist()
    truncated = features_dir / S.FEATURE_SUBDIRS[0] / f"{clips[1]}.npy"
    truncated.write_bytes(truncated.read_bytes()[:4096])  # lost after setup, e.g. a disk problem
    wrong = features_dir / S.FEATURE_SUBDIRS[1] / f"{clips[2]}.npy"
    np.save(wrong, np.zeros((100, 1), dtype=np.float32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = [c for b in dm._loader("training", shuffle=False) for c in b["clip"]]
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedClipWarning)]
    assert seen == [c for c in clips if c not in (clips[1], clips[2])]
    assert len(messages) == 2 and clips[1] in messages[0] and clips[2] in messages[1]
    assert "expected (15000, 1)" in messages[1]


def test_missing_features_left_out_at_setup(small_embedded_set, tmp_path):
    labels_dir, features_dir = _features_copy(small_embedded_set, tmp_path)
    test_clips = SoundscapeDataModule("araus", labels_dir=labels_dir, features_dir=features_dir).labels("test")["clip"]
    (features_dir / S.FEATURE_SUBDIRS[1] / f"{test_clips[0]}.npy").unlink()
    dm = SoundscapeDataModule("araus", labels_dir=labels_dir, features_dir=features_dir,
                              norm_stats=small_embedded_set.norm_stats_path)
    with pytest.warns(SkippedClipWarning, match="1 of 3 test clips"):
        dm.setup("test")
    assert dm.split_sizes["test"] == 2 and dm.describe()["left_out"] == {"test": 1}


def test_all_bad_batch_is_a_one_line_error():
    with pytest.raises(DataError, match="all 2 clips of a batch were unreadable"):
        collate_clips([None, None])


def test_source_errors(small_embedded_set, tmp_path):
    es = small_embedded_set
    with pytest.raises(DataError, match="needs audio_dir"):
        SoundscapeDataModule("araus", labels_dir=es.labels_dir)
    with pytest.raises(DataError, match="not both"):
        SoundscapeDataModule("araus", labels_dir=es.labels_dir, audio_dir=es.audio_dir, features_dir=es.features_dir)
    with pytest.raises(DataError, match="label folder not found"):
        SoundscapeDataModule("araus", labels_dir=tmp_path / "nope", features_dir=es.features_dir)
    (tmp_path / "flat").mkdir()
    dm = SoundscapeDataModule("araus", labels_dir=es.labels_dir, features_dir=tmp_path / "flat")
    with pytest.raises(DataError, match="has no Feature_log_mel or Feature_loudness_ISO532_1 sub-folder"):
        dm.setup("test")
    with pytest.raises(DataError, match="unknown data source"):
        SoundscapeDataModule("esc50")
    with pytest.raises(DataError, match="go with source='araus'"):
        SoundscapeDataModule("embedded", labels_dir=es.labels_dir)


def test_prepare_cli_araus_errors_are_one_line(small_embedded_set, tmp_path, capsys):
    code = main(["data", "prepare", "--labels", str(small_embedded_set.labels_dir), "--features", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Feature_log_mel" in err


def test_prepare_cli_araus_features(small_embedded_set, tmp_path, capsys):
    code = main(["data", "prepare", "--labels", str(small_embedded_set.labels_dir), "--features",
                 str(small_embedded_set.features_dir), "--cache-dir", str(tmp_path), "--no-progress", "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["split_sizes"] == {"training": 6, "validation": 3, "test": 3}
    assert info["synthetic"] is False and "computed on the training split" in info["norm_stats_origin"]


def test_shuffle_is_seeded(small_embedded_set):
    def order(seed):
        dm = SoundscapeDataModule("araus", labels_dir=small_embedded_set.labels_dir, seed=seed, batch_size=6,
                                  features_dir=small_embedded_set.features_dir,
                                  norm_stats=small_embedded_set.norm_stats_path)
        dm.setup("fit")
        return next(iter(dm.train_dataloader()))["clip"]

    assert order(0) == order(0)
    assert order(0) != order(1) or order(0) != order(2)


def test_worker_processes(small_embedded_set):
    dm = SoundscapeDataModule("araus", labels_dir=small_embedded_set.labels_dir, num_workers=1, batch_size=3,
                              features_dir=small_embedded_set.features_dir, norm_stats=small_embedded_set.norm_stats_path)
    dm.setup("test")
    batches = list(dm.test_dataloader())
    assert sum(len(b["clip"]) for b in batches) == 3


def test_audio_folder_source_matches_stored_features(small_embedded_set, tmp_path):
    """ARAUS audio layout: features from the pipeline's cache equal those stored by the generator."""
    es = small_embedded_set
    dm = SoundscapeDataModule("araus", labels_dir=es.labels_dir, audio_dir=es.audio_dir, cache_dir=tmp_path,
                              calibration=S.calibration(), norm_stats=es.norm_stats_path, batch_size=3)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    ref = SoundscapeDataModule("araus", labels_dir=es.labels_dir, features_dir=es.features_dir,
                               norm_stats=es.norm_stats_path, batch_size=3)
    ref.setup("test")
    want = next(iter(ref.test_dataloader()))
    assert batch["clip"] == want["clip"]
    # 24-bit FLAC quantisation is far below the signal: normalised features agree closely
    assert torch.allclose(batch["mel"], want["mel"], atol=2e-2)
    assert torch.allclose(batch["loudness"], want["loudness"], atol=2e-2)
    assert any((tmp_path / "features").rglob("*.npz"))  # the cache was filled
    assert "audio:" in dm._source().identity()


def test_lightning_fit_with_the_module(small_embedded_set, tmp_path):
    """The data module drives a Lightning Trainer (prepare_data, setup, loaders) end to end."""
    import lightning as L

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(65, 8)

        def training_step(self, batch, _):
            x = torch.cat([batch["mel"].mean(1), batch["loudness"].mean(1)], dim=1)
            return torch.nn.functional.mse_loss(self.head(x), batch["qualities"])

        def validation_step(self, batch, _):
            self.log("val_loss", self.training_step(batch, 0), batch_size=len(batch["clip"]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    dm = SoundscapeDataModule("araus", labels_dir=small_embedded_set.labels_dir,
                              features_dir=small_embedded_set.features_dir, batch_size=4, cache_dir=tmp_path)
    trainer = L.Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(), datamodule=dm)
    assert trainer.state.finished


def test_memory_benchmark_split_is_served_lazily(tmp_path):
    """The perf script's synthetic ARAUS-layout split is valid input, and items are memory-mapped reads."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmark" / "perf" / "datamodule_memory.py"
    spec = importlib.util.spec_from_file_location("datamodule_memory", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    labels, features = bench.make_split(tmp_path, 5)
    res = bench.stream(labels, features, batch_size=2, num_workers=0)
    assert res["clips"] == 5 and res["batches"] == 3 and res["split_sizes"] == {"test": 5}
    assert res["peak_rss_bytes"] >= res["rss_after_import_bytes"] > 0
    dm = SoundscapeDataModule("araus", labels_dir=labels, features_dir=features,
                              norm_stats={"log_mel": {"mean": [0.0] * 64, "std": [1.0] * 64},
                                          "loudness": {"mean": [0.0], "std": [1.0]}})
    dm.setup("test")
    mel, _ = dm.dataset("test").raw(0)
    assert isinstance(mel, np.memmap)  # read lazily from disk, not loaded whole
