"""Jury statistics against independent references: scipy, pingouin, statsmodels, textbook examples."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats

from soundaq.human_study.jury import (
    bootstrap_interval,
    clip_scores,
    friedman_tests,
    group_seed,
    holm,
    paired_comparison,
    paired_tests,
    summarise,
    t_interval,
    wilcoxon_method,
)
from soundaq.human_study.reliability import krippendorff_alpha_interval, reliability_table

NAN = np.nan


def _pair(seed: int, n: int = 30, ties: bool = False):
    rng = np.random.default_rng(seed)
    a = rng.normal(3.5, 0.5, n)
    b = a + rng.normal(-0.2, 0.4, n)
    if ties:  # ratings on a 0.25 grid: tied and zero differences
        a, b = np.round(a * 4) / 4, np.round(b * 4) / 4
    return a, b


@pytest.mark.parametrize("seed, ties, method", [(0, False, "exact"), (1, True, "asymptotic"), (2, True, "asymptotic")])
def test_paired_comparison_matches_scipy_and_pingouin(seed, ties, method):
    a, b = _pair(seed, ties=ties)
    r = paired_comparison(a, b, n_boot=200)
    t = stats.ttest_rel(a, b)
    w = stats.wilcoxon(a, b, method=method, correction=False)    # the method is explicit: scipy's default may move
    s = stats.shapiro(a - b)
    assert r["t"] == pytest.approx(t.statistic) and r["p_t"] == pytest.approx(t.pvalue)
    assert r["w"] == pytest.approx(w.statistic) and r["p_wilcoxon"] == pytest.approx(w.pvalue)
    assert r["wilcoxon_method"] == {"exact": "exact", "asymptotic": "normal approximation"}[method]
    assert r["shapiro_p"] == pytest.approx(s.pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pt, pw = pg.ttest(a, b, paired=True), pg.wilcoxon(a, b)
    assert r["p_t"] == pytest.approx(float(pt["p_val"].iloc[0]))
    if not ties:  # with ties pingouin applies its own continuity correction; scipy is the reference there
        assert r["p_wilcoxon"] == pytest.approx(float(pw["p_val"].iloc[0]))
    assert r["rank_biserial"] == pytest.approx(float(pw["RBC"].iloc[0]))      # same sign convention: A - B
    lo, hi = pt["CI95"].iloc[0]                                                 # pingouin rounds CI95 to 2 decimals
    assert (round(r["diff_ci_low"], 2), round(r["diff_ci_high"], 2)) == (pytest.approx(lo), pytest.approx(hi))
    d = a - b
    assert (r["diff_ci_low"], r["diff_ci_high"]) == pytest.approx(
        stats.t.interval(0.95, d.size - 1, loc=d.mean(), scale=stats.sem(d)))
    assert r["mean_diff"] == pytest.approx(d.mean())
    assert r["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert r["cohens_dz"] == pytest.approx(t.statistic / np.sqrt(d.size))
    assert r["primary_test"] == ("paired t" if s.pvalue >= 0.05 else "Wilcoxon")
    assert r["p_primary"] == (r["p_t"] if s.pvalue >= 0.05 else r["p_wilcoxon"])
    assert r["tests_agree"] == ((t.pvalue < 0.05) == (w.pvalue < 0.05))


def _signflip_p(d) -> float:
    """Two-sided p of the Wilcoxon signed-rank statistic R+ over all 2**n sign flips (zeros dropped)."""
    d = np.asarray(d, float)
    d = d[d != 0]
    r = stats.rankdata(np.abs(d))
    signs = np.array(list(itertools.product([1, -1], repeat=d.size)))
    t_all = ((signs > 0) * r).sum(axis=1)
    t_obs = r[d > 0].sum()
    return min(1.0, 2 * min(np.mean(t_all <= t_obs + 1e-9), np.mean(t_all >= t_obs - 1e-9)))


def test_wilcoxon_method_is_explicit_and_reported():
    """exact (n <= 50, no ties or zeros), all sign flips (ties or zeros, n <= 13), else the normal
    approximation without continuity correction; the label in the table is the method used."""
    a = np.array([3.0, 4.0, 2.5, 5.0, 4.5, 3.5, 2.0, 4.0])
    small_ties = a - np.array([1.0, 1.0, 2.0, -1.0, 0.0, 3.0, 2.0, 1.0])    # ties and a zero, n = 8
    r = paired_comparison(a, small_ties, n_boot=20)
    assert r["wilcoxon_method"] == "permutation" and wilcoxon_method(a - small_ties)[0] == "permutation"
    assert r["p_wilcoxon"] == pytest.approx(_signflip_p(a - small_ties))
    assert paired_comparison(a, small_ties, n_boot=20)["p_wilcoxon"] == r["p_wilcoxon"]    # deterministic
    big = np.random.default_rng(0).normal(0.2, 1.0, 60)
    assert wilcoxon_method(big)[0] == "normal approximation"                    # n > 50, even without ties
    r = paired_comparison(big, np.zeros(60), n_boot=20)
    assert r["p_wilcoxon"] == pytest.approx(stats.wilcoxon(big, method="asymptotic", correction=False).pvalue)
    assert wilcoxon_method(np.arange(1.0, 51.0))[0] == "exact"
    assert wilcoxon_method(np.r_[0.0, np.arange(1.0, 20.0)])[0] == "normal approximation"   # a zero, n = 20


def test_primary_test_switches_to_wilcoxon_for_skewed_differences():
    rng = np.random.default_rng(5)
    b = rng.normal(0, 1, 30)
    a = b + rng.exponential(1.0, 30) ** 2          # strongly skewed differences
    r = paired_comparison(a, b, n_boot=100)
    assert r["shapiro_p"] < 0.05 and r["primary_test"] == "Wilcoxon" and r["p_primary"] == r["p_wilcoxon"]


def test_degenerate_pairs_give_nan_not_errors():
    r = paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], n_boot=50)
    assert np.isnan(r["t"]) and np.isnan(r["p_wilcoxon"]) and r["primary_test"] == "" and r["tests_agree"] is None


def test_rank_biserial_by_hand():
    # differences +1, -2, +3 (zero dropped): ranks 1, 2, 3 -> (1 + 3 - 2) / 6
    r = paired_comparison([2.0, 1.0, 6.0, 4.0], [1.0, 3.0, 3.0, 4.0], n_boot=10)
    assert r["rank_biserial"] == pytest.approx(2 / 6)


def test_holm_matches_statsmodels_and_keeps_nan():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.005, 0.04])
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    with_nan = np.array([0.02, NAN, 0.01, 0.5])
    got = holm(with_nan)
    assert np.isnan(got[1])
    assert got[[0, 2, 3]] == pytest.approx(multipletests(with_nan[[0, 2, 3]], method="holm")[1])


def test_intervals_against_scipy_and_explicit_resampling():
    x = np.random.default_rng(3).normal(1, 2, 25)
    lo, hi = t_interval(x)
    assert (lo, hi) == pytest.approx(stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x)))
    assert t_interval(np.full(5, 2.0)) == (2.0, 2.0) and np.isnan(t_interval([1.0])).all()
    # the project's bootstrap draws the clips of every resample from default_rng(seed), seed list included
    for seed in (11, group_seed(0, "summary", "published", "D1", "SoundSCaper", "overall")):
        blo, bhi = bootstrap_interval(x, seed, n_boot=500)
        idx = np.random.default_rng(seed).integers(0, x.size, size=(500, x.size))
        means = np.array([x[i].mean() for i in idx])
        assert (blo, bhi) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    ref = stats.bootstrap((x,), np.mean, n_resamples=5000, method="percentile", random_state=0).confidence_interval
    blo, bhi = bootstrap_interval(x, 0, n_boot=5000)
    assert blo == pytest.approx(ref.low, abs=0.1) and bhi == pytest.approx(ref.high, abs=0.1)
    assert np.isnan(bootstrap_interval([1.0], 0)).all() and np.isnan(bootstrap_interval(x, 0, n_boot=0)).all()
    assert group_seed(0, "a", "b") == group_seed(0, "a", "b") != group_seed(0, "b", "a")


def _tidy_from_wide(wide: dict[str, np.ndarray], participants: int = 1, dataset: str = "D1"):
    rows = []
    for system, values in wide.items():
        for clip, v in enumerate(values):
            rows.append({"source": "participants", "participant": "average" if participants == 1 else "P1",
                         "dataset": dataset, "clip": f"{clip}.wav", "system": system, "dimension": "overall",
                         "score": float(v)})
    return pd.DataFrame(rows)


def test_summary_and_tests_tables_from_clip_means():
    """Per-participant ratings are averaged per clip first; summary and paired tests then use those
    clip means (checked against pandas and scipy computed here)."""
    rng = np.random.default_rng(8)
    rows = []
    for p in ("P1", "P2", "P3"):
        for clip in range(12):
            for system, shift in (("human expert", 0.0), ("SoundSCaper", -0.3)):
                for dim in ("precision", "overall"):
                    rows.append({"source": "participants", "participant": p, "dataset": "D1", "clip": f"c{clip}",
                                 "system": system, "dimension": dim, "score": 3 + shift + clip * 0.1 + rng.normal()})
    tidy = pd.DataFrame(rows)
    clips = clip_scores(tidy)
    means = tidy.groupby(["system", "dimension", "clip"])["score"].mean()
    summary = summarise(clips, n_boot=100)
    for _, r in summary.iterrows():
        x = means.loc[(r["system"], r["dimension"])]
        assert r["n"] == 12 and r["mean"] == pytest.approx(x.mean()) and r["sd"] == pytest.approx(x.std(ddof=1))
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(t_interval(x.to_numpy()))
    tests = paired_tests(clips, n_boot=100)
    assert set(tests["system_a"]) == {"SoundSCaper"} and set(tests["system_b"]) == {"human expert"}
    for _, r in tests.iterrows():
        a = means.loc[("SoundSCaper", r["dimension"])].sort_index()
        b = means.loc[("human expert", r["dimension"])].sort_index()
        assert r["mean_diff"] == pytest.approx((a - b).mean())
        assert r["p_t"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
        assert r["p_wilcoxon"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert tests["p_holm"].tolist() == pytest.approx(holm(tests["p_primary"]).tolist())
    for col in ("dataset", "dimension", "system_a", "system_b", "n", "mean_diff", "t", "p_t", "w", "p_wilcoxon",
                "shapiro_p", "primary_test", "cohens_dz", "rank_biserial", "p_holm"):
        assert col in tests.columns
    for col in ("dataset", "system", "dimension", "n", "mean", "sd", "ci_low", "ci_high"):
        assert col in summary.columns


def test_friedman_and_post_hoc_with_three_systems():
    rng = np.random.default_rng(4)
    base = rng.normal(3, 0.5, 20)
    wide = {"human expert": base, "SoundSCaper": base - 0.3 + rng.normal(0, 0.3, 20),
            "baseline": base - 0.8 + rng.normal(0, 0.3, 20)}
    clips = clip_scores(_tidy_from_wide(wide))
    fr = friedman_tests(clips)
    ref = stats.friedmanchisquare(*wide.values())
    assert len(fr) == 1 and fr["chi2"].iloc[0] == pytest.approx(ref.statistic) and fr["p"].iloc[0] == pytest.approx(ref.pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgf = pg.friedman(pd.DataFrame(wide))
    assert fr["kendall_w"].iloc[0] == pytest.approx(float(pgf["W"].iloc[0]))
    tests = paired_tests(clips, n_boot=50)
    assert len(tests) == 3                                       # every pair of systems
    assert set(tests.loc[tests["system_b"] == "human expert", "system_a"]) == {"SoundSCaper", "baseline"}
    assert tests["p_holm_pairs"].tolist() == pytest.approx(holm(tests["p_primary"]).tolist())


def test_friedman_with_two_or_one_complete_clips():
    two = {"human expert": [1.0, 2.0], "SoundSCaper": [2.0, 3.5], "baseline": [3.0, 1.0]}
    fr = friedman_tests(clip_scores(_tidy_from_wide(two))).iloc[0]
    ref = stats.friedmanchisquare(*two.values())
    assert fr["n"] == 2 and fr["chi2"] == pytest.approx(ref.statistic) and fr["p"] == pytest.approx(ref.pvalue)
    assert fr["kendall_w"] == pytest.approx(ref.statistic / (2 * 2))
    one = friedman_tests(clip_scores(_tidy_from_wide({k: v[:1] for k, v in two.items()}))).iloc[0]
    assert one["n"] == 1 and np.isnan(one[["chi2", "p", "kendall_w"]].astype(float)).all()


def test_krippendorff_alpha_textbook_example():
    """Krippendorff (2011), 'Computing Krippendorff's Alpha-Reliability', section C: 4 coders,
    12 units, missing values; interval alpha = 0.849."""
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
            [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN]]
    assert krippendorff_alpha_interval(data) == pytest.approx(0.849, abs=5e-4)


def _alpha_by_coincidences(data) -> float:
    """Interval alpha the textbook way: the coincidence matrix of values, then D_o / D_e."""
    x = np.asarray(data, float)
    values = np.unique(x[~np.isnan(x)])
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((values.size, values.size))
    for u in range(x.shape[1]):
        v = x[:, u][~np.isnan(x[:, u])]
        if v.size < 2:
            continue
        for i in range(v.size):
            for j in range(v.size):
                if i != j:
                    o[index[v[i]], index[v[j]]] += 1 / (v.size - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    delta = (values[:, None] - values[None, :]) ** 2
    d_o = (o * delta).sum() / n
    d_e = (np.outer(n_c, n_c) * delta).sum() / (n * (n - 1))
    return 1 - d_o / d_e


def test_krippendorff_alpha_against_coincidence_matrix_and_limits():
    rng = np.random.default_rng(9)
    truth = rng.integers(1, 6, 25).astype(float)
    data = np.clip(truth + rng.integers(-1, 2, (6, 25)), 1, 5)
    data[rng.random(data.shape) < 0.2] = NAN
    assert krippendorff_alpha_interval(data) == pytest.approx(_alpha_by_coincidences(data))
    assert krippendorff_alpha_interval(np.tile(truth, (3, 1))) == pytest.approx(1.0)
    assert np.isnan(krippendorff_alpha_interval([[1.0, NAN], [NAN, 2.0]]))     # nothing pairable
    assert np.isnan(krippendorff_alpha_interval([[1.0, 2.0, NAN], [3.0, NAN, 4.0]]))   # one pairable unit
    assert np.isnan(krippendorff_alpha_interval([[2.0, 2.0, 5.0], [2.0, 2.0, NAN]]))   # pairable values constant
    # a unit rated once adds nothing, whatever its value
    wider = np.c_[data, [99.0] + [NAN] * (data.shape[0] - 1)]
    assert krippendorff_alpha_interval(wider) == pytest.approx(krippendorff_alpha_interval(data))
    with pytest.raises(ValueError, match="2-D"):
        krippendorff_alpha_interval([1.0, 2.0])


def test_krippendorff_alpha_refuses_a_huge_value_domain_in_one_line(monkeypatch):
    import soundaq.human_study.reliability as rel

    monkeypatch.setattr(rel, "KRIPPENDORFF_MAX_ELEMENTS", 1000)
    ratings = np.random.default_rng(1).normal(3, 1, (4, 20))            # 80 distinct values, 20 units
    with pytest.raises(ValueError, match="80 distinct rating values over 20 units") as err:
        krippendorff_alpha_interval(ratings)
    assert "\n" not in str(err.value)
    rows = [{"source": "participants", "participant": f"P{r}", "dataset": "D1", "clip": f"c{u}",
             "system": "human expert", "dimension": "precision", "score": float(ratings[r, u])}
            for r in range(4) for u in range(20)]
    alpha = reliability_table(pd.DataFrame(rows)).set_index("measure").loc["Krippendorff alpha (interval)"]
    assert np.isnan(alpha["value"]) and alpha["note"].startswith("alpha not computed: 80 distinct")


SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def _icc_by_anova(x):
    """McGraw & Wong two-way ICCs from the ANOVA mean squares of a targets x raters matrix."""
    x = np.asarray(x, float)
    n, k = x.shape
    grand = x.mean()
    msr = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    msc = n * ((x.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    sse = ((x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand) ** 2).sum()
    mse = sse / ((n - 1) * (k - 1))
    return {"ICC(A,1)": (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n),
            "ICC(A,k)": (msr - mse) / (msr + (msc - mse) / n),
            "ICC(C,1)": (msr - mse) / (msr + (k - 1) * mse),
            "ICC(C,k)": (msr - mse) / msr}


def test_reliability_table_icc_textbook_and_alpha():
    """Shrout & Fleiss (1979), 6 targets x 4 judges: ICC(2,1) = 0.29, ICC(2,4) = 0.62, ICC(3,1) = 0.71,
    ICC(3,4) = 0.91; the table's ICCs also equal the ANOVA formulas and its alpha the function's."""
    rows = [{"source": "participants", "participant": f"J{j}", "dataset": "D1", "clip": f"t{t}",
             "system": "human expert", "dimension": "precision", "score": float(v)}
            for t, row in enumerate(SHROUT_FLEISS) for j, v in enumerate(row)]
    table = reliability_table(pd.DataFrame(rows)).set_index("measure")
    for form, want in {"ICC(A,1)": 0.29, "ICC(A,k)": 0.62, "ICC(C,1)": 0.71, "ICC(C,k)": 0.91}.items():
        assert table.loc[form, "value"] == pytest.approx(want, abs=0.006)
        assert table.loc[form, "value"] == pytest.approx(_icc_by_anova(SHROUT_FLEISS)[form])
        assert table.loc[form, "n_units"] == 6 and table.loc[form, "n_raters"] == 4
    alpha = table.loc["Krippendorff alpha (interval)", "value"]
    assert alpha == pytest.approx(krippendorff_alpha_interval(np.array(SHROUT_FLEISS, float).T))
    assert alpha == pytest.approx(_alpha_by_coincidences(np.array(SHROUT_FLEISS, float).T))


def test_reliability_per_system_and_all_with_missing_ratings():
    rng = np.random.default_rng(2)
    rows = []
    for p in range(5):
        for clip in range(10):
            for system, shift in (("human expert", 0.0), ("SoundSCaper", -0.5)):
                if p == 4 and clip == 0 and system == "SoundSCaper":
                    continue          # one missing rating: ICC drops the unit, alpha keeps the others
                rows.append({"source": "participants", "participant": f"P{p}", "dataset": "D2", "clip": f"c{clip}",
                             "system": system, "dimension": "recall", "score": 3 + shift + 0.3 * clip + rng.normal(0, .5)})
    table = reliability_table(pd.DataFrame(rows))
    assert set(table["system"]) == {"human expert", "SoundSCaper", "all"}
    icc = table[(table["system"] == "SoundSCaper") & (table["measure"] == "ICC(A,1)")].iloc[0]
    alpha = table[(table["system"] == "SoundSCaper") & (table["measure"].str.startswith("Krippendorff"))].iloc[0]
    assert icc["n_units"] == 9 and alpha["n_units"] == 10
    allrow = table[(table["system"] == "all") & (table["measure"] == "ICC(C,k)")].iloc[0]
    assert allrow["n_units"] == 19 and np.isfinite(allrow["value"])
