"""The embedded synthetic dataset: determinism, levels and calibration, label hierarchy, AQ rule, resume."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from soundaq.base.vocab import EVENT_COLUMNS, EVENT_IMPLIES, EVENTS, QUALITIES, SCENES, iso_coordinates
from soundaq.benchmark.cli import main
from soundaq.models_zoo.data import synthetic as S
from soundaq.models_zoo.data import synthetic_mix as M
from soundaq.models_zoo.data import synthetic_rule as R
from soundaq.models_zoo.data import synthetic_sounds as A
from soundaq.models_zoo.data.labels import read_labels, read_split


@pytest.fixture(scope="module")
def mixes_360():
    return [M.draw_mix(0, i) for i in range(S.DEFAULT_CLIPS)]


def test_mix_draws_are_deterministic_and_seeded():
    assert M.draw_mix(0, 17) == M.draw_mix(0, 17)
    others = [M.draw_mix(1, i) for i in range(30)]
    assert [m.levels for m in others] != [M.draw_mix(0, i).levels for i in range(30)]


def test_render_is_bit_identical_and_calibrated():
    for index in (0, 1, 2, 5):
        mix = M.draw_mix(3, index)
        a, b = A.render(mix), A.render(mix)
        assert a.dtype == np.float32 and a.shape == (M.N_SAMPLES,)
        assert np.array_equal(a, b)
        assert float(np.max(np.abs(a))) < 1.0
        measured = A.level_db_spl(a)
        # the design level is the energetic sum of the sources; silence gaps can only lower it
        assert measured <= mix.mix_db + 0.5
        if not mix.gaps:
            assert measured == pytest.approx(mix.mix_db, abs=0.5)


def test_splits_scenes_and_levels(mixes_360):
    counts = {}
    for m in mixes_360:
        counts[(m.scene, m.split)] = counts.get((m.scene, m.split), 0) + 1
        lo, hi = M.MIX_RANGE_DB
        assert lo - 1e-6 <= m.mix_db <= hi + 1e-6
        assert m.levels
    assert counts == {(s, sp): n for s in SCENES for sp, n in (("training", 80), ("validation", 20), ("test", 20))}
    assert len({m.clip for m in mixes_360}) == 360


def test_label_hierarchy_holds_as_in_the_real_labels(mixes_360, araus_labels):
    events = np.array([[e in m.events() for e in EVENTS] for m in mixes_360])
    real = araus_labels[list(EVENT_COLUMNS)].to_numpy().astype(bool)
    for child, parents in EVENT_IMPLIES.items():
        c = EVENTS.index(child)
        for parent in parents:
            p = EVENTS.index(parent)
            assert not np.any(real[:, c] & ~real[:, p]), "the reference labels themselves keep this implication"
            assert not np.any(events[:, c] & ~events[:, p]), f"{child} without {parent}"
    # Speech and Human sounds always together, as over all 25,248 real clips
    s, h = EVENTS.index("Speech"), EVENTS.index("Human sounds")
    assert np.array_equal(real[:, s], real[:, h])
    assert np.array_equal(events[:, s], events[:, h])
    # every event occurs, none in every clip
    rate = events.mean(axis=0)
    assert np.all(rate > 0.02) and np.all(rate < 0.95), dict(zip(EVENTS, rate.round(2)))


def test_calibration_gives_one_sone_at_40_db():
    """Independent anchor of the whole chain: a 1 kHz tone at 40 dB SPL is 1 sone by definition."""
    from soundaq.models_zoo.features import clip_features

    t = np.arange(M.N_SAMPLES) / M.SAMPLE_RATE
    rms_units = A.P_REF * 10 ** (40 / 20) / A.PASCAL_PER_UNIT
    tone = (math.sqrt(2) * rms_units * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    assert A.level_db_spl(tone) == pytest.approx(40.0, abs=0.01)
    _, loud = clip_features(tone, M.SAMPLE_RATE, S.calibration())
    steady = float(np.median(loud[0, 2500:, 0]))
    assert steady == pytest.approx(1.0, rel=0.06)


def test_aq_rule_shape():
    quiet_birds = R.aq_expectation({"birdsong": 60.0, "water": 55.0}, False, 6.0)
    loud_traffic = R.aq_expectation({"traffic": 75.0, "vehicle": 74.0, "noise": 62.0}, False, 50.0)
    busy_square = R.aq_expectation({"people": 68.0, "music": 64.0}, False, 20.0)
    assert quiet_birds["pleasant"] > loud_traffic["pleasant"]
    assert loud_traffic["annoying"] > quiet_birds["annoying"]
    assert busy_square["eventful"] > quiet_birds["eventful"]
    assert all(1.0 <= v <= 5.0 for d in (quiet_birds, loud_traffic, busy_square) for v in d.values())
    # the ISO coordinates of the rule's ratings point the way of its latent P and E
    p, e = R.latent_pe({"birdsong": 60.0, "water": 55.0}, False, 6.0)
    isop, isoe = iso_coordinates(*(quiet_birds[q] for q in QUALITIES))
    assert np.sign(isop) == np.sign(p) and np.sign(isoe) == np.sign(e)


def test_small_set_on_disk(small_embedded_set):
    es = small_embedded_set
    m = es.manifest
    assert m["synthetic"] is True and "synthetic" in m["data"] and m["complete"] is True
    assert m["split_sizes"] == {"training": 6, "validation": 3, "test": 3}
    labels = read_labels(es.labels_dir, "all")  # the strict ARAUS reader accepts the generated files
    assert len(labels) == 12 and set(labels["scene"]) == set(SCENES)
    mixes = es.mixes()
    assert (mixes["data"] == "synthetic").all()
    for _, row in labels.iterrows():
        assert (es.features_dir / S.FEATURE_SUBDIRS[0] / f"{row['clip']}.npy").is_file()
        assert (es.audio_dir / f"{row['clip']}.flac").is_file()
        ratings = row[list(QUALITIES)].to_numpy(dtype=float)
        assert np.allclose(ratings * R.RATERS, np.rint(ratings * R.RATERS))  # means of 5 integer ratings
    stats = json.loads(es.norm_stats_path.read_text())
    assert len(stats["log_mel"]["mean"]) == 64 and stats["clips"] == 6


def test_labels_follow_rule_and_measured_loudness(small_embedded_set):
    es = small_embedded_set
    mixes = es.mixes().set_index("clip")
    for clip in mixes.index[:4]:
        row = mixes.loc[clip]
        loud = np.load(es.features_dir / S.FEATURE_SUBDIRS[1] / f"{clip}.npy")
        assert row["n5"] == pytest.approx(np.percentile(loud, 95), rel=1e-5)
        mix = M.draw_mix(7, int(clip.split("_")[1]))
        expected = R.aq_expectation(mix.levels, mix.silence, float(np.percentile(loud, 95)))
        for q in QUALITIES:
            assert row[f"rule_{q}"] == pytest.approx(expected[q], abs=1e-5)


def test_flac_audio_reproduces_the_render(small_embedded_set):
    import soundfile as sf

    mix = M.draw_mix(7, 3)
    audio, rate = sf.read(small_embedded_set.audio_dir / f"{mix.clip}.flac", dtype="float32")
    assert rate == M.SAMPLE_RATE
    assert np.max(np.abs(audio - A.render(mix))) < 2 ** -22


def test_resume_rebuilds_only_missing_or_truncated_clips(small_embedded_set, tmp_path):
    es = small_embedded_set
    dest = tmp_path / "embedded" / es.root.name
    shutil.copytree(es.root, dest, ignore=shutil.ignore_patterns("audio"))
    (dest / "manifest.json").unlink()
    mel_dir = dest / "features" / S.FEATURE_SUBDIRS[0]
    (mel_dir / "synthetic_0004.npy").unlink()
    truncated = mel_dir / "synthetic_0009.npy"
    truncated.write_bytes(truncated.read_bytes()[:5000])
    again = S.prepare_embedded(tmp_path, n_clips=S.MIN_CLIPS, seed=7, workers=1, progress=False)
    assert again.root == dest
    assert again.manifest["generated_clips"] == 2
    for name in ("synthetic_0004.npy", "synthetic_0009.npy"):
        assert np.array_equal(np.load(mel_dir / name), np.load(es.features_dir / S.FEATURE_SUBDIRS[0] / name))
    for split in ("training", "test"):
        a, b = read_split(es.labels_dir, split), read_split(dest / "labels", split)
        assert a.equals(b)


def test_constant_predictor_is_clearly_worse_than_the_rule(embedded_set):
    """On the test split, the noise-free rule beats the training-mean predictor by a wide margin."""
    mixes = embedded_set.mixes()
    test = read_split(embedded_set.labels_dir, "test").set_index("clip")
    train = read_split(embedded_set.labels_dir, "training")
    rule = mixes.set_index("clip").loc[test.index]
    mse_rule, mse_const = [], []
    for q in QUALITIES:
        truth = test[q].to_numpy()
        mse_rule.append(np.mean((rule[f"rule_{q}"].to_numpy() - truth) ** 2))
        mse_const.append(np.mean((train[q].mean() - truth) ** 2))
    mse_rule, mse_const = np.array(mse_rule), np.array(mse_const)
    assert np.all(mse_rule < 0.6 * mse_const), (mse_rule.round(3), mse_const.round(3))
    assert mse_rule.mean() < 0.4 * mse_const.mean()
    # and the ratings have a spread like the real ones (std around 1 on the 1-5 scale)
    stds = train[list(QUALITIES)].std()
    assert (stds > 0.6).all() and (stds < 1.6).all()


def test_scenes_differ_in_affect(embedded_set):
    labels = read_labels(embedded_set.labels_dir, "all")
    by_scene = labels.groupby("scene")["isop"].mean()
    assert by_scene["park"] > by_scene["street_traffic"] + 0.1


def test_prepare_cli_reuses_a_complete_set(embedded_set, soundaq_cache, capsys):
    code = main(["data", "prepare", "--embedded", "--cache-dir", str(soundaq_cache), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "synthetic" in out and "training 240, validation 60, test 60" in out and str(embedded_set.root) in out


def test_prepare_cli_rejects_too_few_clips(tmp_path, capsys):
    code = main(["data", "prepare", "--embedded", "--clips", "3", "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "at least 12 clips" in err
