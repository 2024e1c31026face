"""Small pure pieces: metric helpers, the OpenAPI document's shape, simulate's traffic shapes."""

from __future__ import annotations

import random

from driftwatch.sidecar.metrics import FastHistogram, mean_std
from driftwatch.sidecar.openapi import document
from driftwatch.sidecar.settings import Settings
from driftwatch.simulate import check_loopback, make_sample, shift


def test_mean_std_reads_engine_summaries() -> None:
    assert mean_std({"kind": "numeric", "moments": {"n": 3, "mean": 2.0, "m2": 2.0}}) == (2.0, 1.0)
    assert mean_std({"mean": 1.0, "std": 0.5}) == (1.0, 0.5)
    assert mean_std({"kind": "categorical", "counts": {}}) == (None, None)
    assert mean_std(None) == (None, None)


def test_fast_histogram_is_cumulative() -> None:
    h = FastHistogram((0.1, 1.0))
    for v in (0.05, 0.5, 5.0, 0.1):
        h.observe(v)
    assert h.buckets() == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert abs(h.sum - 5.65) < 1e-9


def test_openapi_carries_declared_features() -> None:
    s = Settings.parse(
        {"monitor": {"name": "m"}, "spec": {"features": [{"name": "lat", "type": "numeric"}]}}, env={}
    )
    doc = document(s)
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["schemas"]["Sample"]["properties"]["feature"] == {"enum": ["lat"]}
    assert set(doc["paths"]) >= {
        "/v1/samples",
        "/v1/telemetry",
        "/v1/status",
        "/v1/events",
        "/metrics",
        "/readyz",
    }


def test_simulate_shapes_and_loopback_guard() -> None:
    assert shift("normal", 0.9, 0.5) == 0
    assert shift("spike", 0.4, 0.5) == 0
    assert shift("spike", 0.6, 0.5) == 6
    assert 2.9 < shift("creep", 0.75, 0.5) < 3.1
    assert {shift("flap", p / 100, 0.5) for p in range(50, 100)} == {0.0, 6.0}
    rng = random.Random(0)
    before = [make_sample(rng, "plan", "categorical", "category-shift", 0.1, 0.5) for _ in range(2000)]
    after = [make_sample(rng, "plan", "categorical", "category-shift", 0.9, 0.5) for _ in range(2000)]
    assert before.count("enterprise") < 200 < after.count("enterprise")
    assert check_loopback("http://127.0.0.1:8476") is None
    assert check_loopback("http://localhost:8476") is None
    assert "loopback" in (check_loopback("http://10.1.2.3:8476") or "")
    assert check_loopback("ftp://127.0.0.1") is not None
