"""A real Prometheus (Debian's binary, private instance, 1 s scrape interval) scraping the sidecar sees
the drift metric flip while ``driftwatch simulate --mode spike`` runs."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import driftwatch

pytestmark = pytest.mark.integration

DRIFTWATCH = str(Path(sys.executable).parent / "driftwatch")


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def query_range(base: str, promql: str, start: float, end: float) -> list[float]:
    params = urllib.parse.urlencode({"query": promql, "start": start, "end": end, "step": "0.5"})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=5) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    result = doc["data"]["result"]
    return [float(v) for _, v in result[0]["values"]] if result else []


@pytest.fixture
def prometheus(tmp_path: Path, free_port):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (bash scripts/install-system-deps.sh)")
    port = free_port()
    targets: list[str] = []

    def start(target: str) -> str:
        targets.append(target)
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: sidecar\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=1).read()
                return base
            except OSError:
                time.sleep(0.2)
        raise RuntimeError((tmp_path / "prometheus.log").read_text())

    procs: list[subprocess.Popen[bytes]] = []
    yield start
    for p in procs:
        p.terminate()
        p.wait(15)


def test_prometheus_sees_drift_flip_during_simulated_spike(sidecar_factory, prometheus) -> None:
    sc = sidecar_factory()
    base = prometheus(f"127.0.0.1:{sc.metrics_port}")
    drifting = 'max(driftwatch_drift_state{job="sidecar",feature="latency_ms",state="Drifting"})'

    start = time.time()
    sim = subprocess.Popen(
        [
            *(
                DRIFTWATCH,
                "simulate",
                "--target",
                sc.url,
                "--mode",
                "spike",
                "--rate",
                "400",
                "--duration",
                "10",
            ),
            *("--change-at", "0.6", "--batch", "20", "--seed", "3", "--quiet"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = sim.communicate(timeout=60)
    assert sim.returncode == 0, err.decode()
    assert b"done in" in err
    # the series as Prometheus recorded it: 0 (baseline, before the spike) then 1 (Drifting)
    values: list[float] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and 1.0 not in values:
        time.sleep(1.0)
        values = query_range(base, drifting, start, time.time())
    assert 0.0 in values, f"Prometheus never saw the stream before the spike: {values}"
    assert 1.0 in values, f"Prometheus never saw Drifting: {values}; sidecar says {sc.stream('latency_ms')}"
    assert values.index(0.0) < values.index(1.0)
    # the rest of the story is there too
    assert float(query(base, "max(driftwatch_drift_score)")[0]["value"][1]) > 0
    assert float(query(base, "sum(driftwatch_drift_events_total)")[0]["value"][1]) >= 1
    assert float(query(base, "sum(driftwatch_samples_ingested_total)")[0]["value"][1]) > 0
    # which build runs, as Prometheus stored it: driftwatch_build_info{version, python_version, git_commit} 1
    (info,) = query(base, "driftwatch_build_info")
    assert info["value"][1] == "1"
    assert info["metric"]["version"] == driftwatch.version()
    assert info["metric"]["python_version"] == platform.python_version()
    assert info["metric"]["git_commit"] == os.environ.get("DRIFTWATCH_GIT_COMMIT", "unknown")
