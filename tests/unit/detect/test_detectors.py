"""Scale, shape and categorical detectors: fire on their change, quiet on null data (seeded)."""

from __future__ import annotations

import numpy as np

from driftwatch.detect.calibration import chi2_critical, cusum_threshold
from driftwatch.detect.categorical import categorical_evidence
from driftwatch.detect.detectors.gtest import WindowedGTest
from driftwatch.detect.detectors.scale import ScaleCusum, abs_deviation
from driftwatch.detect.detectors.shape import WindowedShape, quantile_bins
from driftwatch.detect.summaries import CategoryCounts

MA, SA = 0.7979, 0.6028  # mean and std of |Z|


def test_scale_up_and_down() -> None:
    rng = np.random.default_rng(11)
    h = cusum_threshold(20_000, 0.5, 0.7)
    up, down = ScaleCusum(0.5, h, 1), ScaleCusum(0.5, h, -1)
    null = abs_deviation(rng.normal(size=20_000), MA, SA)
    assert up.update(null) == -1
    assert down.update(null) == -1
    assert 0 <= up.update(abs_deviation(rng.normal(0, 2, 300), MA, SA)) < 60
    assert 0 <= down.update(abs_deviation(rng.normal(0, 0.3, 300), MA, SA)) < 100


def test_shape_detects_bimodal_and_uniform_not_null() -> None:
    rng = np.random.default_rng(12)
    edges, counts = quantile_bins(rng.normal(size=1000))
    crit = chi2_critical(200 / 1e6, edges.size)
    det = WindowedShape(edges, counts, 200, crit)
    assert det.update(rng.normal(size=20_000)) == -1
    s = np.sqrt(1 - 0.81)
    bimodal = rng.choice([-0.9, 0.9], 1000) + rng.normal(0, s, 1000)
    assert 0 <= det.update(bimodal) < 400
    det.reset()
    assert 0 <= det.update(rng.uniform(-np.sqrt(3), np.sqrt(3), 3000)) < 1500


def test_shape_track_path_holds_last_window_statistic() -> None:
    """Windows of 100 overlap by half: a new statistic every 50 samples, held in between."""
    rng = np.random.default_rng(13)
    edges, counts = quantile_bins(rng.normal(size=1000))
    det = WindowedShape(edges, counts, 100, 30.0)
    path = det.track(rng.normal(size=250))
    assert path.shape == (250,)
    assert path[48] == 0.0
    assert path[49] == path[98]
    assert path[99] == path[148]
    assert path[199] == path[248]
    assert path[49] != path[99]


def test_gtest_emerged_and_vanished() -> None:
    base = CategoryCounts()
    base.update(["a"] * 500 + ["b"] * 300 + ["c"] * 200)
    det = WindowedGTest.from_baseline(base, 200, 0.001)
    rng = np.random.default_rng(14)
    null = list(rng.choice(["a", "b", "c"], 10_000, p=[0.5, 0.3, 0.2]))
    assert det.update(det.encode(null)) == -1
    drift = list(rng.choice(["a", "b", "new"], 400, p=[0.5, 0.3, 0.2]))
    assert 0 <= det.update(det.encode(drift)) < 400
    cur = CategoryCounts()
    cur.update(drift[:200])
    ev = categorical_evidence(base, cur)
    assert ev["emerged"] == ["new"]
    assert ev["vanished"] == ["c"]
