"""Statistics of a 2 x K table of counts (categories, or bins of a numeric feature): chi-square, G,
PSI and Jensen-Shannon. Pure functions of counts."""

from __future__ import annotations

import math

import numpy as np

from .categorical_tests import SHARE_FLOOR


def _expected(table: np.ndarray) -> np.ndarray:
    rows = table.sum(axis=1, keepdims=True).astype(np.float64)
    cols = table.sum(axis=0, keepdims=True).astype(np.float64)
    out: np.ndarray = rows * cols / max(float(table.sum()), 1.0)
    return out


def chi_square(table: np.ndarray) -> tuple[float, int]:
    """Pearson's chi-square of homogeneity (no continuity correction) and its degrees of freedom."""
    if table.shape[1] < 2:
        return 0.0, 0
    e = _expected(table)
    return float(((table - e) ** 2 / e).sum()), table.shape[1] - 1


def g_statistic(table: np.ndarray) -> tuple[float, int]:
    """The likelihood-ratio (G) statistic of homogeneity, 2 sum O ln(O/E), and its degrees of freedom."""
    if table.shape[1] < 2:
        return 0.0, 0
    e = _expected(table)
    o = table.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(o > 0, o * np.log(o / e), 0.0)
    return float(2.0 * terms.sum()), table.shape[1] - 1


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index, sum (q - p) ln(q / p) over cells, shares floored at 1e-4 so a cell
    empty in one sample counts as large but finite."""
    p = np.maximum(ref / max(ref.sum(), 1), SHARE_FLOOR)
    q = np.maximum(cur / max(cur.sum(), 1), SHARE_FLOOR)
    return float(((q - p) * np.log(q / p)).sum())


def jensen_shannon(ref: np.ndarray, cur: np.ndarray) -> float:
    """Jensen-Shannon *distance* in bits (the square root of the divergence): 0 identical, 1 disjoint."""
    p = ref / max(ref.sum(), 1)
    q = cur / max(cur.sum(), 1)
    mid = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / mid), 0.0).sum()
        kq = np.where(q > 0, q * np.log2(q / mid), 0.0).sum()
    return math.sqrt(max(0.0, 0.5 * float(kp + kq)))
