"""Redis: checkpoints, per-pod summaries, the pod set and the events stream (docs/redis-keys.md).

Every call has a short timeout and raises on failure; the caller (runtime.Sidecar) decides what
"Redis is down" means — the sidecar keeps working in memory and catches up when Redis returns.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis.asyncio as aioredis

EVENTS_MAXLEN = 10_000
_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(doc: Any) -> bytes:
    """orjson: a 1,000-stream checkpoint is megabytes, and this runs on the event loop."""
    return orjson.dumps(doc, option=_OPTS, default=str)


GROUP = "driftwatch"


class Store:
    def __init__(self, url: str, prefix: str, pod: str, timeout: float = 1.0) -> None:
        self.prefix = prefix
        self.pod = pod
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=0,
            retry_on_timeout=False,
        )

    # key names (contracts.md section 4)
    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def checkpoint_key(self) -> str:
        return self.key("checkpoint", self.pod)

    @property
    def summary_key(self) -> str:
        return self.key("summary", self.pod)

    @property
    def pods_key(self) -> str:
        return self.key("pods")

    @property
    def events_key(self) -> str:
        return self.key("events")

    @property
    def notify_key(self) -> str:
        return self.key("notify")

    @property
    def ingest_key(self) -> str:
        return self.key("ingest")

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def load_checkpoint(self) -> dict[str, Any] | None:
        raw = await self.client.get(self.checkpoint_key)
        if raw is None:
            return None
        doc = orjson.loads(raw)
        return doc if isinstance(doc, dict) else None

    async def save_checkpoint(self, doc: bytes) -> None:
        """``doc``: the checkpoint already serialised (it is built off the event loop)."""
        await self.client.set(self.checkpoint_key, doc)

    async def publish_summary(self, summary: dict[str, Any], ttl: float, notify: bool = False) -> None:
        """``P:summary:{pod}`` with a TTL of 3 x the publish interval, and the pod's score in ``P:pods``;
        ``notify``: then ``PUBLISH P:notify {pod}`` (in the same MULTI, so the operator that hears it
        reads this summary)."""
        now = time.time()
        doc = {**summary, "pod": self.pod, "time": now}
        async with self.client.pipeline(transaction=True) as p:
            p.set(self.summary_key, dumps(doc), px=max(1, int(ttl * 1000)))
            p.zadd(self.pods_key, {self.pod: now})
            if notify:
                p.publish(self.notify_key, self.pod)
            await p.execute()

    async def add_events(self, events: list[dict[str, Any]]) -> None:
        async with self.client.pipeline(transaction=False) as p:
            for e in events:
                p.xadd(
                    self.events_key,
                    {"event": dumps(e)},
                    maxlen=EVENTS_MAXLEN,
                    approximate=True,
                )
            await p.execute()

    async def close(self) -> None:
        await self.client.aclose()
