"""Redis, kept in step with the sidecar: restore on first contact, then checkpoints, summaries and
drift events, all on one task so they never race.

Redis is optional at every moment. While it answers, checkpoints and summaries go out on their
intervals and drift events are flushed; when it stops answering the sidecar carries on in memory
(``up`` False, ``driftwatch_redis_up`` 0); when it comes back, the backlog is flushed and a
checkpoint and a summary are written at once ("catch up"). The checkpoint is restored on start, or
on the first successful connection if the engine has seen nothing yet -- so a restarted sidecar keeps
its baseline, and live state is never overwritten by an older checkpoint. A pod with no checkpoint of
its own (a Deployment's replacement, a scale-up) starts from the newest checkpoint of another pod of
the monitor (docs/decisions.md). A checkpoint that cannot be used is counted and logged, and the pod
starts from the next best thing; the next checkpoint overwrites it.

A checkpoint first waits until every sample queued before it is applied (``EngineWorker.flush``), so
a sample answered ``202`` is in every checkpoint that starts after the answer: a SIGKILL or an OOM kill
loses at most what was answered since the last checkpoint (``driftwatch_unsaved_samples``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from driftwatch.detect import Engine
from driftwatch.redisconn import redact, redact_text
from driftwatch.sidecar import shutdown, state
from driftwatch.sidecar.commands import Commands
from driftwatch.sidecar.encode import dumps, fragment_array
from driftwatch.sidecar.events import DriftEvents
from driftwatch.sidecar.reservoirs import Reservoirs
from driftwatch.sidecar.settings import Settings
from driftwatch.sidecar.store import Store
from driftwatch.sidecar.worker import EngineWorker

log = logging.getLogger("driftwatch.sidecar")

#: seconds the start-up waits for Redis before serving from memory
START_PING = 2.0
#: after a drift event the summary goes out at once (plus ``PUBLISH P:notify``), at most this often
PUSH_DEBOUNCE = 0.5
#: how long a checkpoint waits for the queued samples to be applied before it is taken anyway
FLUSH_TIMEOUT = 10.0
#: what became of the start-up restore (``driftwatch_checkpoint_restores_total{result}``)
RESTORES = ("own", "sibling", "none", "corrupt")


class RedisSync:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        worker: EngineWorker,
        events: DriftEvents,
        capture: Callable[[], state.SidecarState],
        restore: Callable[[state.Checkpoint, bool], Awaitable[None]],
        fresh: Callable[[], bool],
        saved: Callable[[state.SidecarState], None] = lambda _: None,
        reservoirs: Reservoirs | None = None,
        commands: Commands | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker = worker
        self.events = events
        self.capture = capture  # the sidecar's share of a checkpoint, taken on the event loop
        self.restore = restore  # puts a decoded checkpoint (own: this pod's) into the engine and the parts
        self.fresh = fresh  # nothing ingested yet: a checkpoint may still be restored
        self.saved = saved  # a checkpoint of this state is in Redis now
        self.reservoirs = reservoirs  # with spec.scan: the samples scans read, written with summaries
        self.commands = commands  # P:commands (driftwatch ack --adopt), read every tick
        self.up = False
        self.restored = False  # the start-up restore question is settled (checkpoint or none)
        self.checkpoints = {"ok": 0, "error": 0}
        self.restores = dict.fromkeys(RESTORES, 0)
        self.last_checkpoint: float | None = None  # epoch seconds of the last checkpoint written
        self.saved_samples = 0  # samples the last checkpoint written holds (driftwatch_unsaved_samples)
        self._checkpoint_due = False
        self._kick = asyncio.Event()
        self._push_due = False  # a drift event happened since the last pushed summary
        self._last_push = float("-inf")  # monotonic time of the last pushed summary

    def request_checkpoint(self) -> None:
        """Checkpoint at the next round instead of the next interval (the stream reader holds many
        entries that only a checkpoint lets it acknowledge)."""
        self._checkpoint_due = True
        self._kick.set()

    def on_drift(self) -> None:
        """A drift event was recorded: push the summary (debounced) and wake the task."""
        self._push_due = True
        self._kick.set()

    async def start(self) -> None:
        """One quick attempt before serving, so a restart restores before the first sample arrives;
        when Redis does not answer, the sidecar starts in memory and ``run`` keeps trying."""
        try:
            async with asyncio.timeout(START_PING):  # not wait_for: see worker.py
                await self.store.ping()
            await self.connect()
        except Exception as e:
            log.warning(
                "redis unavailable at start (%s); running in memory until it answers", redact_text(str(e))
            )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.store.close()

    async def connect(self) -> None:
        """First contact after being down (or at start): restore if still fresh, then catch up."""
        await self.store.ping()
        if not self.restored and self.fresh():
            self.restores[await self._restore()] += 1
            self.restored = True  # nothing to restore counts as restored: never overwrite live state later
        await self.flush_events()
        await self.checkpoint()
        await self.publish(notify=self._push_due)  # events missed while down: tell the operator now
        self._push_due = False
        self.up = True

    async def _restore(self) -> str:
        """This pod's checkpoint, else the newest of another pod of the monitor, else nothing: which
        one was restored. An unusable checkpoint is counted (``corrupt``) and the next one is tried;
        it is never fatal (a pod that crash-looped on its checkpoint would never write a new one)."""
        corrupt = False
        own = await self.store.load_checkpoint()
        if own is not None:
            done = await self._restore_one(own, self.store.checkpoint_key, own=True)
            if done:
                return "own"
            corrupt = done is False
        sibling = await self.store.load_sibling_checkpoint()
        if sibling is not None:
            pod, raw = sibling
            done = await self._restore_one(raw, f"the checkpoint of pod {pod}", own=False)
            if done:
                return "sibling"
            corrupt = corrupt or done is False
        return "corrupt" if corrupt else "none"

    async def _restore_one(self, raw: bytes, what: str, own: bool) -> bool | None:
        """True: restored; False: unusable (corrupt, partial); None: of another version, not used."""
        try:
            cp = await asyncio.to_thread(state.decode, raw)
            if cp is None:
                log.warning("%s is of another version: not restored", what)
                return None
            await self.restore(cp, own)
            if own:  # the engine keeps this pod's baseline: so does the scans' pinned reference of it
                await self.restore_reference()
        except Exception as e:
            log.error("%s is unusable (%s: %s); not restored", what, type(e).__name__, str(e)[:300])
            return False
        return True

    async def checkpoint(self) -> None:
        """Everything queued so far applied, then the engine and the parts' state, captured together,
        into ``P:checkpoint:{pod}``."""
        pod = self.settings.pod
        self._checkpoint_due = False
        started = time.time()
        try:
            try:
                async with asyncio.timeout(FLUSH_TIMEOUT):  # not wait_for: see worker.py
                    await self.worker.flush()
            except TimeoutError:
                log.warning(
                    "checkpoint: queued samples not applied within %gs; taken without them", FLUSH_TIMEOUT
                )
            raw, side = await self.worker.call_with(
                self.capture, lambda e, side: (state.encode(e, side, pod, started), side)
            )
            await self.store.save_checkpoint(raw)
            # the document (~5 MB with 1,000 streams) is freed only now, after the engine thread's
            # trim that followed its build: until the next job trims, the allocator kept it resident
            del raw
            await self.worker.trim()
            self.checkpoints["ok"] += 1
            self.last_checkpoint = time.time()
            self.saved_samples = sum(side.ingested.values())
        except Exception:
            self.checkpoints["error"] += 1
            raise
        self.saved(side)

    async def publish(self, notify: bool = False) -> None:
        """``P:summary:{pod}`` (and ``P:pods``); ``notify``: also ``PUBLISH P:notify {pod}`` so the
        operator aggregates this monitor now instead of on its next timer round."""
        pod = self.settings.pod
        raw = await self.worker.call(lambda e: _summary(e, pod))
        await self.store.publish_summary(raw, ttl=3 * self.settings.publish_interval, notify=notify)
        del raw
        await self.worker.trim()  # as after a checkpoint: the summary's text is freed only now

    async def flush_events(self) -> None:
        outbox = self.events.outbox
        if not outbox:
            return
        batch = list(outbox)
        await self.store.add_events(batch)
        for _ in batch:
            outbox.popleft()

    async def flush_reservoirs(self) -> None:
        """The scan reservoirs that changed (drained and marked written on the engine thread)."""
        res = self.reservoirs
        if res is None:
            return
        drained = await self.worker.offload(res.drain)
        if drained.reopened:  # late values for buckets already written: merge, never overwrite
            stored = {start: await self.store.load_reservoir(start) for start in sorted(drained.reopened)}
            drained = await self.worker.offload(lambda: res.merge_stored(drained, stored))
        now = time.time()
        await self.store.write_reservoirs(drained, res.policy.retention, now)
        await self.worker.offload(lambda: res.written(drained, now))

    async def restore_reference(self) -> None:
        """With a restored checkpoint the engine keeps its baseline, so the pinned reference sample
        of it is read back too (else the pod would pin its first values after the restart)."""
        res = self.reservoirs
        if res is None or res.policy.pinned is None:
            return
        fields = await self.store.load_reference()
        restored = await self.worker.offload(lambda: res.restore_pinned(fields))
        if restored:
            log.info("restored %d reference reservoirs", restored)

    def _push_wait(self) -> float | None:
        """Seconds until a due push may go out (debounced), None when no push is due."""
        if not self._push_due:
            return None
        return max(0.0, self._last_push + PUSH_DEBOUNCE - time.monotonic())

    async def run(self) -> None:
        """Health, checkpoints, summaries and event flushing, until cancelled."""
        s = self.settings
        next_cp = time.monotonic() + s.checkpoint_interval
        next_pub = time.monotonic() + s.publish_interval
        tick = min(1.0, s.checkpoint_interval, s.publish_interval)
        while True:
            shutdown.check()
            try:
                if not self.up:
                    await self.connect()
                    log.info("redis available at %s", redact(s.redis_url or ""))
                    now = time.monotonic()
                    next_cp, next_pub = now + s.checkpoint_interval, now + s.publish_interval
                else:
                    await self.store.ping()
                now = time.monotonic()
                if self.commands is not None and await self.commands.poll():
                    self._push_due = True  # an adoption: the operator should see it now
                await self.flush_events()
                if self._push_wait() == 0.0:
                    # a drift event: summary + notify now (events are already in P:events), so the
                    # operator's status follows in about a second instead of a publish interval
                    self._push_due, self._last_push = False, now
                    next_pub = now + s.publish_interval
                    await self.publish(notify=True)
                if now >= next_cp or self._checkpoint_due:
                    next_cp = now + s.checkpoint_interval
                    await self.checkpoint()
                if now >= next_pub:
                    next_pub = now + s.publish_interval
                    await self.publish()
                    await self.flush_reservoirs()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as e:
                if self.up:
                    log.warning("redis unavailable (%s); continuing in memory", redact_text(str(e)))
                self.up = False
            except Exception:  # not Redis's fault (e.g. the engine failed to serialise): say so, go on
                log.exception("checkpoint/publish step failed")
            self._kick.clear()
            wait = tick
            push = self._push_wait()
            if push is not None and self.up:  # Redis down: the reconnect catch-up notifies
                wait = min(wait, push)
            # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancel that arrives as the kick
            # does (a drift event in the last chunk at shutdown), and this loop then never ended
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # not wait_for: see worker.py
                    await self._kick.wait()

    async def final(self) -> None:
        """On shutdown, after the queue is drained: events, a checkpoint and a summary once more."""
        try:
            await self.flush_events()
            await self.checkpoint()
            await self.publish()
            await self.flush_reservoirs()
            log.info("final checkpoint written to %s", self.store.checkpoint_key)
        except Exception as e:
            log.warning(
                "final checkpoint failed (redis unavailable: %s); state is lost with this process",
                redact_text(str(e)),
            )


def _summary(engine: Engine, pod: str) -> bytes:
    """``engine.summary()`` plus pod and time, serialised on the engine thread stream by stream."""
    doc = engine.summary(streams=False)
    doc["streams"] = fragment_array(engine.iter_summaries())
    return dumps({**doc, "pod": pod, "time": time.time()})
