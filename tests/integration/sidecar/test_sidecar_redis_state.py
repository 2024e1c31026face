"""State in a real Redis: SIGTERM checkpoints, a restart restores the baseline, a Redis outage degrades to
memory (readyz + driftwatch_redis_up 0) and the sidecar catches up when Redis returns."""

from __future__ import annotations

import json
import time

import pytest
from sidecar_helpers import baseline_samples

pytestmark = pytest.mark.integration

P = "driftwatch:{shop:payments}"


def learn_baseline(sc, n: int = 400) -> dict:
    for i in range(0, n, 200):
        assert sc.post({"samples": baseline_samples(200, seed=i)}).status == 202
    return sc.wait_for(
        lambda: (
            (s := sc.stream("latency_ms")) is not None and s["state"] == "Stable" and s["samples"] == n and s
        ),
        what="Stable baseline",
    )


def test_sigterm_checkpoints_and_restart_restores_baseline(sidecar_factory, redis_server) -> None:
    r = redis_server.client()
    # checkpoints on an hour's interval: only the SIGTERM one can contain the samples
    sc = sidecar_factory(
        redis_url=redis_server.url, state={"checkpointInterval": "1h", "publishInterval": "1h"}
    )
    before = learn_baseline(sc)
    samples_before = before["samples"]
    assert sc.stop() == 0
    doc = json.loads(r.get(f"{P}:checkpoint:pod-0"))
    assert doc["pod"] == "pod-0"
    assert ["latency_ms", "", samples_before] in doc["sidecar"]["ingested"]
    assert "engine" in doc
    summary = json.loads(r.get(f"{P}:summary:pod-0"))
    assert summary["pod"] == "pod-0"
    assert any(s["feature"] == "latency_ms" for s in summary["streams"])
    assert r.zscore(f"{P}:pods", "pod-0") is not None

    # same pod name, fresh process: the baseline is back before any new sample arrives
    sc2 = sidecar_factory(config=sc.config)
    st = sc2.status()
    assert st["redis"]["restored"] is True
    after = sc2.stream("latency_ms")
    assert after is not None
    assert after["state"] == "Stable"
    assert after["samples"] == samples_before
    assert after["baseline"] == before["baseline"]
    assert sc2.metric("driftwatch_samples_ingested_total", feature="latency_ms") == samples_before
    # and it detects against that baseline without relearning
    for i in range(5):
        sc2.post({"samples": baseline_samples(200, mean=200.0, seed=50 + i)})
    sc2.wait_for(
        lambda: (sc2.stream("latency_ms") or {}).get("state") == "Drifting", what="Drifting after restore"
    )


def test_redis_outage_degrades_then_catches_up(sidecar_factory, redis_server) -> None:
    r = redis_server.client()
    sc = sidecar_factory(
        redis_url=redis_server.url, state={"checkpointInterval": "1s", "publishInterval": 0.5}
    )
    assert sc.get("/readyz").json() == {"status": "ok", "redis": "available"}
    assert sc.metric("driftwatch_redis_up") == 1
    learn_baseline(sc)

    redis_server.stop()
    sc.wait_for(lambda: sc.metric("driftwatch_redis_up") == 0, what="redis_up 0")
    ready = sc.get("/readyz")
    assert ready.status == 200  # still ready: the app's pod must not leave its Service over Redis
    assert ready.json() == {"status": "degraded", "redis": "unavailable"}
    assert sc.status()["redis"]["available"] is False
    # keeps serving and detecting in memory; the drift event waits for Redis
    for i in range(5):
        assert sc.post({"samples": baseline_samples(200, mean=200.0, seed=70 + i)}).status == 202
    sc.wait_for(
        lambda: (sc.stream("latency_ms") or {}).get("state") == "Drifting", what="Drifting while degraded"
    )
    total = 1400
    sc.wait_for(lambda: sc.metric("driftwatch_samples_ingested_total") == total, what="all samples applied")

    redis_server.start()  # a new, empty Redis on the same port
    r = redis_server.client()
    sc.wait_for(lambda: sc.metric("driftwatch_redis_up") == 1, what="redis_up 1")
    assert sc.get("/readyz").json()["status"] == "ok"

    def caught_up() -> bool:
        raw = r.get(f"{P}:checkpoint:pod-0")
        return raw is not None and ["latency_ms", "", total] in json.loads(raw)["sidecar"]["ingested"]

    sc.wait_for(caught_up, what="checkpoint with the outage's samples")
    assert r.exists(f"{P}:summary:pod-0")
    assert 0 < r.pttl(f"{P}:summary:pod-0") <= 1500  # TTL 3 x publish interval
    assert r.zscore(f"{P}:pods", "pod-0") is not None
    events = [json.loads(fields[b"event"]) for _, fields in r.xrange(f"{P}:events")]
    assert any(e["type"] == "DRIFT_START" and e["feature"] == "latency_ms" for e in events)
    assert sc.metric("driftwatch_checkpoints_total", result="ok") >= 2


def test_starts_without_redis_then_publishes_when_it_appears(sidecar_factory, redis_server) -> None:
    redis_server.stop()
    sc = sidecar_factory(
        redis_url=redis_server.url, state={"checkpointInterval": "1s", "publishInterval": 0.5}
    )
    assert sc.get("/readyz").json() == {"status": "degraded", "redis": "unavailable"}
    assert sc.metric("driftwatch_redis_up") == 0
    assert sc.post({"samples": baseline_samples(50)}).json()["accepted"] == 50
    redis_server.start()
    r = redis_server.client()
    sc.wait_for(lambda: r.exists(f"{P}:summary:pod-0"), what="summary published after Redis appeared")
    sc.wait_for(lambda: r.exists(f"{P}:checkpoint:pod-0"), what="checkpoint after Redis appeared")
    doc = json.loads(r.get(f"{P}:checkpoint:pod-0"))
    assert ["latency_ms", "", 50] in doc["sidecar"]["ingested"]
    assert time.time() - doc["time"] < 30


def test_drift_event_pushes_summary_and_notifies_at_once(sidecar_factory, redis_server) -> None:
    """A DRIFT_START publishes the summary and ``PUBLISH P:notify pod`` right away, not on the (here
    hour-long) publish interval: the operator's status follows the event within a second or so."""
    r = redis_server.client()
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.psubscribe("driftwatch:*:notify")
    sc = sidecar_factory(
        redis_url=redis_server.url, state={"checkpointInterval": "1h", "publishInterval": "1h"}
    )
    learn_baseline(sc)
    for i in range(5):
        sc.post({"samples": baseline_samples(200, mean=200.0, seed=70 + i)})
    deadline = time.monotonic() + 20
    msg = None
    while msg is None and time.monotonic() < deadline:
        msg = ps.get_message(timeout=1.0)
    assert msg is not None, "no notification after a drift event"
    assert msg["channel"] in (f"{P}:notify", f"{P}:notify".encode())
    assert msg["data"] in ("pod-0", b"pod-0")
    # published in the same MULTI as the summary: whoever hears it reads the drifting summary
    summary = json.loads(r.get(f"{P}:summary:pod-0"))
    assert any(s["feature"] == "latency_ms" and s["state"] == "Drifting" for s in summary["streams"])
    events = [json.loads(f[b"event"]) for _, f in r.xrange(f"{P}:events")]
    assert any(e["type"] == "DRIFT_START" for e in events)
    ps.close()
    assert sc.stop() == 0
