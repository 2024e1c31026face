"""The operator's own Prometheus metrics, served at ``/metrics`` on the gate port (8080).

Few and bounded: admission decisions, reconcile and status-write outcomes, Redis failures, how many
monitors it serves and how long an aggregation round takes -- and one per-monitor pair, the rollout
verdict (labels ``namespace``, ``monitor``: one series per DriftMonitor, removed with it), for
Prometheus-based gates (Argo Rollouts' ``prometheus`` provider, Flagger's MetricTemplates). The sidecars
export the per-stream series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from driftwatch.buildinfo import build_info

REGISTRY = CollectorRegistry(auto_describe=True)

#: ``driftwatch_build_info{version, python_version, git_commit} 1``, as every sidecar exports it
BUILD = Info("driftwatch_build", "The DriftWatch build this process runs (always 1).", registry=REGISTRY)
BUILD.info(build_info())

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
LEADER = Gauge(
    "driftwatch_operator_leader",
    "1 on the replica that leads (reconciles, aggregates, cleans up), 0 on the others.",
    registry=REGISTRY,
)
AGGREGATE_SECONDS = Histogram(
    "driftwatch_operator_aggregate_seconds",
    "One monitor's aggregation round: Redis read, merge, status.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)

GATE_VERDICT = Gauge(
    "driftwatch_gate_verdict",
    "The rollout gate's answer (status.verdict): 0 Pass, 1 Fail, 2 Inconclusive (driftwatch gate's exit "
    "codes). Always 0 under spec.gate.mode shadow.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)
GATE_COMPUTED = Gauge(
    "driftwatch_gate_computed_verdict",
    "The verdict computed (status.gate.verdict), before shadow mode: 0 Pass, 1 Fail, 2 Inconclusive.",
    ["namespace", "monitor", "compare", "mode"],
    registry=REGISTRY,
)


#: (namespace, monitor) -> the (compare, mode) labels of its computed-verdict series
_GATE_LABELS: dict[tuple[str, str], tuple[str, str]] = {}


def set_gate(namespace: str, monitor: str, compare: str, mode: str, verdict: int, computed: int) -> None:
    """Record one monitor's verdicts (a changed compare/mode replaces the old computed series)."""
    if _GATE_LABELS.get((namespace, monitor)) not in (None, (compare, mode)):
        forget_gate(namespace, monitor)
    _GATE_LABELS[(namespace, monitor)] = (compare, mode)
    GATE_VERDICT.labels(namespace, monitor).set(verdict)
    GATE_COMPUTED.labels(namespace, monitor, compare, mode).set(computed)


def forget_gate(namespace: str, monitor: str) -> None:
    """Remove a monitor's verdict series (deleted, or its labels changed)."""
    labels = _GATE_LABELS.pop((namespace, monitor), None)
    if labels is not None:
        GATE_VERDICT.remove(namespace, monitor)
        GATE_COMPUTED.remove(namespace, monitor, *labels)


def forget_gates() -> None:
    """Remove every verdict series: this replica stopped leading (the leader's rounds export them)."""
    for namespace, monitor in list(_GATE_LABELS):
        forget_gate(namespace, monitor)


SCANS = Counter(
    "driftwatch_scans",
    "Scans (the scan CronJobs' Jobs) whose result the operator saw, by result.",
    ["result"],  # Drift | NoDrift | NotEnoughData | Failed
    registry=REGISTRY,
)
#: per monitor, as the sidecars' per-stream series: a scan has no process left to export it
SCAN_DRIFTED = Gauge(
    "driftwatch_scan_drifted_features",
    "Features the monitor's last scan found drifted.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)

ALERTS = Counter(
    "driftwatch_alerts",
    "Alert deliveries (spec.alerts), by channel and outcome.",
    ["channel", "status"],  # webhook|slack|email|log x sent|failed|below-severity|duplicate|...
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
