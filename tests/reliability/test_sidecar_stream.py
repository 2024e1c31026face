"""The Redis ingest stream under faults, with a real Redis and real sidecar processes: a poison entry,
entries left pending by a dead consumer, an entry that kills whoever takes it (issue 12).

Each failed before its fix: one bad entry wedged the consumer (entries before it re-applied on every
retry, entries after it never read); entries pending on a dead pod's consumer stayed there forever.
"""

from __future__ import annotations

import json
import time

import pytest

from driftwatch.vocab.rediskeys import INGEST_GROUP, MonitorKeys

pytestmark = pytest.mark.integration
pytest_plugins = ["sidecar_rel"]

KEYS = MonitorKeys.of("driftwatch", "shop", "payments")
DEEP = b"[" * 2000 + b"]" * 2000


def entry(first: int, n: int) -> dict[str, str]:
    """An entry of ``n`` samples with ids ``s{first}``...: a redelivery would show as duplicates."""
    return {
        "samples": json.dumps(
            {"samples": [{"feature": "latency_ms", "value": 1.0, "id": f"s{first + i}"} for i in range(n)]}
        )
    }


def settled(r, sc, applied: int) -> bool:
    """``applied`` samples in the engine and nothing pending in the group any more."""
    groups = r.xinfo_groups(KEYS.ingest)
    return (
        bool(groups)
        and groups[0]["pending"] == 0
        and sc.metric("driftwatch_samples_ingested_total", feature="latency_ms") == applied
    )


def dead_letters(r) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in r.xrange(KEYS.ingest_dead)]


def test_a_poison_entry_goes_to_the_dead_letter_stream_and_the_rest_flows(sidecar_factory, redis_server):
    r = redis_server.client()
    r.xadd(KEYS.ingest, entry(0, 10))
    poison = r.xadd(KEYS.ingest, {"samples": DEEP})
    r.xadd(KEYS.ingest, {"samples": b"x" * 5000})  # over the body limit of this sidecar
    r.xadd(KEYS.ingest, entry(10, 10))
    sc = sidecar_factory(redis_url=redis_server.url, limits={"bodyLimit": 4096})
    sc.wait_for(lambda: settled(r, sc, 20), what="20 samples applied, nothing pending")
    time.sleep(1.5)  # a wedged reader would re-apply the first entry meanwhile (all 10 are duplicates)
    assert sc.metric("driftwatch_samples_ingested_total", feature="latency_ms") == 20
    assert sc.metric("driftwatch_samples_rejected_total", reason="duplicate") == 0
    dead = dead_letters(r)
    assert [(d[b"entry"], d[b"reason"]) for d in dead] == [
        (poison, b"invalid_json"),
        (dead[1][b"entry"], b"body_too_large"),
    ]
    assert dead[0][b"samples"] == DEEP  # kept to be looked at or replayed
    assert b"nested deeper" in dead[0][b"error"]
    assert b"samples" not in dead[1]  # larger than the body limit: not copied
    assert dead[1][b"consumer"] == b"pod-0"
    assert sc.metric("driftwatch_ingest_dead_letters_total", reason="invalid_json") == 1
    assert sc.metric("driftwatch_ingest_dead_letters_total", reason="body_too_large") == 1


def test_entries_pending_on_a_dead_consumer_are_claimed(sidecar_factory, redis_server):
    r = redis_server.client()
    r.xgroup_create(KEYS.ingest, INGEST_GROUP, id="0", mkstream=True)
    # an entry a pod took five times, dying each time (a restart re-reads its pending entries): a
    # poison that kills the process
    killer = r.xadd(KEYS.ingest, entry(100, 1))
    for i in range(5):
        r.xreadgroup(INGEST_GROUP, "killed-pod", {KEYS.ingest: "0" if i else ">"})
    # three a pod took once and died before acknowledging any
    for i in range(3):
        r.xadd(KEYS.ingest, entry(10 * i, 10))
    assert len(r.xreadgroup(INGEST_GROUP, "gone-pod", {KEYS.ingest: ">"})[0][1]) == 3
    sc = sidecar_factory(
        redis_url=redis_server.url, ingest={"redisStream": {"claimIdle": 2, "maxDeliveries": 5}}
    )
    sc.wait_for(lambda: settled(r, sc, 30), what="the dead pod's 30 samples applied here")
    pending = r.xpending(KEYS.ingest, INGEST_GROUP)
    assert pending["pending"] == 0
    dead = dead_letters(r)
    assert [(d[b"entry"], d[b"reason"]) for d in dead] == [(killer, b"redelivered")]
    assert sc.metric("driftwatch_ingest_dead_letters_total", reason="redelivered") == 1
    assert sc.metric("driftwatch_ingest_claimed_total") == 4
    # the dead consumer is gone from the group once it holds nothing
    names = {c["name"] for c in r.xinfo_consumers(KEYS.ingest, INGEST_GROUP)}
    assert b"pod-0" in names
    assert b"gone-pod" not in names
    assert b"killed-pod" not in names
