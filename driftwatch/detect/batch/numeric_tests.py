"""``NumericPair``: the reference and current samples of one numeric feature, merged once.

Every numeric statistic here is a functional of the two empirical CDFs on the pooled sample, so the
pair does the one expensive step -- a sort -- once, and each test reads what it needs from it:

* The two samples are copied into one array with the *lowest mantissa bit* of each value set to its
  sample label (0 reference, 1 current), then sorted once as floats. Values move by at most one unit
  in the last place (a relative 1e-16, far below any measurement) and the sorted array carries the
  merge order and the labels with it: no argsort, no searchsorted, no second pass to merge two sorted
  runs. Values equal but for that bit are ties. NaN and +-inf sort to the ends and are cut off there
  (counted, never used).
* ``walk[k] = F_ref(z_k) - F_cur(z_k)`` after the k-th pooled value is a cumulative sum of +1/n and
  -1/m steps. KS is its largest magnitude at the ends of tie groups, Wasserstein-1 its integral
  ``sum |walk_k| (z_{k+1} - z_k)``; Cramer-von Mises and Anderson-Darling weight its squares.
* The common statistics (KS, Wasserstein, the reference's standard deviation, ties) come from one
  sweep over the sorted array in cache-sized blocks, so a feature costs its sort plus about three
  passes over memory. 20 features x (1M + 1M) take a fraction of a second on one core; a loop of
  ``scipy.stats.ks_2samp`` sorts twice and binary-searches 2M times per feature (``bench/scan.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

#: quantile bins of the reference for binned measures (PSI, Jensen-Shannon) of numeric features
BINS = 10
#: values per block of the sweep: 3 float64 temporaries of this size stay in a core's L2 cache
BLOCK = 1 << 15
_NOT_LABEL = ~np.int64(1)


@dataclass(frozen=True)
class Sweep:
    """What one pass over the merged sample yields."""

    ks: float  # sup |F_ref - F_cur|
    w1: float  # Wasserstein-1 in the feature's units
    ref_mean: float
    ref_std: float
    distinct: int  # distinct pooled values


class NumericPair:
    """Both samples of one numeric feature, merged. Non-finite values are dropped (``n``/``m`` count
    what is used). Derived quantities are computed on first use and kept.

    >>> p = NumericPair([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0, float("nan")])
    >>> p.n, p.m, p.ks_statistic, round(p.wasserstein, 6)
    (4, 4, 0.5, 2.0)
    """

    def __init__(self, reference: ArrayLike, current: ArrayLike) -> None:
        ref = np.asarray(reference, dtype=np.float64).ravel()
        cur = np.asarray(current, dtype=np.float64).ravel()
        n0 = ref.size
        z = np.empty(n0 + cur.size, np.float64)
        bits = z.view(np.int64)
        np.bitwise_and(ref.view(np.int64), _NOT_LABEL, out=bits[:n0])  # copy and label in one pass
        np.bitwise_or(cur.view(np.int64), 1, out=bits[n0:])
        z.sort()
        z, dropped = _cut_nonfinite(z)
        _merge_zeros(z)
        #: the pooled sample, sorted, each value carrying its label in its lowest bit
        self.z = z
        # the sort may rewrite NaN payloads (and a labelled +inf is a NaN): count the cut per sample
        dropped_cur = cur.size - int(np.count_nonzero(np.isfinite(cur))) if dropped else 0
        self.n, self.m = n0 - (dropped - dropped_cur), cur.size - dropped_cur
        self._raw = (ref, cur, dropped > 0)

    @property
    def reference(self) -> np.ndarray:
        """The finite reference values, as given (unsorted)."""
        return _finite(self._raw[0]) if self._raw[2] else self._raw[0]

    @property
    def current(self) -> np.ndarray:
        return _finite(self._raw[1]) if self._raw[2] else self._raw[1]

    @property
    def enough(self) -> bool:
        return self.n > 0 and self.m > 0

    # --- the sweep: what every default comparison needs ------------------------------------------------

    @cached_property
    def sweep(self) -> Sweep:
        z, n, m = self.z, self.n, self.m
        size = z.size
        mean, std = _moments(self.reference)
        if n == 0 or m == 0:
            return Sweep(1.0 if size else 0.0, 0.0, mean, std, _distinct_count(z))
        u = z.view(np.uint64)
        one = np.uint64(1)
        big_n = float(n + m)
        # block buffers, reused: no allocation (or page faults) per block. No BLAS either: a threaded
        # dot product on a loaded machine costs milliseconds per call.
        lab, diff = np.empty(BLOCK, np.uint64), np.empty(BLOCK, np.uint64)
        walk, tmp = np.empty(BLOCK), np.empty(BLOCK)
        ends = np.empty(BLOCK, np.bool_)
        pos_m = np.arange(1, BLOCK + 1, dtype=np.float64) * m
        cur_before = 0.0
        best = 0.0  # largest |n m walk| at a tie end
        area = 0.0
        distinct = 0
        for s in range(0, size, BLOCK):
            e = min(s + BLOCK, size)
            k = e - s
            g = min(e + 1, size) - s - 1  # gaps to the next value (the last block has one fewer)
            lb, wb, tb, eb = lab[:k], walk[:k], tmp[:k], ends[:k]
            # n m (F_ref - F_cur) after position i = m (i + 1) - (n + m) (currents so far): integers,
            # exact in float64 up to 2^53, so equal ECDFs give exactly 0
            np.bitwise_and(u[s:e], one, out=lb)
            np.cumsum(lb, dtype=np.float64, out=tb)
            tb += cur_before
            cur_before = float(tb[-1])
            np.multiply(tb, big_n, out=wb)
            np.subtract(pos_m[:k], wb, out=wb)
            wb += s * m
            # ties: a value ends its group when the next differs beyond the label bit
            np.bitwise_xor(u[s + 1 : s + 1 + g], u[s : s + g], out=diff[:g])
            np.greater(diff[:g], one, out=eb[:g])
            if g < k:
                eb[g:] = True
            run_ends = int(np.count_nonzero(eb))
            distinct += run_ends
            np.abs(wb, out=wb)
            if run_ends < k:  # ties: only group ends are points of the ECDFs; no area inside a group
                wb *= eb
            best = max(best, float(wb.max()))
            # Wasserstein-1: |walk| times the gap to the next value
            np.subtract(z[s + 1 : s + 1 + g], z[s : s + g], out=tb[:g])
            area += float(np.einsum("i,i->", tb[:g], wb[:g]))
        nm = float(n) * float(m)
        return Sweep(best / nm, area / nm, mean, std, distinct)

    @property
    def ks_statistic(self) -> float:
        """sup |F_ref - F_cur| (two-sided)."""
        return self.sweep.ks

    @property
    def wasserstein(self) -> float:
        """Wasserstein-1 distance: the area between the two ECDFs (in the feature's units)."""
        return self.sweep.w1

    @property
    def distinct(self) -> int:
        return self.sweep.distinct

    @cached_property
    def scale(self) -> float:
        """The unit effects are measured in: the reference standard deviation (the pooled one when the
        reference is constant; 1 when both are). Spreads within a few units in the last place of the
        mean are constant: the labels alone move values by one."""
        s, mean = self.sweep.ref_std, self.sweep.ref_mean
        if s > 8.0 * np.spacing(abs(mean)):
            return s
        pooled = np.concatenate([self.reference, self.current])
        if pooled.size > 1:
            s, mean = float(np.std(pooled)), float(np.mean(pooled))
            if s > 8.0 * np.spacing(abs(mean)) and np.isfinite(s):
                return s
        return 1.0

    @property
    def wasserstein_norm(self) -> float:
        """Wasserstein-1 in reference standard deviations: a mean shift of d sd scores d."""
        return self.wasserstein / self.scale

    # --- whole arrays, for the tests that need more than the sweep ------------------------------------

    @cached_property
    def is_current(self) -> np.ndarray:
        """bool per pooled position: from the current sample."""
        return (self.z.view(np.uint64) & np.uint64(1)).astype(np.bool_)

    @cached_property
    def walk(self) -> np.ndarray:
        """``F_ref - F_cur`` after each pooled value."""
        w = np.where(self.is_current, -1.0 / max(self.m, 1), 1.0 / max(self.n, 1))
        np.cumsum(w, out=w)
        return w

    @cached_property
    def tie_end(self) -> np.ndarray | None:
        """bool per pooled position: last of its group of equal values; None when there are no ties."""
        if self.distinct == self.z.size:
            return None
        u = self.z.view(np.uint64)
        end = np.ones(u.size, np.bool_)
        np.greater(u[1:] ^ u[:-1], 1, out=end[:-1])
        return end

    @cached_property
    def walk_at_values(self) -> np.ndarray:
        """``walk`` at the distinct pooled values (where the ECDFs are defined)."""
        end = self.tie_end
        return self.walk if end is None else self.walk[end]

    @cached_property
    def group_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ref count at or below, current count at or below, pooled multiplicity) per distinct value."""
        idx = np.flatnonzero(self.tie_end) if self.tie_end is not None else np.arange(self.z.size)
        below = idx + 1
        cur = np.cumsum(self.is_current, dtype=np.int64)[idx]
        return below - cur, cur, np.diff(below, prepend=0)

    def value_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(reference counts, current counts) per distinct value: the numeric feature as categories."""
        ref, cur, _ = self.group_counts
        return np.diff(ref, prepend=0), np.diff(cur, prepend=0)

    def binned_counts(self, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
        """(reference, current) counts in the reference's quantile bins (edges deduplicated, so a
        discrete feature gets fewer bins); the outer bins are open-ended."""
        ref, cur = self.reference, self.current
        if ref.size == 0:
            return np.zeros(1, np.int64), np.array([cur.size])
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        return (
            np.bincount(np.searchsorted(edges, ref, "right"), minlength=edges.size + 1),
            np.bincount(np.searchsorted(edges, cur, "right"), minlength=edges.size + 1),
        )


def _moments(a: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation in two passes (a sum, a dot product about the mean estimate);
    exact two-pass ``np.var`` when the mean dwarfs the spread and cancellation would eat the digits."""
    if a.size == 0:
        return 0.0, 0.0
    total = float(np.add.reduce(a))
    mean = total / a.size
    var = max(float(np.einsum("i,i->", a, a)) / a.size - mean * mean, 0.0)
    if var <= 1e-8 * mean * mean:
        var = float(np.var(a))
    return mean, float(np.sqrt(var))


def _finite(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = a[np.isfinite(a)]
    return out


def _cut_nonfinite(z: np.ndarray) -> tuple[np.ndarray, int]:
    """The finite middle of the sorted labelled sample (-inf sorts first; +inf and NaN -- which a
    labelled infinity becomes -- last) and how many values were cut."""
    lo = int(np.searchsorted(z, -np.inf, "right"))
    hi = int(np.searchsorted(z, np.inf, "left"))
    return z[lo:hi], z.size - (hi - lo)


def _merge_zeros(z: np.ndarray) -> None:
    """-0.0 and +0.0 are one value: relabel the run of (labelled) zeros as +0.0 and re-sort it."""
    tiny = np.float64(5e-324)
    lo, hi = int(np.searchsorted(z, -tiny, "left")), int(np.searchsorted(z, tiny, "right"))
    if hi - lo > 0:
        run = z[lo:hi].view(np.int64)
        run &= np.int64(1)  # keep only the label: 0 -> +0.0, 1 -> the smallest subnormal
        run.sort()


def _distinct_count(z: np.ndarray) -> int:
    if z.size == 0:
        return 0
    u = z.view(np.uint64)
    return int(np.count_nonzero((u[1:] ^ u[:-1]) > 1)) + 1
