"""The operator's in-memory view of DriftMonitors, fed by kopf's watch events.

The admission webhook must answer within its timeout without calling the API server (a webhook that
lists DriftMonitors per pod creation would put the API server in its own critical path), and the gate
endpoint answers from the last status seen. Both read this cache; the ``track`` handler writes it.

Besides the last status each watch event carried, the cache holds the status an aggregation round has
just written (``claim``): the gate answers from it at once, and the other aggregation path (timer vs.
notification) compares against it before the watch event arrives, so the two never both post the same
``DriftStarted``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions
from driftwatch.vocab.spec import ConfigError
from driftwatch.vocab.states import Condition

log = logging.getLogger(__name__)

#: ``Ready=False`` reasons under which the webhook does not inject for a monitor (``reconcile``): read
#: from the object's status, so every replica's webhook agrees with the one that reconciled it
REFUSING_REASONS = frozenset({"BaselineConfigMapMissing", "ChildConflict", "ConfigNotApplied"})
#: a monitor never reconciled has no ConfigMap yet: its pods would wait for the volume
NOT_RECONCILED = "not reconciled yet (no Ready condition): its ConfigMap may not exist"


def refusal_of(body: Mapping[str, Any]) -> str | None:
    """Why the status of ``body`` says not to inject for it (its Ready message), or None."""
    conditions = (body.get("status") or {}).get("conditions") or []
    ready = [c for c in conditions if c.get("type") == Condition.READY]
    if not ready:
        return NOT_RECONCILED
    c = ready[0]
    if c.get("status") == "False" and c.get("reason") in REFUSING_REASONS:
        return str(c.get("message") or c.get("reason"))
    return None


@dataclass
class MonitorCache:
    monitors: dict[str, dict[str, Monitor]] = field(default_factory=dict)
    statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: (namespace, name) -> why the webhook must not inject for it (see ``REFUSING_REASONS``)
    refusals: dict[tuple[str, str], str] = field(default_factory=dict)

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
        self.set_refusal(ns, name, refusal_of(body))
        return monitor

    def set_refusal(self, namespace: str, name: str, why: str | None) -> None:
        """Refuse injection for the monitor (``why``) or allow it again (None)."""
        if why is None:
            self.refusals.pop((namespace, name), None)
        else:
            self.refusals[(namespace, name)] = why

    def refused_in(self, namespace: str) -> dict[str, str]:
        """Monitor name -> why not to inject, for the monitors of ``namespace``."""
        return {name: why for (ns, name), why in self.refusals.items() if ns == namespace}

    def remove(self, namespace: str, name: str) -> None:
        self.monitors.get(namespace, {}).pop(name, None)
        if not self.monitors.get(namespace):
            self.monitors.pop(namespace, None)
        self.statuses.pop((namespace, name), None)
        self.refusals.pop((namespace, name), None)

    def in_namespace(self, namespace: str) -> list[Monitor]:
        return list(self.monitors.get(namespace, {}).values())

    def get(self, namespace: str, name: str) -> Monitor | None:
        return self.monitors.get(namespace, {}).get(name)

    def count(self) -> int:
        return sum(len(v) for v in self.monitors.values())

    def status(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.statuses.get((namespace, name))

    def newest_status(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The status a round compares against: the body's, unless this cache holds a newer one (a
        round of the other path wrote it and its watch event has not reached this body yet)."""
        own: dict[str, Any] = dict(body.get("status") or {})
        meta = body.get("metadata") or {}
        seen = self.statuses.get((str(meta.get("namespace")), str(meta.get("name"))))
        if seen and seen.get("lastUpdate") and str(seen["lastUpdate"]) >= str(own.get("lastUpdate") or ""):
            own.update({k: v for k, v in seen.items() if k != "conditions"})
        return own

    def claim(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """A round is writing ``status``: answer and compare against it from now on."""
        self.statuses[(namespace, name)] = status

    def release(self, namespace: str, name: str, claimed: dict[str, Any], actual: Mapping[str, Any]) -> None:
        """The write of ``claimed`` failed: fall back to ``actual`` unless a later claim replaced it."""
        if self.statuses.get((namespace, name)) is claimed:
            self.statuses[(namespace, name)] = dict(actual)
