"""The operator's own Prometheus metrics, served at ``/metrics`` on the gate port (8080).

Few and bounded: no per-monitor labels (the sidecars export per-stream series; the operator's job is to
say whether *it* works): admission decisions, reconcile and status-write outcomes, Redis failures, how
many monitors it serves and how long an aggregation round takes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

ADMISSIONS = Counter(
    "driftwatch_operator_admission_reviews",
    "Pod admission reviews answered by the injector, by decision.",
    ["decision"],  # injected | skipped
    registry=REGISTRY,
)
RECONCILES = Counter(
    "driftwatch_operator_reconciles",
    "DriftMonitor reconciles (children applied), by result.",
    ["result"],
    registry=REGISTRY,
)
STATUS_WRITES = Counter(
    "driftwatch_operator_status_writes",
    "Status patches written by aggregation (timer or notification).",
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "driftwatch_operator_notifications",
    "Sidecar notifications (P:notify) received, by what the round did.",
    ["result"],
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "driftwatch_operator_redis_errors", "Aggregation rounds that could not read Redis.", registry=REGISTRY
)
MONITORS = Gauge("driftwatch_operator_monitors", "DriftMonitors the operator serves.", registry=REGISTRY)
AGGREGATE_SECONDS = Histogram(
    "driftwatch_operator_aggregate_seconds",
    "One monitor's aggregation round: Redis read, merge, status.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
