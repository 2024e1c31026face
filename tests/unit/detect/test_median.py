"""``detect.median.median`` is ``np.median`` bit for bit (it exists only to keep numpy.ma unloaded)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from driftwatch.detect.median import median


def test_median_equals_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    cases: list[np.ndarray] = [np.array([1.5]), np.array([-0.0, 0.0]), np.array([np.nan, 1.0, 2.0])]
    for n in (1, 2, 3, 4, 5, 10, 11, 200, 201, 1000):
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-5, 6)
        cases += [x, x.astype(np.float32), np.round(x), np.abs(x)]
        y = x.copy()
        y[rng.integers(0, n)] = np.nan
        cases.append(y)
    cases += [np.arange(7), np.ones((3, 4))]  # ints and 2-D: numpy's own median
    for x in cases:
        want, got = np.median(x), median(x)
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), (x, want, got)
        assert np.asarray(got).dtype == np.asarray(want).dtype


def test_median_does_not_load_numpy_ma() -> None:
    probe = (
        "import sys, numpy as np\n"
        "from driftwatch.detect.median import median\n"
        "median(np.array([3.0, 1.0, 2.0, 4.0]))\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
