"""Per-pod summaries from Redis, merged into one monitor-level view per (feature, key).

Reads the keys the sidecars write (docs/redis-keys.md) in one pipelined round trip per monitor: age
out pods that stopped publishing (``P:pods`` score older than ``stale_after``), then fetch the
remaining pods' ``P:summary:{pod}``. The merge itself is the engine's
(``driftwatch.detect.aggregate.aggregate``), so the sidecar and the operator agree on what drift is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftwatch.detect.aggregate import aggregate
from driftwatch.redisconn import AnyRedis, connect_url
from driftwatch.vocab.rediskeys import MonitorKeys
from driftwatch.vocab.spec import MonitorSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reports:
    """What Redis said about one monitor in one round."""

    summaries: list[dict[str, Any]]
    pods: list[str]


@dataclass
class RedisPool:
    """One client per Redis URL (monitors may override the operator's Redis), shared by all rounds."""

    timeout: float = 2.0
    clients: dict[str, AnyRedis] = field(default_factory=dict)

    def get(self, url: str) -> AnyRedis:
        """The client for ``url`` (credentials from the environment, see ``driftwatch.redisconn``)."""
        client = self.clients.get(url)
        if client is None:
            client = connect_url(
                url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=True,
                max_connections=16,
            )
            self.clients[url] = client
        return client

    async def close(self) -> None:
        for c in self.clients.values():
            await c.aclose()
        self.clients.clear()


#: a summary larger than this is not read (a hostile or broken writer must not fill the operator's
#: memory or hold the aggregation thread); a real 1,000-stream summary is a few hundred KiB
MAX_SUMMARY_BYTES = 8 * 1024 * 1024


async def read_reports(client: AnyRedis, keys: MonitorKeys, now: float, stale_after: float) -> Reports:
    """Age out silent pods, then return the live pods' summaries (missing/expired/oversized ones
    skipped). The JSON is decoded off the event loop: the webhook shares it."""
    pods, texts = await read_raw(client, keys, now, stale_after)
    return await asyncio.to_thread(decode, keys, pods, texts)


async def read_raw(
    client: AnyRedis, keys: MonitorKeys, now: float, stale_after: float
) -> tuple[list[str], list[str | None]]:
    """(live pods, their summary texts) -- a text is None when absent or above ``MAX_SUMMARY_BYTES``."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(keys.pods, "-inf", f"({now - stale_after}")
        pipe.zrange(keys.pods, 0, -1, withscores=True)
        _, members = await pipe.execute()
    pods = [str(m) for m, _ in members]
    if not pods:
        return [], []
    async with client.pipeline(transaction=False) as pipe:
        for p in pods:
            pipe.strlen(keys.summary(p))
        sizes = await pipe.execute()
    texts: list[str | None] = [None] * len(pods)
    wanted = [i for i, n in enumerate(sizes) if 0 < int(n) <= MAX_SUMMARY_BYTES]
    for i, n in enumerate(sizes):
        if int(n) > MAX_SUMMARY_BYTES:
            key = keys.summary(pods[i])
            log.warning("summary %s is %d bytes (limit %d): skipped", key, n, MAX_SUMMARY_BYTES)
    if wanted:
        got = await client.mget([keys.summary(pods[i]) for i in wanted])
        for i, text in zip(wanted, got, strict=True):
            texts[i] = text.decode() if isinstance(text, bytes) else text
    return pods, texts


def decode(keys: MonitorKeys, pods: Sequence[str], texts: Sequence[str | None]) -> Reports:
    """The summaries as documents (CPU-bound: called in a worker thread)."""
    summaries: list[dict[str, Any]] = []
    reporting: list[str] = []
    for pod, text in zip(pods, texts, strict=True):
        if text is None:  # TTL expired between the calls, never published, or too large
            continue
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            log.warning("unreadable summary %s", keys.summary(pod))
            continue
        if not isinstance(doc, dict):
            log.warning("summary %s is not an object", keys.summary(pod))
            continue
        doc.setdefault("pod", pod)
        summaries.append(doc)
        reporting.append(pod)
    return Reports(summaries, reporting)


def merge(summaries: Sequence[Mapping[str, Any]], spec: MonitorSpec) -> list[dict[str, Any]]:
    """Monitor-level feature statuses (``FeatureStatus.to_dict()`` shape), JSON-safe."""
    return [_json_safe(f.to_dict()) for f in aggregate([dict(s) for s in summaries], spec)]


def _json_safe(v: Any) -> Any:
    """NaN/inf are not JSON and the API server rejects them; numpy scalars become plain numbers."""
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f.is_integer() and not isinstance(v, float) and abs(f) < 2**53:
        return int(f)
    return f if math.isfinite(f) else None
