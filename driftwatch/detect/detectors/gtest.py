"""Categorical drift: a windowed two-sample G-test of category counts against the baseline.

Cells: every baseline category expected at least ``MIN_EXPECTED`` times in a window gets its own cell
(at most ``MAX_CELLS``), the other baseline categories share a ``rare`` cell (small-count handling:
chi-square approximations fail on cells expected < 5 times), and anything never seen in the baseline
falls in an ``unseen`` cell -- a new category is its own signal, and with no baseline count a handful of
occurrences in one window is enough. The G statistic compares window counts with baseline *counts*
(pooled two-sample form), so the baseline's sampling error is accounted for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from driftwatch.detect.calibration import chi2_critical
from driftwatch.detect.summaries import CategoryCounts

from .shape import WindowedShape

MIN_EXPECTED = 5.0
MAX_CELLS = 32
RARE = "__rare__"
UNSEEN = "__unseen__"


def two_sample_g(obs: np.ndarray, base: np.ndarray) -> np.ndarray:
    """G = 2 sum O ln(O/E) over both samples, E from the pooled shares; one value per row of obs."""
    w = obs.sum(axis=-1, keepdims=True).astype(np.float64)
    n = float(base.sum())
    tot = obs + base
    share = tot / (w + n)
    with np.errstate(divide="ignore", invalid="ignore"):
        go = np.where(obs > 0, obs * np.log(obs / (share * w)), 0.0)
        gb = np.where(base > 0, base * np.log(base / (share * n)), 0.0)
    out: np.ndarray = 2.0 * (go + gb).sum(axis=-1)
    return out


class WindowedGTest(WindowedShape):
    """Non-overlapping windows of category codes, each G-tested against the baseline counts.

    >>> base = CategoryCounts(); base.update(["a"] * 600 + ["b"] * 400)
    >>> det = WindowedGTest.from_baseline(base, window=100, alpha=0.001)
    >>> det.update(det.encode(["a", "b"] * 100))
    -1
    >>> det.update(det.encode(["c"] * 100))  # windows of 100, evaluated every 50
    49
    """

    name: ClassVar[str] = "g-test"
    __slots__ = ("_known", "index", "names")

    def __init__(self, names: Sequence[str], base_counts: np.ndarray, window: int = 200, crit: float = 20.0):
        self.names = list(names)
        super().__init__(np.zeros(0), base_counts, window, crit)
        self.index = {n: i for i, n in enumerate(self.names)}
        self._known: frozenset[str] = frozenset()  # every baseline category (set_known)

    @classmethod
    def from_baseline(cls, baseline: CategoryCounts, window: int, alpha: float) -> WindowedGTest:
        n = baseline.n
        ranked = sorted(baseline.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        own = [k for k, c in ranked if c * window / n >= MIN_EXPECTED][:MAX_CELLS]
        rare = n - sum(baseline.counts[k] for k in own)
        names = [*own, RARE, UNSEEN]
        counts = np.array([baseline.counts[k] for k in own] + [rare, 0], np.int64)
        cells = len(own) + (1 if rare else 0) + 1
        det = cls(names, counts, window, chi2_critical(alpha, max(1, cells - 1)))
        det.set_known(list(baseline.counts))
        return det

    def encode(self, values: Sequence[str]) -> np.ndarray:
        """Category names -> cell codes (baseline categories that are not own cells -> rare)."""
        idx, rare, unseen = self.index, len(self.names) - 2, len(self.names) - 1
        known = self._known
        return np.fromiter(
            (idx.get(v, rare if v in known else unseen) for v in values), np.int64, count=len(values)
        )

    def set_known(self, names: Sequence[str]) -> None:
        self._known = frozenset(names)

    def _bin(self, z: np.ndarray) -> np.ndarray:
        return z

    def _stat(self, counts: np.ndarray) -> np.ndarray:
        return two_sample_g(counts, self.base)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        del d["edges"]
        d["names"] = self.names
        d["known"] = sorted(self._known)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowedGTest:
        det = cls(d["names"], np.asarray(d["base"]), d["window"], d["crit"])
        det.cur = np.asarray(d["cur"], np.int64)
        det.prev = np.asarray(d["prev"], np.int64)
        det.filled, det.stat, det.t, det.onset = int(d["filled"]), float(d["stat"]), int(d["t"]), d["onset"]
        det.set_known(d["known"])
        return det
