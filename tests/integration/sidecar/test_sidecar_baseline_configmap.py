"""``baseline.mode: fromConfigMap``: the sidecar seeds baselines from the mounted ConfigMap's files before
serving, and refuses to start (exit 2, naming the data key) when that data is unusable."""

from __future__ import annotations

import json
import random

import pytest
from sidecar_helpers import SidecarProc, baseline_samples, make_config

pytestmark = pytest.mark.integration


def configmap_dir(tmp_path, files: dict[str, str]):
    d = tmp_path / "baseline"
    d.mkdir()
    (d / "..data").mkdir()  # what a ConfigMap volume also contains: must be ignored
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_seeded_baseline_is_stable_before_the_first_sample(sidecar_factory, tmp_path) -> None:
    rng = random.Random(1)
    d = configmap_dir(tmp_path, {"latency_ms": json.dumps([rng.gauss(100, 10) for _ in range(300)])})
    sc = sidecar_factory(
        spec={"baseline": {"mode": "fromConfigMap", "configMap": "payments-baseline"}},
        state={"baselineDir": str(d)},
    )
    s = sc.stream("latency_ms")
    assert s is not None
    assert s["state"] == "Stable"
    for i in range(3):
        sc.post({"samples": baseline_samples(200, mean=200.0, seed=i)})
    sc.wait_for(
        lambda: (sc.stream("latency_ms") or {}).get("state") == "Drifting", what="Drifting vs the seed"
    )


def test_unusable_baseline_data_stops_the_start(tmp_path, free_port) -> None:
    d = configmap_dir(tmp_path, {"latency_ms": "[true, false]"})
    cfg = make_config(free_port(), 0)
    cfg["spec"]["baseline"] = {"mode": "fromConfigMap", "configMap": "payments-baseline"}
    cfg["state"]["baselineDir"] = str(d)
    sc = SidecarProc(cfg, tmp_path / "sc")
    sc.start(wait=False)
    assert sc.proc is not None
    assert sc.proc.wait(30) == 2
    assert "latency_ms" in sc.log.read_text()
