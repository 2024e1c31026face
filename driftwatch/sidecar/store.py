"""Redis: checkpoints, per-pod summaries, the pod set and the events stream (docs/redis-keys.md).

Every call has a short timeout and raises on failure; the caller (``redis_sync``) decides what
"Redis is down" means — the sidecar keeps working in memory and catches up when Redis returns.
"""

from __future__ import annotations

import time
from typing import Any

from redis.typing import EncodableT, FieldT

from driftwatch.redisconn import connect_url
from driftwatch.sidecar.encode import dumps
from driftwatch.sidecar.reservoirs import Drained
from driftwatch.vocab.rediskeys import INGEST_GROUP, MonitorKeys

EVENTS_MAXLEN = 10_000
#: every key has a bound or a TTL (docs/redis-keys.md): what a dead pod or a deleted monitor left behind
#: expires even when no operator removes it
CHECKPOINT_TTL = 7 * 86400
MONITOR_KEYS_TTL = 7 * 86400
#: siblings' checkpoints tried, newest first, when this pod has none of its own
SIBLINGS_TRIED = 5
#: the consumer group that reads ``P:ingest``
GROUP = INGEST_GROUP


class Store:
    def __init__(self, url: str, prefix: str, pod: str, timeout: float = 1.0) -> None:
        self.prefix = prefix
        self.pod = pod
        # credentials from DRIFTWATCH_REDIS_* (a Secret via env), never from the config file
        self.client = connect_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=0,
            retry_on_timeout=False,
        )

    # key names (docs/redis-keys.md, driftwatch.vocab.rediskeys)
    @property
    def checkpoint_key(self) -> str:
        return MonitorKeys(self.prefix).checkpoint(self.pod)

    @property
    def summary_key(self) -> str:
        return MonitorKeys(self.prefix).summary(self.pod)

    @property
    def pods_key(self) -> str:
        return MonitorKeys(self.prefix).pods

    @property
    def events_key(self) -> str:
        return MonitorKeys(self.prefix).events

    @property
    def notify_key(self) -> str:
        return MonitorKeys(self.prefix).notify

    @property
    def ingest_key(self) -> str:
        return MonitorKeys(self.prefix).ingest

    @property
    def ingest_dead_key(self) -> str:
        return MonitorKeys(self.prefix).ingest_dead

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    @property
    def checkpoints_key(self) -> str:
        return MonitorKeys(self.prefix).checkpoints

    async def load_checkpoint(self) -> bytes | None:
        """This pod's checkpoint as stored (decoded off the event loop by the caller)."""
        raw = await self.client.get(self.checkpoint_key)
        return raw if isinstance(raw, bytes) else None

    async def load_sibling_checkpoint(self) -> tuple[str, bytes] | None:
        """The newest checkpoint another pod of this monitor wrote (pod, document): where a pod with
        none of its own -- a Deployment's replacement, a scale-up -- starts from. Members whose
        checkpoint has expired are dropped from ``P:checkpoints`` on the way."""
        pods = await self.client.zrevrange(self.checkpoints_key, 0, SIBLINGS_TRIED)
        for member in pods:
            pod = member.decode() if isinstance(member, bytes) else str(member)
            if pod == self.pod:
                continue
            raw = await self.client.get(MonitorKeys(self.prefix).checkpoint(pod))
            if isinstance(raw, bytes):
                return pod, raw
            await self.client.zrem(self.checkpoints_key, pod)
        return None

    async def save_checkpoint(self, doc: bytes) -> None:
        """``doc``: the checkpoint already serialised (it is built off the event loop). Indexed in
        ``P:checkpoints`` by time, in the same transaction; both expire after ``CHECKPOINT_TTL``
        unless refreshed, so a dead pod's checkpoint goes away on its own."""
        now = time.time()
        async with self.client.pipeline(transaction=True) as p:
            p.set(self.checkpoint_key, doc, ex=CHECKPOINT_TTL)
            p.zadd(self.checkpoints_key, {self.pod: now})
            p.zremrangebyscore(self.checkpoints_key, "-inf", f"({now - CHECKPOINT_TTL}")
            p.expire(self.checkpoints_key, CHECKPOINT_TTL)
            await p.execute()

    async def publish_summary(self, summary: bytes, ttl: float, notify: bool = False) -> None:
        """``P:summary:{pod}`` (serialised, with pod and time) with a TTL of 3 x the publish interval,
        and the pod's score in ``P:pods``; ``notify``: then ``PUBLISH P:notify {pod}`` -- after the MULTI
        has committed, so the operator that hears it reads this summary (on a Redis Cluster a PUBLISH
        cannot be part of the transaction)."""
        async with self.client.pipeline(transaction=True) as p:
            p.set(self.summary_key, summary, px=max(1, int(ttl * 1000)))
            p.zadd(self.pods_key, {self.pod: time.time()})
            p.expire(self.pods_key, MONITOR_KEYS_TTL)
            await p.execute()
        if notify:
            await self.client.publish(self.notify_key, self.pod)

    async def add_events(self, events: list[dict[str, Any]]) -> None:
        async with self.client.pipeline(transaction=False) as p:
            for e in events:
                p.xadd(
                    self.events_key,
                    {"event": dumps(e)},
                    maxlen=EVENTS_MAXLEN,
                    approximate=True,
                )
            p.expire(self.events_key, MONITOR_KEYS_TTL)
            await p.execute()

    async def write_reservoirs(self, drained: Drained, retention: int, now: float) -> None:
        """The drained reservoirs (docs/redis-keys.md, "Sample reservoirs"): each bucket's hash and its
        index entry, every key expiring ``retention`` seconds after its last write; index members older
        than that are trimmed here, so what a pod leaves behind only shrinks. The pinned reference's
        TTL is refreshed on every call, changed or not: it lives as long as the pod."""
        keys = MonitorKeys(self.prefix)
        ttl = max(1, int(retention))
        async with self.client.pipeline(transaction=False) as p:
            for start, fields in drained.buckets.items():
                key = keys.reservoir(start, self.pod)
                p.hset(key, mapping=_fields(fields))
                p.expire(key, ttl)
                p.zadd(keys.reservoirs, {keys.reservoir_member(start, self.pod): start})
            if drained.buckets:
                p.zremrangebyscore(keys.reservoirs, "-inf", f"({now - ttl}")
                p.expire(keys.reservoirs, ttl)
            if drained.pinned:
                p.hset(keys.reference(self.pod), mapping=_fields(drained.pinned))
            p.expire(keys.reference(self.pod), ttl)
            p.zadd(keys.references, {self.pod: now})
            p.zremrangebyscore(keys.references, "-inf", f"({now - ttl}")
            p.expire(keys.references, ttl)
            await p.execute()

    async def load_reservoir(self, start: int) -> dict[bytes, bytes]:
        """This pod's reservoirs of one time bucket as stored (to merge late values into)."""
        raw = await self.client.hgetall(MonitorKeys(self.prefix).reservoir(start, self.pod))
        return {k: v for k, v in raw.items() if isinstance(k, bytes) and isinstance(v, bytes)}

    async def load_reference(self) -> dict[bytes, bytes]:
        """This pod's pinned reference reservoirs as stored (a restarted pod keeps them)."""
        raw = await self.client.hgetall(MonitorKeys(self.prefix).reference(self.pod))
        return {k: v for k, v in raw.items() if isinstance(k, bytes) and isinstance(v, bytes)}

    async def read_commands(self, after: str, count: int = 20) -> list[tuple[str, bytes]]:
        """``P:commands`` entries after stream id ``after``: (id, the command's JSON)."""
        rows = await self.client.xrange(MonitorKeys(self.prefix).commands, min=f"({after}", count=count)
        out = []
        for raw_id, fields in rows or []:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            raw = (fields or {}).get(b"command")
            if isinstance(raw, bytes):
                out.append((entry_id, raw))
        return out

    async def close(self) -> None:
        await self.client.aclose()


def _fields(fields: dict[str, bytes]) -> dict[FieldT, EncodableT]:
    return {k: v for k, v in fields.items()}
