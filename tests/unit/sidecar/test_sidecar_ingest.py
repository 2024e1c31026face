"""Ingest (validate -> admit -> account), the key cap, the bounded queue and the engine worker with the
real Engine."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
import orjson

from driftwatch.detect import Engine
from driftwatch.detect.engine import OVERFLOW_KEY
from driftwatch.sidecar.admission import Admission
from driftwatch.sidecar.dedup import Dedup
from driftwatch.sidecar.events import DriftEvents, EventLog
from driftwatch.sidecar.ingest import Ingest, IngestCounters
from driftwatch.sidecar.queue import Queue
from driftwatch.sidecar.settings import Limits
from driftwatch.sidecar.validate import ArrayBatch, Validator
from driftwatch.sidecar.watermark import Watermarks
from driftwatch.sidecar.worker import Applied, EngineWorker
from driftwatch.vocab.spec import MonitorSpec

NOW = 1_800_000_000.0


@dataclass
class Parts:
    """The ingest side of a sidecar, wired as runtime.Runtime wires it."""

    ingest: Ingest
    validator: Validator
    queue: Queue
    worker: EngineWorker
    counters: IngestCounters
    events: list = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.worker.engine

    async def drain(self) -> None:
        await self.worker.flush()


def make(limits: Limits | None = None, max_keys: int = 3) -> Parts:
    """Call inside a running loop (the queue and the worker make asyncio objects)."""
    limits = limits or Limits()
    spec = MonitorSpec.parse(
        {
            "features": [{"name": "lat", "type": "numeric"}, {"name": "plan", "type": "categorical"}],
            "keys": {"maxKeys": max_keys},
        }
    )
    v = Validator(spec)
    q = Queue(limits.queue_capacity, limits.max_batch, limits.batch_interval)
    counters = IngestCounters()
    events: list = []

    def applied(a: Applied) -> None:
        counters.applied(a.ingested, a.failed)
        events.extend(a.events)

    worker = EngineWorker(Engine(spec, name="t"), q, applied)
    worker.start()
    ingest = Ingest(v, Admission(limits, spec.keys.max_keys, q), counters)
    ingest.accepting = True  # as the runtime opens it once started
    return Parts(ingest, v, q, worker, counters, events)


def run(test):
    """Run ``test(parts)`` with parts made by ``make(**kw)``; the worker is closed whatever happens."""

    def runner(**kw):
        async def main() -> None:
            p = make(**kw)
            try:
                await test(p)
            finally:
                await p.worker.close()

        asyncio.run(main())

    return runner


def test_admit_dedups_folds_keys_over_the_cap_and_rejects_late() -> None:
    async def body(p: Parts) -> None:
        out = p.ingest.submit(
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
        # the key cap is the engine's (contracts.md section 2): "d", the 4th key of a cap of 3, is
        # folded into __overflow__, not rejected (it was rejected as too_many_keys before issue 9)
        assert out.accepted == 4
        assert [r["reason"] for r in out.rejected] == ["duplicate"]
        doc = {"samples": [{"feature": "lat", "value": 1, "key": "a", "ts": NOW - 60, "id": "x"}]}
        out = p.ingest.submit(doc, NOW)
        assert out.accepted == 0
        assert out.rejected[0]["reason"] == "duplicate"
        out = p.ingest.submit({"samples": [{"feature": "lat", "value": 1, "key": "a", "ts": NOW - 60}]}, NOW)
        assert out.accepted == 0
        assert out.rejected[0]["reason"] == "late"
        assert p.counters.rejected == {"duplicate": 2, "late": 1}
        assert p.queue.depth == 4
        await p.drain()
        assert sorted(s.key for s in p.engine.streams()) == [OVERFLOW_KEY, "a", "b", "c"]
        assert p.engine.overflowed == 1  # what replay's Engine counts for the same input
        assert p.counters.ingested[("lat", OVERFLOW_KEY)] == 1

    run(body)(limits=Limits(allowed_lateness=10.0))


def test_queue_full_admits_nothing_and_the_worker_applies_in_batches() -> None:
    async def body(p: Parts) -> None:
        sizes: list[int] = []
        p.worker.on_applied, record = (
            lambda a: (sizes.append(sum(a.ingested.values())), record(a)),
            p.worker.on_applied,
        )
        assert p.ingest.admit(ArrayBatch({"lat": np.full(500, 10.0)}), NOW).accepted == 500
        out = p.ingest.admit(ArrayBatch({"lat": np.full(501, 10.0)}), NOW)
        assert out.full is not None
        assert out.full.retry_after >= 1
        assert p.counters.rejected["queue_full"] == 501
        assert p.ingest.submit({"samples": [{"feature": "plan", "value": "a"}] * 400}, NOW).accepted == 400
        await p.drain()
        assert sizes == [900]  # requests merge into one chunk until max_batch, applied as one step
        assert p.queue.depth == 0
        assert p.counters.ingested == {("lat", ""): 500, ("plan", ""): 400}
        streams = {s.feature: s for s in p.engine.streams()}
        assert streams["lat"].samples == 500
        assert streams["plan"].type == "categorical"

    run(body)(limits=Limits(queue_capacity=1000, max_batch=600))


def test_queue_full_counts_the_batch_and_its_validation_rejections() -> None:
    """Every source takes this path (the Redis stream skipped the validation rejections before)."""

    async def body(p: Parts) -> None:
        doc = {"samples": [{"feature": "lat", "value": v} for v in (1.0, 2.0, 3.0, "x")]}
        out = p.ingest.submit(doc, NOW)
        assert out.full is not None
        assert out.full.waiting == 0
        assert p.counters.rejected == {"queue_full": 3, "wrong_type": 1}

    run(body)(limits=Limits(queue_capacity=2))


def test_drift_events_flow_out_of_the_worker() -> None:
    async def body(p: Parts) -> None:
        rng = np.random.default_rng(0)
        p.ingest.admit(ArrayBatch({"lat": rng.normal(100, 10, 3000)}), NOW)
        await p.drain()
        p.ingest.admit(ArrayBatch({"lat": rng.normal(200, 10, 500)}), NOW)
        await p.drain()
        assert [e.type for e in p.events][:1] == ["DRIFT_START"]

    run(body)()


def test_wait_applied_and_wait_room() -> None:
    async def body(p: Parts) -> None:
        assert p.ingest.admit(ArrayBatch({"lat": np.ones(10)}), NOW).accepted == 10
        seq = p.queue.last_seq
        assert not p.queue.has_room(1)
        await asyncio.wait_for(p.queue.wait_room(5), 2)
        await asyncio.wait_for(p.queue.wait_applied(seq), 2)
        assert p.queue.applied_seq >= seq

    run(body)(limits=Limits(queue_capacity=10, batch_interval=0.01))


def test_engine_errors_are_counted_not_raised() -> None:
    async def body(p: Parts) -> None:
        await p.worker.call(lambda e: e.update("lat", np.array([1.0, 2.0])))
        p.queue.add(("lat", ""), ["x", "y"], [NOW, NOW])  # strings into the numeric stream
        p.queue.commit(2)
        await p.drain()
        assert p.counters.rejected["wrong_type"] == 2
        assert p.worker.errors == 1

    run(body)()


def test_reads_run_between_chunks_and_views_are_cached_per_engine_change() -> None:
    from driftwatch.sidecar.views import StreamViews

    async def body(p: Parts) -> None:
        views = StreamViews(p.worker)
        p.ingest.admit(ArrayBatch({"lat": np.full(50, 3.0)}), NOW)
        await p.drain()
        rows = await views.rows()
        assert [(r.feature, r.state) for r in rows] == [("lat", "Initializing")]
        assert await views.rows() is rows  # no engine change: the same view
        assert views.phase() == "Initializing"
        p.ingest.admit(ArrayBatch({"lat": np.full(5, 3.0)}), NOW)
        await p.drain()
        assert await views.rows() is not rows
        status = orjson.loads(orjson.dumps({"streams": await views.status_json()}))
        assert status["streams"][0]["samples"] == 55
        # call_with: the capture is taken when the job starts, after every applied chunk is merged
        p.ingest.admit(ArrayBatch({"lat": np.full(7, 3.0)}), NOW)
        got = await p.worker.call_with(
            lambda: dict(p.counters.ingested), lambda e, c: (e.streams()[0].samples, c[("lat", "")])
        )
        assert got[0] == got[1]

    run(body)()


def test_concurrent_reads_share_one_build_expensive_rows_are_reused_status_stays_exact() -> None:
    """A scrape storm must not cost the engine a view per scrape (issue 12): concurrent readers join
    the build under way; rows that were expensive to build serve scrapes for a while after an engine
    change; the status read is exact whatever the rows do."""
    from driftwatch.sidecar.views import StreamViews

    async def body(p: Parts) -> None:
        views = StreamViews(p.worker)
        p.ingest.admit(ArrayBatch({"lat": np.full(50, 3.0)}), NOW)
        await p.drain()
        got = await asyncio.gather(*(views.rows() for _ in range(8)))
        assert views.builds == 1
        assert all(r is got[0] for r in got)

        # every build counts as expensive and stays usable "forever": only status rebuilds
        lazy = StreamViews(p.worker, cheap=0.0, reuse=1e9)
        rows = await lazy.rows()
        p.ingest.admit(ArrayBatch({"lat": np.full(5, 3.0)}), NOW)
        await p.drain()
        assert await lazy.rows() is rows
        assert lazy.builds == 1
        status = orjson.loads(orjson.dumps(await lazy.status_json()))
        assert status[0]["samples"] == 55
        assert lazy.builds == 2
        assert await lazy.rows() is not rows  # the status build is the newest view: rows follow it

    run(body)()


def test_a_tight_loop_of_reads_does_not_starve_the_chunks() -> None:
    """Jobs queued while the worker runs jobs wait for the next chunk: before, the worker drained jobs
    until none were left, and a few readers in a loop (a scrape storm) kept the chunks from the
    engine for as long as they went on."""

    async def body(p: Parts) -> None:
        ran = 0
        stop = False

        async def reader() -> None:
            nonlocal ran
            while not stop and ran < 2000:
                await p.worker.offload(lambda: time.sleep(0.0005))
                ran += 1

        readers = [asyncio.ensure_future(reader()) for _ in range(4)]
        await asyncio.sleep(0.01)  # the readers are looping
        p.ingest.admit(ArrayBatch({"lat": np.full(30, 3.0)}), NOW)
        applied = asyncio.ensure_future(p.queue.wait_applied(p.queue.last_seq))
        await asyncio.wait([applied, *readers], return_when=asyncio.FIRST_COMPLETED)
        reads_until_applied = ran
        stop = True
        await asyncio.gather(*readers)
        assert applied.done(), f"the chunk waited for the readers to stop ({reads_until_applied} reads)"
        assert p.counters.ingested.get(("lat", "")) == 30

    run(body)(limits=Limits(batch_interval=0.001))


def test_close_applies_everything_queued() -> None:
    async def body(p: Parts) -> None:
        p.ingest.admit(ArrayBatch({"lat": np.full(30, 3.0)}), NOW)
        await p.worker.close()
        assert p.counters.ingested[("lat", "")] == 30

    run(body)(limits=Limits(batch_interval=5.0))


def test_dedup_window_and_watermarks_and_event_log() -> None:
    d = Dedup(2)
    for x in "abc":
        d.add(x)
    assert not d.seen("a")
    assert d.seen("b")
    assert d.seen("c")
    assert len(d) == 2
    # lateness itself is admission's (test_admit_dedups_...); the watermarks survive a checkpoint
    w = Watermarks(5.0)
    w.restore({"k": 100, "j": 1.5})
    assert w.to_dict() == {"k": 100.0, "j": 1.5}
    log = EventLog(2)
    for i, t in enumerate(["DRIFT_START", "DRIFT_END", "DRIFT_START"]):
        assert log.add({"id": str(i), "type": t, "feature": "f", "key": "", "timestamp": float(i)})
    assert not log.add({"id": "2", "type": "DRIFT_START"})
    total, page = log.query(type_="DRIFT_START")
    assert total == 1
    assert page[0]["id"] == "2"
    assert log.query(since=2.0)[0] == 1
    assert [e["id"] for e in log.query(limit=1, offset=1)[1]] == ["1"]


def test_drift_events_log_count_and_queue_for_redis_once() -> None:
    from driftwatch.detect import DriftEvent

    nudged: list[int] = []
    ev = DriftEvents(10, on_event=lambda: nudged.append(1))
    e = DriftEvent("id1", "DRIFT_START", "lat", "", 5, None, "cusum", 0.9, "critical")
    ev.record([e, e])
    ev.record([e])
    assert len(ev.log) == 1
    assert ev.counts == {("lat", "", "DRIFT_START", "cusum"): 1}  # reason: the alarming detector
    assert len(ev.outbox) == 1
    assert nudged == [1]


def test_admit_column_dedups_the_batch_folds_keys_and_drops_late_values() -> None:
    async def body(p: Parts) -> None:
        out = p.ingest.submit(
            {"feature": "lat", "values": [1.0, 2.0, 3.0], "ts": [NOW, NOW, NOW], "id": "b"}, NOW
        )
        assert out.accepted == 3
        out = p.ingest.submit({"feature": "lat", "values": [1.0, 2.0], "id": "b"}, NOW)
        assert out.accepted == 0
        assert [r["reason"] for r in out.rejected] == ["duplicate", "duplicate"]
        out = p.ingest.submit({"feature": "lat", "values": [1.0, 2.0], "ts": [NOW - 60, NOW - 1]}, NOW)
        assert out.accepted == 1
        assert list(out.rejected) == [
            {"index": 0, "error": "ts[0]: late (allowed lateness 10s)", "reason": "late"}
        ]
        # a key over the cap is folded into __overflow__ (before issue 9: rejected as too_many_keys)
        out = p.ingest.submit({"feature": "lat", "values": [1.0], "key": "other"}, NOW)
        assert out.accepted == 1
        assert list(out.rejected) == []
        await p.drain()
        assert p.counters.ingested[("lat", "")] == 4
        assert p.counters.ingested[("lat", OVERFLOW_KEY)] == 1

    run(body)(limits=Limits(allowed_lateness=10.0), max_keys=1)


def test_a_large_general_body_is_admitted_whole_in_steps_letting_the_loop_in() -> None:
    """A body that takes the general path is validated and admitted in slices of ``SLICE`` samples,
    with other work running in between; it still counts as one batch (its room is held, its ids are
    one set, duplicates across slices are caught) and the answer is the same as all at once."""
    from driftwatch.sidecar.validate import SLICE

    async def body(p: Parts) -> None:
        n = 3 * SLICE + 5
        samples = [{"feature": "lat", "value": float(i), "key": f"k{i % 2}", "id": f"i{i}"} for i in range(n)]
        samples.append({"feature": "lat", "value": 1.0, "key": "k0", "id": "i0"})  # duplicate across slices
        samples.append({"feature": "lat", "value": "x"})
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        out = await p.ingest.receive(orjson.dumps({"samples": samples}), NOW)
        t.cancel()
        assert ticks >= 6  # the loop ran other work while the body was validated and admitted
        assert out.accepted == n
        assert [(r["index"], r["reason"]) for r in out.rejected] == [(n + 1, "wrong_type"), (n, "duplicate")]
        assert p.queue.depth == n  # the held room was given back, the samples queued once
        await p.drain()
        assert p.counters.ingested == {("lat", "k0"): (n + 1) // 2, ("lat", "k1"): n // 2}

    run(body)(limits=Limits(queue_capacity=10 * SLICE))


def test_a_categorical_column_then_single_samples_of_the_same_stream_share_a_chunk() -> None:
    """The column's ts part is an array; appending a request's list of times to it raised (a 500) and
    left the chunk's values and times of different lengths."""

    async def body(p: Parts) -> None:
        assert p.ingest.submit({"feature": "plan", "values": ["a", "b"]}, NOW).accepted == 2
        assert (
            p.ingest.submit({"samples": [{"feature": "plan", "value": "c", "ts": NOW}] * 2}, NOW).accepted
            == 2
        )
        assert p.ingest.submit({"feature": "lat", "values": [1.0, 2.0]}, NOW).accepted == 2
        p.queue.add_one(("lat", ""), 3.0, NOW)
        p.queue.commit(1)
        await p.drain()
        assert p.counters.rejected == {}
        assert p.counters.ingested == {("plan", ""): 4, ("lat", ""): 3}

    run(body)()


def test_the_worker_survives_a_chunk_that_breaks_and_goes_on_applying() -> None:
    """A chunk part the engine cannot even measure (here: not a sequence) raised outside the per-stream
    guard and ended the worker task silently: every later flush waited forever, every request got 429."""

    async def body(p: Parts) -> None:
        p.queue.add(("lat", ""), 5, 5)  # type: ignore[arg-type]
        p.queue.commit(1)
        await asyncio.wait_for(p.drain(), 5)
        assert p.ingest.submit({"samples": [{"feature": "lat", "value": 1.0}] * 3}, NOW).accepted == 3
        await asyncio.wait_for(p.drain(), 5)
        assert p.counters.ingested == {("lat", ""): 3}
        assert p.counters.rejected == {"engine_error": 1}
        assert p.worker.failures["update"] == 1

    run(body)()


def test_a_stream_that_keeps_failing_on_its_state_is_reset() -> None:
    from driftwatch.sidecar.worker import RESET_AFTER

    async def body(p: Parts) -> None:
        rng = np.random.default_rng(1)
        p.ingest.admit(ArrayBatch({"lat": rng.normal(100, 10, 500)}), NOW)
        await p.drain()

        def damage(engine: Engine) -> None:  # what a damaged checkpoint could leave behind
            engine._streams[("", "lat")].monitor = None  # type: ignore[assignment]

        await p.worker.call(damage, changes=True)
        for _ in range(RESET_AFTER):
            p.ingest.admit(ArrayBatch({"lat": rng.normal(100, 10, 10)}), NOW)
            await p.drain()
        assert p.worker.failures["stream_reset"] == 1
        assert p.counters.rejected["engine_error"] == 10 * RESET_AFTER
        p.ingest.admit(ArrayBatch({"lat": rng.normal(100, 10, 10)}), NOW)
        await p.drain()
        assert p.counters.ingested[("lat", "")] == 510
        (stream,) = p.engine.streams()
        assert stream.samples == 10  # learning again

    run(body)()


def test_a_general_batchs_numeric_streams_are_queued_as_arrays() -> None:
    """The body's float objects are not kept in the queue until the chunk is applied (docs/decisions.md
    §32): a numeric stream's values from a general batch go in as one float64 array, a categorical
    stream's as its list of str; the engine gets the same values either way."""

    async def body(p: Parts) -> None:
        doc = [{"key": "a", "values": {"lat": 1.5 + i, "plan": "p" if i % 2 else "q"}} for i in range(4)]
        out = p.ingest.submit(doc, NOW)
        assert out.accepted == 8
        groups = p.queue._open.groups
        lat, plan = groups[("lat", "a")], groups[("plan", "a")]
        assert isinstance(lat.values[0], np.ndarray)
        assert lat.values[0].tolist() == [1.5, 2.5, 3.5, 4.5]
        assert lat.ts[0].tolist() == [NOW] * 4
        assert plan.values == [["q", "p", "q", "p"]]
        await p.drain()
        got = {s.feature: s.samples for s in p.engine.streams()}
        assert got == {"lat": 4, "plan": 4}

    run(body)()
