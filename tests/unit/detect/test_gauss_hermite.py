"""The calibration's Gauss-Hermite rule, written out so the sidecar never computes it at import (which
loads numpy.polynomial and numpy.linalg), is numpy's ``hermegauss(9)`` with normalised weights."""

from __future__ import annotations

import numpy as np
import pytest

from driftwatch.detect import calibration


def test_written_out_rule_is_numpys_hermegauss_9() -> None:
    x, w = np.polynomial.hermite_e.hermegauss(9)
    w = w / w.sum()
    # to the last bit or two: LAPACK builds may differ in the final ulp of an eigenvalue
    np.testing.assert_array_max_ulp(calibration._GH_X[calibration._GH_X != 0], x[x != 0], maxulp=2)
    np.testing.assert_array_max_ulp(calibration._GH_W, w, maxulp=2)
    assert calibration._GH_X[4] == 0.0
    assert x[4] == 0.0


def test_rule_integrates_the_normal_moments() -> None:
    x, w = calibration._GH_X, calibration._GH_W
    for k, moment in enumerate([1, 0, 1, 0, 3, 0, 15, 0, 105]):  # E z^k for z ~ N(0, 1), exact to degree 17
        assert float((w * x**k).sum()) == pytest.approx(moment, rel=1e-12, abs=1e-12), k
