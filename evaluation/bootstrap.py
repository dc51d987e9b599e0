"""Bootstrap confidence intervals and paired bootstrap tests over clips.

A resample draws N clips with replacement (numpy ``default_rng(seed).integers``); resample b is
represented by how often each clip was drawn, ``W[b, n]``. Every metric of ``soundaq.models_zoo.metrics.METRICS``
evaluates a whole block of resamples at once from these counts (matrix products, one sort per event),
which is exactly the metric of the explicitly resampled table, without building B tables.

* :func:`bootstrap_ci`: estimate, percentile CI (95% by default) and standard error per metric;
* :func:`paired_bootstrap`: two models' predictions on the same clips, scored on the *same* resamples;
  the CI of the difference A - B and a two-sided p-value
  ``p = min(1, 2 * min(1 + #{d_b <= 0}, 1 + #{d_b >= 0}) / (B + 1))`` (the smallest alpha at which the
  percentile interval of the difference excludes 0, with the +1 correction so that p is never 0);
* :func:`compare_to_leader`: the paired test between one model and each of the others.

Results are tidy pandas DataFrames, one row per metric (pingouin's shape), saying which definition
("paper"/"standard") each metric uses.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from soundaq.models_zoo.eval_data import EvalData, MetricInputError
from soundaq.models_zoo.metric_definitions import ScoreFunction
from soundaq.models_zoo.metrics import resolve

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
#: Upper bound on resamples x clips held in memory at once (the count block and its per-event copies).
BLOCK_ELEMENTS = 2_000_000


def _check(n_resamples: int, confidence: float) -> None:
    if int(n_resamples) < 1:
        raise MetricInputError(f"n_resamples is {n_resamples}; fix: use a positive number (1000 by default)")
    if not 0.0 < float(confidence) < 1.0:
        raise MetricInputError(f"confidence is {confidence}; fix: use a level between 0 and 1, e.g. 0.95")


def resample_indices(n: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     block: int | None = None):
    """Yield blocks of resample index rows ``[b, n]`` (clips drawn with replacement).

    The draws come from one ``numpy.random.default_rng(seed)`` stream, so the resamples are the same
    whatever the block size. ``seed`` is anything numpy takes as seed entropy: an int, or a sequence
    of ints such as the jury's per-group ``[seed, crc32(labels)]``.
    """
    rng = np.random.default_rng(seed)
    block = block or max(1, BLOCK_ELEMENTS // max(n, 1))
    done = 0
    while done < n_resamples:
        b = min(block, n_resamples - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def counts_from_indices(index: np.ndarray, n: int) -> np.ndarray:
    """How often each clip appears in each resample row: ``[b, n]`` float64 counts."""
    b = index.shape[0]
    flat = (index + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _as_data(x, source: str) -> EvalData:
    if isinstance(x, EvalData):
        return x
    return EvalData.from_table(x, source=source)


def bootstrap_distribution(data: EvalData | pd.DataFrame, metrics: str | Sequence[str] | None = None,
                           n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                           others: Sequence[EvalData] = ()) -> dict[str | tuple[int, str], np.ndarray]:
    """Resampled values ``{metric: [n_resamples]}`` (NaN where a resample leaves a metric undefined).

    ``others``: further EvalData on the same clips (same order), scored on the same resamples; their
    values come back under ``(index, metric)`` keys.
    """
    _check(n_resamples, 0.95)
    data = _as_data(data, "predictions table")
    chosen: list[ScoreFunction] = resolve(metrics)
    sets = [data, *others]
    out: dict[tuple[int, str], list[np.ndarray]] = {(i, m.name): [] for i in range(len(sets)) for m in chosen}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for index in resample_indices(data.n, n_resamples, seed):
            W = counts_from_indices(index, data.n)
            for i, d in enumerate(sets):
                for m in chosen:
                    out[(i, m.name)].append(m.evaluate(d, W))
    res = {key: np.concatenate(v) for key, v in out.items()}
    return {(name if i == 0 else (i, name)): v for (i, name), v in res.items()}


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    ok = values[~np.isnan(values)]
    if ok.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(ok, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def bootstrap_ci(data, metrics=None, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                 confidence: float = 0.95, source: str = "predictions table"):
    """Point estimate and percentile bootstrap CI of each metric (headline metrics by default).

    ``data``: EvalData or a predictions DataFrame. Returns a DataFrame with columns metric, definition,
    maximize, estimate, ci_low, ci_high, se, n_resamples, n_valid (resamples where the metric is
    defined), confidence, seed, method.
    """
    import pandas as pd

    _check(n_resamples, confidence)
    data = _as_data(data, source)
    chosen = resolve(metrics)
    dist = bootstrap_distribution(data, [m.name for m in chosen], n_resamples, seed)
    rows = []
    for m in chosen:
        v = dist[m.name]
        lo, hi = _percentiles(v, confidence)
        ok = v[~np.isnan(v)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            estimate = m.compute(data)
        rows.append({"metric": m.name, "definition": m.definition, "maximize": m.maximize,
                     "estimate": estimate, "ci_low": lo, "ci_high": hi,
                     "se": float(ok.std(ddof=1)) if ok.size > 1 else float("nan"),
                     "n_resamples": int(n_resamples), "n_valid": int(ok.size),
                     "confidence": float(confidence), "seed": int(seed), "method": "percentile"})
    return pd.DataFrame(rows)


def align(a: EvalData, b: EvalData) -> EvalData:
    """``b`` reordered to ``a``'s clip order; both must hold the same clips with the same labels."""
    if a.n != b.n or set(a.clips) != set(b.clips):
        only_a = sorted(set(a.clips) - set(b.clips))
        only_b = sorted(set(b.clips) - set(a.clips))
        example = (f"e.g. {only_a[0]!r} only in {a.source}" if only_a else
                   f"e.g. {only_b[0]!r} only in {b.source}" if only_b else "different lengths")
        raise MetricInputError(f"{b.source}: does not hold the same clips as {a.source} ({a.n} vs {b.n} clips, "
                               f"{example}); fix: compare predictions made on the same test split")
    if b.clips != a.clips:
        pos = {c: i for i, c in enumerate(b.clips)}
        b = b.take(np.array([pos[c] for c in a.clips]))
    same = a.tasks == b.tasks and all(
        x is None or y is None or (np.array_equal(x, y) if x.dtype.kind == "i" else np.allclose(x, y, atol=1e-6))
        for x, y in ((a.scene_true, b.scene_true), (a.event_true, b.event_true),
                     (a.quality_true, b.quality_true), (a.iso_true, b.iso_true)))
    if not same:
        raise MetricInputError(f"{b.source}: the ground-truth columns differ from {a.source} for the same clips; "
                               "fix: score both models against the same label files")
    return b


def _p_two_sided(diff: np.ndarray) -> float:
    ok = diff[~np.isnan(diff)]
    if ok.size == 0:
        return float("nan")
    le = 1 + int((ok <= 0).sum())
    ge = 1 + int((ok >= 0).sum())
    return float(min(1.0, 2.0 * min(le, ge) / (ok.size + 1)))


PAIRED_COLUMNS = ("metric", "definition", "maximize", "model_a", "model_b", "estimate_a", "estimate_b", "diff",
                  "ci_low", "ci_high", "p_value", "better", "significant", "n_resamples", "n_valid",
                  "confidence", "seed")


def _paired_frame(a: EvalData, others: dict[str, EvalData], name_a: str, metrics, n_resamples: int,
                  seed: int, confidence: float):
    """Rows of A against each of ``others`` (already aligned), all on the same resamples."""
    import pandas as pd

    chosen = resolve(metrics)
    names_b = list(others)
    dist = bootstrap_distribution(a, [m.name for m in chosen], n_resamples, seed,
                                  others=[others[n] for n in names_b])
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est_a = {m.name: m.compute(a) for m in chosen}
        est_b = {(n, m.name): m.compute(others[n]) for n in names_b for m in chosen}
    for i, name_b in enumerate(names_b, start=1):
        for m in chosen:
            diff = dist[m.name] - dist[(i, m.name)]
            lo, hi = _percentiles(diff, confidence)
            ea, eb = est_a[m.name], est_b[(name_b, m.name)]
            d = ea - eb
            if np.isnan(d):
                better = "undefined"
            elif d == 0:
                better = "tie"
            else:
                better = name_a if (d > 0) == m.maximize else name_b
            p = _p_two_sided(diff)
            rows.append({"metric": m.name, "definition": m.definition, "maximize": m.maximize,
                         "model_a": name_a, "model_b": name_b, "estimate_a": ea, "estimate_b": eb,
                         "diff": d, "ci_low": lo, "ci_high": hi, "p_value": p, "better": better,
                         "significant": bool(p < 1.0 - confidence) if not np.isnan(p) else False,
                         "n_resamples": int(n_resamples), "n_valid": int((~np.isnan(diff)).sum()),
                         "confidence": float(confidence), "seed": int(seed)})
    return pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))


def paired_bootstrap(a, b, metrics=None, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     confidence: float = 0.95, names: tuple[str, str] = ("a", "b")):
    """Paired bootstrap test of model A against model B on the same clips (resampled together).

    ``a``/``b``: EvalData or predictions DataFrames (B is reordered to A's clips; both must hold the same
    clips and labels). Returns a DataFrame with one row per metric: metric, definition, maximize,
    model_a, model_b, estimate_a, estimate_b, diff (A - B), ci_low, ci_high (of the difference),
    p_value (two-sided), better (the model the point estimate favours, "tie" or "undefined"),
    significant (p < 1 - confidence), n_resamples, n_valid, confidence, seed.
    """
    _check(n_resamples, confidence)
    a = _as_data(a, f"predictions of {names[0]}")
    b = align(a, _as_data(b, f"predictions of {names[1]}"))
    return _paired_frame(a, {names[1]: b}, names[0], metrics, n_resamples, seed, confidence)


def compare_to_leader(models: dict, leader: str, metrics=None, n_resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED, confidence: float = 0.95):
    """Paired bootstrap of ``leader`` against every other model of ``models`` ({name: EvalData|DataFrame}).

    All comparisons share the same resamples (the leader's values are computed once), so the rows are
    comparable. Returns the rows of :func:`paired_bootstrap` stacked; model_a is always the leader.
    """
    _check(n_resamples, confidence)
    if leader not in models:
        raise MetricInputError(f"leader {leader!r} is not among the models ({', '.join(models)}); "
                               "fix: name one of them")
    a = _as_data(models[leader], f"predictions of {leader}")
    others = {name: align(a, _as_data(m, f"predictions of {name}")) for name, m in models.items() if name != leader}
    return _paired_frame(a, others, leader, metrics, n_resamples, seed, confidence)


def compare_to_leader_over_seeds(runs: dict, leader: str, metrics=None, n_resamples: int = DEFAULT_RESAMPLES,
                                 seed: int = DEFAULT_SEED, confidence: float = 0.95):
    """Two-level paired bootstrap of ``leader`` against every other model over training seeds and test clips.

    ``runs``: ``{model: [EvalData|DataFrame per training seed]}``, every model with the same seeds in
    the same order, all on the same test clips. Each resample draws the seeds with replacement and,
    independently, the test clips with replacement (the same draws for every model: paired); a model's
    value on a resample is the mean over the drawn seeds of its metric on the drawn clips. So the
    interval covers both sources of variance, the training run and the choice of test clips (the
    two-stage bootstrap of hierarchical data, Davison & Hinkley 1997, sec. 2.4 / 3.8). The estimate is
    the difference of the two models' means over seeds.

    Returns the rows of :func:`compare_to_leader` (model_a is the leader) plus ``n_seeds`` and ``method``.

    Raises:
        MetricInputError: no leader, different numbers of seeds, or tables that do not share clips.
    """
    _check(n_resamples, confidence)
    if leader not in runs:
        raise MetricInputError(f"leader {leader!r} is not among the models ({', '.join(runs)}); fix: name one of them")
    n_seeds = len(runs[leader])
    if n_seeds < 1 or any(len(v) != n_seeds for v in runs.values()):
        raise MetricInputError("every model needs the same training seeds; fix: compare models run with the same seeds")
    chosen = resolve(metrics)
    base = _as_data(runs[leader][0], f"predictions of {leader} (seed 1 of {n_seeds})")
    names = [leader, *[m for m in runs if m != leader]]
    flat = [align(base, _as_data(t, f"predictions of {m} (seed {j + 1} of {n_seeds})"))
            for m in names for j, t in enumerate(runs[m])]
    dist = bootstrap_distribution(base, [m.name for m in chosen], n_resamples, seed, others=flat)
    drawn = counts_from_indices(np.random.default_rng([int(seed), n_seeds]).integers(
        0, n_seeds, size=(n_resamples, n_seeds)), n_seeds)            # [B, seeds]: how often each seed is drawn

    def over_seeds(k: int, metric: str) -> tuple[np.ndarray, float]:
        values = np.stack([dist[(1 + k * n_seeds + j, metric)] for j in range(n_seeds)], axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            point = float(np.mean([m.compute(flat[k * n_seeds + j]) for j in range(n_seeds)
                                   for m in chosen if m.name == metric]))
        return (np.where(drawn > 0, values, 0.0) * drawn).sum(axis=1) / n_seeds, point

    rows = []
    for m in chosen:
        lead, est_a = over_seeds(0, m.name)
        for k, name_b in enumerate(names[1:], start=1):
            other, est_b = over_seeds(k, m.name)
            diff = lead - other
            lo, hi = _percentiles(diff, confidence)
            d = est_a - est_b
            better = ("undefined" if np.isnan(d) else "tie" if d == 0 else
                      leader if (d > 0) == m.maximize else name_b)
            p = _p_two_sided(diff)
            rows.append({"metric": m.name, "definition": m.definition, "maximize": m.maximize, "model_a": leader,
                         "model_b": name_b, "estimate_a": est_a, "estimate_b": est_b, "diff": d, "ci_low": lo,
                         "ci_high": hi, "p_value": p, "better": better,
                         "significant": bool(p < 1.0 - confidence) if not np.isnan(p) else False,
                         "n_resamples": int(n_resamples), "n_valid": int((~np.isnan(diff)).sum()),
                         "confidence": float(confidence), "seed": int(seed), "n_seeds": n_seeds,
                         "method": SEEDS_AND_CLIPS})
    import pandas as pd

    return pd.DataFrame(rows, columns=[*PAIRED_COLUMNS, "n_seeds", "method"])


#: How :func:`compare_to_leader_over_seeds` resamples (the reports name it).
SEEDS_AND_CLIPS = ("two-level paired bootstrap: each resample draws the training seeds with replacement and the "
                   "test clips with replacement, the same draws for both models; the statistic is the mean over "
                   "the drawn seeds of the metric on the drawn clips")


# -- per-item values (one number per clip): the CI of their mean and of a paired difference of means --

def _as_items(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] < 1:
        raise MetricInputError(f"per-item values have shape {arr.shape}; fix: pass [n] or [n, k] values, n >= 1")
    return arr


def _resampled_means(arr: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """``[n_resamples, *arr.shape[1:]]`` means of ``arr`` over resampled items (NaN items ignored)."""
    n = arr.shape[0]
    flat = arr.reshape(n, -1)
    ok = ~np.isnan(flat)
    filled = np.where(ok, flat, 0.0)
    out = []
    for index in resample_indices(n, n_resamples, seed, block=max(1, BLOCK_ELEMENTS // max(n * flat.shape[1], 1))):
        W = counts_from_indices(index, n)                     # [b, n]
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((W @ filled) / (W @ ok.astype(np.float64)))
    return np.concatenate(out).reshape((n_resamples, *arr.shape[1:]))


def mean_ci(values, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, confidence: float = 0.95):
    """Mean of per-item values and its percentile bootstrap CI (items resampled with replacement).

    Args:
        values: ``[n]`` or ``[n, k]`` numbers, one row per item (clip); NaN entries are left out of
            the mean of their column (in the estimate and in every resample).
        n_resamples: how many resamples (:func:`resample_indices`; the same items drawn for every column).
        seed: the resamples' seed (the same seed gives the same CI).
        confidence: level of the two-sided percentile interval.

    Returns:
        dict of arrays shaped like one row (``[]`` or ``[k]``): ``estimate`` (nanmean), ``ci_low``,
        ``ci_high``, ``se`` (standard deviation of the resampled means) and ``n`` (non-NaN items).

    Raises:
        MetricInputError: bad shape, resample count or confidence level.

    Source: the percentile bootstrap (Efron & Tibshirani 1993, ch. 13), as in :func:`bootstrap_ci`.
    """
    _check(n_resamples, confidence)
    arr = _as_items(values)
    dist = _resampled_means(arr, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(dist, [100 * alpha, 100 * (1 - alpha)], axis=0)
        return {"estimate": np.nanmean(arr, axis=0), "ci_low": lo, "ci_high": hi,
                "se": np.nanstd(dist, axis=0, ddof=1), "n": (~np.isnan(arr)).sum(axis=0)}


def paired_mean_diff(a, b, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     confidence: float = 0.95):
    """Paired bootstrap of the difference of means ``mean(a) - mean(b)`` over the same items.

    Args:
        a: ``[n]`` or ``[n, k]`` per-item values of system A. Items where A or B is NaN are dropped
            (per column).
        b: B's values on the same items, in the same order and shape.
        n_resamples: how many paired resamples (:func:`resample_indices`).
        seed: the resamples' seed.
        confidence: level of the two-sided percentile interval of the difference.

    Returns:
        dict of arrays shaped like one row: ``diff`` (point estimate), ``ci_low``, ``ci_high`` (of
        the difference), ``p_value`` (two-sided, the rule of :func:`paired_bootstrap`:
        ``min(1, 2 min(1 + #{d_b <= 0}, 1 + #{d_b >= 0}) / (B + 1))``; for a column with fewer than
        :data:`SIGN_FLIP_BELOW` items, the exact sign-flip permutation test of the mean difference
        instead, :func:`sign_flip_p`: the bootstrap calls 4 differences of one sign p ~ 0, where no
        test on 4 pairs can go below 2/16), ``n`` (paired items).

    Raises:
        MetricInputError: ``a`` and ``b`` of different shapes, or bad resample settings.
    """
    _check(n_resamples, confidence)
    a, b = _as_items(a), _as_items(b)
    if a.shape != b.shape:
        raise MetricInputError(f"paired values have shapes {a.shape} and {b.shape}; fix: pass both systems' "
                               "values on the same items in the same order")
    d = a - b                                          # NaN wherever either is missing
    dist = _resampled_means(d, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    flat = dist.reshape(n_resamples, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(dist, [100 * alpha, 100 * (1 - alpha)], axis=0)
        p = np.array([_p_two_sided(flat[:, j]) for j in range(flat.shape[1])]).reshape(d.shape[1:])
        n = (~np.isnan(d)).sum(axis=0)
        columns, p_flat = d.reshape(d.shape[0], -1), np.ravel(p).copy()
        for j, count in enumerate(np.ravel(n)):
            if 0 < count < SIGN_FLIP_BELOW:
                p_flat[j] = sign_flip_p(columns[:, j][~np.isnan(columns[:, j])])
        p = p_flat.reshape(np.shape(p))
        return {"diff": np.nanmean(d, axis=0), "ci_low": lo, "ci_high": hi, "p_value": p, "n": n}


#: Below this many paired items :func:`paired_mean_diff` takes its p from :func:`sign_flip_p`.
SIGN_FLIP_BELOW = 10


def sign_flip_p(d) -> float:
    """Two-sided p of ``mean(d) != 0`` for paired differences d [n] by flipping their signs: every one of
    the 2^n sign patterns (:func:`scipy.stats.permutation_test`, ``permutation_type="samples"`` on one
    sample, exact for n < 16).
    """
    from scipy.stats import permutation_test

    d = np.asarray(d, dtype=np.float64)
    if d.size == 0 or not np.any(d):
        return 1.0
    res = permutation_test((d,), lambda x, axis=-1: np.mean(x, axis=axis), permutation_type="samples",
                           vectorized=True, n_resamples=2 ** min(d.size, 15), alternative="two-sided")
    return min(1.0, float(res.pvalue))
