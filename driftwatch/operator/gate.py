"""The rollout gate and health endpoints (port 8080), answered from the operator's registry.

``GET /v1/gate/{namespace}/{name}`` returns ``{"verdict", "score", "phase", ...}`` with

* HTTP 200 on ``Pass``, 409 on ``Fail``, 503 (``Retry-After``) on ``Inconclusive`` or a stale status --
  what Flagger's webhooks (``confirm-rollout``, ``confirm-promotion``, ``pre-rollout``) need: they pass
  on any 2xx and retry otherwise, so a drifting canary is held, never promoted;
* with ``?always200=true``, HTTP 200 whatever the verdict -- what an Argo Rollouts ``web`` metric needs
  (a non-2xx answer counts as an Error measurement, not a Failure). Use::

      provider: {web: {url: "http://driftwatch-operator.driftwatch:8080/v1/gate/shop/payments?always200=true",
                       jsonPath: "{$.verdict}"}}
      successCondition: result == "Pass"
      failureCondition: result == "Fail"       # Inconclusive matches neither: the rollout pauses

``/healthz`` (process alive) and ``/readyz`` (registry synced, webhook serving) are for the probes;
``/metrics`` is the operator's own (``metrics``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from driftwatch.operator import metrics
from driftwatch.operator.registry import Registry
from driftwatch.verdict import verdict_of_status

log = logging.getLogger(__name__)

STATUS_FOR = {"Pass": 200, "Fail": 409, "Inconclusive": 503}


def gate_answer(
    status: Mapping[str, Any] | None, now: dt.datetime, max_age: float, generation: int | None = None
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for a monitor's last status. Pure. The verdict is
    :func:`driftwatch.verdict.verdict_of_status`'s, as for ``driftwatch gate``: a status written for an
    older spec (observedGeneration behind) or too old is Inconclusive."""
    if status is None:
        return 404, {"verdict": "Inconclusive", "score": None, "reason": "no such DriftMonitor"}
    verdict, reason = verdict_of_status(status, generation, now, max_age)
    body = {
        "verdict": verdict,
        "score": status.get("score"),
        "phase": status.get("phase"),
        "driftingFeatures": status.get("driftingFeatures") or "",
        "pods": (status.get("pods") or {}).get("reporting", 0),
        "lastUpdate": status.get("lastUpdate"),
    }
    if reason:
        body["reason"] = reason
    return STATUS_FOR[verdict], body


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


class GateServer:
    def __init__(
        self, registry: Registry, host: str, port: int, max_age: float, ready: Callable[[], bool]
    ) -> None:
        self.registry = registry
        self.host, self.port, self.max_age = host, port, max_age
        self.ready = ready
        self._runner: web.AppRunner | None = None

    async def _gate(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        monitor = next((m for m in self.registry.in_namespace(ns) if m.name == name), None)
        code, body = gate_answer(
            self.registry.status(ns, name),
            dt.datetime.now(dt.UTC),
            self.max_age,
            monitor.generation if monitor else None,
        )
        body["monitor"] = f"{ns}/{name}"
        if request.query.get("always200", "").lower() in {"1", "true", "yes"}:
            code = 200
        headers = {"Retry-After": "30"} if code == 503 else None
        return web.json_response(body, status=code, headers=headers)

    async def _metrics(self, _: web.Request) -> web.Response:
        metrics.MONITORS.set(sum(len(v) for v in self.registry.monitors.values()))
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _ready(self, _: web.Request) -> web.Response:
        return web.Response(text="ok") if self.ready() else web.Response(text="not ready", status=503)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/gate/{namespace}/{name}", self._gate)
        app.router.add_get("/healthz", _ok)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("gate serving on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
