"""``/openapi.json`` matches what the server really does: every documented route answers with a documented
status and a body valid against the documented schema, and the request schemas accept exactly the
bodies the server accepts whole."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sidecar_helpers import http

pytestmark = pytest.mark.integration


def validator(doc: dict[str, Any], schema_name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    )


def test_every_documented_route_responds_as_documented(sidecar_factory) -> None:
    sc = sidecar_factory(limits={"bodyLimit": 2048})
    doc = sc.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    examples = {
        "/v1/samples": {"samples": [{"feature": "latency_ms", "value": 1.0}]},
        "/v1/telemetry": {"service_id": "svc", "latency_ms": 1.0, "payload_kb": 2.0},
    }
    checked = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            r = sc.get(path) if method == "get" else sc.post(examples[path], path=path)
            assert str(r.status) in op["responses"], (path, r.status)
            content = op["responses"][str(r.status)].get("content", {})
            if "application/json" in content:
                ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                validator(doc, ref).validate(r.json())
            elif "text/plain" in content:
                assert r.headers["Content-Type"].startswith("text/plain")
            checked += 1
            if method == "post":  # the documented error answers, with their schema
                bad = sc.post(None, path=path, raw=b"{nope")
                assert bad.status == 400
                validator(doc, "Error").validate(bad.json())
                big = sc.post(None, path=path, raw=b" " * 4096)
                assert big.status == 413
                assert "413" in op["responses"]
                validator(doc, "Error").validate(big.json())
    assert checked == 8
    r = sc.get("/v1/events?type=BOGUS")
    assert r.status == 400
    assert "400" in doc["paths"]["/v1/events"]["get"]["responses"]


def _cases(now: float) -> list[Any]:
    s = lambda **kw: {"feature": "latency_ms", "value": 1.0, **kw}  # noqa: E731
    return [
        {"samples": [s()]},
        {"samples": [s(key="a", ts=now, id="c1"), {"feature": "plan", "value": "gold"}]},
        {"samples": [{"feature": "plan", "value": 3}]},  # int category: accepted as "3"
        {"samples": [{"feature": "plan", "value": 2.5}]},
        {"samples": [s(value="fast")]},
        {"samples": [s(value=True)]},
        {"samples": [s(value=None)]},
        {"samples": [{"feature": "latency_ms"}]},
        {"samples": [s(feature="colour")]},
        {"samples": [s(key=5)]},
        {"samples": [s(key="k" * 200)]},
        {"samples": [s(key="tab\there")]},
        {"samples": [s(id="")]},
        {"samples": [s(id=[1])]},
        {"samples": [s(ts=-5)]},
        {"samples": [s(ts="yesterday")]},
        {"samples": [s(ts="2026-01-01T00:00:00+00:00")]},
        {"samples": ["not an object"]},
        {"samples": {"feature": "latency_ms"}},
        {"values": {"latency_ms": 1.5, "plan": "premium"}, "key": "b", "id": "c2"},
        {"values": {}},
        {"values": {"colour": 1}},
        {"values": {"latency_ms": "slow"}},
        {"values": [1, 2]},
        [{"values": {"payload_kb": 1}}, s(id=17)],
        [s(), "x"],
        [],
        {"feature": "latency_ms", "values": [1.0, 2, 3.5], "key": "col", "id": "c3"},
        {"feature": "latency_ms", "values": [1.0, 2.0], "ts": [now - 1, now]},
        {"feature": "latency_ms", "values": [1.0, 2.0], "ts": now},
        {"feature": "plan", "values": ["a", "b", 3]},
        {"feature": "latency_ms", "values": [1.0, "x"]},
        {"feature": "latency_ms", "values": [1.0, True]},
        {"feature": "latency_ms", "values": []},
        {"feature": "latency_ms", "values": [1.0], "ts": [-1]},
        {"feature": "colour", "values": [1.0]},
        {"feature": "latency_ms", "values": [1.0], "key": 3},
        [{"feature": "latency_ms", "values": [1.0]}],
        "just a string",
        42,
        {"something": "else"},
    ]


def test_request_schema_accepts_and_rejects_like_the_server(sidecar_factory) -> None:
    sc = sidecar_factory(limits={"allowedLateness": None})  # lateness is state, not shape
    doc = sc.get("/openapi.json").json()
    v = validator(doc, "SamplesBody")
    mismatches = []
    for i, body in enumerate(_cases(time.time())):
        r = sc.post(body)
        server_ok = r.status == 202 and r.json()["rejected"] == []
        schema_ok = v.is_valid(body)
        if server_ok != schema_ok:
            mismatches.append((i, body, r.status, r.body[:200], schema_ok))
    assert not mismatches, mismatches
    # beyond what a schema can say (documented in the description): ts as long as values
    r = sc.post({"feature": "latency_ms", "values": [1.0], "ts": [time.time()] * 2})
    assert r.json()["rejected"][0]["reason"] == "bad_ts"

    t = validator(doc, "TelemetryBody")
    tele = [
        {"service_id": "svc", "latency_ms": 1.0, "payload_kb": 2.0},
        [{"service_id": "svc", "latency_ms": 1, "payload_kb": 2, "timestamp": time.time()}],
        {"service_id": "", "latency_ms": 1.0, "payload_kb": 2.0},
        {"service_id": "svc", "latency_ms": "x", "payload_kb": 2.0},
        {"service_id": "svc", "latency_ms": 1.0},
        {"latency_ms": 1.0, "payload_kb": 2.0},
    ]
    for body in tele:
        r = sc.post(body, path="/v1/telemetry")
        assert (r.status == 202 and r.json()["rejected"] == []) == t.is_valid(body), (body, r.body)


def test_openapi_document_is_served_as_json(sidecar_factory) -> None:
    sc = sidecar_factory()
    r = http("GET", f"{sc.url}/openapi.json")
    assert r.headers["Content-Type"].startswith("application/json")
    json.loads(r.body)
