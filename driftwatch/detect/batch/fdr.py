"""Multiple-testing control across the features of one comparison."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values): reject feature i at false discovery rate alpha
    when ``q[i] <= alpha``. With 20 independent clean features tested at 5% each, 64% of scans would
    flag something; with BH at 5%, 5% do (under no drift at all BH controls the family-wise rate).

    >>> [round(q, 3) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.053, 0.053, 0.5]
    """
    p = np.asarray(p_values, np.float64)
    k = p.size
    if k == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order] * k / np.arange(1, k + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]  # step-up: monotone from the largest p down
    out = np.empty(k)
    out[order] = np.minimum(q, 1.0)
    return [float(v) for v in out]
