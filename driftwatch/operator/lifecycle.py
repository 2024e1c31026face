"""The operator process starting and stopping: its servers, its cache, its notification listener.

Order matters at start: the gate endpoints first (the Deployment's probes ask them), then the cache is
primed with every DriftMonitor *before* the webhook answers -- a pod admitted before the first watch
events arrive would otherwise miss its sidecar -- then the webhook, then the leader election: the
aggregation loop, the Redis listener and the sweep run on the leader only (``leadership.py``).
"""

from __future__ import annotations

import logging

from driftwatch.operator import history_api, leadership, status_round
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.endpoints import EndpointServer
from driftwatch.operator.notify import Trigger
from driftwatch.operator.webhook import WebhookServer
from driftwatch.redisconn import redact

log = logging.getLogger("driftwatch.operator")


async def start(ctx: OperatorContext, on_notify: Trigger, post: status_round.PostEvents) -> None:
    """Bring up what the operator serves; safe to retry (kopf retries a failed startup)."""
    o = ctx.options
    if o.gate_port and ctx.endpoints is None:  # a retried startup must not bind twice
        ctx.endpoints = EndpointServer(
            ctx.cache,
            o.gate_host,
            o.gate_port,
            max_age=max(5 * o.aggregate_interval, o.heartbeat * 2),
            ready=lambda: ctx.ready,
            token=o.gate_token,
            routes=[(history_api.PATH, history_api.handler(ctx.cache, ctx.redis))],
        )
        await ctx.endpoints.start()
    await prime_cache(ctx)
    if o.webhook_port and ctx.webhook is None:
        webhook = WebhookServer(ctx.cache, o, ctx.kube)
        await webhook.start()
        ctx.webhook = webhook
    # the aggregation loop, the listener, the sweep: here if this replica leads (leadership.py)
    await leadership.start(ctx, on_notify, post)
    ctx.ready = True
    log.info(
        "driftwatch operator ready (webhook %s, redis %s, %s)",
        o.webhook_mode,
        redact(o.redis_url),
        "leader" if ctx.leading else "follower",
    )


async def prime_cache(ctx: OperatorContext) -> None:
    """List every served DriftMonitor once (kopf's watch keeps the cache current from here on)."""
    for body in await ctx.list_monitors():
        ctx.cache.upsert(body, ctx.options)


async def stop(ctx: OperatorContext) -> None:
    ctx.ready = False
    await leadership.stop(ctx)
    for server in (ctx.webhook, ctx.endpoints):
        if server is not None:
            await server.stop()
    await ctx.feed.close()
    await ctx.alerting.close()
    await ctx.redis.close()
    await ctx.kube.close()
