"""Histograms back to samples: the one reconstruction of an interval's distribution from bucket counts,
shared by the scrape path (Prometheus histograms) and OTLP (explicit-bucket and exponential histograms).

A histogram tells how many observations fell in each bucket, not where. Each bucket's count for the
interval becomes that many samples at one representative point of the bucket (scaled down
proportionally to at most ``cap`` samples in all). Coarse buckets give a coarse distribution, but a
shift across buckets -- what drift is -- shows up exactly, and both paths must show it the same way:
the same bounds and counts give the same samples whichever way they arrived.

Pure functions, no state: the callers keep the previous counts of cumulative histograms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def interval(prev: Sequence[float] | None, now: Sequence[float]) -> list[float]:
    """The interval's per-bucket counts from two cumulative readings of the same layout: the
    difference, or ``now`` itself after a reset (a count that went down: the process restarted and
    counts from zero again). ``prev`` None: ``now`` is already an interval's (delta temporality)."""
    if prev is None:
        return [float(c) for c in now]
    deltas = [c - p for c, p in zip(now, prev, strict=True)]
    if any(d < 0 for d in deltas):
        return [float(c) for c in now]
    return deltas


def decumulate(cumulative: Sequence[float]) -> list[float]:
    """Per-bucket counts from Prometheus' cumulative ``le`` counts (a negative step, which only a
    torn reading can produce, counts as zero)."""
    return [max(0.0, cumulative[0])] + [
        max(0.0, cumulative[i] - cumulative[i - 1]) for i in range(1, len(cumulative))
    ]


def upper_bound_points(bounds: Sequence[float]) -> list[float]:
    """One point per bucket of a histogram given by its sorted upper bounds (``le``; OTLP's
    ``explicit_bounds`` plus +Inf): the bucket's middle. The first bucket starts at 0 (or at its own
    bound when that is negative: observations are rarely below zero where the first bound is
    positive); the +Inf bucket sits at the last finite bound (its middle is undefined)."""
    finite = [b for b in bounds if math.isfinite(b)]
    lo = min(0.0, bounds[0]) if finite else 0.0
    top = finite[-1] if finite else lo
    out: list[float] = []
    for hi in bounds:
        out.append(top if math.isinf(hi) else (lo + hi) / 2.0 if lo < hi else hi)
        if math.isfinite(hi):
            lo = hi
    return out


def exponential_points(scale: int, offset: int, n: int) -> np.ndarray:
    """The middles of ``n`` consecutive buckets of an OTLP exponential histogram from index
    ``offset``: bucket ``i`` holds (base**i, base**(i+1)] with base = 2**(2**-scale). Middles beyond
    a float's range are +Inf (validation then rejects them as not finite)."""
    idx = np.arange(offset, offset + n, dtype=np.float64)
    with np.errstate(over="ignore"):
        width = 2.0**-scale
        mids: np.ndarray = (np.exp2(idx * width) + np.exp2((idx + 1.0) * width)) / 2.0
    return mids


def spread(points: Sequence[float], counts: Sequence[float], cap: int) -> list[float]:
    """Each point repeated by its count, the counts scaled down proportionally to at most ``cap`` in
    total (a bucket whose scaled count rounds to zero contributes nothing), interleaved evenly: the
    ``k``-th of a bucket's ``n`` samples goes to relative position (k + 1/2) / n. The engine's
    detectors are sequential, and a bucket's samples in one run (300 x 87.5, then 300 x 175) would
    look like a change within every interval; the even order carries no such pattern and, unlike a
    shuffle, is the same every time."""
    total = float(sum(counts))
    if total <= 0:
        return []
    scale = min(1.0, cap / total)
    ns = np.array([max(0, round(c * scale)) for c in counts], dtype=np.int64)
    keep = ns > 0
    if not keep.any():
        return []
    ns = ns[keep]
    pts = np.asarray(points, dtype=np.float64)[keep]
    per = np.repeat(ns, ns)  # each sample's bucket size
    first = np.repeat(np.cumsum(ns) - ns, ns)  # each sample's bucket's first position
    position = (np.arange(len(per)) - first + 0.5) / per
    order = np.argsort(position, kind="stable")
    out: list[float] = np.repeat(pts, ns)[order].tolist()
    return out


def representative(bounds: Sequence[float], counts: Sequence[float], cap: int) -> list[float]:
    """Samples for per-bucket ``counts`` of a histogram with upper bounds ``bounds``: bucket middles
    repeated by count (``upper_bound_points``), at most ``cap`` in total (``spread``)."""
    if sum(counts) <= 0:
        return []
    return spread(upper_bound_points(bounds), counts, cap)
