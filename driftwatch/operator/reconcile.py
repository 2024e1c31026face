"""Make the cluster match a monitor's rendered children.

Server-side apply with one field manager: a create and an update are the same call, a spec change
becomes a changed child in one round trip, and fields other controllers own on our children (e.g. an
admin's extra label) are left alone. Owner references on every child mean deletion is the garbage
collector's job, not ours.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from driftwatch.operator import render
from driftwatch.operator.kube import Kube, KubeError
from driftwatch.operator.monitor import Monitor
from driftwatch.operator.options import OperatorOptions


@dataclass
class PrometheusProbe:
    """Whether the Prometheus Operator's CRDs exist, rechecked now and then (they may be installed
    after DriftWatch). Discovery is readable by every authenticated user, so no CRD RBAC is needed."""

    ttl: float = 60.0
    _value: bool | None = None
    _checked: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def available(self, kube: Kube) -> bool:
        async with self._lock:
            if self._value is None or time.monotonic() - self._checked > self.ttl:
                sm = await kube.has_resource("monitoring.coreos.com/v1", "servicemonitors")
                pr = await kube.has_resource("monitoring.coreos.com/v1", "prometheusrules")
                self._value, self._checked = sm and pr, time.monotonic()
            return self._value


@dataclass(frozen=True)
class Result:
    children: list[dict[str, str]]
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


async def reconcile(kube: Kube, monitor: Monitor, options: OperatorOptions, probe: PrometheusProbe) -> Result:
    """Apply every child; report per-child failures instead of stopping at the first one."""
    prometheus = options.prometheus and await probe.available(kube)
    wanted = render.children(monitor, options, prometheus=prometheus)
    results = await asyncio.gather(*(kube.apply(obj) for obj in wanted), return_exceptions=True)
    children: list[dict[str, str]] = []
    errors: list[str] = []
    for obj, res in zip(wanted, results, strict=True):
        ref = {"kind": obj["kind"], "name": obj["metadata"]["name"]}
        if isinstance(res, KubeError):
            errors.append(f"{obj['kind']} {obj['metadata']['name']}: {res.message}")
        elif isinstance(res, BaseException):
            errors.append(f"{obj['kind']} {obj['metadata']['name']}: {res!r}")
        else:
            children.append(ref)
    return Result(children, errors)


def child_refs(result: Result) -> list[dict[str, Any]]:
    return [dict(c) for c in result.children]
