"""The operator's long-lived objects, one ``OperatorContext`` per process, handed to every flow.

``command`` builds it from the options and passes it to ``handlers.register``: no module-level state,
so nothing depends on import order, and a test builds a context (or two) without kopf running.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from driftwatch.kube.client import Kube
from driftwatch.operator import telemetry
from driftwatch.operator.alerting import Alerting
from driftwatch.operator.cache import MonitorCache
from driftwatch.operator.election import LeaseElector
from driftwatch.operator.endpoints import EndpointServer
from driftwatch.operator.history_feed import Feed
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.pod_reports import RedisPool
from driftwatch.operator.prometheus import PrometheusProbe
from driftwatch.operator.status_rules import PodInfo
from driftwatch.operator.webhook import WebhookServer
from driftwatch.vocab.names import KIND


@dataclass
class OperatorContext:
    """What the handlers share: options, clients, the monitor cache, the servers, per-monitor locks."""

    options: OperatorOptions
    kube: Kube = field(default_factory=Kube)
    cache: MonitorCache = field(default_factory=MonitorCache)
    redis: RedisPool = field(default_factory=RedisPool)
    probe: PrometheusProbe = field(default_factory=PrometheusProbe)
    webhook: WebhookServer | None = None
    endpoints: EndpointServer | None = None
    #: monitor uid -> when its children were last applied (``monotonic``), for the periodic re-apply
    last_applied: dict[str, float] = field(default_factory=dict)
    ready: bool = False
    #: kopf's ``pods`` index (a live view), captured at startup for the notification path
    pods_index: Mapping[str, Iterable[PodInfo]] | None = None
    #: the Redis notification listener (``notify.py``), started at startup
    notify_task: asyncio.Task[None] | None = None
    #: a copy of kopf's handler context: ``kopf.event`` needs its posting queue
    kopf_context: contextvars.Context | None = None
    #: aggregation rounds are serialised per (namespace, name): loop and notification never overlap
    round_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    #: the aggregation loop (``status_round.status_loop``), started at startup
    status_task: asyncio.Task[None] | None = None
    #: fire-and-forget work (cleanups of deleted monitors, the start's sweep), held until done
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    #: this replica does the leader's work (``leadership.py``): reconciles, status rounds, cleanup
    leading: bool = False
    #: the Lease election (None without ``leader_election``) and its task
    elector: LeaseElector | None = None
    election_task: asyncio.Task[None] | None = None
    #: (namespace, name) -> the ``status.lastScan.time`` already handled (``scan_watch``)
    scans_seen: dict[tuple[str, str], str] = field(default_factory=dict)
    #: transitions -> the monitor's history and its alerts, off the status rounds (``history_feed``)
    feed: Feed = field(init=False)
    #: ``driftwatch ack`` request ids already acted on (``acks``)
    acks_seen: set[str] = field(default_factory=set)
    #: spec.alerts: notifiers per monitor, acknowledgements (``alerting``)
    alerting: Alerting = field(init=False)

    def __post_init__(self) -> None:
        self.feed = Feed(self.redis, time.time)
        self.alerting = Alerting(self.kube, self.redis)
        self.feed.alerts = self.alerting.on_transition

    async def list_monitors(self) -> list[dict[str, Any]]:
        """Every DriftMonitor this operator serves, listed from the API server."""
        namespaces: list[str | None] = [ns for ns in self.options.namespaces if "*" not in ns] or [None]
        return [body for ns in namespaces for body in await self.kube.list(KIND, ns)]

    def forget(self, namespace: str, name: str, uid: str) -> None:
        """Drop everything held for a deleted monitor."""
        self.cache.remove(namespace, name)
        telemetry.forget_gate(namespace, name)
        self.last_applied.pop(uid, None)
        self.round_locks.pop((namespace, name), None)
        self.scans_seen.pop((namespace, name), None)
        self.alerting.forget(namespace, name)
