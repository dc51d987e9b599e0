"""Bootstrap CIs and the paired test: the vectorised resamples equal explicit resampling (checked with
sklearn), the CIs equal scipy.stats.bootstrap on the same draws, and the paired test behaves."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the test reference (pip install -e .[test])")

from test_metrics import make_data, reference_scores, replace, to_table  # noqa: E402

from soundaq.base.vocab import QUALITIES  # noqa: E402
from soundaq.evaluation.bootstrap import (  # noqa: E402
    bootstrap_ci,
    bootstrap_distribution,
    compare_to_leader,
    counts_from_indices,
    paired_bootstrap,
    resample_indices,
)
from soundaq.models_zoo.eval_data import EvalData, MetricInputError  # noqa: E402
from soundaq.models_zoo.metrics import HEADLINE, METRICS  # noqa: E402


def test_counts_equal_per_row_bincount():
    idx = np.random.default_rng(0).integers(0, 7, size=(5, 7))
    counts = counts_from_indices(idx, 7)
    for row, c in zip(idx, counts):
        assert np.array_equal(np.bincount(row, minlength=7), c)
    assert counts.sum(axis=1).tolist() == [7] * 5


def test_resamples_do_not_depend_on_block_size():
    whole = np.concatenate(list(resample_indices(50, 37, seed=3, block=37)))
    pieces = np.concatenate(list(resample_indices(50, 37, seed=3, block=4)))
    assert whole.shape == (37, 50) and np.array_equal(whole, pieces)


@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_resamples_equal_explicit_resampling_scored_by_sklearn(ties):
    d = make_data(20, n=120, ties=ties)
    events = d.event_true.copy()
    events[:, 0] = (np.arange(120) == 0)  # a rare event: some resamples lose its only positive clip
    d = replace(d, event_true=events)
    index = next(resample_indices(d.n, 6, seed=5))
    assert 0 < (index == 0).any(axis=1).sum() < 6  # (with this seed both cases occur)
    W = counts_from_indices(index, d.n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        references = [reference_scores(d.take(row)) for row in index]
    for name, metric in METRICS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vectorised = metric.values(d, W)
        for b in range(len(index)):
            want = references[b][name]
            if math.isnan(want):
                assert math.isnan(vectorised[b]), (name, b)
            else:
                assert vectorised[b] == pytest.approx(want, rel=1e-9, abs=1e-12), (name, b)


def test_mse_ci_equals_scipy_bootstrap_on_the_same_draws():
    d = make_data(21, n=300)
    k = QUALITIES.index("calm")
    table = bootstrap_ci(d, ["mse_calm", "isop_mse", "scene_acc_plain"], n_resamples=1000, seed=7).set_index("metric")
    cases = {"mse_calm": (d.quality_pred[:, k] - d.quality_true[:, k]) ** 2,
             "isop_mse": (d.iso_pred[:, 0] - d.iso_true[:, 0]) ** 2,
             "scene_acc_plain": (d.scene_prob.argmax(1) == d.scene_true).astype(float)}
    for name, per_clip in cases.items():
        ref = stats.bootstrap((per_clip,), np.mean, n_resamples=1000, method="percentile", confidence_level=0.95,
                              rng=np.random.default_rng(7))
        row = table.loc[name]
        assert row["ci_low"] == pytest.approx(ref.confidence_interval.low, rel=1e-10)
        assert row["ci_high"] == pytest.approx(ref.confidence_interval.high, rel=1e-10)
        assert row["se"] == pytest.approx(ref.standard_error, rel=1e-10)
        assert row["ci_low"] <= row["estimate"] <= row["ci_high"]


def test_paired_difference_ci_equals_scipy_paired_bootstrap():
    a = make_data(22, n=250)
    b = replace(a, quality_pred=a.quality_pred + np.random.default_rng(1).normal(0, 0.7, a.quality_pred.shape))
    res = paired_bootstrap(a, b, ["aq_mse_mean"], n_resamples=500, seed=11).iloc[0]
    ea = ((a.quality_pred - a.quality_true) ** 2).mean(1)
    eb = ((b.quality_pred - b.quality_true) ** 2).mean(1)
    ref = stats.bootstrap((ea, eb), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), paired=True,
                          n_resamples=500, method="percentile", rng=np.random.default_rng(11))
    assert res["ci_low"] == pytest.approx(ref.confidence_interval.low, rel=1e-10)
    assert res["ci_high"] == pytest.approx(ref.confidence_interval.high, rel=1e-10)
    assert res["diff"] == pytest.approx(ea.mean() - eb.mean())
    assert res["better"] == "a" and res["significant"] and res["p_value"] < 0.01


def test_ci_table_shape_seed_and_headline_defaults():
    d = make_data(23, n=200)
    one = bootstrap_ci(d, n_resamples=200, seed=1)
    assert tuple(one["metric"]) == HEADLINE
    assert set(one["definition"]) <= {"paper", "standard"}
    assert (one["n_valid"] == 200).all() and (one["ci_low"] <= one["ci_high"]).all()
    pd.testing.assert_frame_equal(one, bootstrap_ci(d, n_resamples=200, seed=1))
    other = bootstrap_ci(d, n_resamples=200, seed=2)
    assert not np.allclose(one["ci_low"], other["ci_low"])
    from_table = bootstrap_ci(to_table(d), n_resamples=200, seed=1)
    pd.testing.assert_frame_equal(one, from_table)


def test_undefined_resamples_are_counted_not_averaged_in():
    d = make_data(24, n=40)
    events = np.zeros((40, 15))
    events[0, 3] = 1  # one positive clip only: many resamples miss it
    dist = bootstrap_distribution(replace(d, event_true=events), ["event_auc", "event_map"], n_resamples=300, seed=0)
    missing = np.isnan(dist["event_auc"])
    assert 0 < missing.sum() < 300
    assert np.array_equal(missing, np.isnan(dist["event_map"]))
    table = bootstrap_ci(replace(d, event_true=events), ["event_auc"], n_resamples=300, seed=0)
    assert table["n_valid"].iloc[0] == 300 - missing.sum()


def test_paired_test_identical_models_and_symmetry():
    a = make_data(25, n=150)
    same = paired_bootstrap(a, a, n_resamples=200, seed=0)
    assert (same["diff"] == 0).all() and (same["p_value"] == 1.0).all() and (same["better"] == "tie").all()
    assert (same["ci_low"] == 0).all() and (same["ci_high"] == 0).all()
    b = replace(a, scene_prob=np.random.default_rng(3).dirichlet([1, 1, 1], a.n),
                quality_pred=a.quality_pred + 0.3)
    ab = paired_bootstrap(a, b, n_resamples=300, seed=4, names=("A", "B")).set_index("metric")
    ba = paired_bootstrap(b, a, n_resamples=300, seed=4, names=("B", "A")).set_index("metric")
    assert np.allclose(ab["diff"], -ba["diff"])
    assert np.allclose(ab["ci_low"], -ba["ci_high"]) and np.allclose(ab["p_value"], ba["p_value"])
    assert (ab["better"] == ba["better"]).all()
    assert ab.loc["scene_acc", "better"] == "A" and ab.loc["scene_acc", "significant"]


def test_paired_test_aligns_clips_and_rejects_mismatches():
    a = make_data(26, n=100)
    b = replace(a, quality_pred=a.quality_pred + 0.2)
    base = paired_bootstrap(a, b, ["aq_mse_mean", "event_auc"], n_resamples=100, seed=0)
    shuffled = to_table(b).sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(base, paired_bootstrap(a, shuffled, ["aq_mse_mean", "event_auc"], n_resamples=100,
                                                         seed=0))
    with pytest.raises(MetricInputError, match="same clips"):
        paired_bootstrap(a, a.take(np.arange(99)), n_resamples=10)
    relabelled = replace(a, quality_true=a.quality_true + 0.5)
    with pytest.raises(MetricInputError, match="ground-truth columns differ"):
        paired_bootstrap(a, relabelled, n_resamples=10)


def test_p_value_is_calibrated_under_the_null():
    """Two models with exchangeable errors: about 5% of paired tests should reject at 0.05."""
    rejections = []
    for seed in range(40):
        a = make_data(100 + seed, n=150)
        rng = np.random.default_rng(seed)
        b = replace(a, quality_pred=a.quality_true + rng.normal(0, 1, a.quality_true.shape))
        rejections.append(paired_bootstrap(a, b, ["aq_mse_mean"], n_resamples=200, seed=seed)["p_value"].iloc[0] < 0.05)
    assert np.mean(rejections) <= 0.15


def test_compare_to_leader_equals_pairwise_tests():
    models = {"lead": make_data(27, n=120)}
    models["two"] = replace(models["lead"], quality_pred=models["lead"].quality_pred + 0.4)
    models["three"] = replace(models["lead"], event_prob=np.random.default_rng(0).random((120, 15)))
    rows = compare_to_leader(models, "lead", n_resamples=150, seed=9)
    assert list(rows["model_b"].unique()) == ["two", "three"] and (rows["model_a"] == "lead").all()
    for name in ("two", "three"):
        alone = paired_bootstrap(models["lead"], models[name], n_resamples=150, seed=9, names=("lead", name))
        pd.testing.assert_frame_equal(rows[rows["model_b"] == name].reset_index(drop=True), alone)
    with pytest.raises(MetricInputError, match="leader 'nobody'"):
        compare_to_leader(models, "nobody")
    assert compare_to_leader({"solo": models["lead"]}, "solo").empty


@pytest.mark.parametrize("kwargs, message", [({"n_resamples": 0}, "n_resamples"), ({"confidence": 1.5}, "confidence"),
                                             ({"metrics": ["auc"]}, "unknown metric")])
def test_bad_arguments_are_user_errors(kwargs, message):
    with pytest.raises(MetricInputError, match=message):
        bootstrap_ci(make_data(28, n=20), **kwargs)


def test_real_size_headline_bootstrap_runs(araus_labels):
    """1,000 resamples of the 3,576 ARAUS test clips, every headline metric (speed: benchmark/perf)."""
    test = araus_labels[araus_labels["split"] == "test"].reset_index(drop=True)
    n = len(test)
    rng = np.random.default_rng(0)
    from soundaq.base.vocab import EVENT_COLUMNS, SCENES

    truth = test["scene"].map({s: i for i, s in enumerate(SCENES)}).to_numpy()
    events = test[list(EVENT_COLUMNS)].to_numpy(float)
    qt = test[list(QUALITIES)].to_numpy(float)
    d = EvalData(scene_true=truth, scene_prob=rng.dirichlet([1, 1, 1], n) + np.eye(3)[truth] * 0.5,
                 event_true=events, event_prob=np.round(rng.random((n, 15)) * 0.6 + 0.4 * events, 2),
                 quality_true=qt, quality_pred=qt + rng.normal(0, 1, qt.shape),
                 iso_true=test[["isop", "isoe"]].to_numpy(float), iso_pred=rng.uniform(-1, 1, (n, 2)))
    table = bootstrap_ci(d, n_resamples=1000, seed=0).set_index("metric")
    assert (table["n_valid"] == 1000).all()
    assert (table["ci_low"] < table["estimate"]).all() and (table["estimate"] < table["ci_high"]).all()
    # CI widths of a mean over 3,576 clips: about 4 standard errors
    width = table.loc["aq_mse_mean", "ci_high"] - table.loc["aq_mse_mean", "ci_low"]
    per_clip = ((d.quality_pred - d.quality_true) ** 2).mean(1)
    assert width == pytest.approx(3.92 * per_clip.std() / np.sqrt(n), rel=0.15)


def test_paired_mean_diff_on_few_items_takes_the_exact_sign_flip_p():
    """4 captions whose scores differ by -1e-6 to -3e-6: the bootstrap called that p = 0.02 (a new-user
    trial of caption-metrics); of the 2^4 sign patterns, 2 reach the observed |mean|, so p = 2/16."""
    from soundaq.evaluation.bootstrap import SIGN_FLIP_BELOW, paired_mean_diff

    a = np.array([0.5, 0.4, 0.3, 0.6])
    res = paired_mean_diff(a - np.array([1e-6, 2e-6, 1e-6, 3e-6]), a, n_resamples=2000, seed=0)
    assert res["p_value"] == pytest.approx(2 / 16, abs=1e-12) and res["n"] == 4
    # 5 items, one of the other sign and the smallest: patterns with sum >= observed are 2 (+ mirror)
    res = paired_mean_diff(np.array([1.0, 2.0, 3.0, 4.0, -0.5]), np.zeros(5), n_resamples=2000, seed=0)
    assert res["p_value"] == pytest.approx(4 / 32, abs=1e-12)
    # from SIGN_FLIP_BELOW items on, the bootstrap rule is kept
    rng = np.random.default_rng(1)
    x = rng.normal(size=SIGN_FLIP_BELOW)
    res = paired_mean_diff(x + 0.01, x, n_resamples=999, seed=0)
    assert res["p_value"] == pytest.approx(2 / 1000)
