"""A status round: read the sidecars' summaries, merge them, compute status, and decide what to write.

Two paths run the same round, serialised per monitor, and write it the same way -- a merge patch of
the status subresource guarded by the freshest resourceVersion, retried once on a conflict (after that
the next round has it):

* the aggregation loop (``status_loop``, every ``--aggregate-interval``, every monitor in the cache):
  one task, not a kopf timer per monitor -- kopf's timers put a finalizer on every DriftMonitor, which
  outlived ``helm uninstall`` and kept namespaces and the CRD from being deleted;
* a sidecar's notification (``notify.py``, right after a drift event).

A round writes only when something besides timestamps changed, or the heartbeat is due.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftwatch.kube.client import KubeError, path_for
from driftwatch.operator import history_feed, pod_reports, reconcile, rollout_gate, status_rules, telemetry
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.status_rules import Event, PodInfo, PodView
from driftwatch.redisconn import redact_text
from driftwatch.vocab.names import KIND
from driftwatch.vocab.spec import ConfigError
from driftwatch.vocab.states import Condition

log = logging.getLogger("driftwatch.operator")

#: Events to post for a monitor's body: kopf's posting (timer) or a captured copy of it (notification)
PostEvents = Callable[[Mapping[str, Any], Sequence[Event]], None]
#: Redis must answer a round within this many seconds, or the round reports it unreachable
REDIS_TIMEOUT = 10.0


@dataclass
class Round:
    """One round's result: what to merge into ``status`` and which Events to post."""

    monitor: Monitor
    fields: dict[str, Any]
    conditions: list[dict[str, Any]]
    events: list[Event]
    #: the status this round claimed in the cache (the gate answers from it before the watch event)
    claimed: dict[str, Any]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def run(
    ctx: OperatorContext,
    body: Mapping[str, Any],
    pods: Iterable[PodInfo],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> Round | None:
    """The round both paths run; None when nothing is to be written. Serialised per monitor."""
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    async with ctx.round_locks.setdefault(key, asyncio.Lock()):
        return await _round(ctx, body, pods, logger)


async def _round(
    ctx: OperatorContext,
    body: Mapping[str, Any],
    pods: Iterable[PodInfo],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> Round | None:
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return None
    previous = ctx.cache.newest_status(body)
    if not any(c.get("type") == Condition.READY for c in previous.get("conditions") or []):
        return None  # not reconciled yet: two writers racing on a new object only cause conflicts
    try:
        monitor = Monitor.from_body(body, ctx.options)
    except ConfigError:
        return None  # reconcile reported it
    await reconcile.resync(ctx, monitor, logger)
    pods = list(pods)
    view = PodView.of(pods, monitor.selector)
    features, summaries, reporting, redis_error = await _read(ctx, monitor)
    if redis_error is not None:
        reporting = int((previous.get("pods") or {}).get("reporting") or 0)
    outcome = status_rules.compute(monitor, features, reporting, view, redis_error, previous)
    decision = rollout_gate.decide(
        monitor, outcome.fields["phase"], outcome.fields["features"], redis_error, summaries, pods
    )
    outcome = rollout_gate.apply(outcome, decision, previous)
    telemetry.set_gate(
        monitor.namespace,
        monitor.name,
        monitor.spec.gate.compare,
        monitor.spec.gate.mode,
        rollout_gate.CODE[decision.verdict],
        rollout_gate.CODE[decision.computed],
    )

    t = now()
    last = previous.get("lastUpdate")
    heartbeat_due = (
        last is None
        or (t - dt.datetime.fromisoformat(str(last).replace("Z", "+00:00"))).total_seconds()
        >= ctx.options.heartbeat
    )
    why = status_rules.changed(previous, outcome.fields, outcome.conditions)
    if why is None and not heartbeat_due:
        return None
    log.debug("%s/%s: writing status (%s)", monitor.namespace, monitor.name, why or "heartbeat")
    fields = dict(outcome.fields)
    fields["lastUpdate"] = status_rules.rfc3339(t)
    if previous.get("phase") != outcome.fields["phase"]:
        fields["lastTransition"] = status_rules.rfc3339(t)
    # claimed inside the lock, so the other path's next round compares against it
    claimed = {**previous, **fields}
    ctx.cache.claim(monitor.namespace, monitor.name, claimed)
    ctx.feed.submit(monitor, history_feed.transitions(previous, fields))  # history + alerts, off the round
    return Round(monitor, fields, outcome.conditions, outcome.events, claimed)


async def _read(
    ctx: OperatorContext, monitor: Monitor
) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]], int, str | None]:
    """(merged features, the per-pod summaries, reporting pods, None) -- or (None, [], 0, the error)
    when Redis could not be read."""
    started = time.perf_counter()
    try:
        reports = await asyncio.wait_for(
            pod_reports.read_reports(
                ctx.redis.get(monitor.redis_url), monitor.keys, time.time(), ctx.options.stale_after
            ),
            timeout=REDIS_TIMEOUT,
        )
        # the merge is CPU-bound (every pod's streams): in a worker thread, off the loop the admission
        # webhook answers on -- a large monitor must never delay pod creation past the webhook timeout
        merged = await asyncio.to_thread(pod_reports.merge, reports.summaries, monitor.spec)
        return merged, reports.summaries, len(reports.pods), None
    except Exception as e:  # Redis down or slow: say so in status, keep the previous features
        telemetry.REDIS_ERRORS.inc()
        return None, [], 0, redact_text(f"{type(e).__name__}: {e}")[:300]
    finally:
        telemetry.AGGREGATE_SECONDS.observe(time.perf_counter() - started)


def status_patch(body: Mapping[str, Any], rnd: Round, at: dt.datetime) -> dict[str, Any]:
    """The merge patch of the status subresource for ``rnd``, guarded by ``body``'s resourceVersion.

    ``status.gate`` is replaced, not merged: its detail keys this round lacks are patched to null
    (``rollout_gate.DETAIL_KEYS``), so an earlier round's ``canaryHash`` never outlives its verdict."""
    current = body.get("status") or {}
    fields = dict(rnd.fields)
    gate = fields.get("gate")
    if isinstance(gate, Mapping):
        fields["gate"] = {**{k: None for k in rollout_gate.DETAIL_KEYS}, **gate}
    return {
        "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
        "status": {
            **fields,
            "conditions": status_rules.merge_conditions(current.get("conditions"), rnd.conditions, at),
        },
    }


async def on_notification(ctx: OperatorContext, namespace: str, name: str, post: PostEvents) -> str:
    """A sidecar published ``P:notify`` for this monitor: the round now. Returns what happened
    (``ignored``, ``unchanged``, ``written``) and counts it; raises when the write fails."""
    monitor = ctx.cache.get(namespace, name)
    ours = monitor is not None and (monitor.redis_url, monitor.key_prefix) == (
        ctx.options.redis_url,
        ctx.options.key_prefix,
    )
    # unknown, or on its own Redis/prefix (the listener never hears those)
    try:
        result = await refresh(ctx, namespace, name, post) if ours else "ignored"
    except KubeError:
        telemetry.NOTIFICATIONS.labels("error").inc()
        raise
    telemetry.NOTIFICATIONS.labels(result).inc()
    return result


async def refresh(ctx: OperatorContext, namespace: str, name: str, post: PostEvents) -> str:
    """One round for one monitor, written as a guarded merge patch of its status subresource."""
    if ctx.pods_index is None:
        return "ignored"  # no pod counts yet: a round now would report 0 selected pods
    for attempt in range(2):
        body = await ctx.kube.get(KIND, namespace, name)
        if body is None:
            return "ignored"
        rnd = await run(ctx, body, ctx.pods_index.get(namespace, []), log)
        if rnd is None:
            return "unchanged"
        try:
            await ctx.kube.request(
                "PATCH",
                path_for(KIND, namespace, name, "status"),
                body=status_patch(body, rnd, now()),
                content_type="application/merge-patch+json",
            )
        except KubeError as e:
            # the claim did not land: the next round (this retry, or the loop's) compares against the
            # real status again
            ctx.cache.release(namespace, name, rnd.claimed, body.get("status") or {})
            if e.status == 409 and attempt == 0:
                continue
            raise
        telemetry.STATUS_WRITES.inc()
        post(body, rnd.events)
        log.debug("%s/%s: status written", namespace, name)
        return "written"
    raise AssertionError("unreachable: the second attempt returns or raises")


#: rounds of different monitors run concurrently up to this many (each waits on Redis and the API)
CONCURRENT_ROUNDS = 8


async def status_loop(ctx: OperatorContext, post: PostEvents) -> None:
    """Every ``aggregate_interval``: a round for every monitor in the cache; until cancelled. A failing
    monitor is logged and retried next time; it never stops the others."""
    gate = asyncio.Semaphore(CONCURRENT_ROUNDS)

    async def one(namespace: str, name: str) -> None:
        async with gate:
            try:
                await refresh(ctx, namespace, name, post)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("%s/%s: status round failed (retried next round): %s", namespace, name, e)

    while True:
        started = time.monotonic()
        monitors = [(m.namespace, m.name) for ns in list(ctx.cache.monitors.values()) for m in ns.values()]
        await asyncio.gather(*(one(ns, name) for ns, name in monitors))
        await asyncio.sleep(max(0.0, ctx.options.aggregate_interval - (time.monotonic() - started)))
