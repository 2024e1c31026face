"""The per-stream families the dashboard reads beyond score and state: baseline and current quantiles
(read straight off the sketch dicts), when a drift started, and the key cap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftwatch.detect import DriftEvent, StreamStatus
from driftwatch.detect.summaries import NumericSummary, QuantileSketch
from driftwatch.sidecar.events import DriftEvents
from driftwatch.sidecar.views import QUANTILES, _row, sketch_quantiles

QS = (0.0, 0.01, 0.05, 0.5, 0.95, 0.99, 1.0)


def sketch_of(x: np.ndarray) -> dict:
    s = NumericSummary()
    s.update(x)
    return s.to_dict()["sketch"]


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(0).lognormal(3, 1, 5000),  # positive, wide: the store collapses
        np.random.default_rng(1).normal(0, 1, 5000),  # both signs
        np.r_[np.zeros(10), np.random.default_rng(2).normal(0, 5, 300)],  # zeros too
        np.array([5.0]),
        np.array([-2.5, -2.5, -1e-3]),
    ],
)
def test_sketch_quantiles_equal_the_sketchs_own(data: np.ndarray) -> None:
    d = sketch_of(data)
    assert sketch_quantiles(d, QS) == tuple(QuantileSketch.from_dict(d).quantiles(QS))


@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=200))
def test_sketch_quantiles_equal_the_sketchs_own_for_any_data(values: list[float]) -> None:
    d = sketch_of(np.array(values))
    assert sketch_quantiles(d, QS) == tuple(QuantileSketch.from_dict(d).quantiles(QS))


def test_empty_or_missing_sketch_has_no_quantiles() -> None:
    assert sketch_quantiles(QuantileSketch().to_dict(), QS) is None
    assert sketch_quantiles(None, QS) is None


def test_rows_carry_baseline_and_current_quantiles_of_numeric_streams_only() -> None:
    base, cur = NumericSummary(), NumericSummary()
    base.update(np.arange(1.0, 1001.0))
    cur.update(np.arange(1001.0, 2001.0))
    status = StreamStatus(
        "f", "", "numeric", "Stable", 0.1, "none", "d", None, 3, 0, base.to_dict(), cur.to_dict()
    )
    r = _row(status)
    assert r.baseline_quantiles is not None
    assert r.current_quantiles is not None
    assert len(r.baseline_quantiles) == len(QUANTILES)
    for q, b, c in zip(QUANTILES, r.baseline_quantiles, r.current_quantiles, strict=True):
        assert abs(b - (1 + q * 999)) <= QuantileSketch.RELATIVE_ERROR * b + 1
        assert abs(c - (1001 + q * 999)) <= QuantileSketch.RELATIVE_ERROR * c + 1
    initializing = _row(StreamStatus("f", "", "numeric", "Initializing", 0, "none", "d", None, 0, 0, {}, {}))
    assert (initializing.baseline_quantiles, initializing.current_quantiles) == (None, None)
    categorical = _row(
        StreamStatus("p", "", "categorical", "Stable", 0, "none", "d", None, 3, 0, {"kind": "categorical"})
    )
    assert categorical.baseline_quantiles is None


def event(type_: str, ts: float | None, n: int) -> DriftEvent:
    return DriftEvent(f"e{n}", type_, "lat", "/pay", n, ts, "cusum", 0.7, "critical")


def test_drift_start_is_remembered_until_its_end() -> None:
    ev = DriftEvents(100)
    ev.record([event("DRIFT_START", 1_700_000_000.0, 1)])
    assert ev.started == {("lat", "/pay"): 1_700_000_000.0}
    ev.record([event("DRIFT_START", 1_700_000_000.0, 1)])  # the same event again: no change
    ev.record([event("DRIFT_END", 1_700_000_100.0, 2)])
    assert ev.started == {}
    ev.record([event("DRIFT_START", None, 3)])  # no sample time: when it was recorded
    assert ev.started[("lat", "/pay")] > 1_700_000_000.0
