"""The compiled fused loop does exactly what its Python reference (``kernel.run_reference``) does."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwatch.detect.detectors.cusum import Cusum
from driftwatch.detect.kernel import Arrays, Code, P, S, run, run_reference
from driftwatch.detect.numeric_fit import fit
from driftwatch.detect.seasonal import DAY


def _arrays(seed: int, seasonal: bool, positive: bool) -> Arrays:
    rng = np.random.default_rng(seed)
    ts = np.arange(0, 2.5 * DAY, 300.0)
    x = rng.lognormal(3, 0.5, ts.size) if positive else rng.normal(10, 2, ts.size)
    if seasonal:
        x = x * (1.5 + np.sin(2 * np.pi * ts / DAY))
    bl = fit(x, ts, budget=10_000, recovery=50, seasonality="auto" if seasonal else "none")
    bl.arrays.state[S.LZ0 : S.LZ5 + 1] = ts.size - 1
    bl.arrays.state[S.T] = ts.size
    return bl.arrays


def _both(arr: Arrays, x: np.ndarray, ts: np.ndarray | None, drifting: bool, limit: int) -> None:
    a, b = copy.deepcopy(arr), copy.deepcopy(arr)
    sa = run(a, x, ts, drifting, limit)
    sb = run_reference(b, x, ts, drifting, limit)
    assert (sa.used, sa.code, sa.detector) == (sb.used, sb.code, sb.detector)
    np.testing.assert_allclose(a.state, b.state, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(a.profile_sums, b.profile_sums, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    seasonal=st.booleans(),
    positive=st.booleans(),
    drifting=st.booleans(),
    shift=st.floats(-3, 3),
    n=st.integers(1, 3000),
)
def test_compiled_loop_equals_reference(
    seed: int, seasonal: bool, positive: bool, drifting: bool, shift: float, n: int
) -> None:
    arr = _arrays(seed, seasonal, positive)
    rng = np.random.default_rng(seed + 1)
    ts = 2.5 * DAY + np.arange(n) * 300.0
    base = rng.lognormal(3, 0.5, n) if positive else rng.normal(10, 2, n)
    x = np.ascontiguousarray(base * np.exp(shift * 0.3) if positive else base + shift * 2)
    x[rng.random(n) < 0.01] *= 8  # spikes: the tail detectors' business
    _both(arr, x, ts, drifting, n)
    _both(arr, x, None, drifting, max(1, n // 2))


def test_stops_at_the_first_alarm_and_reports_the_detector() -> None:
    arr = _arrays(3, False, False)
    x = np.full(500, 30.0)  # +10 sd: the mean-up CUSUM (or the tail) alarms within a few samples
    step = run(arr, x, None, False, 500)
    assert step.code == Code.ALARM
    assert step.used < 20
    assert step.detector in (0, 4)


def test_mean_cusum_in_the_loop_is_the_cusum_detector() -> None:
    """The loop's mean-up statistic is ``Cusum`` run on the same innovations (no level, no AR here)."""
    a = _arrays(5, False, False)
    a.params[P.PHI], a.params[P.PHIDEN], a.params[P.LAM], a.params[P.H0] = 0.0, 1.0, 0.0, 1e9
    s0 = float(a.state[S.S0])
    x = np.random.default_rng(6).normal(10.5, 2, 400)
    a.params[P.REC] = 10_000  # Drifting, and no recovery: no stop
    assert run(a, x, None, True, 400).used == 400
    z = np.clip(a.params[P.A] * x + a.params[P.B], a.params[P.LO], a.params[P.HI])
    det = Cusum(k=a.params[P.K], h=1e9)
    det.s = s0
    det.update(z)
    assert a.state[S.S0] == pytest.approx(det.s, rel=1e-9, abs=1e-9)
