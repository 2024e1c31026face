"""Per-pod summaries from Redis, merged into one monitor-level view per (feature, key).

Reads the keys the sidecars write (contracts.md section 4) in one pipelined round trip per monitor:
age out pods that stopped publishing (``P:pods`` score older than ``stale_after``), then fetch the
remaining pods' ``P:summary:{pod}``. The merge itself is the engine's
(``driftwatch.detect.aggregate.aggregate``), so the sidecar and the operator agree on what drift is;
``fallback_merge`` covers an engine build without it (per-pod votes, no sketch merging).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from driftwatch.config import MonitorSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reports:
    """What Redis said about one monitor in one round."""

    summaries: list[dict[str, Any]]
    pods: list[str]
    aged_out: int = 0
    last_publish: float | None = None


@dataclass
class RedisPool:
    """One client per Redis URL (monitors may override the operator's Redis), shared by all timers."""

    timeout: float = 2.0
    clients: dict[str, aioredis.Redis] = field(default_factory=dict)

    def get(self, url: str) -> aioredis.Redis:
        client = self.clients.get(url)
        if client is None:
            client = aioredis.Redis.from_url(
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


async def read_reports(client: aioredis.Redis, prefix: str, now: float, stale_after: float) -> Reports:
    """Age out silent pods, then return the live pods' summaries (missing/expired ones skipped)."""
    pods_key = f"{prefix}:pods"
    async with client.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(pods_key, "-inf", f"({now - stale_after}")
        pipe.zrange(pods_key, 0, -1, withscores=True)
        aged_out, members = await pipe.execute()
    pods = [str(m) for m, _ in members]
    last = max((float(s) for _, s in members), default=None)
    if not pods:
        return Reports([], [], int(aged_out or 0), last)
    raw = await client.mget([f"{prefix}:summary:{p}" for p in pods])
    summaries: list[dict[str, Any]] = []
    reporting: list[str] = []
    for pod, text in zip(pods, raw, strict=True):
        if text is None:  # TTL expired between the two calls, or the pod never published one
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            log.warning("unreadable summary %s:summary:%s", prefix, pod)
            continue
        doc.setdefault("pod", pod)
        summaries.append(doc)
        reporting.append(pod)
    return Reports(summaries, reporting, int(aged_out or 0), last)


def _severity(score: float, spec: MonitorSpec) -> str:
    if score >= spec.sensitivity.critical:
        return "critical"
    if score >= spec.sensitivity.warning:
        return "warning"
    return "none"


def fallback_merge(summaries: Sequence[Mapping[str, Any]], spec: MonitorSpec) -> list[dict[str, Any]]:
    """Per (feature, key): Drifting when at least half of the reporting pods say so (the contract's
    second rule); score and detector of the worst pod. No sketch merging."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for s in summaries:
        for st in s.get("streams") or []:
            groups.setdefault((str(st.get("feature")), str(st.get("key") or "")), []).append(st)
    out = []
    for (feature, key), streams in sorted(groups.items()):
        drifting = sum(1 for st in streams if st.get("state") == "Drifting")
        stable = sum(1 for st in streams if st.get("state") == "Stable")
        if drifting and drifting * 2 >= len(streams):
            state = "Drifting"
        elif stable or drifting:
            state = "Stable"
        else:
            state = "Initializing"
        worst = max(streams, key=lambda st: float(st.get("score") or 0.0))
        score = float(worst.get("score") or 0.0)
        out.append(
            {
                "name": feature,
                "key": key,
                "state": state,
                "score": score,
                "severity": _severity(score, spec) if state == "Drifting" else "none",
                "detector": str(worst.get("detector") or ""),
                "since": worst.get("since"),
                "pods": len(streams),
                "evidence": {"podsDrifting": drifting, "podsReporting": len(streams)},
            }
        )
    return out


def merge(summaries: Sequence[Mapping[str, Any]], spec: MonitorSpec) -> list[dict[str, Any]]:
    """Monitor-level feature statuses (``FeatureStatus.to_dict()`` shape), JSON-safe."""
    try:
        from driftwatch.detect.aggregate import aggregate
    except ImportError:  # an engine build without it: per-pod votes
        return [_json_safe(f) for f in fallback_merge(summaries, spec)]
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
