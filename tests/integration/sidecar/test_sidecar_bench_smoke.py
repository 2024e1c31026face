"""``bench/sidecar.py --quick`` runs end to end (real sidecar, empty aiohttp server, wrk) and prints its
one table with every row."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
ROWS = [
    "single sample: requests/s",
    "single sample: p99 latency at saturation",
    "single sample: event-loop stall",
    "samples form, 1,000/body: samples/s",
    "column form, 10,000/body: samples/s",
    "100 x 10-feature wide objects: samples/s",
    "p99 latency at a paced 5,000 requests/s (ms)",
    "start to ready",
    "RSS idle",
    "RSS with 1,000 active streams (MB)",
]


@pytest.mark.timeout(240)
def test_bench_sidecar_quick() -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (bash scripts/install-system-deps.sh)")
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sidecar.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [line for line in p.stdout.splitlines() if line.startswith("| ")]
    for row in ROWS:
        match = [line for line in lines if line.startswith(f"| {row}")]
        assert match, f"row {row!r} missing:\n{p.stdout}"
    single = next(line for line in lines if line.startswith("| single sample: requests/s"))
    assert "non-2xx" not in single  # nothing refused at this load
    streams = next(line for line in lines if line.startswith("| RSS with 1,000"))
    assert "(1000 streams" in streams
