"""Hostile bodies against a real sidecar process: each gets a 4xx or a 202 naming the field, never a 5xx,
and the sidecar goes on serving, checkpointing and reporting afterwards (issue 12, "Ingest and state").

Each case failed before its fix: 2,000 nested brackets and 400-digit times answered 500; a 1 MiB body
of ``[0,0,...]`` answered 54 MB listing 524k rejections; a lone surrogate accepted as a category made
every later checkpoint, summary and ``/v1/status`` fail.
"""

from __future__ import annotations

import json

import pytest

from driftwatch.vocab.rediskeys import MonitorKeys

pytestmark = pytest.mark.integration
pytest_plugins = ["sidecar_rel"]

DEEP = 2000
BIG = "1" * 400
#: what a 202 lists in full; the rest is counted per reason
EXAMPLES = 100
KEYS = MonitorKeys.of("driftwatch", "shop", "payments")


def answered(r) -> dict:
    assert r.status < 500, (r.status, r.body[:300])
    return r.json()


def test_deeply_nested_bodies_are_400_or_a_rejected_line(sidecar_factory) -> None:
    sc = sidecar_factory()
    deep = b"[" * DEEP + b"]" * DEEP
    for body in (deep, b'{"samples":' + deep + b"}", b'{"values":{"latency_ms":' + deep + b"}}"):
        r = sc.post(None, raw=body)
        assert r.status == 400, (r.status, r.body[:200])
        assert "nested deeper than" in r.json()["error"]
    # NDJSON: the deep line is rejected on its own, the good line is taken
    nd = b'{"feature": "latency_ms", "value": 1}\n' + deep + b"\n"
    doc = answered(sc.post(None, raw=nd, Content_Type="application/x-ndjson"))
    assert doc["accepted"] == 1
    assert [(x["index"], x["reason"]) for x in doc["rejected"]] == [(1, "invalid_json")]
    assert "nested deeper than" in doc["rejected"][0]["error"]
    assert sc.get("/v1/status").status == 200


def test_huge_integers_as_times_and_ids_are_rejected_naming_the_field(sidecar_factory) -> None:
    sc = sidecar_factory()
    cases = [
        ("/v1/samples", '{"samples":[{"feature":"latency_ms","value":1,"ts":%s}]}', "ts:"),
        ("/v1/samples", '{"key":"a","ts":%s,"values":{"latency_ms":1}}', "ts:"),
        ("/v1/samples", '{"feature":"latency_ms","values":[1,2],"ts":[%s,1]}', "ts[0]:"),
        ("/v1/samples", '{"feature":"latency_ms","values":[1,2],"ts":%s}', "ts:"),
        ("/v1/samples", '{"samples":[{"feature":"latency_ms","value":1,"id":%s}]}', "id:"),
        ("/v1/samples", '{"samples":[{"feature":"latency_ms","value":%s}]}', "value:"),
        ("/v1/telemetry", '{"service_id":"a","latency_ms":1,"payload_kb":1,"timestamp":%s}', "timestamp:"),
    ]
    for path, template, field in cases:
        doc = answered(sc.post(None, raw=(template % BIG).encode(), path=path))
        assert doc["rejected"], (template, doc)
        assert doc["rejected"][0]["error"].startswith(field), (template, doc)
    assert sc.get("/v1/status").status == 200


def test_a_megabyte_of_bad_values_is_answered_with_a_summary(sidecar_factory) -> None:
    sc = sidecar_factory()
    n = (1024 * 1024 - 2) // 2
    rss0 = sc.metric("process_resident_memory_bytes")
    for body, ct in (
        (b"[" + b",".join([b"0"] * n) + b"]", "application/json"),
        (b"0\n" * n, "application/x-ndjson"),
    ):
        r = sc.post(None, raw=body, Content_Type=ct)
        doc = answered(r)
        assert r.status == 202
        assert len(r.body) < 64 * 1024  # was 54 MB listing every rejection
        assert doc["accepted"] == 0
        assert doc["rejectedCount"] == n
        assert doc["rejectedReasons"] == {"invalid_shape": n}
        assert len(doc["rejected"]) == EXAMPLES
        assert [x["index"] for x in doc["rejected"]] == list(range(EXAMPLES))
    grown = sc.metric("process_resident_memory_bytes") - rss0
    assert grown < 100e6, f"RSS grew by {grown / 1e6:.0f} MB"  # was ~250 MB of heap per body
    assert sc.metric("driftwatch_samples_rejected_total", reason="invalid_shape") == 2 * n


def test_invalid_text_is_rejected_and_reporting_goes_on(sidecar_factory, redis_server) -> None:
    sc = sidecar_factory(redis_url=redis_server.url)
    bad = [
        b'{"samples":[{"feature":"plan","value":"\\ud800"}]}',
        b'{"samples":[{"feature":"plan","value":"gold","key":"\\udfff"}]}',
        b'{"samples":[{"feature":"plan","value":"gold","id":"x\\ud800"}]}',
        b'{"values":{"plan":"a\\udc00b"}}',
        b'{"feature":"plan","values":["ok","\\ud800"]}',
        b'{"service_id":"\\ud800","latency_ms":1,"payload_kb":1}',
    ]
    fields = ["value:", "key:", "id:", "values.plan:", "values[1]:", "service_id:"]
    for body, field in zip(bad, fields, strict=True):
        path = "/v1/telemetry" if b"service_id" in body else "/v1/samples"
        doc = answered(sc.post(None, raw=body, path=path))
        assert doc["rejected"], body
        assert doc["rejected"][0]["error"].startswith(field), doc
        assert "text" in doc["rejected"][0]["error"], doc
    assert sc.post({"samples": [{"feature": "plan", "value": "gold"}]}).status == 202
    assert sc.get("/v1/status").status == 200
    ok = sc.metric("driftwatch_checkpoints_total", result="ok")
    sc.wait_for(
        lambda: sc.metric("driftwatch_checkpoints_total", result="ok") > ok + 1, what="checkpoints go on"
    )
    assert sc.metric("driftwatch_checkpoints_total", result="error") == 0
    doc = json.loads(redis_server.client().get(KEYS.checkpoint("pod-0")))
    assert ["plan", "", 2] in doc["sidecar"]["ingested"]  # "gold", and "ok" of the column


# --- OTLP (POST /v1/metrics) -----------------------------------------------------------------------------

OTLP_SPEC = {"ingest": {"otlp": {"metrics": {"lat": "latency_ms"}}}}
PROTO = {"Content_Type": "application/x-protobuf"}


def _ld(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (numbers below 16)."""
    out, n = bytearray([number << 3 | 2]), len(payload)
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def _field(message: object, name: str) -> int:
    return message.DESCRIPTOR.fields_by_name[name].number  # type: ignore[attr-defined]


def _status(r) -> object:
    from google.rpc import status_pb2

    assert r.status < 500, (r.status, r.body[:300])
    return status_pb2.Status.FromString(r.body)


def test_otlp_gzip_bomb_is_413_after_bounded_inflation(sidecar_factory) -> None:
    """256 MiB of zeros in a 256 KiB gzip body: inflated in bounded steps, refused once past the body
    limit (1 MiB), memory unmoved; a body that is not gzip at all is a 400."""
    import zlib

    sc = sidecar_factory(spec=OTLP_SPEC)
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    bomb = b"".join(gz.compress(chunk) for _ in range(256)) + gz.flush()
    assert len(bomb) < 300_000
    rss0 = sc.metric("process_resident_memory_bytes")
    r = sc.post(None, path="/v1/metrics", raw=bomb, Content_Encoding="gzip", **PROTO)
    assert r.status == 413, (r.status, r.body[:200])
    assert "over the limit" in _status(r).message
    grown = sc.metric("process_resident_memory_bytes") - rss0
    assert grown < 50e6, f"RSS grew by {grown / 1e6:.0f} MB"
    r = sc.post(None, path="/v1/metrics", raw=b"not gzip at all", Content_Encoding="gzip", **PROTO)
    assert r.status == 400, (r.status, r.body[:200])
    assert "content-encoding" in _status(r).message
    # the JSON route too (it answered 500 before)
    r = sc.post(None, raw=b"not gzip at all", Content_Encoding="gzip")
    assert r.status == 400, (r.status, r.body[:200])
    assert "content-encoding" in r.json()["error"]
    assert sc.metric("driftwatch_samples_rejected_total", reason="body_too_large") == 1
    assert sc.get("/v1/status").status == 200


def test_otlp_deeply_nested_protobuf_is_400(sidecar_factory) -> None:
    """An attribute value nested 2,000 arrays deep (AnyValue in ArrayValue in AnyValue ...): the
    decoder's depth limit refuses it as a 400 Status, never a recursion crash."""
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as svc
    from opentelemetry.proto.common.v1 import common_pb2 as common
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    sc = sidecar_factory(spec=OTLP_SPEC)
    value = b""
    for _ in range(DEEP):
        value = _ld(_field(common.AnyValue, "array_value"), _ld(_field(common.ArrayValue, "values"), value))
    kv = _ld(_field(common.KeyValue, "key"), b"k") + _ld(_field(common.KeyValue, "value"), value)
    point = _ld(_field(m.NumberDataPoint, "attributes"), kv)
    metric = _ld(_field(m.Metric, "name"), b"lat") + _ld(
        _field(m.Metric, "gauge"), _ld(_field(m.Gauge, "data_points"), point)
    )
    body = _ld(
        _field(svc.ExportMetricsServiceRequest, "resource_metrics"),
        _ld(_field(m.ResourceMetrics, "scope_metrics"), _ld(_field(m.ScopeMetrics, "metrics"), metric)),
    )
    r = sc.post(None, path="/v1/metrics", raw=body, **PROTO)
    assert r.status == 400, (r.status, r.body[:200])
    assert "protobuf" in _status(r).message
    deep_json = b'{"resourceMetrics":' + b"[" * DEEP + b"]" * DEEP + b"}"
    r = sc.post(None, path="/v1/metrics", raw=deep_json)
    assert r.status == 400
    assert "nested deeper than" in r.json()["message"]
    assert sc.get("/v1/status").status == 200


def test_otlp_wrong_types_are_400_naming_the_field_or_ignored(sidecar_factory) -> None:
    sc = sidecar_factory(spec=OTLP_SPEC)
    point = (
        '{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"lat","gauge":{"dataPoints":[%s]}}]}]}]}'
    )
    for body, needle in (
        (point % '{"asDouble": "abc"}', "asDouble"),
        (point % '{"asInt": 1.5}', "asInt"),
        (point % ('{"timeUnixNano": "' + BIG + '"}'), "timeUnixNano"),
        ('{"resourceMetrics": "x"}', "resourceMetrics"),
        ("[1, 2]", "JSON object"),
        ('{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": 7}]}]}]}', "name"),
    ):
        r = sc.post(None, path="/v1/metrics", raw=body.encode())
        assert r.status == 400, (body, r.status, r.body[:300])
        assert needle in r.json()["message"], (body, r.json())
    # protobuf with a field of the wrong wire type: skipped as an unknown field (nothing taken), or
    # refused as corrupt -- a 200 or a 400, never a 5xx
    for raw in (b"\x08\x01", b"\x0a\x05\x12\x03\x08\x01", b"\xff" * 64):
        r = sc.post(None, path="/v1/metrics", raw=raw, **PROTO)
        assert r.status in (200, 400), (raw, r.status)
    assert sc.metric("driftwatch_samples_ingested_total") == 0
    assert sc.get("/v1/status").status == 200


def test_otlp_nan_and_infinite_points_are_partial_success_naming_the_field(sidecar_factory) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    )

    sc = sidecar_factory(spec=OTLP_SPEC)
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="lat")
    for v in (float("nan"), 12.0, float("inf"), -1e200):
        metric.gauge.data_points.add(as_double=v)
    r = sc.post(None, path="/v1/metrics", raw=req.SerializeToString(), **PROTO)
    assert r.status == 200, (r.status, r.body[:200])
    partial = ExportMetricsServiceResponse.FromString(r.body).partial_success
    assert partial.rejected_data_points == 3
    assert "metric 'lat'" in partial.error_message
    assert "gauge.data_points[0].as_double: must be finite" in partial.error_message
    assert "data_points[2]" in partial.error_message
    assert sc.metric("driftwatch_samples_rejected_total", reason="not_finite") == 3
    sc.wait_for(lambda: sc.metric("driftwatch_samples_ingested_total", feature="latency_ms") == 1)
