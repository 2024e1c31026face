"""``driftwatch ack``'s requests (annotation ``driftwatch.io/ack`` on a DriftMonitor), acted on once.

A new request (an id not yet in ``status.acknowledged``) is recorded there (newest first, at most
``MAX_KEPT``), in the monitor's history (``ACK``), and in the alerting's acknowledgements (repeats
silenced until the next transition); with ``adopt`` the sidecars are told through ``P:commands`` and
each runs ``Engine.adopt``. Acknowledgements still active in status are taken up again after an
operator restart.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError

from driftwatch.history import stream_log
from driftwatch.history.entries import ACK, Entry
from driftwatch.kube.client import KubeError, path_for
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.vocab.names import ANNOTATION_ACK, KIND

log = logging.getLogger("driftwatch.operator")
MAX_KEPT = 20
#: ``P:commands`` keeps this many commands, for a day (a sidecar reads those of the last minute at start)
COMMANDS_MAXLEN = 100
COMMANDS_TTL = 86400


def requested(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The annotation's request if it is well formed and not yet in ``status.acknowledged``."""
    raw = ((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_ACK)
    if not raw:
        return None
    try:
        ack = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(ack, dict) or not isinstance(ack.get("id"), str) or not ack["id"]:
        return None
    feature = ack.get("feature")
    if feature is not None and not isinstance(feature, str):
        return None
    done = {
        a.get("id") for a in (body.get("status") or {}).get("acknowledged") or [] if isinstance(a, Mapping)
    }
    if ack["id"] in done:
        return None
    return {
        "id": ack["id"][:64],
        "feature": feature,
        "adopt": bool(ack.get("adopt")),
        "by": str(ack.get("by") or "")[:128],
    }


def observe(ctx: OperatorContext, body: Mapping[str, Any]) -> None:
    """On every watch event: take up active acknowledgements once, and act on a new request."""
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    monitor = ctx.cache.get(*key)
    if monitor is None:
        return
    if key not in ctx.alerting.acks:  # first sight since start: what status says is in force
        ctx.alerting.acks[key] = {}
        for a in (body.get("status") or {}).get("acknowledged") or []:
            if isinstance(a, Mapping) and a.get("active"):
                ctx.alerting.acknowledge(monitor, a.get("feature"), str(a.get("id")))
    ack = requested(body)
    if ack is None or ack["id"] in ctx.acks_seen:
        return
    ctx.acks_seen.add(ack["id"])

    async def act() -> None:
        await record(ctx, monitor, ack)

    ctx.feed.later(monitor, act)


async def record(ctx: OperatorContext, monitor: Monitor, ack: dict[str, Any]) -> None:
    now = time.time()
    ctx.alerting.acknowledge(monitor, ack["feature"], ack["id"])
    redis = ctx.redis.get(monitor.redis_url)
    what = ack["feature"] or "every feature"
    try:
        if ack["adopt"]:
            command = {"command": "adopt", "id": ack["id"], "feature": ack["feature"], "time": now}
            async with redis.pipeline(transaction=False) as p:
                p.xadd(monitor.keys.commands, {"command": json.dumps(command)}, maxlen=COMMANDS_MAXLEN)
                p.expire(monitor.keys.commands, COMMANDS_TTL)
                await p.execute()
        summary = f"{what} acknowledged by {ack['by'] or 'someone'}" + (" (adopted)" if ack["adopt"] else "")
        await stream_log.append(
            redis, monitor.keys.history, Entry(ACK, now, summary, ack["feature"], details=ack)
        )
    except (RedisError, OSError, TimeoutError) as e:
        log.warning(
            "%s/%s: acknowledgement not in Redis (%s)", monitor.namespace, monitor.name, type(e).__name__
        )
    entry = {**ack, "time": _rfc3339(now), "active": True}
    try:
        body = await ctx.kube.get(KIND, monitor.namespace, monitor.name)
        previous = ((body or {}).get("status") or {}).get("acknowledged") or []
        await ctx.kube.request(
            "PATCH",
            path_for(KIND, monitor.namespace, monitor.name, "status"),
            body={"status": {"acknowledged": [entry, *previous][:MAX_KEPT]}},
            content_type="application/merge-patch+json",
        )
    except KubeError as e:
        log.warning("%s/%s: acknowledgement not in status: %s", monitor.namespace, monitor.name, e.message)
    log.info("%s/%s: %s acknowledged (adopt: %s)", monitor.namespace, monitor.name, what, ack["adopt"])


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
