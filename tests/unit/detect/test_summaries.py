"""Mergeable summaries: merge of parts == summary of the whole; exact JSON round trips."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from driftwatch.detect.summaries import CategoryCounts, Moments, NumericSummary, QuantileSketch

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
values = arrays(np.float64, st.integers(1, 300), elements=finite)


def _split(x: np.ndarray, cut: int) -> tuple[np.ndarray, np.ndarray]:
    cut = cut % (x.size + 1)
    return x[:cut], x[cut:]


@settings(max_examples=60, deadline=None)
@given(values, st.integers(0, 300))
def test_moments_merge_equals_whole(x: np.ndarray, cut: int) -> None:
    a, b = _split(x, cut)
    whole, pa, pb = Moments(), Moments(), Moments()
    whole.update(x)
    pa.update(a)
    pb.update(b)
    m = pa.merge(pb)
    scale = max(1.0, float(np.abs(x).max()))
    assert m.n == whole.n
    assert abs(m.mean - whole.mean) <= 1e-9 * scale
    assert abs(m.var - whole.var) <= 1e-7 * scale * scale
    assert m.min == whole.min
    assert m.max == whole.max


@settings(max_examples=60, deadline=None)
@given(values, st.integers(0, 300), st.integers(8, 300))
def test_sketch_merge_is_exact(x: np.ndarray, cut: int, max_bins: int) -> None:
    a, b = _split(x, cut)
    whole, pa, pb = QuantileSketch(max_bins), QuantileSketch(max_bins), QuantileSketch(max_bins)
    whole.update(x)
    pa.update(a)
    pb.update(b)
    assert pa.merge(pb).to_dict() == whole.to_dict()


def test_sketch_relative_error_bound() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(3, 0.5, 20_000)  # spans ~7 octaves: within the 8 of 256 bins
    s = QuantileSketch()
    s.update(x)
    assert not s.collapsed
    for q in (0.5, 0.9, 0.95, 0.99):
        est, true = s.quantile(q), float(np.quantile(x, q))
        assert est is not None
        # value error of half a bucket, plus rank rounding between neighbouring samples
        assert abs(est - true) / true < 2 * QuantileSketch.RELATIVE_ERROR + 0.01


def test_sketch_handles_signs_and_zero() -> None:
    s = QuantileSketch()
    s.update(np.array([-5.0, -1.0, 0.0, 0.0, 1.0, 5.0]))
    assert s.n == 6
    lo, mid, hi = s.quantiles([0.0, 0.5, 1.0])
    assert lo is not None
    assert hi is not None
    assert mid is not None
    assert lo < -4.5
    assert hi > 4.5
    assert abs(mid) < 1.1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(list("abcdefg")), min_size=1, max_size=200), st.integers(0, 200))
def test_category_counts_merge(vals: list[str], cut: int) -> None:
    cut = cut % (len(vals) + 1)
    whole, a, b = CategoryCounts(), CategoryCounts(), CategoryCounts()
    whole.update(vals)
    a.update(vals[:cut])
    b.update(vals[cut:])
    assert a.merge(b).counts == whole.counts


def test_category_cap_folds_into_other() -> None:
    c = CategoryCounts(max_categories=3)
    c.update(["a", "b", "c", "d", "e"])
    assert set(c.counts) == {"a", "b", "c", "__other__"}
    assert c.n == 5


def test_numeric_summary_json_round_trip() -> None:
    s = NumericSummary()
    s.update(np.random.default_rng(1).normal(size=1000))
    d = json.loads(json.dumps(s.to_dict()))
    assert NumericSummary.from_dict(d).to_dict() == s.to_dict()
    empty = json.loads(json.dumps(NumericSummary().to_dict()))
    assert NumericSummary.from_dict(empty).n == 0


def test_sketch_counts_the_tiniest_subnormals_as_zero_in_any_batch() -> None:
    # found by hypothesis: 5e-324 alone took the all-positive fast path into bucket 0 of `pos`,
    # while next to a 0.0 it was counted as zero -- so merge(parts) != whole
    x = np.array([5e-324, 0.0])
    whole, pa, pb = QuantileSketch(8), QuantileSketch(8), QuantileSketch(8)
    whole.update(x)
    pa.update(x[:1])
    pb.update(x[1:])
    assert pa.merge(pb).to_dict() == whole.to_dict()
    assert whole.zero == 2
