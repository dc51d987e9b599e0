"""The embedded synthetic set in ARAUS's component layout (soundaq.models_zoo.data.synthetic_araus)."""
from __future__ import annotations

import functools
import operator
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from soundaq.models_zoo.data import araus_components as ac
from soundaq.models_zoo.data import synthetic_araus as sa

#: One recording and masker per fold, five raters who rate the same two stimuli: 60 responses, 12 stimuli.
TINY = sa.LayoutSize(recordings=1, participants=5, stimuli=2, raters=5)
SMALL = sa.LayoutSize(recordings=2, participants=5, stimuli=2, raters=5)


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory, feature_cache, monkeypatch_module):
    """Made in a cache of its own, the stimuli's features in a feature cache the determinism test shares."""
    monkeypatch_module.setenv("SOUNDAQ_CACHE", str(tmp_path_factory.mktemp("a")))
    monkeypatch_module.setenv("SOUNDAQ_FEATURE_CACHE", str(feature_cache))
    return sa.prepare_araus_layout(None, TINY, seed=3, progress=False)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_folds_are_disjoint_in_recordings_and_maskers_and_ids_are_araus(tiny_set):
    tables = ac.read_tables(tiny_set.root)
    responses = tables.responses
    assert len(responses) == 6 * 5 * 2 and set(responses["fold_r"]) == set(range(6))
    by_fold = responses.groupby("fold_r")
    scapes = [set(g["soundscape"]) for _, g in by_fold]
    maskers = [set(g["masker"]) for _, g in by_fold]
    for i in range(6):
        for j in range(i + 1, 6):
            assert not scapes[i] & scapes[j] and not maskers[i] & maskers[j]
    ids = [ac.clip_id(r.participant, r.fold_r, r.stimulus_index) for r in responses.itertuples()]
    assert all(re.fullmatch(r"fold_[0-5]_participant_\d{5}_stimulus_\d{2}", c) for c in ids)
    assert len(set(ids)) == len(ids)
    labelled = functools.reduce(operator.iadd, ((tiny_set.labels_dir / f"{s}_set_audio_file_ids.txt").read_text().split()
                    for s in ("training", "validation", "test")), [])
    assert sorted(labelled) == sorted(ids)
    test_ids = (tiny_set.labels_dir / "test_set_audio_file_ids.txt").read_text().split()
    assert {c for c in ids if c.startswith("fold_0_")} <= set(test_ids)     # fold 0 is all test
    # ARAUS's calibration columns and component formats
    assert all(f"gain_{L}dB" in tables.maskers.columns and f"leq_at_gain_{L}dB" in tables.maskers.columns
               for L in range(46, 84))
    assert set(tables.soundscapes.columns) >= {"soundscape", "gain_s", "insitu_leq"}
    for name in tables.soundscapes.index:
        info = sf.info(str(tiny_set.root / "soundscapes" / name))
        assert (info.samplerate, info.frames, info.channels) == (44100, 1323000, 2)
    for name in tables.maskers.index:
        info = sf.info(str(tiny_set.root / "maskers" / name))
        assert (info.samplerate, info.frames, info.channels) == (44100, 1323000, 1)
    assert set(responses["smr"]) <= {-6, -3, 0, 3, 6}


def test_several_raters_per_stimulus_with_rater_noise(tiny_set):
    responses = ac.read_tables(tiny_set.root).responses
    quality = list(responses.columns[6:14])
    assert quality[0] == "pleasant"
    groups = responses.groupby(["fold_r", "soundscape", "masker", "smr"])
    assert (groups.size() == 5).all()                       # each stimulus rated by the 5 raters of its fold
    spread = groups[quality].std().to_numpy()
    assert np.nanmean(spread) > 0.3                         # raters disagree: bias and item noise
    assert responses[quality].isin([1, 2, 3, 4, 5]).all().all()


def test_the_components_source_serves_it_labelled_synthetic(tiny_set, feature_cache):
    from soundaq.models_zoo.data.sources import make_source

    source = make_source("araus", araus_dir=tiny_set.root, labels_dir=tiny_set.labels_dir)
    frame = pd.concat([source.labels(s) for s in source.splits()], ignore_index=True)
    assert len(frame) == 60 and not source.left_out
    assert source.synthetic and source.data_label().startswith("synthetic")
    assert not source.paper_split
    assert set(frame["scene"]) <= {"park", "public_square", "street_traffic"}
    assert tiny_set.manifest["synthetic"] is True and tiny_set.manifest["stimuli"] == 12
    overlap = ac.component_overlap(frame)
    assert overlap["test"]["shared_neither"] == 10        # fold 0's 10 responses share nothing with training
    cache = feature_cache
    before = sorted(cache.rglob("*.npz"))
    reader = source.reader()
    for clip in frame["clip"]:
        assert reader.load(clip)[0].shape == (3001, 64)
    assert sorted(cache.rglob("*.npz")) == before         # every stimulus' features were made by prepare


def test_same_seed_same_bytes_other_seed_other_audio(tiny_set, tmp_path, feature_cache, monkeypatch):
    monkeypatch.setenv("SOUNDAQ_CACHE", str(tmp_path / "b"))
    monkeypatch.setenv("SOUNDAQ_FEATURE_CACHE", str(feature_cache))    # stimuli's features found cached
    again = sa.prepare_araus_layout(None, TINY, seed=3, progress=False)
    assert again.root != tiny_set.root
    assert again.manifest["sha256"] == tiny_set.manifest["sha256"] == sa.set_digest(again.root)
    masker = next((again.root / "maskers").iterdir())
    damaged = bytearray(masker.read_bytes())
    damaged[5000:5010] = b"\x00" * 10
    masker.write_bytes(bytes(damaged))                                  # readable, but not what was made
    from soundaq.base.artifacts import RebuiltWarning

    with pytest.warns(RebuiltWarning, match="no longer match the digest"):
        rebuilt = sa.prepare_araus_layout(None, TINY, seed=3, progress=False)
    assert rebuilt.manifest["sha256"] == tiny_set.manifest["sha256"] == sa.set_digest(again.root)
    ppu = sa._ppu()
    (tmp_path / "c" / "soundscapes").mkdir(parents=True)
    other = sa.make_soundscape(tmp_path / "c", 4, 0, 0, TINY, ppu)
    assert (tmp_path / "c" / "soundscapes" / other["soundscape"]).read_bytes() != \
        (tiny_set.root / "soundscapes" / other["soundscape"]).read_bytes()


@pytest.mark.slow
def test_araus_protocol_runs_five_rotations_on_it(tiny_set, tmp_path):
    """The protocol's machinery on the generated set with a stand-in trainer (30 s unloaded: five rotations'
    data modules over the mixed stimuli)."""
    from test_leaderboard_folds import _fake

    from soundaq.benchmark import leaderboard as lb

    calls: list = []
    s = lb.Settings(out=tmp_path / "run", data="araus", araus=tiny_set.root, labels=tiny_set.labels_dir,
                    models=["Baseline_CNN"], n_resamples=20, progress=False, correlate=False, protocol="araus")
    lb.run_leaderboard(s, model_runner=_fake(calls))
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5]
    assert all(c[2] == ["fold_0"] for c in calls)
    table = pd.read_csv(tmp_path / "run" / "leaderboard.csv")
    assert sorted(set(table.loc[table["kind"] == "rotation", "rotation"])) == [1, 2, 3, 4, 5]


def test_bad_sizes_are_refused_in_one_line(tmp_path):
    with pytest.raises(sa.SyntheticArausError, match="at least 5"):
        sa.prepare_araus_layout(tmp_path, sa.LayoutSize(participants=3), progress=False)


@pytest.mark.slow
def test_both_protocols_train_on_a_small_set(tmp_path):
    """Real training (tiny budget) through the CLI: published and araus protocols on a 2-recording set."""
    from soundaq.benchmark.cli import main

    es = sa.prepare_araus_layout(tmp_path / "cache", SMALL, seed=0, progress=False)
    common = ["leaderboard", "--data", "araus", "--araus", str(es.root), "--labels", str(es.labels_dir),
              "--models", "Baseline_CNN", "--schedule", "embedded", "--budget-clips", "16", "--no-correlation",
              "--cache-dir", str(tmp_path / "cache")]
    assert main([*common, "--out", str(tmp_path / "pub")]) == 0
    assert main([*common, "--protocol", "araus", "--out", str(tmp_path / "ar")]) == 0
    table = pd.read_csv(tmp_path / "ar" / "leaderboard.csv")
    assert sorted(set(table.loc[table["kind"] == "rotation", "rotation"])) == [1, 2, 3, 4, 5]
    assert "synthetic" in (tmp_path / "pub" / "leaderboard.md").read_text()
