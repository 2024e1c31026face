"""Read the sidecars' sample reservoirs of a window from Redis (docs/redis-keys.md, "Sample
reservoirs"): the index gives the keys of the window's buckets (one ``ZRANGE BYSCORE``), one pipeline
reads them. Keys that expired between the two reads are simply absent; values that do not parse are
skipped and counted (a reader never fails on what another version of the sidecar wrote)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftwatch.redisconn import AnyRedis
from driftwatch.scans.pooling import CATEGORICAL, NUMERIC, Part
from driftwatch.scans.windows import Window
from driftwatch.vocab import reservoir_format as fmt
from driftwatch.vocab.rediskeys import MonitorKeys


@dataclass
class Read:
    parts: list[Part] = field(default_factory=list)
    keys: int = 0
    skipped: int = 0


async def read_window(client: AnyRedis, keys: MonitorKeys, window: Window, bucket: int) -> Read:
    """Every reservoir of the buckets whose middle lies in ``window``, from every pod."""
    lo, hi = window.buckets(bucket)
    members = await client.zrange(keys.reservoirs, lo, f"({hi}", byscore=True)
    owners: list[tuple[str, str]] = []
    for m in members:
        text = m.decode() if isinstance(m, bytes) else str(m)
        start, sep, pod = text.partition(":")
        if sep and start.isdigit() and pod:
            owners.append((keys.reservoir(int(start), pod), pod))
    return await _read(client, owners)


async def read_pinned(client: AnyRedis, keys: MonitorKeys) -> Read:
    """Every pod's pinned reference reservoirs (the baseline's samples, or a fixed window's)."""
    pods = await client.zrange(keys.references, 0, -1)
    names = [p.decode() if isinstance(p, bytes) else str(p) for p in pods]
    return await _read(client, [(keys.reference(pod), pod) for pod in names])


async def _read(client: AnyRedis, owners: Sequence[tuple[str, str]]) -> Read:
    out = Read()
    if not owners:
        return out
    async with client.pipeline(transaction=False) as p:
        for key, _ in owners:
            p.hgetall(key)
        hashes: list[dict[Any, Any]] = await p.execute()
    for (_, pod), fields in zip(owners, hashes, strict=True):
        if fields:
            out.keys += 1
        for name, blob in fields.items():
            part = decode_part(pod, name, blob)
            if part is None:
                out.skipped += 1
            else:
                out.parts.append(part)
    return out


def decode_part(pod: str, name: bytes | str, blob: bytes) -> Part | None:
    stream = fmt.parse_stream_field(name)
    decoded = fmt.decode(blob) if isinstance(blob, bytes) else None
    if stream is None or decoded is None:
        return None
    kind, seen, stored = decoded
    if kind == fmt.CATEGORICAL:
        return Part(pod, stream[0], stream[1], CATEGORICAL, seen, stored)
    values = np.asarray(stored, dtype=np.float64)
    return Part(pod, stream[0], stream[1], NUMERIC, seen, values[np.isfinite(values)])
