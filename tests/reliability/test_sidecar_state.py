"""Checkpoints under faults, with a real Redis and real sidecar processes: a replacement pod starts from
the monitor's newest checkpoint; a corrupt or partial checkpoint degrades, is counted, and is replaced
by the next good one (issue 12).

Each failed before its fix: a Deployment's replacement pod (a new name) restored nothing and learnt
every baseline again; a corrupt checkpoint was only logged (no metric), a damaged stream in it was
restored as it was.
"""

from __future__ import annotations

import json

import pytest

from driftwatch.vocab.rediskeys import MonitorKeys

pytestmark = pytest.mark.integration
pytest_plugins = ["sidecar_rel"]

KEYS = MonitorKeys.of("driftwatch", "shop", "payments")
HOUR = {"checkpointInterval": "1h", "publishInterval": "1h"}


def baseline(sc, n: int = 400) -> dict:
    """Learn a Stable baseline of ``latency_ms`` (and a categorical ``plan``)."""
    from sidecar_helpers import baseline_samples

    for i in range(0, n, 200):
        assert sc.post({"samples": baseline_samples(200, seed=i)}).status == 202
    assert sc.post({"feature": "plan", "values": ["gold", "basic"] * 100}).status == 202
    return sc.wait_for(
        lambda: (
            (s := sc.stream("latency_ms")) is not None and s["state"] == "Stable" and s["samples"] == n and s
        ),
        what="Stable baseline",
    )


def restores(sc, result: str) -> float:
    return sc.metric("driftwatch_checkpoint_restores_total", result=result)


def test_a_replacement_pod_starts_from_the_newest_checkpoint_of_the_monitor(sidecar_factory, redis_server):
    r = redis_server.client()
    old = sidecar_factory(pod="web-7d9f-aaaaa", redis_url=redis_server.url, state=HOUR)
    learnt = baseline(old)
    assert old.stop() == 0  # the Deployment replaced it: its checkpoint stays behind
    assert r.zscore(KEYS.checkpoints, "web-7d9f-aaaaa") is not None

    new = sidecar_factory(pod="web-7d9f-bbbbb", config=old.config)
    assert restores(new, "sibling") == 1
    s = new.stream("latency_ms")
    assert s is not None
    assert (s["state"], s["samples"], s["baseline"]) == ("Stable", learnt["samples"], learnt["baseline"])
    assert new.stream("plan") is not None
    # its own metrics start at zero: the old pod's counters are the old pod's
    assert new.metric("driftwatch_samples_ingested_total") == 0
    # and it detects against that baseline at once
    from sidecar_helpers import baseline_samples

    for i in range(5):
        new.post({"samples": baseline_samples(200, mean=200.0, seed=50 + i)})
    new.wait_for(lambda: (new.stream("latency_ms") or {}).get("state") == "Drifting", what="Drifting")
    # its own checkpoint is now the newest: the next replacement starts from that
    assert new.stop() == 0
    assert r.zrevrange(KEYS.checkpoints, 0, 0) == [b"web-7d9f-bbbbb"]


def damaged(good: bytes) -> dict[str, bytes]:
    doc = json.loads(good)
    bad_stream = json.loads(good)
    for st in bad_stream["engine"]["streams"]:
        if st["feature"] == "plan":
            st["state"]["params"] = ["not", "numbers"]  # one unusable stream among good ones
    no_engine = json.loads(good)
    del no_engine["engine"]
    return {
        "truncated": good[: len(good) // 2],
        "not JSON": b"\x00\xff garbage",
        "no engine": json.dumps(no_engine).encode(),
        "one bad stream": json.dumps(bad_stream).encode(),
        "wrong version": json.dumps({**doc, "version": 99}).encode(),
    }


def test_a_corrupt_checkpoint_degrades_is_counted_and_is_replaced(sidecar_factory, redis_server):
    r = redis_server.client()
    first = sidecar_factory(redis_url=redis_server.url, state=HOUR)
    learnt = baseline(first)
    assert first.stop() == 0
    good = r.get(KEYS.checkpoint("pod-0"))
    for name, raw in damaged(good).items():
        r.set(KEYS.checkpoint("pod-0"), raw)
        sc = sidecar_factory(config={**first.config, "state": {"checkpointInterval": "1s"}})
        assert sc.get("/v1/status").status == 200, name
        s = sc.stream("latency_ms")
        if name == "one bad stream":  # the good stream is restored, the bad one learns again
            assert restores(sc, "own") == 1, name
            assert s is not None, name
            assert s["baseline"] == learnt["baseline"], name
            assert sc.stream("plan") is None, name
        else:
            assert restores(sc, "corrupt" if name != "wrong version" else "none") == 1, name
            assert s is None, name
        assert sc.post({"samples": [{"feature": "latency_ms", "value": 1.0}]}).status == 202
        # the next checkpoint replaces the damaged one
        sc.wait_for(
            lambda sc=sc: sc.metric("driftwatch_checkpoints_total", result="ok") >= 2, what="checkpoints"
        )
        assert json.loads(r.get(KEYS.checkpoint("pod-0")))["version"] == 1, name
        assert sc.stop() == 0
        r.set(KEYS.checkpoint("pod-0"), good)


def test_a_corrupt_checkpoint_never_stops_a_configmap_seeded_start(sidecar_factory, redis_server, tmp_path):
    """With ``baseline.mode: fromConfigMap`` a start that half-restored a checkpoint used to seed on top
    of it and exit 2 ("baseline already fitted"): a crash loop for as long as the checkpoint lived."""
    data = tmp_path / "baseline"
    data.mkdir()
    (data / "latency_ms").write_text("\n".join(str(100 + i % 7) for i in range(300)))
    spec = {"baseline": {"mode": "fromConfigMap", "configMap": "ref", "minSamples": 100}}
    sc = sidecar_factory(redis_url=redis_server.url, spec=spec, state={**HOUR, "baselineDir": str(data)})
    assert sc.stop() == 0
    r = redis_server.client()
    r.set(KEYS.checkpoint("pod-0"), r.get(KEYS.checkpoint("pod-0"))[:-40])
    again = sidecar_factory(config=sc.config)
    assert restores(again, "corrupt") == 1
    assert again.stream("latency_ms")["state"] == "Stable"  # seeded from the ConfigMap instead
