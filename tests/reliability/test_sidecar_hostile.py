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
