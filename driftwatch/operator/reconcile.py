"""Make the cluster match a monitor's rendered children, and say so in its ``Ready`` condition.

Server-side apply with one field manager: a create and an update are the same call, a spec change
becomes a changed child in one round trip, and fields other controllers own on our children (e.g. an
admin's extra label) are left alone. Owner references on every child mean deletion is the garbage
collector's job, not ours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftwatch.kube.client import Kube, KubeError
from driftwatch.operator import inject, redis_users, render, scan_children, telemetry
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.prometheus import PrometheusProbe
from driftwatch.operator.status_rules import Event, condition
from driftwatch.redisconn import RedisTarget, redact_text
from driftwatch.vocab.names import LABEL_MANAGED, MANAGER
from driftwatch.vocab.spec import ConfigError
from driftwatch.vocab.states import Condition, Phase, Verdict

log = logging.getLogger("driftwatch.operator")

#: children are re-applied this often even without a spec change (repairs hand-deleted children)
RESYNC_SECONDS = 300.0
#: the status a new monitor shows until its first aggregation round
FIRST_STATUS = {"phase": Phase.INITIALIZING, "verdict": Verdict.INCONCLUSIVE}


@dataclass(frozen=True)
class Result:
    children: list[dict[str, str]]
    errors: list[str]
    #: the ConfigMap or the Secret did not apply: pods must not be injected (they would wait for it)
    config_failed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


#: children whose absence keeps injected pods from starting: a failure to apply them refuses injection
CONFIG_KINDS = ("ConfigMap", "Secret")


async def foreign_child(kube: Kube, monitor: Monitor) -> str | None:
    """A ConfigMap or Service of the child name that DriftWatch did not create for this monitor.

    Server-side apply with ``force`` would take such an object over (and the garbage collector would
    delete it with the monitor); refuse instead, and say which object is in the way. Secrets are not
    read (the operator may not): the admission policy the chart installs refuses writes to a Secret
    without our label, and the apply's error says so."""
    for kind in ("ConfigMap", "Service"):
        existing = await kube.get(kind, monitor.namespace, monitor.child_name)
        if existing is None:
            continue
        meta = existing.get("metadata") or {}
        owners = meta.get("ownerReferences") or []
        ours = (meta.get("labels") or {}).get(LABEL_MANAGED) == MANAGER and any(
            ref.get("uid") == monitor.uid and ref.get("controller") for ref in owners
        )
        if not ours:
            return (
                f"{kind} {monitor.namespace}/{monitor.child_name} exists and was not created by DriftWatch "
                "for this monitor; refusing to adopt it (rename the DriftMonitor or remove the object)"
            )
    return None


async def missing_baseline(kube: Kube, monitor: Monitor) -> str | None:
    """``baseline.mode: fromConfigMap`` names a ConfigMap that does not exist (pods would wait for it)."""
    name = inject.baseline_config_map(monitor)
    if name is None or await kube.get("ConfigMap", monitor.namespace, name) is not None:
        return None
    return (
        f"spec.baseline.configMap: ConfigMap {monitor.namespace}/{name} does not exist; pods are not "
        "injected until it does"
    )


async def apply_children(
    kube: Kube, monitor: Monitor, options: OperatorOptions, probe: PrometheusProbe
) -> Result:
    """Apply every child; report per-child failures instead of stopping at the first one."""
    prometheus = options.prometheus and await probe.available(kube)
    login = redis_users.login_for(monitor, options)
    wanted = render.children(monitor, options, prometheus=prometheus, login=login)
    results: list[Any] = list(await asyncio.gather(*(kube.apply(o) for o in wanted), return_exceptions=True))
    # the scan's children one by one: a RoleBinding is checked against its Role, which must exist
    for obj in scan_children.children(monitor, options):
        wanted.append(obj)
        results += await asyncio.gather(kube.apply(obj), return_exceptions=True)
    children: list[dict[str, str]] = []
    errors: list[str] = []
    config_failed = False
    for obj, res in zip(wanted, results, strict=True):
        ref = {"kind": obj["kind"], "name": obj["metadata"]["name"]}
        if isinstance(res, BaseException):
            text = res.message if isinstance(res, KubeError) else repr(res)
            errors.append(f"{obj['kind']} {obj['metadata']['name']}: {text}")
            config_failed = config_failed or obj["kind"] in CONFIG_KINDS
        else:
            children.append(ref)
    return Result(children, errors, config_failed)


async def ensure_redis_user(ctx: OperatorContext, monitor: Monitor) -> str | None:
    """The monitor's ACL user (``acl`` mode) on every Redis node; the error, redacted, if it failed."""
    try:
        target = RedisTarget.parse(monitor.redis_url)
        await asyncio.wait_for(redis_users.ensure_user(target, monitor, ctx.options), timeout=15)
    except Exception as e:
        return redact_text(f"Redis ACL user for the sidecars: {type(e).__name__}: {e}")[:500]
    return None


@dataclass(frozen=True)
class Reconciled:
    """What a reconcile wants written and said: ``conditions`` plus ``fields`` (set) and ``defaults``
    (set when absent) in ``status``, ``events``, and an ``error`` when it failed -- ``retry`` says whether
    trying again can help (a failed apply) or not (a spec the model rejects)."""

    conditions: list[dict[str, Any]]
    fields: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    error: str | None = None
    retry: bool = True


async def reconcile(ctx: OperatorContext, body: Mapping[str, Any]) -> Reconciled:
    """A created, changed or resumed monitor: its children applied, its ``Ready`` condition. A spec the
    operator cannot serve is refused here, with the field named -- never found out by the app's pods."""
    meta = body.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    try:
        monitor = Monitor.from_body(body, ctx.options)
    except ConfigError as e:
        ready = condition(Condition.READY, False, "InvalidSpec", str(e), generation)
        return Reconciled(
            [ready], events=[Event("Warning", "InvalidSpec", str(e))], error=str(e), retry=False
        )
    refused = await missing_baseline(ctx.kube, monitor)
    reason = "BaselineConfigMapMissing"
    if refused is None:
        refused, reason = await foreign_child(ctx.kube, monitor), "ChildConflict"
    if refused is not None:
        ctx.cache.set_refusal(monitor.namespace, monitor.name, refused)
        ready = condition(Condition.READY, False, reason, refused, generation)
        events = [Event("Warning", reason, refused)]
        return Reconciled([ready], {}, dict(FIRST_STATUS), events, refused)
    acl_error = await ensure_redis_user(ctx, monitor)
    result = await apply_children(ctx.kube, monitor, ctx.options, ctx.probe)
    try:
        gone = await scan_children.prune(ctx.kube, monitor)  # spec.scan removed: so is its CronJob
        if gone:
            log.info("%s/%s: scan removed: %s", monitor.namespace, monitor.name, ", ".join(gone))
    except KubeError as e:
        result.errors.append(f"removing the scan: {e.message}")
    errors = [*result.errors, *([acl_error] if acl_error else [])]
    telemetry.RECONCILES.labels("error" if errors else "ok").inc()
    ctx.last_applied[monitor.uid] = time.monotonic()
    fields = {"children": result.children}
    if not errors:
        ctx.cache.set_refusal(monitor.namespace, monitor.name, None)
        kinds = ", ".join(f"{c['kind']} {c['name']}" for c in result.children)
        log.info("%s/%s: children applied: %s", monitor.namespace, monitor.name, kinds)
        ready = condition(Condition.READY, True, "ChildrenApplied", kinds, generation)
        return Reconciled([ready], fields, dict(FIRST_STATUS))
    msg = "; ".join(errors)
    reason = "ConfigNotApplied" if result.config_failed else "ApplyFailed"
    ctx.cache.set_refusal(monitor.namespace, monitor.name, msg if result.config_failed else None)
    ready = condition(Condition.READY, False, reason, msg, generation)
    return Reconciled([ready], fields, dict(FIRST_STATUS), [Event("Warning", reason, msg)], msg)


async def resync(
    ctx: OperatorContext, monitor: Monitor, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    """Re-apply the children if the last apply is older than ``RESYNC_SECONDS`` (run by status rounds)."""
    if time.monotonic() - ctx.last_applied.get(monitor.uid, 0.0) <= RESYNC_SECONDS:
        return
    if await foreign_child(ctx.kube, monitor) is not None:
        return  # reconcile reported it; the next reconcile (spec change, retry) re-checks
    acl_error = await ensure_redis_user(ctx, monitor)
    result = await apply_children(ctx.kube, monitor, ctx.options, ctx.probe)
    ctx.last_applied[monitor.uid] = time.monotonic()
    errors = [*result.errors, *([acl_error] if acl_error else [])]
    if errors:
        logger.warning("re-applying children: %s", "; ".join(errors))
