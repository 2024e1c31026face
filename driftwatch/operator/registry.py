"""The operator's in-memory view of DriftMonitors, fed by kopf's watch events.

The admission webhook must answer within its timeout without calling the API server (a webhook that
lists DriftMonitors per pod creation would put the API server in its own critical path), and the gate
endpoint answers from the last status seen. Both read this registry; ``handlers.track`` writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftwatch.config import ConfigError
from driftwatch.operator.monitor import Monitor
from driftwatch.operator.options import OperatorOptions

log = logging.getLogger(__name__)


@dataclass
class Registry:
    monitors: dict[str, dict[str, Monitor]] = field(default_factory=dict)
    statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: set once the first full listing has been seen (kopf resumes every object at start)
    synced: bool = False

    def upsert(self, body: Mapping[str, Any], options: OperatorOptions) -> Monitor | None:
        meta = body.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        if meta.get("deletionTimestamp"):
            self.remove(ns, name)
            return None
        try:
            monitor = Monitor.from_body(body, options)
        except ConfigError as e:
            # the CRD admits it but the model does not: never inject from a spec we cannot render
            log.warning("DriftMonitor %s/%s: %s", ns, name, e)
            self.remove(ns, name)
            return None
        self.monitors.setdefault(ns, {})[name] = monitor
        self.statuses[(ns, name)] = dict(body.get("status") or {})
        return monitor

    def remove(self, namespace: str, name: str) -> None:
        self.monitors.get(namespace, {}).pop(name, None)
        if not self.monitors.get(namespace):
            self.monitors.pop(namespace, None)
        self.statuses.pop((namespace, name), None)

    def in_namespace(self, namespace: str) -> list[Monitor]:
        return list(self.monitors.get(namespace, {}).values())

    def status(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.statuses.get((namespace, name))
