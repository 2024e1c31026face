"""The operator's HTTP endpoints (port 8080): the rollout gate, health, metrics -- answered from its cache.

``GET /v1/gate/{namespace}/{name}`` (or ``POST``, as Flagger's webhooks send it: the JSON body is
checked and otherwise ignored; ``POST /v1/gate`` takes the monitor from the body instead: Flagger's
``{"name", "namespace", "phase", "metadata": {"monitor": ...}}``, the monitor being ``metadata.monitor``
or else the canary's name) returns ``{"verdict", "score", "phase", "gate", ...}`` with

* HTTP 200 on ``Pass``, 409 on ``Fail``, 503 (``Retry-After``) on ``Inconclusive`` or a stale status --
  what Flagger's gating webhooks (``confirm-rollout``, ``confirm-promotion``) need: they pass on any 2xx
  and ask again next interval otherwise, so a canary is promoted only on Pass;
* with ``?failOnly=true``, 409 on ``Fail`` and 200 on ``Pass`` *and* ``Inconclusive`` -- what a Flagger
  ``rollout`` (or ``pre-rollout``) webhook needs: each non-2xx answer is a failed check counted towards
  the Canary's ``threshold`` before rollback, and a canary still gathering samples must not be rolled
  back for it (``confirm-promotion`` holds it until Pass);
* with ``?always200=true``, HTTP 200 whatever the verdict -- what an Argo Rollouts ``web`` metric needs
  (a non-2xx answer counts as an Error measurement, not a Failure). Use::

      provider: {web: {url: "http://driftwatch-operator.driftwatch:8080/v1/gate/shop/payments?always200=true",
                       jsonPath: "{$.verdict}"}}
      successCondition: result == "Pass"
      failureCondition: result == "Fail"       # Inconclusive matches neither: the rollout pauses

``?canary=HASH`` names the canary the answer must be about: the new revision's pod template hash (Argo
Rollouts' ``valueFrom: podTemplateHashValue: Latest``). A ``compare: stable-pods`` verdict about other
canary pods -- the previous revision's, until the operator's next round groups the new pods -- is then
Inconclusive (``driftwatch.verdict.canary_scope``); ``compare: baseline`` verdicts are not scoped. A
POST body's ``metadata.canary`` takes precedence over the query argument (Flagger's payload itself
carries no pod template hash: its ``checksum`` hashes Flagger's own status fields).

``/healthz`` (process alive) and ``/readyz`` (cache primed, webhook serving) are for the probes;
``/metrics`` is the operator's own (``telemetry``); ``/version`` is ``driftwatch.buildinfo.info()``
(``{"version", "python", "platform"}``), what ``driftwatch version`` shows as the operator's, reached
through the API server's Service proxy.

With a token (``DRIFTWATCH_GATE_TOKEN`` or ``..._FILE``, from a Secret) ``/v1/gate`` and ``/metrics``
want ``Authorization: Bearer <token>`` (401 otherwise; Argo Rollouts' web metric sends it with
``headers``, Prometheus with ``authorization``); the probes and ``/version`` stay open (the API
server's proxy does not pass a client's token on, and a version is no secret: Kubernetes' own
``/version`` is public too). The chart's NetworkPolicy
limits who can connect at all.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from driftwatch import buildinfo
from driftwatch.operator import telemetry
from driftwatch.operator.cache import MonitorCache
from driftwatch.verdict import canary_hash, verdict_of_status
from driftwatch.vocab.states import Verdict

log = logging.getLogger(__name__)

STATUS_FOR = {Verdict.PASS: 200, Verdict.FAIL: 409, Verdict.INCONCLUSIVE: 503}


def gate_answer(
    status: Mapping[str, Any] | None,
    now: dt.datetime,
    max_age: float,
    generation: int | None = None,
    canary: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for a monitor's last status. Pure. The verdict is
    :func:`driftwatch.verdict.verdict_of_status`'s, as for ``driftwatch gate``: a status written for an
    older spec (observedGeneration behind) or too old is Inconclusive, and so is a canary-vs-stable
    verdict about other canary pods than ``canary`` (when given)."""
    if status is None:
        return 404, {"verdict": Verdict.INCONCLUSIVE, "score": None, "reason": "no such DriftMonitor"}
    verdict, reason = verdict_of_status(status, generation, now, max_age, canary)
    body = {
        "verdict": verdict,
        "score": status.get("score"),
        "phase": status.get("phase"),
        "driftingFeatures": status.get("driftingFeatures") or "",
        "pods": (status.get("pods") or {}).get("reporting", 0),
        "lastUpdate": status.get("lastUpdate"),
    }
    gate = status.get("gate")
    if isinstance(gate, Mapping):
        body["gate"] = {
            k: gate.get(k) for k in ("compare", "mode", "verdict", "message", "canaryHash") if k in gate
        }
    if canary is not None:
        body["canary"] = canary
    if reason:
        body["reason"] = reason
    return STATUS_FOR[verdict], body


#: the largest request body the gate reads (a Flagger webhook payload is a few hundred bytes)
MAX_BODY = 64 * 1024


def webhook_target(doc: Any) -> tuple[str, str]:
    """(namespace, monitor) named by a Flagger webhook payload; ValueError naming the field otherwise."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"body: must be a JSON object, got {type(doc).__name__}")
    meta = doc.get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise ValueError("metadata: must be an object of strings")
    namespace, name = doc.get("namespace"), meta.get("monitor") or doc.get("name")
    if not isinstance(namespace, str) or not namespace:
        raise ValueError("namespace: required (the canary's namespace, a string)")
    if not isinstance(name, str) or not name:
        raise ValueError("name: required (the canary's name; metadata.monitor names the DriftMonitor)")
    return namespace, name


def asked_canary(doc: Any, query: Mapping[str, str]) -> str | None:
    """The canary hash a request names: a JSON body's ``metadata.canary``, else ``?canary=``; None
    when neither does. ValueError naming the field when the one given is no pod template hash."""
    meta = doc.get("metadata") if isinstance(doc, Mapping) else None
    if isinstance(meta, Mapping) and "canary" in meta:
        given = meta["canary"]
        if not isinstance(given, str):
            raise ValueError(
                f"metadata.canary: must be a string (a pod template hash), got {type(given).__name__}"
            )
        return canary_hash(given, "metadata.canary")
    if "canary" in query:
        return canary_hash(query["canary"], "canary")
    return None


def _flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter (``?always200=true``)."""
    return request.query.get(name, "").lower() in {"1", "true", "yes"}


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _version(_: web.Request) -> web.Response:
    return web.json_response(buildinfo.info())


def _unauthorized() -> web.Response:
    return web.json_response(
        {"error": "missing or wrong bearer token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
    )


def _bad_request(message: str) -> web.Response:
    return web.json_response({"verdict": Verdict.INCONCLUSIVE, "error": message}, status=400)


class EndpointServer:
    """``/v1/gate/{namespace}/{name}``, ``/healthz``, ``/readyz``, ``/metrics``, ``/version`` on one port."""

    def __init__(
        self,
        cache: MonitorCache,
        host: str,
        port: int,
        max_age: float,
        ready: Callable[[], bool],
        token: str = "",
        routes: Sequence[tuple[str, Callable[[web.Request], Awaitable[web.Response]]]] = (),
    ) -> None:
        self.cache = cache
        self.host, self.port, self.max_age = host, port, max_age
        self.ready = ready
        self._token = token
        #: more GET routes on the same port (``/v1/history/...``: ``history_api``)
        self.routes = routes
        self._runner: web.AppRunner | None = None

    def authorized(self, request: web.Request) -> bool:
        """No token configured, or the request carries it (compared in constant time)."""
        if not self._token:
            return True
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode())

    async def _gate(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return _unauthorized()
        doc: Any = None
        if request.method == "POST" and request.can_read_body:
            try:
                doc = json.loads(await request.read())
            except ValueError as e:
                return _bad_request(f"body: not JSON ({e})")
        if "namespace" in request.match_info:
            ns, name = request.match_info["namespace"], request.match_info["name"]
            if doc is not None and not isinstance(doc, Mapping):
                return _bad_request(f"body: must be a JSON object, got {type(doc).__name__}")
        else:
            try:
                ns, name = webhook_target(doc)
            except ValueError as e:
                return _bad_request(str(e))
        if len(request.query.getall("canary", [])) > 1:
            return _bad_request("canary: given more than once")
        try:
            canary = asked_canary(doc, request.query)
        except ValueError as e:
            return _bad_request(str(e))
        monitor = self.cache.get(ns, name)
        code, body = gate_answer(
            self.cache.status(ns, name),
            dt.datetime.now(dt.UTC),
            self.max_age,
            monitor.generation if monitor else None,
            canary,
        )
        body["monitor"] = f"{ns}/{name}"
        if _flag(request, "always200") or (_flag(request, "failOnly") and code == 503):
            code = 200
        headers = {"Retry-After": "30"} if code == 503 else None
        return web.json_response(body, status=code, headers=headers)

    async def _metrics(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return _unauthorized()
        telemetry.MONITORS.set(self.cache.count())
        body, content_type = telemetry.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    def _guarded(
        self, route: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """An extra route behind the same token as the gate and the metrics (history holds alerts)."""

        async def guarded(request: web.Request) -> web.Response:
            return await route(request) if self.authorized(request) else _unauthorized()

        return guarded

    async def _ready(self, _: web.Request) -> web.Response:
        return web.Response(text="ok") if self.ready() else web.Response(text="not ready", status=503)

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/v1/gate/{namespace}/{name}", self._gate)
        app.router.add_post("/v1/gate/{namespace}/{name}", self._gate)
        app.router.add_post("/v1/gate", self._gate)
        app.router.add_get("/healthz", _ok)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/version", _version)
        for path, route in self.routes:
            app.router.add_get(path, self._guarded(route))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("gate serving on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
