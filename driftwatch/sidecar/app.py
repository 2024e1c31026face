"""HTTP routes. The ingest handlers stay short: read, decode, validate, admit, answer; the engine runs
elsewhere (pipeline worker). Every answer is JSON with an ``error`` that names the problem."""

from __future__ import annotations

import asyncio
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from driftwatch.sidecar import openapi
from driftwatch.sidecar.parse import BAD_LINE, MAX_ABS, BodyError, is_ndjson, loads, split_ndjson
from driftwatch.sidecar.pipeline import QueueFull
from driftwatch.sidecar.runtime import Sidecar

SIDECAR = web.AppKey("sidecar", Sidecar)
REGISTRY = web.AppKey("registry", CollectorRegistry)
ONE_ACCEPTED = b'{"accepted":1,"rejected":[]}'
EVENT_TYPES = ("DRIFT_START", "DRIFT_END")
#: below this many samples numpy's fixed cost exceeds the per-sample loop's
FAST_PATH_MIN = 32


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": message}, status, headers)


def _unauthorized(sc: Sidecar, request: web.Request) -> web.Response | None:
    token = sc.settings.token
    if token is None:
        return None
    got = request.headers.get("Authorization", "")
    if got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip().encode(), token.encode()):
        return None
    return _error(
        401, "Authorization: missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="driftwatch"'}
    )


async def _ingest(request: web.Request, telemetry: bool) -> web.Response:
    t0 = time.perf_counter()
    sc = request.app[SIDECAR]
    if sc.settings.token is not None and (denied := _unauthorized(sc, request)) is not None:
        return denied
    if not sc.accepting:
        return _error(503, "shutting down", {"Retry-After": "1"})
    limit = sc.settings.limits.body_limit
    pl = sc.pipeline
    cl = request.content_length
    if cl is not None and cl > limit:
        pl.rejected["body_too_large"] += 1
        return _error(413, f"body: {cl} bytes is over the limit of {limit} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        pl.rejected["body_too_large"] += 1
        return _error(413, f"body: over the limit of {limit} bytes")
    now = time.time()
    v = sc.validator
    try:
        ctype = request.headers.get("Content-Type", "")
        if not ctype.startswith("application/json") and is_ndjson(ctype):
            lines, rejected = split_ndjson(body)
            accepted: list[Any] = []
            if telemetry:
                for i, item in enumerate(lines):
                    if item is BAD_LINE:
                        continue
                    a, r = v.telemetry(item, now)
                    accepted += [(s[0], s[1], s[2], s[3], s[4], i) for s in a]
                    rejected += [{**x, "index": i} for x in r]
            else:
                v.items(lines, now, accepted, rejected)
        elif telemetry:
            accepted, rejected = v.telemetry(loads(body), now)
        else:
            doc = loads(body)
            fast = _fast_paths(sc, doc, now, t0)
            if fast is not None:
                return fast
            accepted, rejected = v.body(doc, now)
    except BodyError as e:
        pl.rejected[e.reason] += 1
        return _error(400, e.message)
    try:
        n = pl.admit(accepted, rejected, now)
    except QueueFull as e:
        pl.count_rejections(rejected)
        pl.rejected["queue_full"] += len(accepted)
        return _queue_full(pl, e)
    sc.latency.observe(time.perf_counter() - t0)
    if n == 1 and not rejected:
        return web.Response(body=ONE_ACCEPTED, status=202, content_type="application/json")
    return _json({"accepted": n, "rejected": rejected}, 202)


def _fast_paths(sc: Sidecar, doc: Any, now: float, t0: float) -> web.Response | None:
    """The common shapes that skip the per-sample loop: one float sample; many plain numeric samples
    or wide objects (validated as numpy arrays); the column form. None: take the general path (which
    also explains every rejection)."""
    v, pl = sc.validator, sc.pipeline
    columns = None
    if type(doc) is dict:
        if type(doc.get("values")) is list:  # column form: arrays end to end
            return _column(sc, doc, now, t0)
        items = doc.get("samples") if len(doc) == 1 else None
        if type(items) is not list:
            return None
        if len(items) == 1:
            s = items[0]
            if type(s) is not dict or len(s) != 2:
                return None
            f, val = s.get("feature"), s.get("value")
            if (
                type(val) is float
                and -MAX_ABS <= val <= MAX_ABS  # finite (NaN fails), as the engine accepts
                and type(f) is str
                and v.types.get(f) == "numeric"
                and pl.admit_one(f, val, now)
            ):
                sc.latency.observe(time.perf_counter() - t0)
                return web.Response(body=ONE_ACCEPTED, status=202, content_type="application/json")
            return None
        if len(items) >= FAST_PATH_MIN:
            columns = v.fast_numeric(items)
    elif type(doc) is list and len(doc) >= FAST_PATH_MIN:
        columns = v.fast_wide(doc)
    if columns is None:
        return None
    try:
        n = pl.admit_arrays(columns, now)
    except QueueFull as e:
        pl.rejected["queue_full"] += sum(len(a) for a in columns.values())
        return _queue_full(pl, e)
    if not n:  # a new key over the cap: the general path explains it per sample
        return None
    sc.latency.observe(time.perf_counter() - t0)
    return _json({"accepted": n, "rejected": []}, 202)


def _column(sc: Sidecar, doc: dict[str, Any], now: float, t0: float) -> web.Response:
    pl = sc.pipeline
    rejected: list[Any] = []
    col = sc.validator.column(doc, now, rejected)
    n = 0
    if col is not None:
        try:
            n = pl.admit_column(col, rejected, now)
        except QueueFull as e:
            pl.count_rejections(rejected)
            pl.rejected["queue_full"] += len(col[5])
            return _queue_full(pl, e)
    elif rejected:
        pl.count_rejections(rejected)
    sc.latency.observe(time.perf_counter() - t0)
    return _json({"accepted": n, "rejected": rejected}, 202)


def _queue_full(pl: Any, e: QueueFull) -> web.Response:
    retry = str(int(e.retry_after + 0.999))
    return _error(429, f"queue full ({pl.depth} samples waiting); retry later", {"Retry-After": retry})


async def post_samples(request: web.Request) -> web.Response:
    return await _ingest(request, telemetry=False)


async def post_telemetry(request: web.Request) -> web.Response:
    return await _ingest(request, telemetry=True)


async def get_status(request: web.Request) -> web.Response:
    sc = request.app[SIDECAR]
    if (denied := _unauthorized(sc, request)) is not None:
        return denied
    s = sc.settings
    streams = await sc.refresh_streams()
    return _json(
        {
            "monitor": s.monitor,
            "namespace": s.namespace,
            "pod": s.pod,
            "phase": sc.phase(),
            "accepting": sc.accepting,
            "redis": {"configured": sc.store is not None, "available": sc.redis_up, "restored": sc.restored},
            "queue": {"depth": sc.pipeline.depth, "capacity": sc.pipeline.capacity},
            "keys": len(sc.pipeline.keys),
            "streams": streams,
        }
    )


def _since(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        dt = datetime.fromisoformat(text)
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


async def get_events(request: web.Request) -> web.Response:
    sc = request.app[SIDECAR]
    if (denied := _unauthorized(sc, request)) is not None:
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
    total, page = sc.events.query(q.get("feature"), q.get("key"), type_, since, ints["limit"], ints["offset"])
    return _json({"total": total, "limit": ints["limit"], "offset": ints["offset"], "events": page})


async def get_healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def get_readyz(request: web.Request) -> web.Response:
    """Ready whenever it accepts samples. Redis being down is reported (``degraded``) but is not
    unreadiness: failing readiness would pull the app's pod out of its Service for our sake."""
    sc = request.app[SIDECAR]
    if not sc.accepting:
        return _json(
            {"status": "unavailable", "redis": _redis_state(sc), "reason": "starting or shutting down"}, 503
        )
    status = "degraded" if sc.store is not None and not sc.redis_up else "ok"
    return _json({"status": status, "redis": _redis_state(sc)})


def _redis_state(sc: Sidecar) -> str:
    if sc.store is None:
        return "not configured"
    return "available" if sc.redis_up else "unavailable"


async def get_metrics(request: web.Request) -> web.Response:
    await request.app[SIDECAR].refresh_streams()
    # rendering 1,000 streams' families takes a while: off the loop, like the engine reads
    body = await asyncio.to_thread(generate_latest, request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_openapi(request: web.Request) -> web.Response:
    return _json(openapi.document(request.app[SIDECAR].settings))


def build_app(sc: Sidecar, registry: CollectorRegistry) -> web.Application:
    """The main (ingest) app. ``client_max_size`` enforces the body limit for chunked bodies too."""
    app = web.Application(client_max_size=sc.settings.limits.body_limit)
    app[SIDECAR] = sc
    app[REGISTRY] = registry
    app.router.add_post("/v1/samples", post_samples)
    app.router.add_post("/v1/telemetry", post_telemetry)
    app.router.add_get("/v1/status", get_status)
    app.router.add_get("/v1/events", get_events)
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/readyz", get_readyz)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/openapi.json", get_openapi)
    return app


def build_metrics_app(sc: Sidecar, registry: CollectorRegistry) -> web.Application:
    """The metrics port: ``/metrics`` plus probes, nothing that accepts data."""
    app = web.Application()
    app[SIDECAR] = sc
    app[REGISTRY] = registry
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/readyz", get_readyz)
    return app
