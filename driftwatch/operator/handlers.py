"""Every kopf handler of the operator, registered in one place; each body is a few lines of glue.

``register(registry, ctx)`` is called by ``command`` with the operator's context: nothing registers at
import time and nothing is read from a global, so the timer's interval is the options' and importing
this module has no effect. The work of each event lives in a plain module:

* ``login`` (on.login), ``startup`` / ``shutdown`` (on.startup / on.cleanup) -> ``lifecycle``
* ``track`` (on.event, driftmonitors): the monitor cache the webhook and the gate read -> ``cache``;
  a DELETED event removes the monitor's Redis keys and ACL user (on the leader) -> ``cleanup``;
  a new ``status.lastScan`` (a scan Job's) -> ``scan_watch`` and an ack request -> ``acks`` (on the leader)
* ``pods`` (index): pods per namespace, for the counts in status -> ``status_rules.PodInfo``
* ``reconcile_children`` (on.create/update/resume, on the leader only): children and the Ready
  condition -> ``reconcile``
* status: one aggregation loop and the sidecars' notifications, started on the leader -> ``status_round``

Every replica runs every handler but the reconcile, which ``when=`` limits to the replica holding the
leader Lease (``leadership``): kopf then skips the change on the others without storing anything.

No handler needs a finalizer: deletion is never blocked on the operator (a kopf timer or a mandatory
on.delete handler would put ``driftwatch.io/cleanup`` on every DriftMonitor, which outlived ``helm
uninstall`` and hung the deletion of namespaces and of the CRD). kopf removes the finalizer older
versions left the next time it sees such an object. What a deletion leaves in Redis while the
operator is away is removed by ``cleanup.sweep`` at start, or expires (docs/redis-keys.md).

Handler ids are given explicitly: they name kopf's progress annotations on every DriftMonitor and the
index keyword, so they must not depend on where a function is defined. kopf's own ways of writing live
here too: status through ``patch`` (conditions as a function of the
freshest body) and Events through ``kopf.event``.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import kopf

from driftwatch.operator import (
    acks,
    cleanup,
    leadership,
    lifecycle,
    reconcile,
    scan_watch,
    status_round,
    status_rules,
)
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.status_rules import Event, PodInfo
from driftwatch.vocab.names import GROUP, PLURAL, VERSION

log = logging.getLogger("driftwatch.operator")

DRIFTMONITORS = (GROUP, VERSION, PLURAL)
#: kopf passes an index to handlers as a keyword argument named by the index handler's id
PODS_INDEX = "pods"


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """Register every handler on ``registry``, bound to ``ctx``."""

    @kopf.on.login(registry=registry, id="login")
    async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
        info = _credentials(settings)
        if info is not None:
            ctx.kube.set_credentials(info)
        return info

    @kopf.on.startup(registry=registry, id="startup", backoff=2)
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        ctx.pods_index = kwargs.get(PODS_INDEX)  # kopf hands indices to startup handlers too (live views)
        info = _credentials(settings)
        if info is None:
            raise kopf.PermanentError("no Kubernetes credentials: neither a service account nor a kubeconfig")
        ctx.kube.set_credentials(info)
        await lifecycle.start(
            ctx,
            lambda ns, name: status_round.on_notification(ctx, ns, name, _posting(ctx)),
            _posting(ctx),
        )

    @kopf.on.cleanup(registry=registry, id="shutdown")
    async def shutdown(**_: Any) -> None:
        await lifecycle.stop(ctx)

    @kopf.on.event(*DRIFTMONITORS, registry=registry, id="track")
    async def track(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        if ctx.kopf_context is None:  # kopf's posting context, for Events from the notification path
            ctx.kopf_context = contextvars.copy_context()
        if event.get("type") == "DELETED":
            ctx.cache.remove(str(body.metadata.namespace), str(body.metadata.name))
            if ctx.leading:
                cleanup.spawn(ctx, body)
            else:  # the leader removes its Redis keys; a follower only forgets it
                ctx.forget(str(body.metadata.namespace), str(body.metadata.name), str(body.metadata.uid))
        else:
            ctx.cache.upsert(body, ctx.options)
            if ctx.leading:  # a new leader announces a scan younger than scan_watch.STARTUP_GRACE
                scan = scan_watch.new_scan(body, ctx.scans_seen, status_round.now())
                if scan is not None:  # a scan Job wrote lastScan: its Event, metrics and alert
                    scan_watch.count(scan)
                    _post_events(body, [scan.event])
                    scan_watch.alert(ctx, scan)
                acks.observe(ctx, body)  # a `driftwatch ack` request on the monitor

    @kopf.index("pods", registry=registry, id=PODS_INDEX)
    def pods(body: kopf.Body, **_: Any) -> dict[str, PodInfo]:
        return {str(body.metadata.namespace): PodInfo.of(body)}

    def leading(**_: Any) -> bool:
        # on a follower kopf is blind to the change: no handler, nothing stored on the object
        return ctx.leading

    reconcile_id = leadership.RECONCILE_ID  # "reconcile_children": leadership reads its progress record

    @kopf.on.resume(*DRIFTMONITORS, registry=registry, id=reconcile_id, when=leading)
    @kopf.on.create(*DRIFTMONITORS, registry=registry, id=reconcile_id, when=leading)
    @kopf.on.update(*DRIFTMONITORS, registry=registry, id=reconcile_id, field="spec", when=leading)
    async def reconcile_children(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        out = await reconcile.reconcile(ctx, body)
        _write_status(patch, out.conditions, out.fields, out.defaults)
        _post_events(body, out.events)
        if out.error is not None:
            raise kopf.TemporaryError(out.error, delay=10) if out.retry else kopf.PermanentError(out.error)


def _credentials(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    # kopf's own minimal logins: no client library imported (memory; see driftwatch/kube/client.py)
    return kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)


def _write_status(
    patch: kopf.Patch,
    conditions: list[dict[str, Any]],
    fields: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Conditions go in as a resourceVersion-guarded JSON patch computed on the freshest body, so
    another writer's conditions (other types) survive and ours never overwrite a newer list.
    ``fields``/``defaults`` (set / set-if-absent) ride in the same request: one write, not two."""
    at = status_round.now()

    def fn(body: kopf.RawBody) -> None:
        st = body.setdefault("status", {})
        for k, v in (defaults or {}).items():
            st.setdefault(k, v)
        st.update(fields or {})
        st["conditions"] = status_rules.merge_conditions(st.get("conditions"), conditions, at)

    patch.fns.append(fn)


def _post_events(body: Mapping[str, Any], events: Sequence[Event]) -> None:
    meta = body.get("metadata") or {}
    for ev in events:
        try:
            kopf.event(cast(Any, body), type=ev.type, reason=ev.reason, message=ev.message[:1000])
        except LookupError:  # outside kopf's handler context and none captured yet: log only
            pass
        log.info("%s/%s %s: %s", meta.get("namespace"), meta.get("name"), ev.reason, ev.message)


def _posting(ctx: OperatorContext) -> status_round.PostEvents:
    """Event posting for the notification path, which runs outside any kopf handler: in the context
    ``track`` captured (kopf's posting queue lives in a context variable)."""

    def post(body: Mapping[str, Any], events: Sequence[Event]) -> None:
        if ctx.kopf_context is None:
            _post_events(body, events)
        else:
            ctx.kopf_context.run(_post_events, body, events)

    return post
