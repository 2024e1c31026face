"""HTTP routes. The ingest handlers stay short: read, decode, hand to ``Ingest``, answer; the engine
runs on its own thread (``worker``). Every answer is JSON with an ``error`` that names the problem."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from driftwatch.sidecar import openapi
from driftwatch.sidecar.admission import KeyCap
from driftwatch.sidecar.decode import BodyError, is_ndjson, payload_error
from driftwatch.sidecar.encode import dumps
from driftwatch.sidecar.events import EventLog
from driftwatch.sidecar.exposition import CONTENT_TYPE
from driftwatch.sidecar.ingest import ONE, Ingest, Outcome, ShuttingDown
from driftwatch.sidecar.metrics import Metrics, RedisHealth
from driftwatch.sidecar.queue import Queue, QueueFull
from driftwatch.sidecar.settings import Settings
from driftwatch.sidecar.views import StreamViews

ONE_ACCEPTED = b'{"accepted":1,"rejected":[],"rejectedCount":0,"rejectedReasons":{}}'
#: ``dumps({"accepted": n, **Rejections().answer()})``, byte for byte
ALL_ACCEPTED = b'{"accepted":%d,"rejected":[],"rejectedCount":0,"rejectedReasons":{}}'
EVENT_TYPES = ("DRIFT_START", "DRIFT_END")


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(doc), status=status, content_type="application/json", headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": message}, status, headers)


class Routes:
    def __init__(
        self,
        settings: Settings,
        ingest: Ingest,
        queue: Queue,
        keys: KeyCap,
        views: StreamViews,
        events: EventLog,
        metrics: Metrics,
        redis: RedisHealth | None,
    ) -> None:
        self.settings = settings
        self.ingest = ingest
        self.queue = queue
        self.keys = keys
        self.views = views
        self.events = events
        self.metrics = metrics
        self.redis = redis
        self.token = settings.token
        self.body_limit = settings.limits.body_limit
        self.latency = ingest.counters.latency
        #: ``POST /v1/metrics`` (OTLP), set by the runtime when ``spec.ingest.otlp`` is configured
        self.otlp: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None

    def authorized(self, request: web.Request) -> bool:
        """No token configured, or the request carries it as ``Authorization: Bearer``."""
        if self.token is None:
            return True
        from hmac import compare_digest  # only a sidecar with a token loads it

        got = request.headers.get("Authorization", "")
        return got.startswith("Bearer ") and compare_digest(got[7:].strip().encode(), self.token.encode())

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.authorized(request):
            return None
        return _error(
            401,
            "Authorization: missing or wrong bearer token",
            {"WWW-Authenticate": 'Bearer realm="driftwatch"'},
        )

    # --- ingest ---------------------------------------------------------------------------------------

    async def post_telemetry(self, request: web.Request) -> web.Response:
        return await self.post_samples(request, telemetry=True)

    async def post_samples(self, request: web.Request, telemetry: bool = False) -> web.Response:
        """``POST /v1/samples`` (``telemetry``: ``/v1/telemetry``); the handler itself, not a wrapper
        around a shared one: a coroutine less for every single-sample request."""
        t0 = time.perf_counter()
        if self.token is not None and (denied := self._unauthorized(request)) is not None:
            return denied
        ingest = self.ingest
        if not ingest.accepting:
            return _error(503, "shutting down", {"Retry-After": "1"})
        limit = self.body_limit
        cl = request.content_length
        if cl is not None and cl > limit:
            ingest.reject_body("body_too_large")
            return _error(413, f"body: {cl} bytes is over the limit of {limit} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            ingest.reject_body("body_too_large")
            return _error(413, f"body: over the limit of {limit} bytes")
        except RequestPayloadError as e:  # Content-Encoding: gzip on a body that does not inflate
            ingest.reject_body("invalid_shape")
            return _error(400, f"body: {payload_error(e)}")
        now = time.time()
        ndjson = is_ndjson(request.headers.get("Content-Type", ""))
        try:
            out = await ingest.receive(body, now, ndjson, telemetry)
        except BodyError as e:
            return _error(400, e.message)
        except ShuttingDown:  # the body arrived after shutdown began: the drain is done or under way
            return _error(503, "shutting down", {"Retry-After": "1"})
        return self._answer(out, t0)

    def _answer(self, out: Outcome, t0: float) -> web.Response:
        if out.full is not None:
            return _queue_full(out.full)
        self.latency.observe(time.perf_counter() - t0)
        if out is ONE or (out.accepted == 1 and not out.rejected):
            return web.Response(body=ONE_ACCEPTED, status=202, content_type="application/json")
        if not out.rejected:  # the usual batch answer, written without a dict and an encoder call
            body = ALL_ACCEPTED % out.accepted
            return web.Response(body=body, status=202, content_type="application/json")
        return _json({"accepted": out.accepted, **out.rejected.answer()}, 202)

    # --- reading --------------------------------------------------------------------------------------

    async def get_status(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        s = self.settings
        streams = await self.views.status_json()
        redis = self.redis
        return _json(
            {
                "monitor": s.monitor,
                "namespace": s.namespace,
                "pod": s.pod,
                "phase": self.views.phase(),
                "accepting": self.ingest.accepting,
                "redis": {
                    "configured": redis is not None,
                    "available": redis is not None and redis.up,
                    "restored": redis is not None and redis.restored,
                },
                "queue": {"depth": self.queue.depth, "capacity": self.queue.capacity},
                "keys": len(self.keys),
                "streams": streams,
            }
        )

    async def get_events(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        q = request.query
        type_ = q.get("type")
        if type_ is not None and type_ not in EVENT_TYPES:
            return _error(400, f"type: must be one of {', '.join(EVENT_TYPES)}, got {type_!r}")
        try:
            since = _since(q["since"]) if "since" in q else None
        except ValueError:
            return _error(400, f"since: must be epoch seconds or an ISO 8601 time, got {q['since']!r}")
        ints = {}
        for name, default, lo, hi in (("limit", 100, 1, 1000), ("offset", 0, 0, 10_000_000)):
            try:
                ints[name] = int(q.get(name, default))
            except ValueError:
                return _error(400, f"{name}: must be an integer, got {q[name]!r}")
            if not lo <= ints[name] <= hi:
                return _error(400, f"{name}: must be between {lo} and {hi}, got {ints[name]}")
        total, page = self.events.query(
            q.get("feature"), q.get("key"), type_, since, ints["limit"], ints["offset"]
        )
        return _json({"total": total, "limit": ints["limit"], "offset": ints["offset"], "events": page})

    async def get_healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def get_readyz(self, request: web.Request) -> web.Response:
        """Ready whenever it accepts samples. Redis being down is reported (``degraded``) but is not
        unreadiness: failing readiness would pull the app's pod out of its Service for our sake."""
        if not self.ingest.accepting:
            return _json(
                {
                    "status": "unavailable",
                    "redis": self._redis_state(),
                    "reason": "starting or shutting down",
                },
                503,
            )
        status = "degraded" if self.redis is not None and not self.redis.up else "ok"
        return _json({"status": status, "redis": self._redis_state()})

    def _redis_state(self) -> str:
        if self.redis is None:
            return "not configured"
        return "available" if self.redis.up else "unavailable"

    async def get_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=await self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def get_openapi(self, request: web.Request) -> web.Response:
        return _json(openapi.document(self.settings))


def _queue_full(e: QueueFull) -> web.Response:
    retry = str(int(e.retry_after + 0.999))
    return _error(429, f"queue full ({e.waiting} samples waiting); retry later", {"Retry-After": retry})


def _since(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        dt = datetime.fromisoformat(text)
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def build_app(routes: Routes) -> web.Application:
    """The main (ingest) app. ``client_max_size`` enforces the body limit for chunked bodies too."""
    app = web.Application(client_max_size=routes.body_limit)
    app.router.add_post("/v1/samples", routes.post_samples)
    app.router.add_post("/v1/telemetry", routes.post_telemetry)
    if routes.otlp is not None:
        app.router.add_post("/v1/metrics", routes.otlp)
    app.router.add_get("/v1/status", routes.get_status)
    app.router.add_get("/v1/events", routes.get_events)
    app.router.add_get("/healthz", routes.get_healthz)
    app.router.add_get("/readyz", routes.get_readyz)
    app.router.add_get("/metrics", routes.get_metrics)
    app.router.add_get("/openapi.json", routes.get_openapi)
    return app


def build_metrics_app(routes: Routes) -> web.Application:
    """The metrics port: ``/metrics`` plus probes, nothing that accepts data."""
    app = web.Application()
    app.router.add_get("/metrics", routes.get_metrics)
    app.router.add_get("/healthz", routes.get_healthz)
    app.router.add_get("/readyz", routes.get_readyz)
    return app
