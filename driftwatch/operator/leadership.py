"""Which replica does what: every replica serves, one leads.

Every replica: the admission webhook, the gate and health endpoints, and kopf's watches -- the monitor
cache the webhook answers from and the pods index -- so any replica answers a pod's admission exactly
as the leader would, and an upgrade or a dead pod never leaves pods created without their sidecar.

Only the leader (``election.LeaseElector`` on the Lease ``driftwatch-operator-leader``): kopf's
reconcile handlers (``handlers`` gates them with ``when=``; on a follower kopf is blind to the change
and stores nothing on the object), the aggregation loop, the notification listener, the Redis cleanup
of deleted monitors and the start-up sweep. Without ``leader_election`` the process leads alone.

A new leader looks at what the old one may have left unfinished: a monitor with no ``Ready`` condition,
one for an older generation, or kopf's progress record of the reconcile handler still on it (a retry
pending) gets kopf's touch annotation. kopf, unblocked here now, sees the event and carries on from its
own records on the object -- a create, an update or the pending retry -- as a restarted operator would.
Every other monitor kopf resumes at its next event (it never handled it in this process), and the first
aggregation round re-applies its children (``reconcile.resync``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from driftwatch.kube.client import path_for
from driftwatch.operator import cleanup, status_round, telemetry
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.election import LeaseElector, Timing, micro_time
from driftwatch.operator.notify import NotifyListener, Trigger
from driftwatch.redisconn import redact_text
from driftwatch.vocab.names import ANNOTATION_TOUCH, GROUP, KIND
from driftwatch.vocab.states import Condition

log = logging.getLogger("driftwatch.operator")

#: the id of kopf's reconcile handler (``handlers.py``): kopf keeps its progress in this annotation
#: while the handler is unfinished (retrying), and removes it when done
RECONCILE_ID = "reconcile_children"


async def start(ctx: OperatorContext, on_notify: Trigger, post: status_round.PostEvents) -> None:
    """Lead now (no election), or join the election. The first round is awaited: a replica alone
    leads before kopf lists the monitors, so it resumes them as a single operator always did."""
    o = ctx.options
    if not o.leader_election:
        if not ctx.leading:
            await lead(ctx, on_notify, post)
        return
    if ctx.elector is not None:  # a retried startup
        return
    ctx.elector = LeaseElector(
        ctx.kube,
        o.operator_namespace,
        o.lease_name,
        o.identity,
        Timing.of(o.lease_duration),
        on_lead=lambda: lead(ctx, on_notify, post),
        on_follow=lambda: follow(ctx),
    )
    await ctx.elector.step()
    ctx.election_task = asyncio.create_task(ctx.elector.run(), name="driftwatch-election")


async def stop(ctx: OperatorContext) -> None:
    """Stop the leader's work and hand the Lease back (a follower takes over at its next round)."""
    if ctx.election_task is not None:
        ctx.election_task.cancel()
        await asyncio.gather(ctx.election_task, return_exceptions=True)
        ctx.election_task = None
    if ctx.elector is not None:
        await ctx.elector.release()
    elif ctx.leading:
        await follow(ctx)


async def lead(ctx: OperatorContext, on_notify: Trigger, post: status_round.PostEvents) -> None:
    """Become the leader: the aggregation loop, the notification listener, the sweep, the hand-over."""
    o = ctx.options
    ctx.leading = True
    telemetry.LEADER.set(1)
    if o.notify and ctx.notify_task is None:
        # ONE task for all monitors (not a kopf daemon per DriftMonitor: one connection, not N)
        listener = NotifyListener(o.redis_url, o.key_prefix, on_notify)
        ctx.notify_task = asyncio.create_task(listener.run(), name="driftwatch-notify")
    if ctx.status_task is None:
        ctx.status_task = asyncio.create_task(status_round.status_loop(ctx, post), name="driftwatch-status")
    for work, name in ((_sweep(ctx), "driftwatch-sweep"), (_nudge(ctx), "driftwatch-handover")):
        task = asyncio.create_task(work, name=name)
        ctx.background.add(task)
        task.add_done_callback(ctx.background.discard)


async def follow(ctx: OperatorContext) -> None:
    """Stop the leader's work (this replica goes on serving the webhook and the gate)."""
    ctx.leading = False
    telemetry.LEADER.set(0)
    tasks = [t for t in (ctx.notify_task, ctx.status_task, *ctx.background) if t is not None]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ctx.notify_task = ctx.status_task = None
    ctx.background.clear()
    # a later term starts afresh: children re-applied at once, verdict series only where rounds run
    ctx.last_applied.clear()
    telemetry.forget_gates()


def unfinished(body: Mapping[str, Any]) -> bool:
    """Whether kopf may not have finished reconciling this monitor (see the module's docstring)."""
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    progress = f"{GROUP}/{RECONCILE_ID}"
    if any(str(k).startswith(progress) for k in meta.get("annotations") or {}):
        return True
    conditions = (body.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == Condition.READY), None)
    return ready is None or int(ready.get("observedGeneration") or 0) != int(meta.get("generation") or 0)


async def _nudge(ctx: OperatorContext) -> None:
    """kopf's touch annotation on every unfinished monitor: the event makes kopf handle it here."""
    try:
        bodies = [b for b in await ctx.list_monitors() if unfinished(b)]
        for body in bodies:
            meta = body["metadata"]
            await ctx.kube.request(
                "PATCH",
                path_for(KIND, meta["namespace"], meta["name"]),
                body={"metadata": {"annotations": {ANNOTATION_TOUCH: micro_time()}}},
                content_type="application/merge-patch+json",
            )
    except asyncio.CancelledError:
        raise
    except Exception as e:  # each is handled at its next event anyway
        log.warning("hand-over: touching unfinished DriftMonitors failed: %s", e)
    else:
        if bodies:
            log.info("hand-over: %d DriftMonitor(s) left unfinished, handed to kopf again", len(bodies))


async def _sweep(ctx: OperatorContext) -> None:
    """Keys and ACL users of monitors deleted while no operator ran (``cleanup.sweep``,
    ``cleanup.sweep_users``), each on its own: one failing leaves the other done; Redis down: next term."""
    try:
        removed = await cleanup.sweep(ctx)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        log.warning("sweeping the Redis keys of deleted monitors failed: %s", redact_text(str(e)))
    else:
        if removed:
            log.info("removed %d Redis keys of DriftMonitors deleted while the operator was away", removed)
    try:
        users = await cleanup.sweep_users(ctx)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        log.warning("sweeping the Redis ACL users of deleted monitors failed: %s", redact_text(str(e)))
    else:
        if users:
            log.info("removed %d Redis ACL users of DriftMonitors deleted while no operator ran", len(users))
