"""The operator's long-lived state, one per process, shared by the handlers.

Separate from ``handlers`` so ``main`` can set the options before the handlers register (the timer's
interval is read at registration) and tests can build a ``Runtime`` without kopf running.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import Any

from driftwatch.operator import aggregate
from driftwatch.operator.gate import GateServer
from driftwatch.operator.kube import Kube
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.reconcile import PrometheusProbe
from driftwatch.operator.registry import Registry
from driftwatch.operator.webhook import WebhookServer

#: children are re-applied this often even without a spec change (repairs hand-deleted children)
RESYNC_SECONDS = 300.0
#: Redis cleanup on delete is retried this many times, then given up so deletion never hangs forever
CLEANUP_RETRIES = 5


@dataclass
class Runtime:
    """The operator's long-lived state, one per process."""

    options: OperatorOptions
    kube: Kube = field(default_factory=Kube)
    registry: Registry = field(default_factory=Registry)
    redis: aggregate.RedisPool = field(default_factory=aggregate.RedisPool)
    probe: PrometheusProbe = field(default_factory=PrometheusProbe)
    webhook: WebhookServer | None = None
    gate: GateServer | None = None
    last_applied: dict[str, float] = field(default_factory=dict)
    ready: bool = False
    #: kopf's ``pods`` index (a live view), captured at startup for the notification path
    pods_index: Any = None
    #: the Redis notification listener (``notify.py``), started at startup
    notify_task: asyncio.Task[None] | None = None
    #: a copy of kopf's handler context: ``kopf.event`` needs its posting queue
    kopf_context: contextvars.Context | None = None
    #: aggregation rounds are serialised per (namespace, name): timer and notification never overlap
    round_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)


_RUNTIME: Runtime | None = None


def set_options(options: OperatorOptions) -> Runtime:
    """Called by ``main`` before ``handlers`` is imported."""
    global _RUNTIME
    _RUNTIME = Runtime(options)
    return _RUNTIME


def rt() -> Runtime:
    global _RUNTIME
    if _RUNTIME is None:  # e.g. `kopf run -m driftwatch.operator.handlers`: defaults
        _RUNTIME = Runtime(OperatorOptions())
    return _RUNTIME
