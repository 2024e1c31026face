"""What a deleted DriftMonitor leaves behind outside Kubernetes: its Redis keys.

Children (ConfigMap, Service, ...) carry owner references, so the garbage collector removes them; Redis
knows nothing of owners. Every key of the monitor starts with ``P:`` (contracts.md section 4), so SCAN
with that pattern and UNLINK in batches -- UNLINK frees memory in the background, so a monitor with a
large events stream does not stall Redis, and SCAN never blocks it the way KEYS would.
"""

from __future__ import annotations

import re

import redis.asyncio as aioredis

BATCH = 500


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


async def delete_keys(client: aioredis.Redis, prefix: str) -> int:
    """Remove every ``{prefix}:*`` key; returns how many were removed."""
    removed = 0
    batch: list[str] = []
    async for key in client.scan_iter(match=f"{_glob_escape(prefix)}:*", count=BATCH):
        batch.append(key)
        if len(batch) >= BATCH:
            removed += int(await client.unlink(*batch))
            batch.clear()
    if batch:
        removed += int(await client.unlink(*batch))
    return removed
