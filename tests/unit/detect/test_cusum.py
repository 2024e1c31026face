"""CUSUM: the vectorised Lindley recursion equals the per-sample loop; detectors fire and stay quiet."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from driftwatch.detect.calibration import cusum_arl, cusum_threshold, split_budget
from driftwatch.detect.detectors.cusum import Cusum, capped_lindley, clamped_lindley, lindley

xs = arrays(np.float64, st.integers(1, 400), elements=st.floats(-10, 10, allow_nan=False))


def naive(x: np.ndarray, s0: float, k: float, cap: float = np.inf) -> np.ndarray:
    out, s = [], s0
    for v in x:
        s = min(cap, max(0.0, s + v - k))
        out.append(s)
    return np.array(out)


@settings(max_examples=100, deadline=None)
@given(xs, st.floats(0, 20), st.floats(0, 2))
def test_lindley_equals_loop(x: np.ndarray, s0: float, k: float) -> None:
    assert np.allclose(lindley(x, s0, k), naive(x, s0, k), atol=1e-8)
    assert np.allclose(lindley(x, s0, k, np.cumsum(x), -1), naive(-x, s0, k), atol=1e-8)


@settings(max_examples=100, deadline=None)
@given(xs, st.floats(0, 5), st.floats(0, 2), st.floats(0.5, 10))
def test_clamped_lindley_equals_loop(x: np.ndarray, s0: float, k: float, cap: float) -> None:
    s0 = min(s0, cap)
    assert np.allclose(clamped_lindley(x - k, s0, cap), naive(x, s0, k, cap), atol=1e-8)


@settings(max_examples=50, deadline=None)
@given(xs, st.integers(1, 50))
def test_cusum_batching_does_not_matter(x: np.ndarray, batch: int) -> None:
    """First alarm and final state agree whether the stream comes whole or in pieces."""
    whole, parts = Cusum(0.5, 4.0), Cusum(0.5, 4.0)
    p_whole = whole.update(x)
    p_parts, seen = -1, 0
    for i in range(0, x.size, batch):
        p = parts.update(x[i : i + batch])
        if p >= 0:
            p_parts = seen + p
            break
        seen += min(batch, x.size - i)
    assert p_whole == p_parts
    if p_whole >= 0:
        assert whole.onset == parts.onset
    else:
        assert abs(whole.s - parts.s) < 1e-8


def test_cusum_fires_on_shift_with_onset() -> None:
    rng = np.random.default_rng(3)
    h = cusum_threshold(1e6, 0.5)  # 5000 null samples: P(false alarm) ~ 0.5 %
    det = Cusum(0.5, h)
    assert det.update(rng.normal(size=5000)) == -1
    assert not det.drift_detected
    pos = det.update(rng.normal(1.0, 1.0, 500))
    assert 0 <= pos < 80
    assert det.drift_detected
    assert det.onset is not None
    assert 5000 - 30 <= det.onset <= 5000 + pos
    down = Cusum(0.5, h, direction=-1)
    assert down.update(rng.normal(-1.0, 1.0, 500)) >= 0


def test_cusum_round_trip() -> None:
    det = Cusum(0.5, 6.0, -1)
    det.update(np.random.default_rng(0).normal(size=100))
    again = Cusum.from_dict(det.to_dict())
    assert again.to_dict() == det.to_dict()


def test_siegmund_inverse_and_budget_split() -> None:
    h = cusum_threshold(12_345, 0.5)
    assert abs(cusum_arl(h, 0.5) - 12_345) < 1e-6 * 12_345
    arl = split_budget(10_000, {"a": 1, "b": 3})
    assert abs(1 / arl["a"] + 1 / arl["b"] - 1 / 10_000) < 1e-12


def test_capped_lindley_matches_the_scan() -> None:
    """The phase-wise doubly clamped path equals the log-depth scan, also when it falls back."""
    rng = np.random.default_rng(12)
    for _ in range(200):
        n = int(rng.integers(1, 2000))
        inc = rng.normal(rng.normal(0, 0.5), 1.5, n)
        cap = float(rng.uniform(1, 15))
        s0 = float(rng.uniform(0, cap))
        got = capped_lindley(inc, s0, cap, max_phases=int(rng.integers(1, 20)))
        np.testing.assert_allclose(got, clamped_lindley(inc, s0, cap), rtol=0, atol=1e-9)
