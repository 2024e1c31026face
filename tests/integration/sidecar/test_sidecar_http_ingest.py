"""Each ingest path of a real sidecar process: HTTP (envelope, wide, list, NDJSON, telemetry), scraping a
real prometheus-client app, and the Redis stream with XREADGROUP/XACK."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from sidecar_helpers import baseline_samples

from driftwatch.vocab.rediskeys import MonitorKeys, monitor_prefix

pytestmark = pytest.mark.integration

#: the rejection summary of a 202 that rejected nothing
NONE = {"rejectedCount": 0, "rejectedReasons": {}}


def test_http_shapes_are_accepted_and_applied(sidecar_factory) -> None:
    sc = sidecar_factory()
    # envelope
    r = sc.post(
        {
            "samples": [
                {"feature": "latency_ms", "value": 101.5},
                {"feature": "plan", "value": "gold", "key": "k1"},
            ]
        }
    )
    assert r.status == 202, r.body
    assert r.json() == {"accepted": 2, "rejected": [], **NONE}
    # one wide object, and a list mixing wide and single-sample objects
    r = sc.post(
        {"key": "k1", "ts": time.time(), "id": "w-1", "values": {"latency_ms": 156.7, "plan": "premium"}}
    )
    assert r.json() == {"accepted": 2, "rejected": [], **NONE}
    r = sc.post([{"values": {"payload_kb": 3.5}}, {"feature": "latency_ms", "value": 99, "key": "k2"}])
    assert r.json() == {"accepted": 2, "rejected": [], **NONE}
    # NDJSON of either shape
    nd = b'{"feature": "latency_ms", "value": 1.0}\n\n{"values": {"plan": "basic", "payload_kb": 2}}\n'
    r = sc.post(None, raw=nd, Content_Type="application/x-ndjson")
    assert r.json() == {"accepted": 3, "rejected": [], **NONE}
    # telemetry shape: key = service_id
    r = sc.post(
        [{"service_id": "checkout", "latency_ms": 12.5, "payload_kb": 4.0, "timestamp": time.time()}],
        path="/v1/telemetry",
    )
    assert r.json() == {"accepted": 2, "rejected": [], **NONE}

    # batched: a list of plain wide objects (validated as arrays), and NDJSON telemetry with a bad line
    r = sc.post([{"values": {"latency_ms": 100.0 + i, "payload_kb": 2.0}} for i in range(40)])
    assert r.json() == {"accepted": 80, "rejected": [], **NONE}
    nd = b'{"service_id": "cart", "latency_ms": 3, "payload_kb": 1}\n{oops\n'
    r = sc.post(None, path="/v1/telemetry", raw=nd, Content_Type="application/x-ndjson")
    assert r.json()["accepted"] == 2
    assert [x["index"] for x in r.json()["rejected"]] == [1]

    def applied() -> bool:
        return sc.metric("driftwatch_samples_ingested_total") == 93

    sc.wait_for(applied, what="93 samples applied")
    assert sc.metric("driftwatch_samples_ingested_total", feature="latency_ms", key="checkout") == 1
    assert sc.metric("driftwatch_samples_ingested_total", feature="plan", key="k1") == 2
    s = sc.stream("plan", "k1")
    assert s is not None
    assert s["samples"] == 2
    assert s["state"] == "Initializing"
    assert sc.metric("driftwatch_ingest_latency_seconds_count") == 7


def test_scrape_a_prometheus_client_app(sidecar_factory, free_port) -> None:
    """An app instrumented with prometheus-client, unchanged: counter -> rate, gauge -> value, histogram
    -> the interval's distribution from bucket deltas."""
    reg = CollectorRegistry()
    requests = Counter("http_requests", "requests", ["endpoint"], registry=reg)
    inflight = Gauge("inflight_requests", "in flight", registry=reg)
    latency = Histogram("request_latency_seconds", "latency", buckets=(0.05, 0.1, 0.2, 0.5), registry=reg)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    try:
        scrape = {
            "url": f"http://127.0.0.1:{port}/metrics",
            "interval": 0.3,
            "metrics": ["http_requests_total", "inflight_requests", "request_latency_seconds"],
            "keyLabel": "endpoint",
        }
        sc = sidecar_factory(spec={"features": [], "keys": {"maxKeys": 20}}, ingest={"scrape": scrape})
        inflight.set(7)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            requests.labels(endpoint="/pay").inc(30)
            for _ in range(40):
                latency.observe(0.15)
            time.sleep(0.1)
            streams = {(s["feature"], s["key"]): s for s in sc.status()["streams"]}
            if all(
                k in streams and streams[k]["samples"] >= 2
                for k in [
                    ("http_requests_total", "/pay"),
                    ("inflight_requests", ""),
                    ("request_latency_seconds", ""),
                ]
            ):
                break
        else:
            raise AssertionError(f"scraped streams missing: {sc.status()['streams']}")
        assert streams[("request_latency_seconds", "")]["type"] == "numeric"
        # histogram: the 0.15 s observations land in the (0.1, 0.2] bucket -> samples at its midpoint
        assert streams[("request_latency_seconds", "")]["samples"] >= 40
        assert sc.metric("driftwatch_samples_rejected_total") == 0
        assert sc.metric("driftwatch_scrapes_total", result="ok") >= 2
    finally:
        server.shutdown()
        thread.join(5)


def test_redis_stream_is_read_and_acked_after_apply(sidecar_factory, redis_server) -> None:
    sc = sidecar_factory(redis_url=redis_server.url)
    r = redis_server.client()
    key = "driftwatch:{shop:payments}:ingest"
    body = {"samples": [{"feature": "latency_ms", "value": float(v)} for v in range(50)]}
    for _ in range(3):
        r.xadd(key, {"samples": json.dumps(body)})
    r.xadd(key, {"samples": "{not json"})  # rejected, acked (never redelivered forever)

    def done() -> bool:
        groups = r.xinfo_groups(key)
        return (
            bool(groups)
            and groups[0]["pending"] == 0
            and groups[0]["last-delivered-id"] is not None
            and (sc.metric("driftwatch_samples_ingested_total", feature="latency_ms") == 150)
        )

    sc.wait_for(done, what="stream entries applied and acked")
    assert sc.metric("driftwatch_samples_rejected_total", reason="invalid_json") == 1
    info = r.xinfo_groups(key)[0]
    assert info["name"] == b"driftwatch"
    assert info["pending"] == 0


def test_redis_stream_counts_every_rejection_like_http(sidecar_factory, redis_server) -> None:
    """The stream goes through the same ingest entry as HTTP: an entry that can never fit the queue is
    counted as queue_full *and* its invalid samples by their reason (before issue 9 the stream path
    skipped the latter)."""
    sc = sidecar_factory(redis_url=redis_server.url, limits={"queueCapacity": 10})
    r = redis_server.client()
    key = MonitorKeys(monitor_prefix("driftwatch", "shop", "payments")).ingest
    body = {"samples": [{"feature": "latency_ms", "value": float(v)} for v in range(19)]}
    body["samples"].append({"feature": "latency_ms", "value": "slow"})
    r.xadd(key, {"samples": json.dumps(body)})
    r.xadd(key, {"nothing": "here"})

    def done() -> bool:
        groups = r.xinfo_groups(key)
        return bool(groups) and groups[0]["pending"] == 0 and groups[0]["entries-read"] == 2

    sc.wait_for(done, what="stream entries handled and acked")
    assert sc.metric("driftwatch_samples_rejected_total", reason="queue_full") == 19
    assert sc.metric("driftwatch_samples_rejected_total", reason="wrong_type") == 1
    assert sc.metric("driftwatch_samples_rejected_total", reason="invalid_shape") == 1


def test_drift_is_detected_from_http_samples(sidecar_factory) -> None:
    """Baseline, then a large mean shift: a DRIFT_START event, a Drifting stream, metrics that say so."""
    sc = sidecar_factory()
    for i in range(0, 600, 200):
        assert sc.post({"samples": baseline_samples(200, seed=i)}).status == 202
    sc.wait_for(lambda: (sc.stream("latency_ms") or {}).get("state") == "Stable", what="Stable baseline")
    for i in range(5):
        assert sc.post({"samples": baseline_samples(200, mean=200.0, seed=100 + i)}).status == 202
    sc.wait_for(lambda: (sc.stream("latency_ms") or {}).get("state") == "Drifting", what="Drifting")
    events = sc.get("/v1/events?type=DRIFT_START&feature=latency_ms").json()
    assert events["total"] >= 1
    assert events["events"][0]["feature"] == "latency_ms"
    assert sc.status()["phase"] == "Drifting"
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    assert sc.get(f"/v1/events?since={hour_ago}&limit=1").json()["total"] >= 1
    assert sc.get(f"/v1/events?since={time.time() + 60}").json()["total"] == 0
    assert sc.get("/v1/events?key=nope").json()["events"] == []
    assert sc.get("/v1/events?limit=0").status == 400
    assert sc.metric("driftwatch_drift_state", feature="latency_ms", state="Drifting") == 1
    assert sc.metric("driftwatch_drift_events_total", type="DRIFT_START") >= 1
    assert sc.metric("driftwatch_drift_score", feature="latency_ms") > 0.2
