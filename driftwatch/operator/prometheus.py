"""Whether the cluster runs the Prometheus Operator: then each monitor also gets a ServiceMonitor
(``render``), otherwise only the metrics Service."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from driftwatch.kube.client import Kube


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
                self._value, self._checked = sm, time.monotonic()
            return self._value
