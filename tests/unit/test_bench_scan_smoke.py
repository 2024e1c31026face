"""``bench/scan.py --quick --no-evidently`` runs and prints its one table with every row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "seconds: 20 numeric",
    "the machine today: np.sort",
    "seconds: 20 categorical (50 categories)",
    "clean scans flagging anything",
    "scans flagging a 0.01 sd shift",
    "scans detecting a 0.1 sd shift",
    "... and flagging a clean feature",
]


@pytest.mark.timeout(300)
def test_bench_scan_quick() -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scan.py"), "--quick", "--no-evidently"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "DriftWatch scan" in lines[0]
    assert "scipy loop" in lines[0]
    for row in ROWS:
        [line] = [x for x in lines if row in x]
        assert len(line.strip("|").split("|")) == 3  # label + two methods
    assert "[scan bench" in p.stderr  # progress on stderr only
    tiny = next(x for x in lines if "0.01 sd shift" in x)
    assert tiny.split("|")[2].strip() == "0/1"  # below the effect floor: never flagged
