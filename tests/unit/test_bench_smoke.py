"""``bench/detection.py --quick`` runs and prints its one table with every row and method."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

METHODS = ["DriftWatch", "zscore-consec", "sustained-z", "PageHinkley", "ADWIN", "KSWIN", "oracle CUSUM"]
ROWS = [
    "false alarms / 10k samples",
    "Gaussian",
    "lognormal (sigma 1)",
    "1% outliers at 10x",
    "AR(1) phi=0.5",
    "median detection delay, samples",
    "mean +0.5 sigma",
    "mean +1 sigma",
    "mean +2 sigma",
    "std x2",
    "shape: normal -> bimodal",
    "categorical: share change",
    "categorical: new category",
    "runs discarded (alarm before change)",
    "samples/second per core",
    "bytes of state per stream",
]


@pytest.mark.timeout(300)
def test_bench_detection_quick(tmp_path):
    pytest.importorskip("river")
    out_png = tmp_path / "bench.png"
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "detection.py"), "--quick", "--plot", str(out_png)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    header = lines[0]
    for m in METHODS:
        assert m in header
        assert f"bench: {m}" in p.stderr  # one progress line per method, on stderr
    for row in ROWS:
        match = [line for line in lines if line.strip().startswith(row)]
        assert match, f"row {row!r} missing"
    # numeric rows have one cell per method; categorical rows say n/a for numeric-only methods
    cat = next(line for line in lines if line.strip().startswith("categorical: new category"))
    assert cat.split()[-1] == "n/a"  # the oracle
    assert cat.count("n/a") == len(METHODS) - 1  # only DriftWatch's default handles categories
    gauss = next(line for line in lines if line.strip().startswith("Gaussian"))
    assert len(gauss.split()) == 1 + len(METHODS)
    assert out_png.read_bytes()[:4] == b"\x89PNG"


def test_oracle_cusum_matches_per_sample_recursion():
    # the benchmark's yardstick must be right: vectorised chunks == the textbook loop, restarts included
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("bench_detection", ROOT / "bench" / "detection.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    z = np.random.default_rng(0).normal(size=30_000)
    z[20_000:] += 0.4
    for delta in (0.5, 1.0, 2.0):
        k, h = delta / 2, mod.cusum_threshold(2.0 * mod.BUDGET, delta / 2)
        up = dn = 0.0
        expected = []
        for i, v in enumerate(z.tolist()):
            up, dn = max(0.0, up + v - k), max(0.0, dn - v - k)
            if up > h or dn > h:
                expected.append(i)
                up = dn = 0.0
        assert mod.OracleCusum._run(z, delta, False) == expected
        assert len(expected) > 3
