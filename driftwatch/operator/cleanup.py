"""What a deleted DriftMonitor leaves behind outside Kubernetes: its Redis keys and its sidecars' ACL
user (``--sidecar-redis-auth acl``).

Children (ConfigMap, Service, ...) carry owner references, so the garbage collector removes them; Redis
knows nothing of owners. Every key of the monitor starts with ``P:`` (docs/redis-keys.md), so SCAN
with that pattern and UNLINK in batches -- UNLINK frees memory in the background, so a monitor with a
large events stream does not stall Redis, and SCAN never blocks it the way KEYS would. A monitor
deleted while no operator ran (or while its cleanup could not finish: Redis down, the operator killed)
is found by the start-up sweep: its keys by their ``P:pods``, its ACL user by ``ACL USERS``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftwatch.operator import redis_users
from driftwatch.operator.context import OperatorContext
from driftwatch.redisconn import AnyRedis, RedisTarget, redact_text
from driftwatch.vocab.rediskeys import MonitorKeys, glob_escape, parse_key_owner

log = logging.getLogger("driftwatch.operator")

BATCH = 500


async def delete_keys(client: AnyRedis, keys: MonitorKeys) -> int:
    """Remove every key of the monitor; returns how many were removed."""
    removed = 0
    batch: list[str] = []
    async for key in client.scan_iter(match=keys.every_key, count=BATCH):
        batch.append(key)
        if len(batch) >= BATCH:
            removed += int(await client.unlink(*batch))
            batch.clear()
    if batch:
        removed += int(await client.unlink(*batch))
    return removed


@dataclass(frozen=True)
class Cleaned:
    """``error`` set: some keys may still be there (they expire, or the next start's sweep has them)."""

    removed: int = 0
    error: str | None = None


#: one Redis cleanup is tried this many times, a few seconds apart, then left to the sweep and TTLs
ATTEMPTS = 5
RETRY_DELAY = 2.0


async def cleanup(ctx: OperatorContext, body: Mapping[str, Any]) -> Cleaned:
    """A DriftMonitor is gone: forget it, remove its Redis keys and its sidecars' ACL user.

    Runs on the watch's DELETED event, after the fact: nothing waits for it, so neither a Redis outage
    nor an uninstalled operator can keep a namespace or the CRD from being deleted."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    ctx.forget(namespace, name, str(meta.get("uid")))
    redis_cfg = (body.get("spec") or {}).get("redis") or {}
    url = str(redis_cfg.get("url") or ctx.options.redis_url)
    keys = MonitorKeys.of(str(redis_cfg.get("keyPrefix") or ctx.options.key_prefix), namespace, name)
    error = ""
    for attempt in range(ATTEMPTS):
        try:
            removed = await asyncio.wait_for(delete_keys(ctx.redis.get(url), keys), timeout=30)
            if url == ctx.options.redis_url and ctx.options.sidecar_redis_auth == "acl":
                await redis_users.remove_user(RedisTarget.parse(url), namespace, name)
        except Exception as e:
            error = redact_text(f"Redis cleanup of {keys.prefix}:* failed: {type(e).__name__}: {e}")
            await asyncio.sleep(RETRY_DELAY * (attempt + 1))
            continue
        log.info("removed %d Redis keys %s:*", removed, keys.prefix)
        return Cleaned(removed)
    # never block anything on Redis: the summaries expire, checkpoints expire, the next start sweeps
    log.warning("giving up %s after %d tries", error, ATTEMPTS)
    return Cleaned(error=error)


def spawn(ctx: OperatorContext, body: Mapping[str, Any]) -> None:
    """``cleanup`` in the background (the watch handler returns at once); held so it is not collected."""
    task = asyncio.create_task(cleanup(ctx, dict(body)), name="driftwatch-cleanup")
    ctx.background.add(task)
    task.add_done_callback(ctx.background.discard)


async def sweep(ctx: OperatorContext) -> int:
    """Remove the keys of monitors deleted while no operator ran: every ``P`` under the operator's
    Redis and key prefix whose (namespace, monitor) is not a DriftMonitor any more, in the namespaces
    this operator serves. Returns how many keys were removed."""
    served = set(ctx.options.namespaces)
    client = ctx.redis.get(ctx.options.redis_url)
    prefix = ctx.options.key_prefix
    orphans: set[tuple[str, str]] = set()
    async for key in client.scan_iter(match=f"{glob_escape(prefix)}:*:pods", count=BATCH):
        owner = parse_key_owner(str(key), prefix)
        if owner is None or (served and owner[0] not in served):
            continue
        if ctx.cache.get(*owner) is None:
            orphans.add(owner)
    removed = 0
    for namespace, name in sorted(orphans):
        removed += await delete_keys(client, MonitorKeys.of(prefix, namespace, name))
        log.info("removed the Redis keys of deleted DriftMonitor %s/%s", namespace, name)
    return removed


async def sweep_users(ctx: OperatorContext) -> list[str]:
    """Remove the ACL users (``acl`` mode) of monitors that are not DriftMonitors any more, in the
    namespaces this operator serves; returns their names. Users are not keys -- no TTL ever removes
    them, and a monitor that never published has no ``P:pods`` for ``sweep`` to find.

    "Not a DriftMonitor" is asked of the API server, not only of the cache: a monitor created just
    now must not lose its user (its sidecars would be refused until the next resync)."""
    if ctx.options.sidecar_redis_auth != "acl":
        return []
    target = RedisTarget.parse(ctx.options.redis_url)
    served = set(ctx.options.namespaces)
    users = {
        owner
        for owner in await redis_users.monitor_users(target)
        if (not served or owner[0] in served) and ctx.cache.get(*owner) is None
    }
    if users:
        live = {(b["metadata"]["namespace"], b["metadata"]["name"]) for b in await ctx.list_monitors()}
        users -= live
    removed = []
    for namespace, name in sorted(users):
        await redis_users.remove_user(target, namespace, name)
        removed.append(redis_users.acl_username(namespace, name))
        log.info("removed the Redis ACL user of deleted DriftMonitor %s/%s", namespace, name)
    return removed
