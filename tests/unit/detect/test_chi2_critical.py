"""``calibration.chi2_critical`` (computed without scipy, so the sidecar never imports it) agrees with
``scipy.special.chdtri`` over the whole range the detectors use and beyond."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import chdtri

from driftwatch.detect.calibration import chi2_critical

DFS = [*range(1, 61), 64, 99, 128, 255, 500, 1000, 5000]
ALPHAS = [*np.logspace(-15, -1e-9, 60).tolist(), 0.5, 0.9, 0.99, 0.999999]


@pytest.mark.parametrize("df", DFS)
def test_equals_scipy_chdtri_to_1e9_relative(df: int) -> None:
    for alpha in ALPHAS:
        want = float(chdtri(df, alpha))
        assert chi2_critical.__wrapped__(alpha, df) == pytest.approx(want, rel=1e-9, abs=0.0), (df, alpha)


def test_edges() -> None:
    assert chi2_critical(0.05, 0) == chi2_critical(0.05, 1)  # df below 1 counts as 1
    assert chi2_critical(0.0, 3) == math.inf
    assert chi2_critical(1.0, 3) == 0.0
    assert chi2_critical(0.05, 1) == pytest.approx(3.841458820694124, rel=1e-12)
