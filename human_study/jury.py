"""Jury statistics: per-clip scores, descriptive summaries, paired tests between systems.

The unit of analysis is the clip. Per-participant ratings are first averaged over participants
into one score per (dataset, clip, system, dimension), the same thing the published workbook
holds, so both kinds of input go through the same statistics.
"""
from __future__ import annotations

import itertools
import warnings
import zlib

import numpy as np

from soundaq.human_study.dimensions import DIMENSIONS

DEFAULT_ALPHA = 0.05
DEFAULT_N_BOOT = 10_000


def _rng(seed: int, *labels) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the group's labels (stable across runs)."""
    tag = zlib.crc32("|".join(map(str, labels)).encode("utf-8"))
    return np.random.default_rng([int(seed), tag])


def dimension_order(dims) -> list[str]:
    known = [d for d in DIMENSIONS if d in set(dims)]
    return known + sorted(set(dims) - set(known))


def pick_reference(systems, requested: str | None = None) -> str:
    """The system every other one is compared against (``system_b``): ``requested`` when given,
    else the one system whose name mentions a human or expert, else the first by name."""
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
    from scipy import stats

    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 2:
        return (np.nan, np.nan)
    m, se = x.mean(), x.std(ddof=1) / np.sqrt(n)
    h = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    return (m - h, m + h)


def bootstrap_interval(x, rng: np.random.Generator, n_boot: int = DEFAULT_N_BOOT,
                       confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resampling the values with replacement)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 2 or n_boot < 1:
        return (np.nan, np.nan)
    idx = rng.integers(0, n, size=(n_boot, n))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return (float(lo), float(hi))


def summarise(clips, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, confidence: float = 0.95):
    """``summary.csv``: per source x dataset x system x dimension, over clips."""
    import pandas as pd

    rows = []
    for (source, dataset, system, dim), g in clips.groupby(["source", "dataset", "system", "dimension"]):
        x = g["score"].to_numpy(float)
        lo, hi = t_interval(x, confidence)
        blo, bhi = bootstrap_interval(x, _rng(seed, "summary", source, dataset, system, dim), n_boot, confidence)
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


def wilcoxon_method(d) -> str:
    """Which p-value scipy's ``wilcoxon(method='auto')`` computes for these differences."""
    d = np.asarray(d, dtype=float)
    nz = d[d != 0]
    ties = np.unique(np.abs(nz)).size < nz.size
    if d.size > 50:
        return "normal approximation"
    if not ties and nz.size == d.size:
        return "exact"
    return "permutation" if d.size <= 13 else "normal approximation"


def rank_biserial(d) -> float:
    """Matched-pairs rank-biserial correlation (R+ - R-) / (R+ + R-), zero differences dropped;
    positive when the first system scores higher."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return np.nan
    r = stats.rankdata(np.abs(d))
    return float((r[d > 0].sum() - r[d < 0].sum()) / r.sum())


def paired_comparison(a, b, alpha: float = DEFAULT_ALPHA, rng: np.random.Generator | None = None,
                      n_boot: int = DEFAULT_N_BOOT, confidence: float = 0.95) -> dict:
    """Paired t-test, Wilcoxon signed-rank, Shapiro-Wilk of the differences and effect sizes for
    paired samples ``a`` and ``b`` (differences ``a - b``)."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    n = d.size
    out = {"n": int(n), "mean_a": float(a.mean()) if n else np.nan, "mean_b": float(b.mean()) if n else np.nan,
           "mean_diff": float(d.mean()) if n else np.nan, "sd_diff": float(d.std(ddof=1)) if n > 1 else np.nan}
    out["diff_ci_low"], out["diff_ci_high"] = t_interval(d, confidence)
    rng = rng or np.random.default_rng(0)
    out["diff_boot_low"], out["diff_boot_high"] = bootstrap_interval(d, rng, n_boot, confidence)
    constant = n < 2 or np.allclose(d, d[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if constant:
            out.update(t=np.nan, df=n - 1, p_t=np.nan)
        else:
            t = stats.ttest_rel(a, b)
            out.update(t=float(t.statistic), df=n - 1, p_t=float(t.pvalue))
        if n < 1 or np.all(d == 0):
            out.update(w=np.nan, p_wilcoxon=np.nan, wilcoxon_method="")
        else:
            w = stats.wilcoxon(a, b)
            out.update(w=float(w.statistic), p_wilcoxon=float(w.pvalue), wilcoxon_method=wilcoxon_method(d))
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
    out["rank_biserial"] = rank_biserial(d)
    pt, pw = out["p_t"], out["p_wilcoxon"]
    out["tests_agree"] = (bool((pt < alpha) == (pw < alpha)) if not (np.isnan(pt) or np.isnan(pw)) else None)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values; NaNs stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    vals = p[ok]
    order = np.argsort(vals, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * vals[i]))
        adj[i] = running
    out[ok] = adj
    return out


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
                res = paired_comparison(both[sa], both[sb], alpha, _rng(seed, "paired", source, dataset, dim, sa, sb),
                                        n_boot, confidence)
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
    than two systems were rated (clips rated for every system only)."""
    import pandas as pd
    from scipy import stats

    rows = []
    for (source, dataset, dim), g in clips.groupby(["source", "dataset", "dimension"]):
        wide = g.pivot_table(index="clip", columns="system", values="score").dropna()
        k, n = wide.shape[1], wide.shape[0]
        if k < 3:
            continue
        if n < 2:
            rows.append({"source": source, "dataset": dataset, "dimension": dim, "k": k, "n": n,
                         "chi2": np.nan, "p": np.nan, "kendall_w": np.nan})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.friedmanchisquare(*(wide[c].to_numpy() for c in wide.columns))
        rows.append({"source": source, "dataset": dataset, "dimension": dim, "k": k, "n": n,
                     "chi2": float(res.statistic), "p": float(res.pvalue),
                     "kendall_w": float(res.statistic / (n * (k - 1)))})
    return pd.DataFrame(rows, columns=["source", "dataset", "dimension", "k", "n", "chi2", "p", "kendall_w"])
