"""Multiple-comparison adjustment of p-values, with untested hypotheses left out of the family.

The adjustment itself is :func:`statsmodels.stats.multitest.multipletests`; this module only fixes
what the project's tables need around it: a NaN p-value marks a hypothesis that could not be tested
(a constant column, too few pairs), stays NaN and does not count in the family size ``m``.
Used by the Spearman tables (:mod:`soundaq.evaluation.correlation`, Benjamini-Hochberg or
Bonferroni) and by the jury's paired tests (:mod:`soundaq.human_study.jury`, Holm).
"""
from __future__ import annotations

import numpy as np


def adjust_family(pvalues, method: str) -> np.ndarray:
    """Adjusted p-values of one family of tests; NaN entries stay NaN and are not counted.

    Args:
        pvalues: p-values of any shape (array-like of floats). Entries that are not finite (NaN)
            are hypotheses that were not tested.
        method: a :func:`statsmodels.stats.multitest.multipletests` method, e.g. ``"holm"``
            (Holm 1979 step-down), ``"fdr_bh"`` (Benjamini & Hochberg 1995 step-up) or
            ``"bonferroni"``; or ``"none"`` (the p-values unchanged).

    Returns:
        float64 array of ``pvalues``' shape: each finite p adjusted within the family of the finite
        ones (``m`` = their number), capped at 1; NaN elsewhere.

    Raises:
        ValueError: ``method`` is not one statsmodels knows (its own message).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    if method == "none":
        out[ok] = p[ok]
        return out
    from statsmodels.stats.multitest import multipletests

    out[ok] = multipletests(p[ok], method=method)[1]
    return out
