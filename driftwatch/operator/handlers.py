"""Every kopf handler of the operator, and only the glue: each one delegates to a plain module.

Importing this module registers the handlers with kopf's default registry, so ``main`` imports it after
``runtime.set_options`` (the timer's interval is read at registration).

* ``configure`` (on.startup): settings, login, the webhook and gate servers
* ``login`` (on.login): credentials for kopf and for our client (``kube``)
* ``shutdown`` (on.cleanup): stop the servers, close the clients
* ``track`` (on.event, driftmonitors): the registry the webhook and the gate read
* ``pods`` (index, pods): pods per namespace, for the counts in status
* ``reconcile_children`` (on.create/update/resume): children and the Ready condition
* ``cleanup_redis`` (on.delete): the monitor's Redis keys
* ``aggregate_status`` (timer): status, conditions and Events from the sidecars' summaries
* ``notified``: the same round, run at once when a sidecar publishes ``P:notify`` (``notify.py``; one
  listener task started by ``configure``)
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from driftwatch.config import ConfigError
from driftwatch.operator import aggregate, cleanup, metrics, status
from driftwatch.operator.gate import GateServer
from driftwatch.operator.kube import KubeError, path_for
from driftwatch.operator.monitor import Monitor
from driftwatch.operator.notify import NotifyListener
from driftwatch.operator.options import GROUP, PLURAL, SIDECAR_CONTAINER, VERSION
from driftwatch.operator.reconcile import reconcile
from driftwatch.operator.runtime import CLEANUP_RETRIES, RESYNC_SECONDS, rt
from driftwatch.operator.webhook import WebhookServer

#: our own messages; kopf's per-object logger ("Handler ... succeeded") stays at WARNING unless -v
log = logging.getLogger("driftwatch.operator")


def _interval() -> float:
    return rt().options.aggregate_interval


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- lifecycle -------------------------------------------------------------------------------------


def _credentials(op_settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    # kopf's own minimal logins: no client library imported (memory; see kube.py)
    return kopf.login_with_service_account(settings=op_settings) or kopf.login_with_kubeconfig(
        settings=op_settings
    )


@kopf.on.login()
async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    info = _credentials(settings)
    if info is not None:
        rt().kube.set_credentials(info)
    return info


@kopf.on.startup(backoff=2)
async def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **kwargs: Any) -> None:
    from driftwatch.operator.settings import configure as configure_settings

    configure_settings(settings)
    r = rt()
    r.pods_index = kwargs.get("pods")  # kopf hands indices to startup handlers too (live views)
    info = _credentials(settings)
    if info is None:
        raise kopf.PermanentError("no Kubernetes credentials: neither a service account nor a kubeconfig")
    r.kube.set_credentials(info)
    if r.options.gate_port and r.gate is None:  # a retried startup must not bind twice
        r.gate = GateServer(
            r.registry,
            r.options.gate_host,
            r.options.gate_port,
            max_age=max(5 * r.options.aggregate_interval, r.options.heartbeat * 2),
            ready=lambda: r.ready,
        )
        await r.gate.start()
    # fill the registry before the webhook answers: a pod admitted before the first watch events
    # arrive would otherwise miss its sidecar (kopf's watch keeps it current from here on)
    await _prime_registry()
    if r.options.webhook_port and r.webhook is None:  # mode none: serve, leave the configuration alone
        webhook = WebhookServer(r.registry, r.options, r.kube)
        await webhook.start()
        r.webhook = webhook
    if r.options.notify and r.notify_task is None:
        # ONE task for all monitors (not a kopf daemon per DriftMonitor: one connection, not N)
        listener = NotifyListener(r.options.redis_url, r.options.key_prefix, notified)
        r.notify_task = asyncio.create_task(listener.run(), name="driftwatch-notify")
    r.ready = True
    logger.info(
        "driftwatch operator ready (webhook %s, redis %s)",
        r.options.webhook_mode,
        r.options.redis_url.split("@")[-1],
    )


async def _prime_registry() -> None:
    r = rt()
    namespaces: list[str | None] = [ns for ns in r.options.namespaces if "*" not in ns] or [None]
    for ns in namespaces:
        for body in await r.kube.list("DriftMonitor", ns):
            r.registry.upsert(body, r.options)
    r.registry.synced = True


@kopf.on.cleanup()
async def shutdown(**_: Any) -> None:
    r = rt()
    r.ready = False
    if r.notify_task is not None:
        r.notify_task.cancel()
        await asyncio.gather(r.notify_task, return_exceptions=True)
        r.notify_task = None
    for server in (r.webhook, r.gate):
        if server is not None:
            await server.stop()
    await r.redis.close()
    await r.kube.close()


# --- indexes and the registry ----------------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, PLURAL)
async def track(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    r = rt()
    if r.kopf_context is None:  # kopf's posting context, for Events from the notification path
        r.kopf_context = contextvars.copy_context()
    if event.get("type") == "DELETED":
        r.registry.remove(str(body.metadata.namespace), str(body.metadata.name))
    else:
        r.registry.upsert(body, r.options)


@kopf.index("pods")  # type: ignore[arg-type]
def pods(
    name: str, namespace: str, labels: Mapping[str, str], spec: Mapping[str, Any], body: kopf.Body, **_: Any
) -> dict[str, status.PodInfo]:
    containers = [c.get("name") for c in spec.get("containers") or []]
    containers += [c.get("name") for c in spec.get("initContainers") or []]
    phase = (body.get("status") or {}).get("phase")
    active = not body.metadata.get("deletionTimestamp") and phase not in ("Succeeded", "Failed")
    return {namespace: status.PodInfo(name, dict(labels), SIDECAR_CONTAINER in containers, bool(active))}


# --- reconcile -------------------------------------------------------------------------------------


def _set_conditions(
    patch: kopf.Patch,
    ours: list[dict[str, Any]],
    fields: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Conditions go in as a resourceVersion-guarded JSON patch computed on the freshest body, so
    another writer's conditions (other types) survive and ours never overwrite a newer list.
    ``fields``/``defaults`` (set / set-if-absent) ride in the same request: one write, not two."""
    now = _now()

    def fn(body: kopf.RawBody) -> None:
        st = body.setdefault("status", {})
        for k, v in (defaults or {}).items():
            st.setdefault(k, v)
        st.update(fields or {})
        st["conditions"] = status.merge_conditions(st.get("conditions"), ours, now)

    patch.fns.append(fn)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def reconcile_children(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    r = rt()
    generation = int(body.metadata.get("generation") or 0)
    try:
        monitor = Monitor.from_body(body, r.options)
    except ConfigError as e:
        _set_conditions(patch, [status.condition("Ready", False, "InvalidSpec", str(e), generation)])
        kopf.event(body, type="Warning", reason="InvalidSpec", message=str(e))
        raise kopf.PermanentError(str(e)) from None
    result = await reconcile(r.kube, monitor, r.options, r.probe)
    metrics.RECONCILES.labels("ok" if result.ok else "error").inc()
    r.last_applied[monitor.uid] = time.monotonic()
    fields = {"children": result.children}
    first = {"phase": "Initializing", "verdict": "Inconclusive"}  # until the first aggregation
    if result.ok:
        kinds = ", ".join(f"{c['kind']} {c['name']}" for c in result.children)
        _set_conditions(
            patch, [status.condition("Ready", True, "ChildrenApplied", kinds, generation)], fields, first
        )
        log.info("%s/%s: children applied: %s", body.metadata.namespace, body.metadata.name, kinds)
    else:
        msg = "; ".join(result.errors)
        _set_conditions(
            patch, [status.condition("Ready", False, "ApplyFailed", msg, generation)], fields, first
        )
        kopf.event(body, type="Warning", reason="ApplyFailed", message=msg[:1000])
        raise kopf.TemporaryError(msg, delay=10)


# --- delete ----------------------------------------------------------------------------------------


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def cleanup_redis(body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any) -> None:
    r = rt()
    r.registry.remove(str(body.metadata.namespace), str(body.metadata.name))
    r.last_applied.pop(str(body.metadata.uid), None)
    r.round_locks.pop((str(body.metadata.namespace), str(body.metadata.name)), None)
    redis_cfg = (body.get("spec") or {}).get("redis") or {}
    url = str(redis_cfg.get("url") or r.options.redis_url)
    prefix = (
        f"{redis_cfg.get('keyPrefix') or r.options.key_prefix}:{body.metadata.namespace}:{body.metadata.name}"
    )
    try:
        removed = await asyncio.wait_for(cleanup.delete_keys(r.redis.get(url), prefix), timeout=30)
    except Exception as e:
        if retry < CLEANUP_RETRIES:
            raise kopf.TemporaryError(f"Redis cleanup of {prefix}:* failed: {e}", delay=5) from e
        # never block a deletion forever on Redis: the summaries expire on their own
        logger.warning("giving up Redis cleanup of %s:* after %d tries: %s", prefix, retry + 1, e)
        return
    log.info("removed %d Redis keys %s:*", removed, prefix)


# --- aggregation -----------------------------------------------------------------------------------


@dataclass
class Round:
    """One aggregation's result: what to merge into ``status`` and which Events to post."""

    monitor: Monitor
    fields: dict[str, Any]
    conditions: list[dict[str, Any]]
    events: list[status.Event]
    registry_status: dict[str, Any]


def _previous(body: Mapping[str, Any]) -> dict[str, Any]:
    """The status a round compares against: the body's, unless the registry holds a newer one (a round
    of the other path wrote it and its watch event has not reached this body yet): then a timer round
    and a notified round never both post the same DriftStarted."""
    own: dict[str, Any] = dict(body.get("status") or {})
    meta = body.get("metadata") or {}
    seen = rt().registry.statuses.get((str(meta.get("namespace")), str(meta.get("name"))))
    if seen and seen.get("lastUpdate") and str(seen["lastUpdate"]) >= str(own.get("lastUpdate") or ""):
        own.update({k: v for k, v in seen.items() if k != "conditions"})
    return own


async def aggregate_round(
    body: Mapping[str, Any], pods_in_namespace: Iterable[status.PodInfo], logger: logging.Logger | Any
) -> Round | None:
    """The aggregation both paths run (the timer and a sidecar's notification): read Redis, merge,
    compute status; None when nothing is to be written. Serialised per monitor."""
    r = rt()
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    lock = r.round_locks.setdefault(key, asyncio.Lock())
    async with lock:
        return await _aggregate_round(body, pods_in_namespace, logger)


async def _aggregate_round(
    body: Mapping[str, Any], pods_in_namespace: Iterable[status.PodInfo], logger: logging.Logger | Any
) -> Round | None:
    r = rt()
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    previous = _previous(body)
    if not any(c.get("type") == "Ready" for c in previous.get("conditions") or []):
        return None  # not reconciled yet: two writers racing on a new object only cause conflicts
    try:
        monitor = Monitor.from_body(body, r.options)
    except ConfigError:
        return None  # reconcile_children reported it
    if time.monotonic() - r.last_applied.get(monitor.uid, 0.0) > RESYNC_SECONDS:
        res = await reconcile(r.kube, monitor, r.options, r.probe)
        r.last_applied[monitor.uid] = time.monotonic()
        if not res.ok:
            logger.warning("re-applying children: %s", "; ".join(res.errors))

    view = status.PodView.of(list(pods_in_namespace), monitor.selector)
    redis_error: str | None = None
    features: list[dict[str, Any]] | None = None
    reporting = 0
    started = time.perf_counter()
    try:
        reports = await asyncio.wait_for(
            aggregate.read_reports(
                r.redis.get(monitor.redis_url), monitor.redis_prefix, time.time(), r.options.stale_after
            ),
            timeout=10,
        )
        reporting = len(reports.pods)
        features = aggregate.merge(reports.summaries, monitor.spec)
    except Exception as e:  # Redis down or slow: say so in status, keep the previous features
        redis_error = f"{type(e).__name__}: {e}"[:300]
        metrics.REDIS_ERRORS.inc()
    metrics.AGGREGATE_SECONDS.observe(time.perf_counter() - started)
    if redis_error is not None:
        reporting = int((previous.get("pods") or {}).get("reporting") or 0)
    outcome = status.compute(monitor, features, reporting, view, redis_error, previous)

    now = _now()
    last = previous.get("lastUpdate")
    stale = (
        last is None
        or (now - dt.datetime.fromisoformat(str(last).replace("Z", "+00:00"))).total_seconds()
        >= r.options.heartbeat
    )
    why = status.changed(previous, outcome.fields, outcome.conditions)
    if why is None and not stale:
        return None
    log.debug("%s/%s: writing status (%s)", monitor.namespace, monitor.name, why or "heartbeat")
    fields = dict(outcome.fields)
    fields["lastUpdate"] = status.rfc3339(now)
    if previous.get("phase") != outcome.fields["phase"]:
        fields["lastTransition"] = status.rfc3339(now)
    # the gate answers from the registry: give it this round's verdict now, not after the watch event;
    # set inside the lock, so the other path's next round compares against it (``_previous``)
    seen = {**previous, **fields}
    r.registry.statuses[(monitor.namespace, monitor.name)] = seen
    return Round(monitor, fields, outcome.conditions, outcome.events, seen)


def _post_events(body: Mapping[str, Any], rnd: Round, post: Any = None) -> None:
    for ev in rnd.events:
        try:
            (post or kopf.event)(cast(Any, body), type=ev.type, reason=ev.reason, message=ev.message[:1000])
        except LookupError:  # outside kopf's handler context and none captured yet: log only
            pass
        log.info("%s/%s %s: %s", rnd.monitor.namespace, rnd.monitor.name, ev.reason, ev.message)


@kopf.timer(GROUP, VERSION, PLURAL, interval=_interval(), initial_delay=1.0)  # type: ignore[arg-type]
async def aggregate_status(
    body: kopf.Body,
    patch: kopf.Patch,
    namespace: str,
    logger: kopf.Logger,
    pods: kopf.Index[str, status.PodInfo],
    **_: Any,
) -> None:
    r = rt()
    if r.pods_index is None:  # normally captured at startup; the notification path needs the counts
        r.pods_index = pods
    rnd = await aggregate_round(body, pods.get(namespace, []), logger)
    if rnd is None:
        return
    metrics.STATUS_WRITES.inc()
    for key, value in rnd.fields.items():
        patch.status[key] = value
    _set_conditions(patch, rnd.conditions)
    _post_events(body, rnd)


async def notified(namespace: str, name: str) -> None:
    """A sidecar published ``P:notify`` for this monitor: the timer's round now, written as a merge
    patch of the status subresource guarded by the freshest resourceVersion (one retry on conflict;
    after that the timer's next round has it)."""
    r = rt()
    monitor = r.registry.monitors.get(namespace, {}).get(name)
    if monitor is None or (monitor.redis_url, monitor.redis_prefix) != (
        r.options.redis_url,
        f"{r.options.key_prefix}:{namespace}:{name}",
    ):
        metrics.NOTIFICATIONS.labels("ignored").inc()
        return  # unknown, or a monitor on its own Redis/prefix (the listener never hears those)
    if r.pods_index is None:  # no pod counts yet: a round now would report 0 selected pods
        metrics.NOTIFICATIONS.labels("ignored").inc()
        return
    ctx = r.kopf_context
    post = (lambda *a, **k: ctx.run(kopf.event, *a, **k)) if ctx is not None else None
    for attempt in range(2):
        body = await r.kube.get("DriftMonitor", namespace, name)
        if body is None:
            metrics.NOTIFICATIONS.labels("ignored").inc()
            return
        rnd = await aggregate_round(body, r.pods_index.get(namespace, []), log)
        if rnd is None:
            metrics.NOTIFICATIONS.labels("unchanged").inc()
            return
        st = body.get("status") or {}
        doc = {
            "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
            "status": {
                **rnd.fields,
                "conditions": status.merge_conditions(st.get("conditions"), rnd.conditions, _now()),
            },
        }
        try:
            await r.kube.request(
                "PATCH",
                path_for("DriftMonitor", namespace, name, "status"),
                body=doc,
                content_type="application/merge-patch+json",
            )
        except KubeError as e:
            # the claim in the registry did not land: let the next round (this retry, or the timer)
            # compare against the real status again
            if r.registry.statuses.get((namespace, name)) is rnd.registry_status:
                r.registry.statuses[(namespace, name)] = dict(st)
            if e.status == 409 and attempt == 0:
                continue
            metrics.NOTIFICATIONS.labels("error").inc()
            raise
        metrics.STATUS_WRITES.inc()
        metrics.NOTIFICATIONS.labels("written").inc()
        _post_events(body, rnd, post)
        log.debug("%s/%s: status written on notification", namespace, name)
        return
