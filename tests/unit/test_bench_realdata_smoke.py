"""``bench/realdata.py`` on a tiny NAB-layout directory: the tables, the causes and the trade-off curves.

The real series live outside the repository (``../shared/realdata/nab``); the layout is what is tested
here, on a series made for it (a step inside its labelled window).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def nab_dir(root: Path) -> Path:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(10, 1, 3_000), rng.normal(16, 1, 1_000)])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    stamp = [(t0 + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(x.size)]
    (root / "artificialWithAnomaly").mkdir(parents=True)
    (root / "artificialWithAnomaly" / "step.csv").write_text(
        "timestamp,value\n" + "".join(f"{s},{v:.3f}\n" for s, v in zip(stamp, x, strict=True))
    )
    window = [stamp[2_990] + ".000000", stamp[3_300] + ".000000"]
    (root / "windows.json").write_text(json.dumps({"artificialWithAnomaly/step.csv": [window]}))
    return root


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "realdata.py"), *args],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )


@pytest.mark.timeout(300)
def test_tables_and_causes(tmp_path: Path) -> None:
    p = bench("--dir", str(nab_dir(tmp_path / "nab")), "--causes")
    assert p.returncode == 0, p.stderr
    row = next(line for line in p.stdout.splitlines() if line.startswith("DriftWatch"))
    assert row.split()[1] == "1/1"  # the step is found inside its window
    assert "alarms by detector" in p.stdout


@pytest.mark.timeout(300)
def test_frontier_prints_every_setting_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "frontier.png"
    p = bench("--dir", str(nab_dir(tmp_path / "nab")), "--frontier", str(out))
    assert p.returncode == 0, p.stderr
    for method in ("DriftWatch", "PageHinkley", "ADWIN"):
        assert sum(line.startswith(method) for line in p.stdout.splitlines()) >= 6, p.stdout
    assert "best within 1 FA/10k rows" in p.stdout
    assert out.stat().st_size > 10_000
