"""Jury statistics: per-clip scores, descriptive summaries, paired tests between systems.

The unit of analysis is the clip. Per-participant ratings are first averaged over participants
into one score per (dataset, clip, system, dimension), the same thing the published workbook
holds, so both kinds of input go through the same statistics.
"""
from __future__ import annotations

import itertools
import warnings
import zlib
from contextlib import contextmanager
from typing import Any

import numpy as np

from soundaq.evaluation.bootstrap import mean_ci
from soundaq.human_study.dimensions import DIMENSIONS

DEFAULT_ALPHA = 0.05
DEFAULT_N_BOOT = 10_000


def group_seed(seed: int, *labels) -> list[int]:
    """The bootstrap seed of one group: ``[seed, crc32(labels)]``, numpy seed entropy that depends only
    on ``seed`` and the group's labels (stable across runs and whatever the order of the groups).
    """
    return [int(seed), zlib.crc32("|".join(map(str, labels)).encode("utf-8"))]


@contextmanager
def _pingouin_unrounded():
    """Pingouin with its output rounding off (``pingouin.options``: a user's ``round`` setting, and the
    default two decimals of CI columns, would otherwise round the numbers this module writes).
    """
    import pingouin as pg

    saved = dict(pg.options)
    for key in [k for k in pg.options if k.startswith("round.")]:
        del pg.options[key]
    pg.options["round"] = None
    try:
        yield pg
    finally:
        pg.options.clear()
        pg.options.update(saved)


def dimension_order(dims) -> list[str]:
    """The dimensions in ``dims`` in the questionnaire's order (:data:`DIMENSIONS`), unknown ones after them by name."""
    known = [d for d in DIMENSIONS if d in set(dims)]
    return known + sorted(set(dims) - set(known))


def pick_reference(systems, requested: str | None = None) -> str:
    """The system every other one is compared against (``system_b``): ``requested`` when given,
    else the one system whose name mentions a human or expert, else the first by name.
    """
    systems = sorted(set(systems))
    if requested is not None:
        for s in systems:
            if s.casefold() == requested.casefold():
                return s
        raise ValueError(f"reference system {requested!r} not among the systems {', '.join(systems)}")
    human = [s for s in systems if "human" in s.casefold() or "expert" in s.casefold()]
    return human[0] if len(human) == 1 else systems[0]


def clip_scores(tidy):
    """Mean score per source x dataset x clip x system x dimension, with the number of ratings."""
    g = tidy.groupby(["source", "dataset", "clip", "system", "dimension"], sort=True)["score"]
    out = g.agg(score="mean", n_ratings="count").reset_index()
    return out


def t_interval(x, confidence: float = 0.95) -> tuple[float, float]:
    """Student t interval of the mean of ``x`` (``[n]``): mean +- t(1/2 + confidence/2, n - 1) * sd / sqrt(n).

    Returns ``(low, high)``; NaNs when n < 2; ``(mean, mean)`` when the values do not vary.
    Source: ``scipy.stats.ttest_1samp(x, 0).confidence_interval(confidence)``.
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if x.size < 2:
        return (np.nan, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # constant values: scipy warns, the interval is exact
        ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    return (float(ci.low), float(ci.high))


def bootstrap_interval(x, seed=0, n_boot: int = DEFAULT_N_BOOT, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``x`` (``[n]``, clips resampled with replacement).

    ``seed``: an int or numpy seed entropy such as :func:`group_seed`'s list. Returns ``(low, high)``;
    NaNs when n < 2 or ``n_boot`` < 1. Source: the project's bootstrap,
    :func:`soundaq.evaluation.bootstrap.mean_ci` (percentile method, Efron & Tibshirani 1993).
    """
    x = np.asarray(x, dtype=float)
    if x.size < 2 or n_boot < 1:
        return (np.nan, np.nan)
    res = mean_ci(x, n_boot, seed, confidence)
    return (float(res["ci_low"]), float(res["ci_high"]))


def summarise(clips, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, confidence: float = 0.95):
    """``summary.csv``: per source x dataset x system x dimension, over clips."""
    import pandas as pd

    rows = []
    for (source, dataset, system, dim), g in clips.groupby(["source", "dataset", "system", "dimension"]):
        x = g["score"].to_numpy(float)
        lo, hi = t_interval(x, confidence)
        blo, bhi = bootstrap_interval(x, group_seed(seed, "summary", source, dataset, system, dim), n_boot, confidence)
        rows.append({"source": source, "dataset": dataset, "system": system, "dimension": dim,
                     "n": int(x.size), "n_ratings": int(g["n_ratings"].sum()),
                     "mean": float(x.mean()), "sd": float(x.std(ddof=1)) if x.size > 1 else np.nan,
                     "ci_low": lo, "ci_high": hi, "boot_ci_low": blo, "boot_ci_high": bhi,
                     "median": float(np.median(x)), "min": float(x.min()), "max": float(x.max())})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_d"] = out["dimension"].map({d: i for i, d in enumerate(dimension_order(out["dimension"]))})
    return out.sort_values(["source", "dataset", "_d", "system"]).drop(columns="_d").reset_index(drop=True)


#: Largest sample for which scipy's Wilcoxon test uses the exact null distribution (no ties, no zeros).
WILCOXON_EXACT_MAX_N = 50
#: Largest sample with ties or zeros whose 2**n sign flips are all enumerated (2**13 = 8192 permutations).
WILCOXON_PERMUTATION_MAX_N = 13


def wilcoxon_method(d) -> tuple[str, object]:
    """The p-value method of the Wilcoxon signed-rank test for the paired differences ``d`` (``[n]``).

    The method is passed to :func:`scipy.stats.wilcoxon` explicitly, so the p-values do not move when
    scipy's default does. The rule is scipy 1.15's ``method="auto"`` (Wilcoxon 1945; zeros dropped):

    * ``exact``: the exact null distribution, when n <= 50 and the differences have no ties or zeros;
    * ``permutation``: with ties or zeros and n <= 13, all 2**n sign flips
      (``scipy.stats.PermutationMethod`` with unlimited resamples, so the p is deterministic);
    * ``normal approximation``: otherwise, z with the tie correction and no continuity correction
      (scipy's ``asymptotic``).

    Returns:
        ``(label, method)``: the label written to ``tests.csv`` and the ``method`` argument for scipy.
    """
    from scipy import stats

    d = np.asarray(d, dtype=float)
    nz = d[d != 0]
    ties_or_zeros = np.unique(np.abs(nz)).size < nz.size or nz.size < d.size
    if d.size <= WILCOXON_EXACT_MAX_N and not ties_or_zeros:
        return "exact", "exact"
    if d.size <= WILCOXON_PERMUTATION_MAX_N:
        # scipy takes n_resamples=np.inf (every sign flip); its stubs say int only
        return "permutation", stats.PermutationMethod(n_resamples=np.inf)  # type: ignore[call-overload]
    return "normal approximation", "asymptotic"


def paired_comparison(a, b, alpha: float = DEFAULT_ALPHA, seed=0, n_boot: int = DEFAULT_N_BOOT,
                      confidence: float = 0.95) -> dict:
    """Paired t-test, Wilcoxon signed-rank, Shapiro-Wilk of the differences and effect sizes for
    paired samples ``a`` and ``b`` (``[n]`` each, differences ``d = a - b``).

    Sources: ``scipy.stats.ttest_rel`` (t, p) and :func:`t_interval` (CI of the mean difference);
    ``pingouin.wilcoxon`` on scipy's Wilcoxon test with the method of :func:`wilcoxon_method` (W, p and
    the matched-pairs rank-biserial correlation of Kerby 2014, positive when A scores higher);
    ``scipy.stats.shapiro``; Cohen's d_z = mean(d) / sd(d); :func:`bootstrap_interval` of the mean of
    ``d`` with ``seed``. Degenerate input (n < 2, constant or all-zero differences) gives NaNs, not errors.

    Returns:
        dict of the ``tests.csv`` columns from ``n`` to ``tests_agree`` (without the Holm columns).
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    n = d.size
    out: dict[str, Any] = {"n": int(n), "mean_a": float(a.mean()) if n else np.nan,
                           "mean_b": float(b.mean()) if n else np.nan, "mean_diff": float(d.mean()) if n else np.nan,
                           "sd_diff": float(d.std(ddof=1)) if n > 1 else np.nan}
    out["diff_ci_low"], out["diff_ci_high"] = t_interval(d, confidence)
    out["diff_boot_low"], out["diff_boot_high"] = bootstrap_interval(d, seed, n_boot, confidence)
    constant = n < 2 or np.allclose(d, d[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if constant:
            out.update(t=np.nan, df=n - 1, p_t=np.nan)
        else:
            t = stats.ttest_rel(a, b)
            out.update(t=float(t.statistic), df=n - 1, p_t=float(t.pvalue))
        if n < 1 or np.all(d == 0):
            out.update(w=np.nan, p_wilcoxon=np.nan, wilcoxon_method="", rank_biserial=np.nan)
        else:
            label, method = wilcoxon_method(d)
            with _pingouin_unrounded() as pg:
                w = pg.wilcoxon(a, b, method=method, correction=False).iloc[0]
            out.update(w=float(w["W_val"]), p_wilcoxon=float(w["p_val"]), wilcoxon_method=label,
                       rank_biserial=float(w["RBC"]))
        if n >= 3 and not constant:
            s = stats.shapiro(d)
            out.update(shapiro_w=float(s.statistic), shapiro_p=float(s.pvalue))
        else:
            out.update(shapiro_w=np.nan, shapiro_p=np.nan)
    if np.isnan(out["shapiro_p"]):
        out["primary_test"] = ""
        out["p_primary"] = np.nan
    elif out["shapiro_p"] >= alpha:
        out["primary_test"], out["p_primary"] = "paired t", out["p_t"]
    else:
        out["primary_test"], out["p_primary"] = "Wilcoxon", out["p_wilcoxon"]
    out["cohens_dz"] = float(d.mean() / d.std(ddof=1)) if not constant else np.nan
    pt, pw = out["p_t"], out["p_wilcoxon"]
    out["tests_agree"] = (bool((pt < alpha) == (pw < alpha)) if not (np.isnan(pt) or np.isnan(pw)) else None)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values of one family (``[m]``); NaNs stay NaN and are not
    counted in m. Source: ``pingouin.multicomp(method="holm")``.
    """
    import pingouin as pg

    return pg.multicomp(np.asarray(pvalues, dtype=float), method="holm")[1]


def paired_tests(clips, reference: str | None = None, alpha: float = DEFAULT_ALPHA,
                 n_boot: int = DEFAULT_N_BOOT, seed: int = 0, confidence: float = 0.95):
    """``tests.csv``: every pair of systems per source x dataset x dimension, clips as the unit.

    ``system_b`` is the reference (see :func:`pick_reference`), so ``mean_diff`` = A - reference.
    ``p_holm`` adjusts the primary test's p across dimensions (per source, dataset and pair);
    ``p_holm_t`` / ``p_holm_wilcoxon`` do the same for each test; ``p_holm_pairs`` adjusts across
    the pairs of systems (the post-hoc step after Friedman when there are more than two systems).
    """
    import pandas as pd

    rows = []
    for (source, dataset), g in clips.groupby(["source", "dataset"]):
        systems = sorted(g["system"].unique())
        try:
            ref = pick_reference(systems, reference)
        except ValueError:  # the requested reference was not rated in this dataset
            ref = pick_reference(systems)
        pairs = []
        for s1, s2 in itertools.combinations(systems, 2):
            if s1 == ref:
                s1, s2 = s2, s1
            pairs.append((s1, s2))
        wide = g.pivot_table(index=["dimension", "clip"], columns="system", values="score")
        for dim in dimension_order(g["dimension"].unique()):
            if dim not in wide.index.get_level_values(0):
                continue
            w = wide.loc[dim]
            for sa, sb in pairs:
                if sa not in w or sb not in w:
                    continue
                both = w[[sa, sb]].dropna()
                res = paired_comparison(both[sa], both[sb], alpha,
                                        group_seed(seed, "paired", source, dataset, dim, sa, sb), n_boot, confidence)
                rows.append({"source": source, "dataset": dataset, "dimension": dim, "system_a": sa,
                             "system_b": sb, **res})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    for col, src in (("p_holm", "p_primary"), ("p_holm_t", "p_t"), ("p_holm_wilcoxon", "p_wilcoxon")):
        out[col] = np.nan
        for _, idx in out.groupby(["source", "dataset", "system_a", "system_b"]).groups.items():
            out.loc[idx, col] = holm(out.loc[idx, src].to_numpy(float))
    out["p_holm_pairs"] = np.nan
    for _, idx in out.groupby(["source", "dataset", "dimension"]).groups.items():
        out.loc[idx, "p_holm_pairs"] = holm(out.loc[idx, "p_primary"].to_numpy(float))
    first = ["source", "dataset", "dimension", "system_a", "system_b", "n", "mean_a", "mean_b", "mean_diff",
             "diff_ci_low", "diff_ci_high", "diff_boot_low", "diff_boot_high", "t", "df", "p_t", "w",
             "p_wilcoxon", "wilcoxon_method", "shapiro_w", "shapiro_p", "primary_test", "p_primary",
             "cohens_dz", "rank_biserial", "p_holm", "p_holm_t", "p_holm_wilcoxon", "p_holm_pairs", "tests_agree"]
    return out[first + [c for c in out.columns if c not in first]]


def friedman_tests(clips):
    """``friedman.csv``: Friedman test and Kendall's W per source x dataset x dimension when more
    than two systems were rated (clips rated for every system only).

    Source: ``pingouin.friedman`` (chi-square method): ``chi2`` is its tie-corrected Q (Friedman 1937,
    equal to ``scipy.stats.friedmanchisquare``), ``p`` its chi-square p with k - 1 degrees of freedom
    and ``kendall_w`` = Q / (n (k - 1)), Kendall's coefficient of concordance corrected for ties.
    Fewer than two complete clips give NaNs.
    """
    import pandas as pd

    rows = []
    for (source, dataset, dim), g in clips.groupby(["source", "dataset", "dimension"]):
        wide = g.pivot_table(index="clip", columns="system", values="score").dropna()
        k, n = wide.shape[1], wide.shape[0]
        if k < 3:
            continue
        row = {"source": source, "dataset": dataset, "dimension": dim, "k": k, "n": n,
               "chi2": np.nan, "p": np.nan, "kendall_w": np.nan}
        if n >= 2:
            long = wide.reset_index().melt(id_vars="clip", var_name="system", value_name="score")
            with warnings.catch_warnings(), _pingouin_unrounded() as pg:
                warnings.simplefilter("ignore")
                res = pg.friedman(long, dv="score", within="system", subject="clip").iloc[0]
            row.update(chi2=float(res["Q"]), p=float(res["p_unc"]), kendall_w=float(res["W"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["source", "dataset", "dimension", "k", "n", "chi2", "p", "kendall_w"])
