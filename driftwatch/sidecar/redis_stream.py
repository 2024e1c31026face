"""Ingest path 3: the Redis stream ``P:ingest``, read with XREADGROUP as consumer ``{pod}`` of group
``driftwatch``.

Each entry's field ``samples`` holds a JSON body of any ``POST /v1/samples`` shape. An entry is
XACKed only after its samples have been applied to the engine (or rejected as invalid), so a sidecar
that dies in between gets the entry again: on start it first re-reads its own pending entries (id
``0``). Delivery is at-least-once; give samples an ``id`` to make redelivery harmless within the
dedup window. When the queue is full the reader waits (backpressure) instead of dropping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from driftwatch.sidecar.parse import BodyError, loads
from driftwatch.sidecar.pipeline import QueueFull
from driftwatch.sidecar.store import GROUP

if TYPE_CHECKING:
    from driftwatch.sidecar.runtime import Sidecar

log = logging.getLogger("driftwatch.sidecar")


class StreamReader:
    def __init__(self, sc: Sidecar) -> None:
        assert sc.store is not None
        assert sc.settings.redis_url is not None
        self.sc = sc
        self.key = sc.store.ingest_key
        self.consumer = sc.settings.pod
        self.cfg = sc.settings.stream
        # its own connection: a blocking XREADGROUP must not hold up checkpoints, and needs a longer timeout
        self.client = aioredis.Redis.from_url(
            sc.settings.redis_url, socket_timeout=self.cfg.block + 2.0, socket_connect_timeout=1.0
        )
        self.entries = 0

    async def run(self) -> None:
        group_ready = False
        pending_first = True  # after (re)connecting, finish what this consumer was given before
        try:
            while True:
                if not self.sc.redis_up:
                    await asyncio.sleep(0.5)
                    continue
                try:
                    if not group_ready:
                        await self._create_group()
                        group_ready = True
                    start = "0" if pending_first else ">"
                    block = None if pending_first else int(self.cfg.block * 1000)
                    resp = await self.client.xreadgroup(
                        GROUP, self.consumer, {self.key: start}, count=self.cfg.count, block=block
                    )
                    entries: list[Any] = list(cast(Any, resp)[0][1]) if resp else []
                    if pending_first and not entries:
                        pending_first = False
                        continue
                    if entries:
                        await self.handle(entries)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    if isinstance(e, ResponseError) and "NOGROUP" not in str(e):
                        log.warning("redis stream %s: %s", self.key, e)
                    group_ready = False
                    pending_first = True
                    await asyncio.sleep(0.5)
        finally:
            await self.client.aclose()

    async def _create_group(self) -> None:
        try:
            await self.client.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def handle(self, entries: list[Any]) -> None:
        """Validate and admit each entry, wait until the engine has applied them, then XACK."""
        sc = self.sc
        pl = sc.pipeline
        ids = []
        last_seq = 0
        for entry_id, fields in entries:
            ids.append(entry_id)
            raw = (fields or {}).get(b"samples")
            now = time.time()
            try:
                if raw is None:
                    raise BodyError("entry has no field 'samples'", "invalid_shape")
                accepted, rejected = sc.validator.body(loads(raw), now)
            except BodyError as e:
                pl.rejected[e.reason] += 1
                log.warning("redis stream %s entry %s rejected: %s", self.key, entry_id, e.message)
                continue
            if len(accepted) <= pl.capacity:
                await pl.wait_room(len(accepted))  # backpressure: the entry stays pending meanwhile
            try:
                if pl.admit(accepted, rejected, now):
                    last_seq = pl.last_seq
            except QueueFull:  # larger than the whole queue: it can never fit
                pl.rejected["queue_full"] += len(accepted)
        if last_seq:
            await pl.wait_applied(last_seq)
        await self.client.xack(self.key, GROUP, *ids)
        self.entries += len(ids)
