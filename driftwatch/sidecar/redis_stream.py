"""Ingest path 3: the Redis stream ``P:ingest``, read with XREADGROUP as consumer ``{pod}`` of group
``driftwatch``.

Each entry's field ``samples`` holds a JSON body of any ``POST /v1/samples`` shape. What the reader
promises (docs/redis-keys.md):

* **Acknowledged once durable.** An entry is XACKed only after a checkpoint holding its samples is in
  Redis (``held_through`` / ``saved``), so a sidecar killed at any moment -- SIGKILL, OOM -- leaves it
  pending: on restart the pod re-reads its own pending entries and skips the ones its checkpoint
  already holds (``skip``). Entries applied but not yet checkpointed are re-applied exactly once.
* **No entry wedges the stream.** An entry the sidecar cannot take at all -- not JSON, not a shape,
  over the body limit, larger than the whole queue, an unexpected error, or delivered more than
  ``maxDeliveries`` times (it killed whoever took it) -- goes to the dead-letter stream
  ``P:ingest:dead`` (bounded), is counted in ``driftwatch_ingest_dead_letters_total{reason}`` and
  acknowledged; the entries after it flow on. Before, one such entry was retried forever: the entries
  before it re-applied on every retry, the ones after it never read.
* **A dead pod's entries are taken over.** Entries pending on any consumer for longer than
  ``claimIdle`` are claimed (XAUTOCLAIM) by a live pod; consumers that hold nothing and are idle are
  removed from the group; history every reader has acknowledged is trimmed (``XTRIM MINID``).

When the queue is full the reader waits (backpressure) instead of dropping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from redis.exceptions import ResponseError

from driftwatch.redisconn import connect_url, redact_text
from driftwatch.sidecar import shutdown
from driftwatch.sidecar.decode import BodyError
from driftwatch.sidecar.ingest import Ingest
from driftwatch.sidecar.queue import Queue
from driftwatch.sidecar.settings import StreamIngestSettings
from driftwatch.sidecar.store import GROUP, MONITOR_KEYS_TTL

log = logging.getLogger("driftwatch.sidecar")

#: dead letters kept (approximately): enough to look at what went wrong, bounded whatever the app sends
DEAD_MAXLEN = 1000
#: entries applied and waiting for a checkpoint before the reader stops reading and asks for one
MAX_HELD = 10_000
#: dead-letter reasons besides the ingest ones (invalid_json, invalid_shape, body_too_large, queue_full)
REDELIVERED = "redelivered"
INTERNAL = "internal_error"

Entry = tuple[bytes, dict[bytes, bytes] | None]


class StreamReader:
    def __init__(
        self,
        ingest: Ingest,
        queue: Queue,
        redis_url: str,
        key: str,
        dead_key: str,
        consumer: str,
        cfg: StreamIngestSettings,
        body_limit: int,
        redis_up: Callable[[], bool],
        request_checkpoint: Callable[[], None],
    ) -> None:
        self.ingest = ingest
        self.queue = queue  # to wait for room (backpressure)
        self.key = key
        self.dead_key = dead_key
        self.consumer = consumer
        self.cfg = cfg
        self.body_limit = body_limit
        self.redis_up = redis_up
        self.request_checkpoint = request_checkpoint
        # its own connection: a blocking XREADGROUP must not hold up checkpoints, and needs a longer timeout
        self.client = connect_url(redis_url, socket_timeout=cfg.block + 2.0, socket_connect_timeout=1.0)
        #: entry id -> chunk of its samples (0: none admitted): applied or queued, not yet in a checkpoint
        self.held: dict[bytes, int] = {}
        #: ids a restored checkpoint already holds: acknowledged when met, never applied again
        self.skip: set[bytes] = set()
        self._to_ack: list[bytes] = []
        self._wake = asyncio.Event()
        self._claim_from = b"0-0"
        self.entries = 0  # entries taken
        self.claimed = 0  # entries claimed from other consumers
        self.dead: dict[str, int] = {}  # dead letters by reason

    # --- with the checkpoints (runtime wires these to redis_sync) -----------------------------------------

    def held_through(self, applied_seq: int) -> list[str]:
        """Ids of the entries whose samples are all in the engine once chunk ``applied_seq`` is:
        a checkpoint captured now holds them (taken on the event loop, with the checkpoint's capture)."""
        return [i.decode() for i, seq in self.held.items() if seq <= applied_seq]

    def saved(self, ids: list[str]) -> None:
        """A checkpoint holding these entries is in Redis: acknowledge them."""
        for i in ids:
            if self.held.pop(i.encode(), None) is not None:
                self._to_ack.append(i.encode())
        if self._to_ack:
            self._wake.set()

    # --- the reader task --------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        group_ready = False
        own_from: bytes | None = b"0"  # first this consumer's pending entries (after a restart)
        next_claim = 0.0
        claim_every = max(1.0, self.cfg.claim_idle / 4)
        try:
            while True:
                shutdown.check()
                if not self.redis_up():
                    await asyncio.sleep(0.5)
                    continue
                try:
                    if not group_ready:
                        await self._create_group()
                        group_ready = True
                    await self._ack()
                    if len(self.held) >= MAX_HELD:  # bounded: wait for a checkpoint to take them
                        self.request_checkpoint()
                        self._wake.clear()
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(1.0):  # not wait_for: see worker.py
                                await self._wake.wait()
                        continue
                    if own_from is not None:
                        entries = await self._read(own_from, None)
                        if not entries:
                            own_from = None
                            continue
                        own_from = entries[-1][0]
                        await self.handle(entries, await self._deliveries(entries))
                        continue
                    if loop.time() >= next_claim:
                        next_claim = loop.time() + claim_every
                        await self._claim()
                        await self._housekeeping()
                    entries = await self._read(b">", int(self.cfg.block * 1000))
                    if entries:
                        await self.handle(entries, None)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    if not isinstance(e, ResponseError | TimeoutError) or "NOGROUP" not in str(e):
                        log.warning("redis stream %s: %s", self.key, redact_text(str(e)))
                    group_ready = False
                    own_from = b"0"  # entries read but not taken are still pending on this consumer
                    await asyncio.sleep(0.5)
        finally:
            await self.client.aclose()

    async def _create_group(self) -> None:
        try:
            await self.client.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def _read(self, start: bytes, block: int | None) -> list[Entry]:
        resp = await self.client.xreadgroup(
            GROUP, self.consumer, {self.key: start}, count=self.cfg.count, block=block
        )
        return list(cast(Any, resp)[0][1]) if resp else []

    async def _deliveries(self, entries: list[Entry]) -> dict[bytes, int]:
        """How often each of these pending entries has been delivered (to any consumer)."""
        rows = await self.client.xpending_range(
            self.key, GROUP, min=entries[0][0], max=entries[-1][0], count=len(entries) + len(self.held)
        )
        return {cast(bytes, r["message_id"]): int(r["times_delivered"]) for r in rows}

    async def _claim(self) -> None:
        """Take over entries idle on any consumer for ``claimIdle``: their pod is gone (its own held
        entries, waiting for a checkpoint, are skipped in ``handle``)."""
        resp = cast(
            Any,
            await self.client.xautoclaim(
                self.key,
                GROUP,
                self.consumer,
                int(self.cfg.claim_idle * 1000),
                start_id=self._claim_from,
                count=self.cfg.count,
            ),
        )
        self._claim_from = resp[0]
        entries = [e for e in resp[1] if e[0] not in self.held]
        if entries:
            self.claimed += len(entries)
            log.info("redis stream %s: claimed %d entries of gone consumers", self.key, len(entries))
            await self.handle(entries, await self._deliveries(entries))

    async def _housekeeping(self) -> None:
        """Keep the stream and the group bounded: trim history every reader has acknowledged (never an
        unread or pending entry), refresh the key's TTL, drop consumers that hold nothing and are idle."""
        pending = cast(Any, await self.client.xpending(self.key, GROUP))
        groups = [
            g for g in cast(Any, await self.client.xinfo_groups(self.key)) if g["name"] == GROUP.encode()
        ]
        bound = pending["min"] if pending["pending"] else (groups[0]["last-delivered-id"] if groups else None)
        if bound and bound not in (b"0-0", "0-0"):
            await self.client.xtrim(self.key, minid=bound, approximate=True)
        await self.client.expire(self.key, MONITOR_KEYS_TTL)
        for c in cast(Any, await self.client.xinfo_consumers(self.key, GROUP)):
            name = c["name"].decode() if isinstance(c["name"], bytes) else str(c["name"])
            if name != self.consumer and not c["pending"] and c["idle"] > self.cfg.claim_idle * 1000:
                await self.client.xgroup_delconsumer(self.key, GROUP, name)

    async def _ack(self) -> None:
        if self._to_ack:
            ids, self._to_ack = self._to_ack, []
            try:
                await self.client.xack(self.key, GROUP, *ids)
            except BaseException:
                self._to_ack[:0] = ids  # again on the next round
                raise

    # --- entries ---------------------------------------------------------------------------------------

    async def handle(self, entries: list[Entry], deliveries: dict[bytes, int] | None) -> None:
        """Take each entry (validate, wait for room, admit) or dead-letter it; taken entries are held
        until a checkpoint holds them."""
        for entry_id, fields in entries:
            if entry_id in self.held:
                continue  # applied already, waiting for its checkpoint
            if entry_id in self.skip or not fields:  # in the restored checkpoint; or trimmed away
                self.skip.discard(entry_id)
                self._to_ack.append(entry_id)
                continue
            n = (deliveries or {}).get(entry_id, 1)
            if n > self.cfg.max_deliveries:
                error = f"delivered {n} times without being acknowledged: whoever took it died"
                await self._dead(entry_id, fields, REDELIVERED, error, n)
                continue
            try:
                seq = await self._take(fields)
            except BodyError as e:  # counted by ingest
                await self._dead(entry_id, fields, e.reason, e.message, n)
                continue
            except Exception as e:  # a bug, not the entry's fault: still never wedge the stream
                log.exception("redis stream %s entry %s could not be taken", self.key, entry_id)
                await self._dead(entry_id, fields, INTERNAL, f"{type(e).__name__}: {e}", n)
                continue
            self.held[entry_id] = seq
            self.entries += 1

    async def _take(self, fields: dict[bytes, bytes]) -> int:
        """Validate and admit one entry; the chunk holding its samples (0: none). Raises BodyError for
        an entry that cannot be taken at all."""
        raw = fields.get(b"samples")
        if raw is None:
            self.ingest.reject_body("invalid_shape")
            raise BodyError("entry has no field 'samples'", "invalid_shape")
        if len(raw) > self.body_limit:
            self.ingest.reject_body("body_too_large")
            raise BodyError(
                f"samples: {len(raw)} bytes is over the limit of {self.body_limit} bytes", "body_too_large"
            )
        now = time.time()
        batch = await self.ingest.prepare(raw, now)
        if batch.count <= self.queue.capacity:
            await self.queue.wait_room(batch.count)  # backpressure: the entry stays pending meanwhile
        out = await self.ingest.admit_async(batch, now)  # counts every rejection, queue_full too
        if out.full is not None:  # larger than the whole queue: it can never fit
            raise BodyError(
                f"samples: {batch.count} samples can never fit the queue ({self.queue.capacity})",
                "queue_full",
            )
        return self.queue.last_seq if out.accepted else 0

    async def _dead(
        self, entry_id: bytes, fields: dict[bytes, bytes], reason: str, error: str, deliveries: int
    ) -> None:
        """Into ``P:ingest:dead`` with why, and acknowledged. The body is copied when it is within the
        body limit (to be looked at, or replayed with XADD once fixed)."""
        doc: dict[str, str | bytes] = {
            "entry": entry_id,
            "reason": reason,
            "error": error[:1000],
            "consumer": self.consumer,
            "deliveries": str(deliveries),
            "time": f"{time.time():.3f}",
        }
        raw = fields.get(b"samples")
        if raw is not None and len(raw) <= self.body_limit:
            doc["samples"] = raw
        async with self.client.pipeline(transaction=False) as p:
            p.xadd(self.dead_key, cast(Any, doc), maxlen=DEAD_MAXLEN, approximate=True)
            p.expire(self.dead_key, MONITOR_KEYS_TTL)
            p.xack(self.key, GROUP, entry_id)
            await p.execute()
        self.dead[reason] = self.dead.get(reason, 0) + 1
        log.warning(
            "redis stream %s entry %s dead-lettered (%s): %s", self.key, entry_id, reason, error[:200]
        )
