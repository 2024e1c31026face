"""The sidecar's moving parts wired together: engine, validator, pipeline, events, Redis state.

Redis is optional at every moment. One task watches it: while it answers, checkpoints and summaries
go out on their intervals and drift events are flushed; when it stops answering the sidecar carries
on in memory (``redis_up`` 0); when it comes back, the backlog is flushed and a checkpoint and a
summary are written at once ("catch up"). The checkpoint is restored on start, or on the first
successful connection if the engine has seen nothing yet — so a restarted sidecar keeps its baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from redis.exceptions import RedisError

from driftwatch.sidecar.events import EventLog
from driftwatch.sidecar.metrics import FastHistogram
from driftwatch.sidecar.parse import Validator
from driftwatch.sidecar.pipeline import Pipeline
from driftwatch.sidecar.settings import Settings
from driftwatch.sidecar.store import Store, dumps

T = TypeVar("T")

log = logging.getLogger("driftwatch.sidecar")

CHECKPOINT_VERSION = 1

#: after a drift event the summary goes out at once (plus ``PUBLISH P:notify``), at most this often
PUSH_DEBOUNCE = 0.5


def as_dict(obj: Any) -> dict[str, Any]:
    """A StreamStatus/DriftEvent as a plain dict, whatever the engine hands back."""
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        d: dict[str, Any] = obj.to_dict()
        return d
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(vars(obj))


class Sidecar:
    def __init__(self, settings: Settings) -> None:
        from driftwatch.detect import Engine

        self.settings = settings
        spec = settings.spec
        self.engine_cls = Engine
        self.engine = Engine(spec, name=settings.monitor)
        self.validator = Validator(spec, settings.limits.max_features, settings.limits.max_future)
        self.pipeline = Pipeline(
            self.engine, settings.limits, spec.keys.max_keys, self.validator.types, self._on_events
        )
        self.events = EventLog(settings.limits.events_max)
        self.event_counts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.pending_events: deque[dict[str, Any]] = deque(maxlen=settings.limits.events_max)
        self.latency = FastHistogram()
        self.checkpoints = {"ok": 0, "error": 0}
        self.store = Store(settings.redis_url, settings.prefix, settings.pod) if settings.redis_url else None
        self.redis_up = False
        self.restored = False  # the start-up restore question is settled (checkpoint or none)
        self.restored_checkpoint = False  # a checkpoint was actually loaded
        self.accepting = False
        self.started = time.time()
        self.scraper: Any = None  # scrape.Scraper when ingest.scrape is configured
        self._tasks: list[asyncio.Task[Any]] = []
        self._ingest_tasks: list[asyncio.Task[Any]] = []
        self._redis_kick = asyncio.Event()
        self._push_due = False  # a drift event happened since the last pushed summary
        self._last_push = float("-inf")  # monotonic time of the last pushed summary
        self._streams: list[dict[str, Any]] = []
        self._streams_seq = -1  # pipeline.applied_seq the cached view was taken at

    # --- engine views -----------------------------------------------------------------------------------

    async def snapshot(self, fn: Callable[[], T]) -> T:
        """Run a read of the whole engine (streams, summary, checkpoint) in a thread while the
        pipeline worker is held off. With 1,000 streams such a read takes a few hundred ms: on the
        event loop it would stall every request that long; in a thread, requests keep being served
        (they only enqueue) between the GIL's 5 ms switches."""
        async with self.pipeline.lock:
            return await asyncio.to_thread(fn)

    async def refresh_streams(self) -> list[dict[str, Any]]:
        """engine.streams() as dicts, recomputed only when the engine has changed since last time."""
        seq = self.pipeline.applied_seq
        if seq != self._streams_seq:
            dicts = await self.snapshot(lambda: [as_dict(s) for s in self.engine.streams()])
            self._streams, self._streams_seq = dicts, seq
        return self._streams

    def stream_dicts(self) -> list[dict[str, Any]]:
        """The last view taken by ``refresh_streams`` (the metrics collector runs synchronously)."""
        return self._streams

    def phase(self) -> str:
        states = {s.get("state") for s in self.stream_dicts()}
        if "Drifting" in states:
            return "Drifting"
        if "Stable" in states:
            return "Stable"
        return "Initializing"

    def _on_events(self, events: list[Any]) -> None:
        for ev in events:
            d = as_dict(ev)
            if self.events.add(d):
                self.event_counts[
                    (str(d.get("feature", "")), str(d.get("key", "")), str(d.get("type", "")))
                ] += 1
                self.pending_events.append(d)
                if d.get("type") in ("DRIFT_START", "DRIFT_END"):
                    self._push_due = True
                log.info(
                    "drift event %s feature=%s key=%s score=%.3f",
                    d.get("type"),
                    d.get("feature"),
                    d.get("key"),
                    d.get("score") or 0,
                )
        self._redis_kick.set()

    # --- checkpoint ---------------------------------------------------------------------------------------

    def checkpoint_doc(self) -> dict[str, Any]:
        p = self.pipeline
        return {
            "version": CHECKPOINT_VERSION,
            "pod": self.settings.pod,
            "time": time.time(),
            "engine": self.engine.to_dict(),
            "sidecar": {
                "types": dict(self.validator.types),
                "features": sorted(self.validator.seen),
                "keys": sorted(p.keys),
                "watermarks": p.watermarks.to_dict(),
                "ingested": [[f, k, n] for (f, k), n in p.ingested.items()],
                "rejected": dict(p.rejected),
                "events": [[f, k, t, n] for (f, k, t), n in self.event_counts.items()],
            },
        }

    def restore(self, doc: dict[str, Any]) -> None:
        """Replace the (empty) engine with a checkpoint's; counters continue where they were."""
        engine = self.engine_cls.from_dict(doc["engine"], self.settings.spec, name=self.settings.monitor)
        self.engine = engine
        self.pipeline.engine = engine
        sc = doc.get("sidecar") or {}
        self.validator.types.update(sc.get("types") or {})
        self.validator.seen.update(sc.get("features") or [])
        self.pipeline.keys.update(list(sc.get("keys") or [])[: self.pipeline.max_keys])
        self.pipeline.watermarks.restore(sc.get("watermarks") or {})
        for f, k, n in sc.get("ingested") or []:
            self.pipeline.ingested[(f, k)] += int(n)
        for reason, n in (sc.get("rejected") or {}).items():
            self.pipeline.rejected[reason] += int(n)
        for f, k, t, n in sc.get("events") or []:
            self.event_counts[(f, k, t)] += int(n)
        self._streams_seq = -1
        self.restored = True
        self.restored_checkpoint = True
        log.info(
            "restored checkpoint of %s from %s (%d streams)",
            doc.get("pod"),
            doc.get("time"),
            len(engine.streams()),
        )

    def seed_baseline(self) -> int:
        """``baseline.mode: fromConfigMap``: fit baselines from the mounted ConfigMap's files before
        serving (contracts.md section 2). Raises BaselineDataError / OSError (the caller exits non-zero:
        a pod that cannot read its reference data must not pretend to detect against it)."""
        from driftwatch.detect.baseline_data import parse_baseline_data

        root = Path(self.settings.baseline_dir)
        # a mounted ConfigMap also holds ..data and ..<timestamp> entries (the atomic-update symlinks)
        data = {
            p.name: p.read_text()
            for p in sorted(root.iterdir())
            if not p.name.startswith(".") and p.is_file()
        }
        features = [f.name for f in self.settings.spec.features] or None
        seeded = 0
        for (feature, key), values in parse_baseline_data(data, features).items():
            self.engine.seed_baseline(feature, values, key=key)
            self.pipeline.keys.add(key)
            self.validator.seen.add(feature)
            seeded += len(values)
        for s in self.engine.streams():  # pin undeclared features to the type their seed gave them
            self.validator.types.setdefault(s.feature, s.type)
        self._streams_seq = -1
        log.info("seeded baselines of %d entries (%d values) from %s", len(data), seeded, root)
        return seeded

    # --- Redis ----------------------------------------------------------------------------------------------

    async def _redis_connected(self) -> None:
        """First contact after being down (or at start): restore if still empty, then catch up."""
        assert self.store is not None
        if not self.restored and not self.pipeline.ingested and self.pipeline.depth == 0:
            doc = await self.store.load_checkpoint()
            if doc is not None and doc.get("version") == CHECKPOINT_VERSION:
                try:
                    self.restore(doc)
                except Exception:
                    log.exception("checkpoint at %s is unusable; starting fresh", self.store.checkpoint_key)
            self.restored = True  # nothing to restore counts as restored: never overwrite live state later
        await self.flush_events()
        await self.checkpoint()
        await self.publish(notify=self._push_due)  # events missed while down: tell the operator now
        self._push_due = False

    async def checkpoint(self) -> None:
        if self.store is None:
            return
        try:
            await self.store.save_checkpoint(await self.snapshot(lambda: dumps(self.checkpoint_doc())))
            self.checkpoints["ok"] += 1
        except Exception:
            self.checkpoints["error"] += 1
            raise

    async def publish(self, notify: bool = False) -> None:
        """``P:summary:{pod}`` (and ``P:pods``); ``notify``: also ``PUBLISH P:notify {pod}`` so the
        operator aggregates this monitor now instead of on its next timer round."""
        if self.store is not None:
            summary = await self.snapshot(self.engine.summary)
            await self.store.publish_summary(summary, ttl=3 * self.settings.publish_interval, notify=notify)

    def _push_wait(self) -> float | None:
        """Seconds until a due push may go out (debounced), None when no push is due."""
        if not self._push_due:
            return None
        return max(0.0, self._last_push + PUSH_DEBOUNCE - time.monotonic())

    async def flush_events(self) -> None:
        if self.store is None or not self.pending_events:
            return
        batch = list(self.pending_events)
        await self.store.add_events(batch)
        for _ in batch:
            self.pending_events.popleft()

    async def redis_loop(self) -> None:
        """Health, checkpoints, summaries and event flushing, on one task so they never race."""
        assert self.store is not None
        s = self.settings
        next_cp = time.monotonic() + s.checkpoint_interval
        next_pub = time.monotonic() + s.publish_interval
        tick = min(1.0, s.checkpoint_interval, s.publish_interval)
        while True:
            try:
                await self.store.ping()
                if not self.redis_up:
                    await self._redis_connected()
                    self.redis_up = True
                    log.info("redis available at %s", s.redis_url)
                    now = time.monotonic()
                    next_cp, next_pub = now + s.checkpoint_interval, now + s.publish_interval
                now = time.monotonic()
                await self.flush_events()
                if self._push_wait() == 0.0:
                    # a drift event: summary + notify now (events are already in P:events), so the
                    # operator's status follows in about a second instead of a publish interval
                    self._push_due, self._last_push = False, now
                    next_pub = now + s.publish_interval
                    await self.publish(notify=True)
                if now >= next_cp:
                    next_cp = now + s.checkpoint_interval
                    await self.checkpoint()
                if now >= next_pub:
                    next_pub = now + s.publish_interval
                    await self.publish()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as e:
                if self.redis_up:
                    log.warning("redis unavailable (%s); continuing in memory", e)
                self.redis_up = False
            except Exception:  # not Redis's fault (e.g. the engine failed to serialise): say so, go on
                log.exception("checkpoint/publish step failed")
            self._redis_kick.clear()
            wait = tick
            push = self._push_wait()
            if push is not None and self.redis_up:  # Redis down: the reconnect catch-up notifies
                wait = min(wait, push)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._redis_kick.wait(), wait)

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.pipeline.run(), name="pipeline"))
        if self.store is not None:
            # one quick attempt before serving, so a restart restores before the first sample arrives
            try:
                await asyncio.wait_for(self.store.ping(), 2.0)
                await self._redis_connected()
                self.redis_up = True
            except Exception as e:
                log.warning("redis unavailable at start (%s); running in memory until it answers", e)
            self._tasks.append(asyncio.create_task(self.redis_loop(), name="redis"))
            if self.settings.stream.enabled:
                from driftwatch.sidecar.redis_stream import StreamReader

                self._ingest_tasks.append(asyncio.create_task(StreamReader(self).run(), name="redis-stream"))
        if self.settings.spec.baseline.mode == "fromConfigMap" and not self.restored_checkpoint:
            self.seed_baseline()  # a checkpoint already holds the baseline: seed only a fresh start
        if self.settings.scrape is not None:
            from driftwatch.sidecar.scrape import Scraper

            self.scraper = Scraper(self, self.settings.scrape)
            self._ingest_tasks.append(asyncio.create_task(self.scraper.run(), name="scrape"))
        self.accepting = True

    async def stop(self, save: bool = True) -> None:
        """Graceful: stop ingest, drain the queue into the engine, checkpoint and publish once more
        (``save=False``: a start that failed half-way must not overwrite a good checkpoint)."""
        self.accepting = False
        for t in self._ingest_tasks:
            t.cancel()
        await asyncio.gather(*self._ingest_tasks, return_exceptions=True)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pipeline.drain()
        if self.store is not None and not save:
            with contextlib.suppress(Exception):
                await self.store.close()
        elif self.store is not None:
            try:
                await self.flush_events()
                await self.checkpoint()
                await self.publish()
                log.info("final checkpoint written to %s", self.store.checkpoint_key)
            except Exception as e:
                log.warning(
                    "final checkpoint failed (redis unavailable: %s); state is lost with this process", e
                )
            with contextlib.suppress(Exception):
                await self.store.close()
