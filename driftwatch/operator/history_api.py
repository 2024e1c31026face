"""``GET /v1/history/{namespace}/{name}``: a monitor's history (``P:history``), newest first.

Query parameters (``driftwatch.history.entries.Filters``): ``feature``, ``severity`` (a minimum),
``type`` (comma-separated), ``since``/``until`` (ISO 8601, epoch seconds, or a duration back from now
such as ``7d``), ``limit`` (1-1000, default 100) and ``cursor`` (the ``next`` of the previous page).
A bad parameter is a 400 naming it; an unknown monitor a 404; Redis not answering a 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError

from driftwatch.history import stream_log
from driftwatch.history.entries import Filters
from driftwatch.operator.cache import MonitorCache
from driftwatch.operator.pod_reports import RedisPool
from driftwatch.vocab.spec import ConfigError

PATH = "/v1/history/{namespace}/{name}"
#: seconds a query may take before the answer is a 503
TIMEOUT = 10.0

Handler = Callable[[web.Request], Awaitable[web.Response]]


def handler(cache: MonitorCache, redis: RedisPool) -> Handler:
    async def history(request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        monitor = cache.get(ns, name)
        if monitor is None:
            return web.json_response({"error": f"no DriftMonitor {ns}/{name}"}, status=404)
        try:
            filters = Filters.parse(dict(request.query))
        except ConfigError as e:
            return web.json_response({"error": str(e), "parameter": e.field}, status=400)
        try:
            page = await asyncio.wait_for(
                stream_log.query(redis.get(monitor.redis_url), monitor.keys.history, filters), TIMEOUT
            )
        except (RedisError, OSError, TimeoutError) as e:
            body = {"error": f"Redis unavailable ({type(e).__name__})"}
            return web.json_response(body, status=503, headers={"Retry-After": "10"})
        return web.json_response({"monitor": f"{ns}/{name}", **page.to_dict()})

    return history
