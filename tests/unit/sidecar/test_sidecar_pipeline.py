"""Admission (dedup, key cap, lateness), the bounded queue and batching into the real Engine."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from driftwatch.config import MonitorSpec
from driftwatch.detect import Engine
from driftwatch.sidecar.dedup import Dedup
from driftwatch.sidecar.events import EventLog
from driftwatch.sidecar.parse import Validator
from driftwatch.sidecar.pipeline import Pipeline, QueueFull
from driftwatch.sidecar.settings import Limits
from driftwatch.sidecar.watermark import Watermarks

NOW = 1_800_000_000.0


def make(limits: Limits | None = None, max_keys: int = 3) -> tuple[Pipeline, Validator, list]:
    spec = MonitorSpec.parse(
        {"features": [{"name": "lat", "type": "numeric"}, {"name": "plan", "type": "categorical"}]}
    )
    v = Validator(spec)
    events: list = []
    p = Pipeline(Engine(spec, name="t"), limits or Limits(), max_keys, v.types, events.extend)
    return p, v, events


def run(coro):  # a Pipeline makes asyncio.Events: give it a loop
    return asyncio.run(coro)


def test_admit_dedups_caps_keys_and_rejects_late() -> None:
    async def body() -> None:
        p, v, _ = make(Limits(allowed_lateness=10.0))
        acc, rej = v.body(
            {
                "samples": [
                    {"feature": "lat", "value": 1, "key": "a", "id": "x", "ts": NOW},
                    {"feature": "lat", "value": 1, "key": "a", "id": "x", "ts": NOW},
                    {"feature": "lat", "value": 1, "key": "b"},
                    {"feature": "lat", "value": 1, "key": "c"},
                    {"feature": "lat", "value": 1, "key": "d"},
                ]
            },
            NOW,
        )
        assert p.admit(acc, rej, NOW) == 3
        assert [r["reason"] for r in rej] == ["duplicate", "too_many_keys"]
        acc, rej = v.body(
            {"samples": [{"feature": "lat", "value": 1, "key": "a", "ts": NOW - 60, "id": "x"}]}, NOW
        )
        assert p.admit(acc, rej, NOW) == 0
        assert rej[0]["reason"] == "duplicate"
        acc, rej = v.body({"samples": [{"feature": "lat", "value": 1, "key": "a", "ts": NOW - 60}]}, NOW)
        assert p.admit(acc, rej, NOW) == 0
        assert rej[0]["reason"] == "late"
        assert p.rejected == {"duplicate": 2, "too_many_keys": 1, "late": 1}
        assert p.depth == 3

    run(body())


def test_queue_full_admits_nothing_and_step_applies_in_batches() -> None:
    async def body() -> None:
        p, v, _ = make(Limits(queue_capacity=1000, max_batch=600))
        p.admit_arrays({"lat": np.full(500, 10.0)}, NOW)
        with pytest.raises(QueueFull) as e:
            p.admit_arrays({"lat": np.full(501, 10.0)}, NOW)
        assert e.value.retry_after >= 1
        acc, rej = v.body({"samples": [{"feature": "plan", "value": "a"}] * 400}, NOW)
        assert p.admit(acc, rej, NOW) == 400
        assert p.step() == 900  # whole chunks until max_batch is reached
        assert p.depth == 0
        assert p.ingested == {("lat", ""): 500, ("plan", ""): 400}
        streams = {s.feature: s for s in p.engine.streams()}
        assert streams["lat"].samples == 500
        assert streams["plan"].type == "categorical"

    run(body())


def test_drift_events_flow_out_of_step() -> None:
    async def body() -> None:
        p, _, events = make()
        rng = np.random.default_rng(0)
        p.admit_arrays({"lat": rng.normal(100, 10, 3000)}, NOW)
        p.drain()
        p.admit_arrays({"lat": rng.normal(200, 10, 500)}, NOW)
        p.drain()
        assert [e.type for e in events][:1] == ["DRIFT_START"]

    run(body())


def test_wait_applied_and_wait_room() -> None:
    async def body() -> None:
        p, _, _ = make(Limits(queue_capacity=10, batch_interval=0.01))
        task = asyncio.create_task(p.run())
        seq = p.enqueue({("lat", ""): ([[1.0] * 10], [[NOW] * 10])}, 10)
        assert not p.has_room(1)
        await asyncio.wait_for(p.wait_room(5), 2)
        await asyncio.wait_for(p.wait_applied(seq), 2)
        assert p.applied_seq >= seq
        task.cancel()

    run(body())


def test_engine_errors_are_counted_not_raised() -> None:
    async def body() -> None:
        p, _, _ = make()
        p.types["lat"] = "categorical"  # force strings into the engine's numeric stream after it exists
        p.engine.update("lat", np.array([1.0, 2.0]))
        p.enqueue({("lat", ""): ([["x", "y"]], [[NOW, NOW]])}, 2)
        p.step()
        assert p.rejected["wrong_type"] == 2

    run(body())


def test_dedup_window_and_watermarks_and_event_log() -> None:
    d = Dedup(2)
    for x in "abc":
        d.add(x)
    assert not d.seen("a")
    assert d.seen("b")
    assert d.seen("c")
    assert len(d) == 2
    w = Watermarks(5.0)
    w.advance("k", 100.0)
    assert w.late_by("k", 94.0) == pytest.approx(1.0)
    assert w.late_by("k", 96.0) < 0
    assert w.late_by("other", 0.0) == 0
    assert Watermarks(None).late_by("k", 0.0) == 0
    log = EventLog(2)
    for i, t in enumerate(["DRIFT_START", "DRIFT_END", "DRIFT_START"]):
        assert log.add({"id": str(i), "type": t, "feature": "f", "key": "", "timestamp": float(i)})
    assert not log.add({"id": "2", "type": "DRIFT_START"})
    total, page = log.query(type_="DRIFT_START")
    assert total == 1
    assert page[0]["id"] == "2"
    assert log.query(since=2.0)[0] == 1
    assert [e["id"] for e in log.query(limit=1, offset=1)[1]] == ["1"]


def test_admit_column_dedups_the_batch_caps_keys_and_drops_late_values() -> None:
    async def body() -> None:
        p, v, _ = make(Limits(allowed_lateness=10.0), max_keys=1)
        rej: list = []
        col = v.column(
            {"feature": "lat", "values": [1.0, 2.0, 3.0], "ts": [NOW, NOW, NOW], "id": "b"}, NOW, rej
        )
        assert p.admit_column(col, rej, NOW) == 3
        rej = []
        col = v.column({"feature": "lat", "values": [1.0, 2.0], "id": "b"}, NOW, rej)
        assert p.admit_column(col, rej, NOW) == 0
        assert [r["reason"] for r in rej] == ["duplicate", "duplicate"]
        rej = []
        col = v.column({"feature": "lat", "values": [1.0, 2.0], "ts": [NOW - 60, NOW - 1]}, NOW, rej)
        assert p.admit_column(col, rej, NOW) == 1
        assert rej == [{"index": 0, "error": "ts[0]: late (allowed lateness 10s)", "reason": "late"}]
        rej = []
        col = v.column({"feature": "lat", "values": [1.0], "key": "other"}, NOW, rej)
        assert p.admit_column(col, rej, NOW) == 0
        assert rej[0]["reason"] == "too_many_keys"
        p.drain()
        assert p.ingested[("lat", "")] == 4

    run(body())
