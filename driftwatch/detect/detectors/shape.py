"""Shape change: a windowed two-sample chi-square test on baseline-quantile bins.

A change that keeps mean and variance (normal -> bimodal, normal -> uniform) is invisible to the CUSUMs.
Windows of ``window`` samples, overlapping by half (one evaluation every ``window / 2`` samples, so a
change is not left waiting for a window that started before it), are binned at baseline quantiles
(finer in the tails, where those changes show) and compared with the baseline counts by Pearson's
two-sample homogeneity statistic  X2 = W N sum_b (o_b/W - c_b/N)^2 / (o_b + c_b),  chi-square(B - 1)
under no change. Using the baseline counts (not their expected shares) accounts for the baseline's own
sampling error, so a 100-sample baseline does not inflate false alarms. The per-evaluation level is the
detector's share of the false-alarm budget times the evaluation step (Bonferroni over the overlapping,
positively correlated windows: conservative).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from driftwatch.detect.base import Detector

#: quantile levels of the bin edges: tails resolved (2 %, 10 %) when the baseline can afford it
LEVELS_FINE = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
LEVELS_COARSE = (0.1, 0.25, 0.5, 0.75, 0.9)

_WINDOW_KEYS: dict[tuple[int, int], np.ndarray] = {}


def _window_keys(n: int, window: int, bins: int) -> np.ndarray:
    """(i // window) * bins for i in [0, n): cached and grown, sliced per batch (read-only). Grown by
    doubling from 4,096 entries: one per (window, bins) pair of the process's categorical streams, so a
    fixed 128k (1 MB each) would cost a sidecar up to 17 MB it never reads."""
    key = (window, bins)
    a = _WINDOW_KEYS.get(key)
    if a is None or a.size < n:
        size = max(2 * n, 1 << 12)
        a = (np.arange(size, dtype=np.int64) // window) * bins
        a.setflags(write=False)
        if len(_WINDOW_KEYS) > 16:
            _WINDOW_KEYS.clear()
        _WINDOW_KEYS[key] = a
    return a


def two_sample_chi2(obs: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Pearson homogeneity statistic of each row of ``obs`` against the ``base`` counts.

    Cells empty in both samples contribute nothing (their denominator is clamped to 1 and their
    numerator is 0), so no masks or error-state switches are needed on the hot path."""
    w = obs.sum(axis=-1, keepdims=True).astype(np.float64)
    n = float(base.sum())
    num = obs * n - base * w
    num *= num
    num /= np.maximum(obs + base, 1)
    out: np.ndarray = num.sum(axis=-1) / np.maximum(w[..., 0] * n, 1.0)
    return out


def quantile_bins(e: np.ndarray, min_gap: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges at baseline quantiles and the baseline's counts in those bins.

    Edges sit halfway between distinct sample values, never on one: tied values (discrete data, the
    pile of Huber-clipped outliers at the clip bound) then stay on one side of an edge when the slow
    baseline update moves the scale a little. Edges next to the extremes are dropped for the same
    reason (the clipped pile is the extreme)."""
    levels = LEVELS_FINE if e.size >= 500 else LEVELS_COARSE
    srt = np.sort(e)
    lo, hi = float(srt[0]), float(srt[-1])
    # ``min_gap``: differences below it are rounding, not shape (a noise-free signal's residuals)
    tol = max(0.05 * (float(np.std(srt)) or 1.0), min_gap)
    edges: list[float] = []
    for q in levels:
        v = srt[min(int(q * srt.size), srt.size - 1)]
        above = int(np.searchsorted(srt, v, side="right"))
        if above >= srt.size:
            continue
        edge = (float(v) + float(srt[above])) / 2
        if lo + tol < edge < hi - tol and (not edges or edge > edges[-1] + min_gap):
            edges.append(edge)
    arr = np.asarray(edges, np.float64)
    counts = np.bincount(np.searchsorted(arr, e, side="left"), minlength=arr.size + 1)
    return arr, counts.astype(np.int64)


class WindowedShape(Detector):
    """Non-overlapping windows of the standardised stream, each tested against baseline bin counts.

    >>> rng = np.random.default_rng(2)
    >>> edges, counts = quantile_bins(rng.normal(size=1000))
    >>> det = WindowedShape(edges, counts, window=200, crit=25.0)
    >>> det.update(rng.normal(size=2000))
    -1
    >>> det.update(rng.uniform(-1.73, 1.73, size=2000)) < 800
    True
    """

    name: ClassVar[str] = "chi2-shape"
    __slots__ = ("base", "crit", "cur", "edges", "filled", "prev", "stat", "step", "t", "window")

    def __init__(self, edges: np.ndarray, base_counts: np.ndarray, window: int = 200, crit: float = 25.0):
        super().__init__()
        self.edges = np.asarray(edges, np.float64)
        self.base = np.asarray(base_counts, np.int64)
        self.window = int(window)
        self.crit = float(crit)
        self.step = max(1, self.window // 2)  # windows overlap by half: evaluated every step
        self.cur = np.zeros(self.base.size, np.int64)  # counts of the step in progress
        self.prev = np.zeros(self.base.size, np.int64)  # counts of the last completed step
        self.filled = 0  # samples in the step in progress
        self.stat = 0.0  # statistic of the last completed window
        self.t = 0

    @property
    def bins(self) -> int:
        return int(self.base.size)

    def _bin(self, z: np.ndarray) -> np.ndarray:
        # a few edges: summing comparisons is ~10x faster than searchsorted's binary search
        if self.edges.size == 0:
            return np.zeros(z.size, np.uint8)
        if z.size <= 64:  # one call instead of len(edges) for tiny batches
            return np.searchsorted(self.edges, z, side="left")
        idx = (z > self.edges[0]).view(np.uint8)
        for edge in self.edges[1:]:
            idx += (z > edge).view(np.uint8)
        out: np.ndarray = idx
        return out

    def _stat(self, counts: np.ndarray) -> np.ndarray:
        return two_sample_chi2(counts, self.base)

    def _windows(self, z: np.ndarray) -> tuple[np.ndarray, int]:
        """Counts per step (half window) touched by this batch (row 0 includes the carried partial
        step) and how many steps complete in it."""
        n, b, step = z.size, self.bins, self.step
        idx = self._bin(z)
        keys = _window_keys(self.filled + n, step, b)[self.filled : self.filled + n]
        rows = (self.filled + n - 1) // step + 1
        counts = np.bincount(keys + idx, minlength=rows * b)[: rows * b].reshape(rows, b)
        counts[0] += self.cur
        return counts, (self.filled + n) // step

    def _stats(self, steps: np.ndarray, complete: int) -> np.ndarray:
        """Statistic of each window ending at a completed step: that step plus the one before."""
        done = steps[:complete]
        before = np.concatenate([self.prev[None, :], done[:-1]]) if complete else done
        return self._stat(done + before)

    def update(self, z: np.ndarray) -> int:
        self.drift_detected = False
        n = z.size
        if n == 0:
            return -1
        if self.filled + n < self.step:
            self.cur = self.cur + np.bincount(self._bin(z), minlength=self.bins)
            self.filled += n
            self.t += n
            return -1
        steps, complete = self._windows(z)
        stats = self._stats(steps, complete)
        over = stats > self.crit
        if over.any():
            j = int(np.argmax(over))
            pos = (j + 1) * self.step - self.filled - 1
            self.onset = self.t + pos + 1 - self.window
            self.stat = float(stats[j])
            self.prev = steps[j].copy()
            self.cur = np.zeros(self.bins, np.int64)
            self.filled = 0
            self.t += pos + 1
            self.drift_detected = True
            return pos
        self._finish(steps, complete, stats, n)
        return -1

    def _finish(self, steps: np.ndarray, complete: int, stats: np.ndarray, n: int) -> None:
        self.cur = steps[complete].copy() if complete < steps.shape[0] else np.zeros(self.bins, np.int64)
        if complete:
            self.prev = steps[complete - 1].copy()
            self.stat = float(stats[-1])
        self.filled = (self.filled + n) % self.step
        self.t += n

    def track(self, z: np.ndarray, cap: float = 0.0) -> np.ndarray:
        """While Drifting: the last completed window's statistic as of each sample (no stop)."""
        n = z.size
        if n == 0:
            return np.zeros(0)
        last = self.stat
        if self.filled + n < self.step:
            self.update(z)
            return np.full(n, last)
        steps, complete = self._windows(z)
        stats = self._stats(steps, complete)
        ends = np.arange(1, complete + 1) * self.step - self.filled - 1  # batch positions of window ends
        # each statistic holds from its window's end up to the next one's (the previous one before)
        runs = np.diff(np.concatenate([[0], ends, [n]]))
        path = np.repeat(np.concatenate([[last], stats]), runs)
        self._finish(steps, complete, stats, n)
        return path

    @property
    def statistic(self) -> float:
        return self.stat

    @property
    def threshold(self) -> float:
        return self.crit

    def reset(self) -> None:
        self.cur = np.zeros(self.bins, np.int64)
        self.prev = np.zeros(self.bins, np.int64)
        self.filled = 0
        self.stat = 0.0
        self.onset = None
        self.drift_detected = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "base": self.base.tolist(),
            "window": self.window,
            "crit": self.crit,
            "cur": self.cur.tolist(),
            "prev": self.prev.tolist(),
            "filled": self.filled,
            "stat": self.stat,
            "t": self.t,
            "onset": self.onset,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowedShape:
        det = cls(np.asarray(d["edges"]), np.asarray(d["base"]), d["window"], d["crit"])
        det.cur = np.asarray(d["cur"], np.int64)
        det.prev = np.asarray(d["prev"], np.int64)
        det.filled, det.stat, det.t, det.onset = int(d["filled"]), float(d["stat"]), int(d["t"]), d["onset"]
        return det
