"""Mergeable summaries: streaming moments, a log-linear quantile sketch and category counts.

Everything here merges across pods without raw samples, and serialises to JSON-safe dicts with an exact
round trip. ``merge(a, b)`` of two parts equals the summary of the whole: exactly for the sketch and
the category counts, up to floating-point rounding for the moments (Chan et al. pairwise update).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np

_I64_PAIR, _F64_PAIR = struct.Struct("<qq"), struct.Struct("<dd")  # a bucket index's bits as a float
_SIGN = np.int64(-(2**63))  # the sign bit as int64
_ABS = np.int64(2**63 - 1)  # every bit but the sign
#: the counts of every empty store, shared (read-only; a store replaces its array when it grows): a
#: stream holds eight stores, most of them empty (negative values, the onset's while Stable)
_NO_COUNTS = np.zeros(0, np.int64)
_NO_COUNTS.setflags(write=False)


class Moments:
    """Count, mean, sum of squared deviations, min and max of a numeric stream.

    Batch updates use numpy reductions, then Chan's pairwise merge, so a batch costs a few passes and
    merging two pods is exact up to rounding.

    >>> m = Moments(); m.update(np.array([1.0, 2.0, 3.0])); m.update(np.array([4.0]))
    >>> m.n, m.mean, round(m.std, 6)
    (4, 2.5, 1.290994)
    """

    __slots__ = ("m2", "max", "mean", "min", "n")

    def __init__(
        self, n: int = 0, mean: float = 0.0, m2: float = 0.0, lo: float = np.inf, hi: float = -np.inf
    ):
        self.n = n
        self.mean = mean
        self.m2 = m2
        self.min = lo
        self.max = hi

    def update(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        # float64: x.mean() is exactly add.reduce / n (numpy's _mean), without its Python wrapper
        mb = float(np.add.reduce(x)) / x.size if x.dtype == np.float64 else float(x.mean())
        d = x - mb
        # einsum, not np.dot: BLAS threads can stall for milliseconds on a busy host
        m2 = float(np.einsum("i,i->", d, d))
        self._combine(int(x.size), mb, m2, float(np.minimum.reduce(x)), float(np.maximum.reduce(x)))

    def _combine(self, nb: int, mb: float, m2b: float, lo: float, hi: float) -> None:
        if nb == 0:
            return
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * nb / n
        self.m2 = self.m2 + m2b + delta * delta * self.n * nb / n
        self.n = n
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)

    def merge(self, other: Moments) -> Moments:
        out = self.copy()
        out._combine(other.n, other.mean, other.m2, other.min, other.max)
        return out

    def copy(self) -> Moments:
        return Moments(self.n, self.mean, self.m2, self.min, self.max)

    @property
    def var(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    @property
    def std(self) -> float:
        return float(np.sqrt(self.var))

    def to_dict(self) -> dict[str, Any]:
        # inf min/max of an empty summary are not JSON: write None
        return {
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min if self.n else None,
            "max": self.max if self.n else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Moments:
        lo = d.get("min")
        hi = d.get("max")
        return cls(
            int(d["n"]),
            float(d["mean"]),
            float(d["m2"]),
            np.inf if lo is None else float(lo),
            -np.inf if hi is None else float(hi),
        )


class _Store:
    """Dense counts over a contiguous range of bucket indices, collapsing the lowest when too wide."""

    __slots__ = ("counts", "max_bins", "offset")

    def __init__(self, max_bins: int, offset: int = 0, counts: np.ndarray | None = None) -> None:
        self.max_bins = max_bins
        self.offset = offset
        self.counts = _NO_COUNTS if counts is None else counts

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add_indices(self, idx: np.ndarray) -> None:
        if idx.size == 0:
            return
        lo, hi = int(idx.min()), int(idx.max())
        self.add_counts(lo, hi, idx, None)

    def add_counts(self, lo: int, hi: int, idx: np.ndarray, weights: np.ndarray | None) -> None:
        if self.counts.size:
            lo = min(lo, self.offset)
            hi = max(hi, self.offset + self.counts.size - 1)
        floor = max(lo, hi - self.max_bins + 1)  # everything below collapses into `floor`
        width = hi - floor + 1
        rel = idx - floor
        if lo < floor:
            rel = np.maximum(rel, 0)
        # a fresh array (bincount's own, or astype's copy): the old counts are added into it
        # bincount's array is exactly `width` long unless an index is beyond it: sliced only then (a
        # view of the same length would keep a second array header alive with every store)
        b = np.bincount(rel, weights=weights, minlength=width)
        new = (b if b.size == width else b[:width]).astype(np.int64, copy=weights is not None)
        if self.counts.size:
            start = self.offset - floor
            if start >= 0:  # nothing collapses (the usual case): the old counts are one slice
                new[start : start + self.counts.size] += self.counts
            else:
                old_idx = np.arange(self.offset, self.offset + self.counts.size)
                np.add.at(new, np.maximum(old_idx, floor) - floor, self.counts)
        self.offset, self.counts = floor, new

    def merge_from(self, other: _Store) -> None:
        if other.counts.size == 0:
            return
        idx = np.arange(other.offset, other.offset + other.counts.size)
        self.add_counts(int(idx[0]), int(idx[-1]), idx, other.counts.astype(np.float64))

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], max_bins: int) -> _Store:
        return cls(max_bins, int(d["offset"]), np.asarray(d["counts"], np.int64))


class QuantileSketch:
    """Log-linear histogram (HDR-histogram style) of a numeric stream: a fixed, data-independent
    bucketing, so sketches from different pods merge exactly by adding counts.

    A bucket is a float's exponent plus its top ``SUB_BITS`` mantissa bits, computed with integer ops
    on the float's bit pattern (no ``log``: about 1 ns a sample). Each bucket spans a relative width of
    at most 2**-SUB_BITS, so a quantile is returned within ``RELATIVE_ERROR`` (1.6 %) of a value
    whose rank is right -- while the stream spans at most ``max_bins`` buckets per sign (2**(max_bins
    / 32) in ratio: 256 for the default 256 bins). Beyond that the smallest magnitudes collapse into one
    bucket (DDSketch's strategy): upper quantiles stay accurate, tiny values near zero lose resolution.
    ``collapsed`` says whether that happened, so the error claim is honest.

    >>> s = QuantileSketch(); s.update(np.arange(1.0, 1001.0))
    >>> abs(s.quantile(0.5) - 500) / 500 < QuantileSketch.RELATIVE_ERROR
    True
    """

    SUB_BITS = 5
    RELATIVE_ERROR = 2.0 ** -(SUB_BITS + 1)
    _SHIFT = 52 - SUB_BITS
    _SMALLEST_BITS = 1 << (52 - SUB_BITS)
    _SMALLEST_BUCKETED = float(np.array([_SMALLEST_BITS], np.int64).view(np.float64)[0])

    __slots__ = ("neg", "pos", "zero")

    def __init__(self, max_bins: int = 256) -> None:
        self.pos = _Store(max_bins)
        self.neg = _Store(max_bins)
        self.zero = 0

    @property
    def n(self) -> int:
        return self.pos.total + self.neg.total + self.zero

    @property
    def collapsed(self) -> bool:
        return self.pos.counts.size >= self.pos.max_bins or self.neg.counts.size >= self.neg.max_bins

    def update(self, x: np.ndarray) -> None:
        """Add finite values (the caller filters NaN/inf)."""
        if x.size == 0:
            return
        bits = np.ascontiguousarray(x, np.float64).view(np.int64)
        # the common case (latencies, sizes): one store, no masks. The bound is the smallest value
        # with a bucket of its own: below it (zero and the tiniest subnormals, bucket 0) counts as
        # zero, whatever else is in the batch -- so merged sketches equal the whole one exactly.
        # On the bit patterns: a positive float orders as its int64 bits, a negative one (or -0.0)
        # has negative bits, so "every value >= the bound" is "the smallest bit pattern >= the
        # bound's", and the bucket range is the extreme bit patterns' buckets (two reductions).
        # minimum/maximum.reduce: bits.min() and bits.max() without their Python wrappers (every
        # summary update -- several a batch while a stream is Drifting -- pays them)
        low = int(np.minimum.reduce(bits))
        if low >= self._SMALLEST_BITS:  # every bit pattern positive: the bucket is bits >> SHIFT
            high = int(np.maximum.reduce(bits))
            self.pos.add_counts(low >> self._SHIFT, high >> self._SHIFT, bits >> self._SHIFT, None)
            return
        idx = (bits & _ABS) >> self._SHIFT
        nonzero = idx > 0  # idx 0: zero and the smallest subnormals
        self.zero += int(x.size - np.count_nonzero(nonzero))
        negative = bits < 0
        self.pos.add_indices(idx[nonzero & ~negative])
        self.neg.add_indices(idx[nonzero & negative])

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        out = QuantileSketch.from_dict(self.to_dict())
        out.pos.merge_from(other.pos)
        out.neg.merge_from(other.neg)
        out.zero += other.zero
        return out

    @classmethod
    def _bucket_values(cls, store: _Store) -> np.ndarray:
        """Midpoint of each bucket in value space (the error bound is half a bucket)."""
        idx = np.arange(store.offset, store.offset + store.counts.size, dtype=np.int64)
        lo = (idx << cls._SHIFT).view(np.float64)
        hi = ((idx + 1) << cls._SHIFT).view(np.float64)
        return (lo + hi) / 2

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, counts) in ascending value order: bucket midpoints and their counts."""
        nv = -self._bucket_values(self.neg)[::-1]
        pv = self._bucket_values(self.pos)
        values = np.concatenate([nv, [0.0], pv])
        counts = np.concatenate([self.neg.counts[::-1], [self.zero], self.pos.counts])
        keep = counts > 0
        return values[keep], counts[keep]

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        # the histogram's answer without building it: the cumulative counts over every bucket (empty
        # ones included: the first bucket whose cumulative count exceeds a rank is never empty) and
        # the midpoint of only the buckets asked for (the evidence of every drift event reads these)
        neg, pos = self.neg.counts, self.pos.counts
        counts = np.concatenate([neg[::-1], [self.zero], pos])
        cum = np.cumsum(counts)
        total = int(cum[-1])
        if total == 0:
            return [None for _ in qs]
        ranks = [min(max(q, 0.0), 1.0) * (total - 1) for q in qs]
        out: list[float | None] = []
        for j in np.searchsorted(cum, ranks, side="right").tolist():
            if j < neg.size:
                out.append(-self._midpoint(self.neg.offset + neg.size - 1 - j))
            elif j == neg.size:
                out.append(0.0)
            else:
                out.append(self._midpoint(self.pos.offset + j - neg.size - 1))
        return out

    @classmethod
    def _midpoint(cls, idx: int) -> float:
        """``_bucket_values`` of one bucket."""
        lo, hi = _F64_PAIR.unpack(_I64_PAIR.pack(idx << cls._SHIFT, (idx + 1) << cls._SHIFT))
        out: float = (lo + hi) / 2
        return out

    def quantile(self, q: float) -> float | None:
        return self.quantiles([q])[0]

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Share of the stream at or below each x (bucket midpoints as the values)."""
        values, counts = self.histogram()
        total = counts.sum()
        if total == 0:
            return np.full(np.shape(x), np.nan)
        cum = np.concatenate([[0], np.cumsum(counts)])
        out: np.ndarray = cum[np.searchsorted(values, x, side="right")] / total
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_bins": self.pos.max_bins,
            "pos": self.pos.to_dict(),
            "neg": self.neg.to_dict(),
            "zero": self.zero,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantileSketch:
        s = cls(int(d["max_bins"]))
        s.pos = _Store.from_dict(d["pos"], s.pos.max_bins)
        s.neg = _Store.from_dict(d["neg"], s.neg.max_bins)
        s.zero = int(d["zero"])
        return s


class NumericSummary:
    """Moments + quantile sketch: the mergeable view of a numeric window.

    >>> a, b = NumericSummary(), NumericSummary()
    >>> a.update(np.array([1.0, 2.0])); b.update(np.array([3.0]))
    >>> a.merge(b).describe()["mean"]
    2.0
    """

    __slots__ = ("moments", "sketch")

    def __init__(self, moments: Moments | None = None, sketch: QuantileSketch | None = None) -> None:
        self.moments = moments or Moments()
        self.sketch = sketch or QuantileSketch()

    def update(self, x: np.ndarray) -> None:
        self.moments.update(x)
        self.sketch.update(x)

    def merge(self, other: NumericSummary) -> NumericSummary:
        return NumericSummary(self.moments.merge(other.moments), self.sketch.merge(other.sketch))

    @property
    def n(self) -> int:
        return self.moments.n

    def describe(self) -> dict[str, float | int | None]:
        """The evidence numbers: n, mean, std, p50, p95, p99 (quantiles from the sketch)."""
        m = self.moments
        p50, p95, p99 = self.sketch.quantiles([0.5, 0.95, 0.99])
        return {
            "n": m.n,
            "mean": m.mean if m.n else None,
            "std": m.std if m.n else None,
            "p50": p50,
            "p95": p95,
            "p99": p99,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "numeric", "moments": self.moments.to_dict(), "sketch": self.sketch.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericSummary:
        return cls(Moments.from_dict(d["moments"]), QuantileSketch.from_dict(d["sketch"]))


OTHER = "__other__"


class CategoryCounts:
    """Counts per category, capped at ``max_categories`` distinct names (the rest count as
    ``__other__``) so state stays bounded whatever the stream sends. Merge adds counts; it equals the
    whole exactly while the cap is not reached.

    >>> c = CategoryCounts(); c.update(["a", "b", "a"]); c.shares()
    {'a': 0.6666666666666666, 'b': 0.3333333333333333}
    """

    __slots__ = ("counts", "max_categories")

    def __init__(self, max_categories: int = 48, counts: dict[str, int] | None = None) -> None:
        self.max_categories = max_categories
        self.counts: dict[str, int] = dict(counts or {})

    def add(self, name: str, count: int) -> None:
        if name not in self.counts and len(self.counts) >= self.max_categories:
            name = OTHER
        self.counts[name] = self.counts.get(name, 0) + count

    def update(self, values: Iterable[str]) -> None:
        local: dict[str, int] = {}
        for v in values:
            local[v] = local.get(v, 0) + 1
        for k, c in local.items():
            self.add(k, c)

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        out = CategoryCounts(self.max_categories, self.counts)
        for k, c in sorted(other.counts.items()):
            out.add(k, c)
        return out

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def shares(self) -> dict[str, float]:
        n = self.n
        return {k: c / n for k, c in self.counts.items()} if n else {}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "counts": dict(self.counts), "max_categories": self.max_categories}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoryCounts:
        return cls(int(d.get("max_categories", 48)), {str(k): int(v) for k, v in d["counts"].items()})


def summary_from_dict(d: dict[str, Any]) -> NumericSummary | CategoryCounts:
    """Rebuild either kind of window summary from its dict (``kind`` says which)."""
    return CategoryCounts.from_dict(d) if d.get("kind") == "categorical" else NumericSummary.from_dict(d)
