"""Every bad input gets its answer (naming the field) and is counted in metrics; nothing good is lost."""

from __future__ import annotations

import http.client
import time

import pytest

from driftwatch.detect.engine import OVERFLOW_KEY

pytestmark = pytest.mark.integration


def rejected_by(sc, reason: str) -> float:
    return sc.metric("driftwatch_samples_rejected_total", reason=reason)


def test_per_sample_rejections_name_the_field(sidecar_factory) -> None:
    sc = sidecar_factory()
    raw = (
        b'{"samples": ['
        b'{"feature": "latency_ms", "value": 1.5},'  # 0 ok
        b'{"feature": "latency_ms", "value": NaN},'  # 1 not finite
        b'{"feature": "latency_ms", "value": Infinity},'  # 2 not finite
        b'{"feature": "latency_ms", "value": 1e999},'  # 3 overflows to inf
        b'{"feature": "latency_ms", "value": "fast"},'  # 4 wrong type
        b'{"feature": "latency_ms", "value": true},'  # 5 wrong type (bool)
        b'{"feature": "plan", "value": 2.5},'  # 6 wrong type (float into categorical)
        b'{"feature": "colour", "value": 1},'  # 7 unknown feature
        b'{"feature": "latency_ms", "value": 1, "key": 7},'  # 8 bad key
        b'{"feature": "latency_ms"},'  # 9 missing value
        b'{"feature": "latency_ms", "value": 2.5, "key": "ok"}'  # 10 ok
        b"]}"
    )
    r = sc.post(None, raw=raw)
    assert r.status == 202, r.body
    doc = r.json()
    assert doc["accepted"] == 2
    by_index = {x["index"]: x for x in doc["rejected"]}
    assert sorted(by_index) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert by_index[1]["reason"] == "not_finite"
    assert by_index[1]["error"].startswith("value:")
    assert by_index[3]["reason"] == "not_finite"
    assert by_index[4]["reason"] == "wrong_type"
    assert "numeric" in by_index[4]["error"]
    assert by_index[5]["reason"] == "wrong_type"
    assert by_index[6]["reason"] == "wrong_type"
    assert by_index[7]["reason"] == "unknown_feature"
    assert "colour" in by_index[7]["error"]
    assert by_index[8]["reason"] == "bad_key"
    assert by_index[8]["error"].startswith("key:")
    assert by_index[9]["reason"] == "missing_field"
    # the two good ones are applied, every bad one counted
    sc.wait_for(lambda: sc.metric("driftwatch_samples_ingested_total") == 2, what="good samples applied")
    assert rejected_by(sc, "not_finite") == 3
    assert rejected_by(sc, "wrong_type") == 3
    assert rejected_by(sc, "unknown_feature") == 1
    assert rejected_by(sc, "bad_key") == 1
    # wide form names values.<feature>
    r = sc.post(None, raw=b'{"values": {"latency_ms": NaN, "plan": "gold"}}')
    assert r.json()["accepted"] == 1
    assert r.json()["rejected"][0]["error"].startswith("values.latency_ms:")


def test_malformed_json_is_400_naming_the_problem(sidecar_factory) -> None:
    sc = sidecar_factory()
    r = sc.post(None, raw=b'{"samples": [{"feature": "latency_ms", "value": 1}')
    assert r.status == 400
    assert "malformed JSON" in r.json()["error"]
    assert "line 1" in r.json()["error"]
    assert sc.post(None, raw=b"").status == 400
    r = sc.post(None, raw=b'"just a string"')
    assert r.status == 400
    assert "must be an object or a list" in r.json()["error"]
    r = sc.post({"samples": {"feature": "x"}})
    assert r.status == 400
    assert r.json()["error"].startswith("samples:")
    # NDJSON: a bad line is rejected alone
    r = sc.post(
        None, raw=b'{"feature": "latency_ms", "value": 1}\n{oops\n', Content_Type="application/x-ndjson"
    )
    assert r.status == 202
    assert r.json()["accepted"] == 1
    assert r.json()["rejected"][0]["index"] == 1
    assert rejected_by(sc, "invalid_json") == 3
    assert rejected_by(sc, "invalid_shape") == 2


def test_oversized_body_is_413(sidecar_factory) -> None:
    sc = sidecar_factory(limits={"bodyLimit": 4096})
    big = {"samples": [{"feature": "latency_ms", "value": 1.0}] * 400}
    r = sc.post(big)
    assert r.status == 413
    assert "4096" in r.json()["error"]
    assert rejected_by(sc, "body_too_large") == 1
    # chunked (no Content-Length): cut off while reading
    conn = http.client.HTTPConnection("127.0.0.1", sc.port, timeout=10)
    conn.request("POST", "/v1/samples", body=iter([b" " * 1024] * 8), encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()
    assert rejected_by(sc, "body_too_large") == 2
    assert sc.post({"samples": [{"feature": "latency_ms", "value": 1.0}]}).status == 202


def test_key_cap_duplicates_and_late_samples(sidecar_factory) -> None:
    sc = sidecar_factory(spec={"keys": {"maxKeys": 3}}, limits={"allowedLateness": "10s"})
    now = time.time()
    old = now - 100
    r = sc.post(
        {"samples": [{"feature": "latency_ms", "value": 1.0, "key": f"k{i}", "ts": old} for i in range(5)]}
    )
    doc = r.json()
    # keys beyond the cap go to __overflow__, as the engine (and so `driftwatch replay`) does; before
    # issue 9 the sidecar rejected them as too_many_keys, so replay and the pod disagreed
    assert doc["accepted"] == 5
    assert doc["rejected"] == []
    sc.wait_for(lambda: sc.stream("latency_ms", OVERFLOW_KEY), what="the overflow stream")
    assert sc.stream("latency_ms", OVERFLOW_KEY)["samples"] == 2
    assert sc.metric("driftwatch_samples_ingested_total", key=OVERFLOW_KEY) == 2
    assert sc.status()["keys"] == 3

    # duplicates: across requests and within one; a wide object's id covers all its values
    assert (
        sc.post({"samples": [{"feature": "latency_ms", "value": 1.0, "key": "k0", "id": "a"}]}).json()[
            "accepted"
        ]
        == 1
    )
    doc = sc.post(
        {"samples": [{"feature": "latency_ms", "value": 1.0, "key": "k0", "id": x} for x in ("a", "b", "b")]}
    ).json()
    assert doc["accepted"] == 1
    assert [x["index"] for x in doc["rejected"]] == [0, 2]
    assert doc["rejected"][0]["reason"] == "duplicate"
    assert (
        sc.post({"key": "k0", "id": 7, "values": {"latency_ms": 1.0, "payload_kb": 2.0}}).json()["accepted"]
        == 2
    )
    assert (
        sc.post({"key": "k0", "id": 7, "values": {"latency_ms": 1.0}}).json()["rejected"][0]["reason"]
        == "duplicate"
    )
    assert rejected_by(sc, "duplicate") == 3

    # lateness is per key: k1 moves to now, k2 stays at now - 100
    assert (
        sc.post({"samples": [{"feature": "latency_ms", "value": 1.0, "key": "k1", "ts": now}]}).json()[
            "accepted"
        ]
        == 1
    )
    doc = sc.post({"samples": [{"feature": "latency_ms", "value": 1.0, "key": "k1", "ts": now - 60}]}).json()
    assert doc["rejected"][0]["reason"] == "late"
    assert doc["rejected"][0]["error"].startswith("ts: late by")
    assert (
        sc.post({"samples": [{"feature": "latency_ms", "value": 1.0, "key": "k1", "ts": now - 5}]}).json()[
            "accepted"
        ]
        == 1
    )
    assert (
        sc.post({"samples": [{"feature": "latency_ms", "value": 1.0, "key": "k2", "ts": now - 60}]}).json()[
            "accepted"
        ]
        == 1
    )
    doc = sc.post(
        {"samples": [{"feature": "latency_ms", "value": 1.0, "key": "k1", "ts": now + 3600}]}
    ).json()
    assert doc["rejected"][0]["reason"] == "bad_ts"
    assert rejected_by(sc, "late") == 1


def test_queue_full_is_429_with_retry_after_and_loses_nothing(sidecar_factory) -> None:
    # a queue of 10 that drains only every 10 s: the second body cannot fit
    sc = sidecar_factory(limits={"queueCapacity": 10, "batchInterval": "10s", "maxBatch": 1000})
    assert sc.post({"samples": [{"feature": "latency_ms", "value": 1.0}] * 8}).json()["accepted"] == 8
    r = sc.post({"samples": [{"feature": "latency_ms", "value": 1.0}] * 5})
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert rejected_by(sc, "queue_full") == 5
    assert sc.metric("driftwatch_queue_depth") == 8
    # SIGTERM drains what was accepted into the engine before exiting 0
    assert sc.stop() == 0


def test_bearer_token(sidecar_factory, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    sc = sidecar_factory(auth={"tokenFile": str(token)})
    one = {"samples": [{"feature": "latency_ms", "value": 1.0}]}
    assert sc.post(one).status == 401
    assert sc.post(one, Authorization="Bearer wrong").status == 401
    assert sc.post(one, Authorization="Bearer s3cret").status == 202
    assert sc.get("/healthz").status == 200
    assert sc.get("/metrics", sc.metrics_port).status == 200


def test_ingest_listens_on_loopback_and_metrics_on_their_own_port(sidecar_factory) -> None:
    sc = sidecar_factory()
    assert sc.config["listen"]["host"] == "127.0.0.1"
    r = sc.get("/metrics", sc.metrics_port)
    assert r.status == 200
    assert b"driftwatch_redis_up" in r.body
    # the metrics port accepts no data
    from sidecar_helpers import http as request

    assert request("POST", f"http://127.0.0.1:{sc.metrics_port}/v1/samples", b"{}").status in (404, 405)
