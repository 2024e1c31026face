"""OTLP ingest with a real app: ``otel_app.py`` uses ``opentelemetry-sdk`` and its OTLP/HTTP exporter
the ordinary way, unmodified, configured only by ``OTEL_*`` environment variables (endpoint, export
interval, temporality, histogram aggregation, the bearer token in OTEL_EXPORTER_OTLP_METRICS_HEADERS),
exporting to a real sidecar process.

The counts are exact: every observation the app recorded becomes one sample (``maxSamples`` is above
an export's count), with delta temporality and with cumulative -- where the sidecar, started before
the app as in a pod, takes the first reading of a series that began after it as all interval.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from sidecar_helpers import SidecarProc, http

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("otel_app.py")
TOKEN = "otlp-test-token"
OTLP = {
    "metrics": {
        "http.server.request.duration": "latency_ms",
        "http.server.requests": "rps",
        "http.server.active_requests": "active",
        "cpu.temperature": "cpu.temperature",
    },
    "keyAttribute": "http.route",
    "maxSamples": 100_000,
}
FEATURES = [{"name": f, "type": "numeric"} for f in ("latency_ms", "rps", "active", "cpu.temperature")]


def otlp_sidecar(sidecar_factory: Any, tmp_path: Path) -> SidecarProc:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    return sidecar_factory(
        spec={"features": FEATURES, "keys": {"maxKeys": 20}, "ingest": {"otlp": OTLP}},
        auth={"tokenFile": str(token)},
    )


def run_app(sc: SidecarProc, *phases: str, token: str = TOKEN, **otel: str) -> dict[str, int]:
    """The app, pointed at the sidecar by environment variables only; returns its observations per route."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{sc.url}/v1/metrics",
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": f"Authorization=Bearer%20{token}",
        "OTEL_SERVICE_NAME": "checkout",
        **otel,
    }
    args = [arg for p in phases for arg in ("--phase", p)]
    out = subprocess.run(
        [sys.executable, str(APP), *args], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    recorded: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return recorded


def ingested(sc: SidecarProc, feature: str, key: str) -> float:
    return sc.metric("driftwatch_samples_ingested_total", feature=feature, key=key)


def streams(sc: SidecarProc) -> dict[tuple[str, str], dict[str, Any]]:
    r = http("GET", f"{sc.url}/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200, r.body
    return {(s["feature"], s["key"]): s for s in r.json()["streams"]}


@pytest.mark.parametrize(
    ("temporality", "aggregation"),
    [("cumulative", "explicit_bucket_histogram"), ("delta", "base2_exponential_bucket_histogram")],
)
def test_an_sdk_app_exports_to_the_sidecar(
    sidecar_factory: Any, tmp_path: Path, temporality: str, aggregation: str
) -> None:
    sc = otlp_sidecar(sidecar_factory, tmp_path)
    recorded = run_app(
        sc,
        "100:1.5",
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=temporality,
        OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=aggregation,
    )
    # every observation, one sample each, in the stream of its route (the data point's http.route)
    for route, n in recorded.items():
        sc.wait_for(lambda r=route, n=n: ingested(sc, "latency_ms", r) == n, what=f"{n} samples of {route}")
    assert sc.metric("driftwatch_samples_rejected_total") == 0
    got = streams(sc)
    for route in recorded:
        lat = got[("latency_ms", route)]["current"]["moments"]
        assert 50 < lat["mean"] < 150  # normal(100, 10), rebuilt from buckets
        assert got[("rps", route)]["samples"] >= 1  # a rate per export
        rps = got[("rps", route)]["current"]["moments"]
        assert rps["min"] >= 0
        assert rps["max"] > 0
        assert got[("active", route)]["current"]["moments"]["max"] == 0  # a level: +1 then -1
    assert got[("cpu.temperature", "/pay")]["current"]["moments"]["min"] >= 40  # a gauge
    assert ("latency_ms", "") not in got  # no sample without its key


def test_answers_are_otlp_shapes(sidecar_factory: Any, tmp_path: Path) -> None:
    """Without the token: 401 with a google.rpc.Status, in the request's encoding; a wrong content
    type is 415; an unusable data point is a 200 whose partial_success names metric and field."""
    sc = otlp_sidecar(sidecar_factory, tmp_path)
    body = ExportMetricsServiceRequest().SerializeToString()
    r = http("POST", f"{sc.url}/v1/metrics", body, {"Content-Type": "application/x-protobuf"})
    assert r.status == 401
    assert status_pb2.Status.FromString(r.body).code == code_pb2.UNAUTHENTICATED
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = http("POST", f"{sc.url}/v1/metrics", b"{}", {"Content-Type": "application/json"})
    assert (r.status, r.json()["code"]) == (401, code_pb2.UNAUTHENTICATED)
    r = http("POST", f"{sc.url}/v1/metrics", b"x", {"Content-Type": "text/plain", **auth})
    assert r.status == 415
    assert "Content-Type" in status_pb2.Status.FromString(r.body).message
    r = http("POST", f"{sc.url}/v1/metrics", body, {"Content-Type": "application/x-protobuf", **auth})
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/x-protobuf"
    assert not ExportMetricsServiceResponse.FromString(r.body).HasField("partial_success")
    nan = (
        b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"cpu.temperature","gauge":{"dataPoints":'
        b'[{"asDouble":"NaN"},{"asDouble":41.5}]}}]}]}]}'
    )
    r = http("POST", f"{sc.url}/v1/metrics", nan, {"Content-Type": "application/json", **auth})
    assert r.status == 200
    partial = r.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1"  # int64 is a string in protobuf's JSON
    assert "metric 'cpu.temperature'" in partial["errorMessage"]
    assert "gauge.data_points[0].as_double: must be finite" in partial["errorMessage"]
    assert sc.metric("driftwatch_samples_rejected_total", reason="not_finite") == 1
    sc.wait_for(lambda: ingested(sc, "cpu.temperature", "") == 1, what="the good data point")


def test_openapi_lists_the_route_only_when_configured(sidecar_factory: Any, tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    plain = sidecar_factory()
    assert "/v1/metrics" not in plain.get("/openapi.json").json()["paths"]
    assert plain.post(None, path="/v1/metrics", raw=b"{}").status == 404  # no route without spec.ingest.otlp
    sc = otlp_sidecar(sidecar_factory, tmp_path)
    op = sc.get("/openapi.json").json()["paths"]["/v1/metrics"]["post"]
    assert set(op["requestBody"]["content"]) == {"application/x-protobuf", "application/json"}
    assert "http.server.request.duration -> latency_ms" in op["description"]
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for body, status in ((b"{}", 200), (b"{nope", 400), (b'{"resourceMetrics": 1}', 400)):
        r = http("POST", f"{sc.url}/v1/metrics", body, auth)
        assert r.status == status
        Draft202012Validator(op["responses"][str(status)]["content"]["application/json"]["schema"]).validate(
            r.json()
        )
    r = http("POST", f"{sc.url}/v1/metrics", b"{}", {"Content-Type": "application/json"})
    assert str(r.status) in op["responses"]


def _gauges(*routes: str) -> bytes:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="cpu.temperature")
    for r in routes:
        metric.gauge.data_points.add(
            as_double=40.0, attributes=[KeyValue(key="http.route", value=AnyValue(string_value=r))]
        )
    return req.SerializeToString()


def test_keys_share_the_cap_and_a_full_queue_is_429_with_retry_after(sidecar_factory: Any) -> None:
    """Keys past ``spec.keys.maxKeys`` fold into ``__overflow__`` as on every route; an export that
    does not fit the queue is refused whole with 429, Retry-After and a Status -- the SDK retries."""
    otlp = {"keys": {"maxKeys": 2}, "ingest": {"otlp": OTLP}}
    sc = sidecar_factory(spec={"features": FEATURES, **otlp})
    proto = {"Content-Type": "application/x-protobuf"}
    r = http("POST", f"{sc.url}/v1/metrics", _gauges("/a", "/b", "/c", "/d"), proto)
    assert r.status == 200, r.body
    sc.wait_for(lambda: sc.metric("driftwatch_samples_ingested_total", feature="cpu.temperature") == 4)
    keys = {k for f, k in sc_streams(sc) if f == "cpu.temperature"}
    assert keys == {"/a", "/b", "__overflow__"}

    small = sidecar_factory(spec={"features": FEATURES, **otlp}, limits={"queueCapacity": 3})
    r = http("POST", f"{small.url}/v1/metrics", _gauges("/a", "/b", "/c", "/d"), proto)
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert status_pb2.Status.FromString(r.body).code == code_pb2.RESOURCE_EXHAUSTED
    assert small.metric("driftwatch_samples_rejected_total", reason="queue_full") == 4
    r = http("POST", f"{small.url}/v1/metrics", _gauges("/a", "/b"), proto)  # one that fits
    assert r.status == 200


def sc_streams(sc: SidecarProc) -> set[tuple[str, str]]:
    return {(s["feature"], s["key"]) for s in sc.status()["streams"]}
