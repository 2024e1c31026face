#!/usr/bin/env python3
"""Writes ``driftwatch-dashboard.json`` (next to this file): the DriftWatch Grafana dashboard.

The JSON is the single source the chart and the kustomize component copy (``scripts/gen-manifests.sh``);
this script is how it is written, so that the ~30 queries share one set of label filters instead of
thirty hand-edited copies. Edit here, run ``python deploy/grafana/build_dashboard.py``, then
``scripts/gen-manifests.sh``; ``tests/unit/test_dashboard_source.py`` fails while the JSON is stale.
Standard library only.

The panels answer the on-call questions in order: what drifts and since when, how much (score,
severity), how the distribution moved (baseline against current quantiles), what the rollout gate says,
whether samples get in (rate, rejections, latency, queue, keys), and whether Redis and the operator
are healthy. ``tests/e2e/test_dashboard.py`` runs every query against a real Prometheus scraping live
sidecars and the operator and requires data from each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("driftwatch-dashboard.json")
Json = dict[str, Any]
DS = {"type": "prometheus", "uid": "${datasource}"}

# --- label filters -------------------------------------------------------------------------------------

CLUSTER = 'cluster=~"$cluster"'
#: a sidecar's series (every one carries namespace and monitor)
SIDECAR = f'{CLUSTER}, namespace=~"$namespace", monitor=~"$monitor"'
#: a sidecar's per-stream series
STREAM = f'{SIDECAR}, feature=~"$feature", key=~"$key"'
#: the operator's per-monitor series (the gate verdicts carry namespace and monitor)
GATE = SIDECAR
#: the operator's own series
OPERATOR = CLUSTER

BY_STREAM = "cluster, namespace, monitor, feature, key"
BY_MONITOR = "cluster, namespace, monitor"
BY_POD = "cluster, namespace, monitor, pod"
STREAM_LEGEND = "{{namespace}}/{{monitor}} {{feature}} {{key}}"
POD_LEGEND = "{{namespace}}/{{monitor}} {{pod}}"


def drifting(filters: str = STREAM) -> str:
    return f'max by ({BY_STREAM}) (driftwatch_drift_state{{state="Drifting", {filters}}}) == 1'


def rate(metric: str, filters: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{filters}}}[$__rate_interval]))"


def increase_from_zero(selector: str, window: str) -> str:
    """``increase(selector[window])``, counting a series born within the window from 0.

    A sidecar exports a ``driftwatch_drift_events_total{feature, key, type, reason}`` series only once
    such an event happened, so its first sample is already 1 and ``increase`` (which needs two samples
    and takes a new series' first one as its start) shows nothing for a stream's first drift. A series
    with no sample ``window`` ago counts with its whole value instead. (A Prometheus restarted under a
    running sidecar sees every series as new once: one spurious bar, rather than a missed drift.)
    """
    return f"(({selector} unless {selector} offset {window}) or increase({selector}[{window}]))"


def hist_quantile(q: float, metric: str, filters: str, by: str) -> str:
    return (
        f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{filters}}}[$__rate_interval])))"
    )


# --- panel pieces --------------------------------------------------------------------------------------


def target(expr: str, ref: str = "A", legend: str = "", instant: bool = False, table: bool = False) -> Json:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t.update(range=False, instant=True)
    else:
        t.update(range=True)
    if table:
        t["format"] = "table"
    return t


def steps(*pairs: tuple[str, float | None]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


def mapping(*names: tuple[str, str | None]) -> list[Json]:
    """Value mappings 0, 1, 2, ... -> (text, color)."""
    options = {}
    for i, (text, color) in enumerate(names):
        options[str(i)] = {"text": text, "index": i, **({"color": color} if color else {})}
    return [{"type": "value", "options": options}]


SCORE_STEPS = steps(("green", None), ("orange", 0.2), ("red", 0.5))
STATE_MAP = mapping(("Initializing", "blue"), ("Stable", "green"), ("Drifting", "red"))
SEVERITY_MAP = mapping(("none", "green"), ("warning", "orange"), ("critical", "red"))
VERDICT_MAP = mapping(("Pass", "green"), ("Fail", "red"), ("Inconclusive", "yellow"))
UP_MAP = mapping(("down", "red"), ("up", "green"))


class Layout:
    """Panels in reading order on Grafana's 24-column grid, with ids."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self.x = self.y = self.row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        self.y += 1

    def _newline(self) -> None:
        self.y += self.row_h
        self.x = self.row_h = 0

    def add(
        self, kind: str, title: str, description: str, targets: list[Json], w: int, h: int, **rest: Any
    ) -> None:
        if self.x + w > 24:
            self._newline()
        panel = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": targets,
            **rest,
        }
        panel.setdefault("fieldConfig", {"defaults": {}, "overrides": []})
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def stat(layout: Layout, title: str, description: str, expr: str, thresholds: Json, **defaults: Any) -> None:
    layout.add(
        "stat",
        title,
        description,
        [target(expr, instant=True)],
        w=4,
        h=4,
        fieldConfig={"defaults": {"thresholds": thresholds, **defaults}, "overrides": []},
        options={"colorMode": "background", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}},
    )


def timeseries(
    layout: Layout,
    title: str,
    description: str,
    targets: list[Json],
    w: int = 12,
    h: int = 8,
    unit: str = "none",
    overrides: list[Json] | None = None,
    **defaults: Any,
) -> None:
    layout.add(
        "timeseries",
        title,
        description,
        targets,
        w=w,
        h=h,
        fieldConfig={"defaults": {"unit": unit, **defaults}, "overrides": overrides or []},
        options={
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def state_timeline(
    layout: Layout,
    title: str,
    description: str,
    expr: str,
    legend: str,
    mappings: list[Json],
    thresholds: Json,
) -> None:
    layout.add(
        "state-timeline",
        title,
        description,
        [target(expr, legend=legend)],
        w=24,
        h=7,
        fieldConfig={
            "defaults": {"mappings": mappings, "color": {"mode": "thresholds"}, "thresholds": thresholds},
            "overrides": [],
        },
        options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
    )


def table(
    layout: Layout,
    title: str,
    description: str,
    columns: list[tuple[str, str]],
    overrides: list[Json],
    w: int = 12,
    h: int = 8,
) -> None:
    """One instant query per column (``(name, expr)``), merged on their labels."""
    refs = "ABCDEFGH"
    layout.add(
        "table",
        title,
        description,
        [target(expr, ref=refs[i], instant=True, table=True) for i, (_, expr) in enumerate(columns)],
        w=w,
        h=h,
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "renameByName": {f"Value #{refs[i]}": name for i, (name, _) in enumerate(columns)},
                },
            },
        ],
        fieldConfig={"defaults": {"decimals": 2}, "overrides": overrides},
    )


def column(name: str, *properties: tuple[str, Any]) -> Json:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": k, "value": v} for k, v in properties],
    }


def dashed(regex: str) -> Json:
    return {
        "matcher": {"id": "byRegexp", "options": regex},
        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
    }


# --- the dashboard -------------------------------------------------------------------------------------


def panels() -> list[Json]:
    p = Layout()

    p.row("Overview")
    stat(
        p,
        "Drifting streams",
        "Feature/key streams whose state is Drifting (any replica).",
        f"count({drifting()}) or vector(0)",
        steps(("green", None), ("red", 1)),
    )
    stat(
        p,
        "Worst drift score",
        "The monitor-level score is the worst feature's. Warning >= 0.2, critical >= 0.5.",
        f"max(driftwatch_drift_score{{{STREAM}}})",
        SCORE_STEPS,
        min=0,
        max=1,
        decimals=2,
    )
    stat(
        p,
        "Monitors failing the gate",
        "DriftMonitors whose rollout verdict (status.verdict) is Fail now.",
        f"count(driftwatch_gate_verdict{{{GATE}}} == 1) or vector(0)",
        steps(("green", None), ("red", 1)),
    )
    stat(
        p,
        "Reporting sidecars",
        "Sidecars (pods) scraped for the selected monitors.",
        f"count(count by ({BY_POD}, instance) (driftwatch_keys{{{SIDECAR}}}))",
        steps(("red", None), ("green", 1)),
    )
    stat(
        p,
        "Sidecars without Redis",
        "Sidecars running on memory only: no checkpoints, no monitor-level status from them.",
        f"count(driftwatch_redis_up{{{SIDECAR}}} == 0) or vector(0)",
        steps(("green", None), ("red", 1)),
    )
    stat(
        p,
        "Operator leaders",
        "Operator replicas that lead (reconcile, aggregate, export verdicts): 1 is healthy, 0 means no "
        "status updates and no gate verdicts.",
        f"sum(driftwatch_operator_leader{{{OPERATOR}}}) or vector(0)",
        steps(("red", None), ("green", 1), ("orange", 2)),
    )

    p.row("Drift: which streams, since when, how much")
    score = f"max by ({BY_STREAM}) (driftwatch_drift_score{{{STREAM}}})"
    table(
        p,
        "Drifting now",
        "Drifting feature/key streams: score, severity and since when (the alarming sample's time). "
        "`kubectl describe driftmonitor` has the evidence.",
        [
            ("score", f"{score} and on ({BY_STREAM}) ({drifting()})"),
            (
                "severity",
                (
                    f"max by ({BY_STREAM}) (driftwatch_drift_severity{{{STREAM}}}) "
                    f"and on ({BY_STREAM}) ({drifting()})"
                ),
            ),
            (
                "drifting since",
                f"min by ({BY_STREAM}) (driftwatch_drift_since_timestamp_seconds{{{STREAM}}}) * 1000",
            ),
        ],
        [
            column(
                "score", ("thresholds", SCORE_STEPS), ("custom.cellOptions", {"type": "color-background"})
            ),
            column(
                "severity",
                ("decimals", 0),
                ("mappings", SEVERITY_MAP),
                ("custom.cellOptions", {"type": "color-text"}),
            ),
            column("drifting since", ("unit", "dateTimeFromNow")),
        ],
        w=24,
        h=7,
    )
    timeseries(
        p,
        "Drift score per stream",
        "Score in [0, 1] per feature and key (worst replica). Dashed thresholds: warning 0.2, critical 0.5.",
        [target(score, legend=STREAM_LEGEND)],
        w=24,
        h=9,
        min=0,
        max=1,
        thresholds=SCORE_STEPS,
        custom={"thresholdsStyle": {"mode": "dashed"}, "lineWidth": 2},
    )
    state_timeline(
        p,
        "Severity per stream",
        "none / warning (score >= 0.2) / critical (>= 0.5), worst replica.",
        f"max by ({BY_STREAM}) (driftwatch_drift_severity{{{STREAM}}})",
        STREAM_LEGEND,
        SEVERITY_MAP,
        steps(("green", None), ("orange", 1), ("red", 2)),
    )
    state = (
        f'max by ({BY_STREAM}) ((driftwatch_drift_state{{state="Drifting", {STREAM}}} == 1) * 2 '
        f'or (driftwatch_drift_state{{state="Stable", {STREAM}}} == 1) '
        f'or (driftwatch_drift_state{{state="Initializing", {STREAM}}} == 1) * 0)'
    )
    state_timeline(
        p,
        "State per stream",
        "Initializing -> Stable -> Drifting -> Stable: since when a stream drifts. Worst state of any "
        "replica.",
        state,
        STREAM_LEGEND,
        STATE_MAP,
        steps(("blue", None), ("green", 1), ("red", 2)),
    )
    events = "cluster, namespace, monitor, feature, key, type, reason"
    timeseries(
        p,
        "Drift events",
        "DRIFT_START (reason: the alarming detector) and DRIFT_END (reason: recovered or adopted).",
        [
            target(
                f"sum by ({events}) "
                + increase_from_zero(f"driftwatch_drift_events_total{{{STREAM}}}", "$__rate_interval"),
                legend="{{monitor}} {{feature}} {{key}} {{type}} {{reason}}",
            )
        ],
        w=24,
        h=7,
        custom={"drawStyle": "bars", "fillOpacity": 80},
    )

    p.row("Baseline against current (numeric features)")
    by_q = f"{BY_STREAM}, quantile"
    base_q = f"avg by ({by_q}) (driftwatch_baseline_quantile{{{STREAM}}})"
    cur_q = f"avg by ({by_q}) (driftwatch_current_quantile{{{STREAM}}})"
    timeseries(
        p,
        "Quantiles: baseline (dashed) and current",
        "p50, p95 and p99 of what normal looked like (the baseline) and of the current window, per stream "
        "(averaged over replicas: quantiles do not add up; pick a feature and key to compare one stream).",
        [
            target(base_q, "A", "baseline p{{quantile}} {{feature}} {{key}}"),
            target(cur_q, "B", "current p{{quantile}} {{feature}} {{key}}"),
        ],
        w=14,
        h=9,
        overrides=[dashed("^baseline .*")],
    )
    table(
        p,
        "Current against baseline",
        "Per stream and quantile: baseline, current, and their ratio (1 = unchanged).",
        [
            ("baseline", base_q),
            ("current", cur_q),
            ("current / baseline", f"{cur_q} / {base_q}"),
        ],
        [
            column(
                "current / baseline",
                (
                    "thresholds",
                    steps(("red", None), ("orange", 0.8), ("green", 0.9), ("orange", 1.1), ("red", 1.25)),
                ),
                ("custom.cellOptions", {"type": "color-background"}),
            )
        ],
        w=10,
        h=9,
    )

    p.row("Verdicts and rollout gate")
    state_timeline(
        p,
        "Rollout verdict per monitor",
        "What the gate answers (status.verdict; Argo Rollouts, Flagger, `driftwatch gate`). Always Pass "
        "under spec.gate.mode shadow: the table shows what was computed.",
        f"max by ({BY_MONITOR}) (driftwatch_gate_verdict{{{GATE}}})",
        "{{namespace}}/{{monitor}}",
        VERDICT_MAP,
        steps(("green", None), ("red", 1), ("yellow", 2)),
    )
    computed = f"max by ({BY_MONITOR}, compare, mode) (driftwatch_gate_computed_verdict{{{GATE}}})"
    verdict_cols = ("decimals", 0), ("mappings", VERDICT_MAP), ("custom.cellOptions", {"type": "color-text"})
    table(
        p,
        "Gate decisions now",
        "Per monitor: the verdict the gate answers, the one computed before shadow mode, and how "
        "(spec.gate.compare, spec.gate.mode).",
        [
            # the answer, with the computed series' compare and mode: both columns have one label set
            (
                "verdict",
                (
                    f"max by ({BY_MONITOR}) (driftwatch_gate_verdict{{{GATE}}}) * on ({BY_MONITOR}) "
                    f"group_left (compare, mode) (0 * {computed} + 1)"
                ),
            ),
            ("computed", computed),
        ],
        [column("verdict", *verdict_cols), column("computed", *verdict_cols)],
        w=24,
        h=6,
    )

    p.row("Ingest")
    timeseries(
        p,
        "Samples ingested / s",
        "Samples applied to the detection engine, per monitor.",
        [
            target(
                rate("driftwatch_samples_ingested_total", STREAM, BY_MONITOR),
                legend="{{namespace}}/{{monitor}}",
            )
        ],
        unit="ops",
    )
    ingested = rate("driftwatch_samples_ingested_total", SIDECAR, BY_MONITOR)
    rejected = rate("driftwatch_samples_rejected_total", SIDECAR, BY_MONITOR)
    timeseries(
        p,
        "Samples rejected / s by reason",
        "Rejections by reason (the `reason` of a 202's rejected entries); right axis: share of all samples.",
        [
            target(
                rate("driftwatch_samples_rejected_total", SIDECAR, f"{BY_MONITOR}, reason"),
                "A",
                "{{namespace}}/{{monitor}} {{reason}}",
            ),
            target(
                f"{rejected} / ({ingested} + {rejected})", "B", "{{namespace}}/{{monitor}} rejected share"
            ),
        ],
        unit="ops",
        overrides=[
            {
                "matcher": {"id": "byRegexp", "options": ".*rejected share$"},
                "properties": [
                    {"id": "unit", "value": "percentunit"},
                    {"id": "custom.axisPlacement", "value": "right"},
                ],
            }
        ],
    )
    latency = "driftwatch_ingest_latency_seconds"
    timeseries(
        p,
        "Ingest latency",
        "Time to validate and enqueue one request (p50, p99), per monitor.",
        [
            target(hist_quantile(0.5, latency, SIDECAR, BY_MONITOR), "A", "p50 {{namespace}}/{{monitor}}"),
            target(hist_quantile(0.99, latency, SIDECAR, BY_MONITOR), "B", "p99 {{namespace}}/{{monitor}}"),
        ],
        unit="s",
    )
    timeseries(
        p,
        "Queue depth against capacity",
        "Samples waiting for the engine as a share of limits.queueCapacity, per sidecar: at 100 % ingest "
        "answers 429.",
        [
            target(
                f"max by ({BY_POD}) (driftwatch_queue_depth{{{SIDECAR}}}) "
                f"/ max by ({BY_POD}) (driftwatch_queue_capacity{{{SIDECAR}}})",
                legend=POD_LEGEND,
            )
        ],
        unit="percentunit",
        min=0,
        max=1,
        thresholds=steps(("green", None), ("orange", 0.5), ("red", 0.9)),
        custom={"thresholdsStyle": {"mode": "dashed"}},
    )
    timeseries(
        p,
        "Keys against their cap",
        "Distinct keys admitted as a share of spec.keys.maxKeys, per sidecar: at 100 % new keys fold into "
        "__overflow__.",
        [
            target(
                f"max by ({BY_POD}) (driftwatch_keys{{{SIDECAR}}}) "
                f"/ max by ({BY_POD}) (driftwatch_keys_max{{{SIDECAR}}})",
                legend=POD_LEGEND,
            )
        ],
        unit="percentunit",
        min=0,
        max=1,
        thresholds=steps(("green", None), ("orange", 0.8), ("red", 1)),
        custom={"thresholdsStyle": {"mode": "dashed"}},
    )
    timeseries(
        p,
        "Sidecar event-loop lag p99",
        "How late the sidecar's event loop runs (the longest wait a request meets), per sidecar.",
        [
            target(
                hist_quantile(0.99, "driftwatch_event_loop_lag_seconds", SIDECAR, BY_POD), legend=POD_LEGEND
            )
        ],
        unit="s",
    )

    p.row("Redis and operator health")
    state_timeline(
        p,
        "Redis reachable per sidecar",
        "1 = the sidecar reaches Redis (checkpoints, monitor-level aggregation, rollout gate).",
        f"min by ({BY_POD}) (driftwatch_redis_up{{{SIDECAR}}})",
        POD_LEGEND,
        UP_MAP,
        steps(("red", None), ("green", 1)),
    )
    timeseries(
        p,
        "Checkpoints / s by result",
        "Engine checkpoints written to Redis (ok / error).",
        [
            target(
                rate("driftwatch_checkpoints_total", SIDECAR, f"{BY_MONITOR}, result"),
                legend="{{namespace}}/{{monitor}} {{result}}",
            )
        ],
        w=8,
        unit="ops",
    )
    timeseries(
        p,
        "Checkpoint age",
        "Seconds since each sidecar's last checkpoint in Redis (sidecars without one yet are not shown).",
        [
            target(
                f"max by ({BY_POD}) "
                f"(time() - (driftwatch_last_checkpoint_timestamp_seconds{{{SIDECAR}}} > 0))",
                legend=POD_LEGEND,
            )
        ],
        w=8,
        unit="s",
    )
    timeseries(
        p,
        "Unsaved samples",
        "Samples answered 202 that no checkpoint holds yet: what a SIGKILL would lose now.",
        [target(f"max by ({BY_POD}) (driftwatch_unsaved_samples{{{SIDECAR}}})", legend=POD_LEGEND)],
        w=8,
    )
    timeseries(
        p,
        "Operator activity / s",
        "Reconciles by result, status writes, sidecar notifications by result, admission reviews by "
        "decision, and aggregation rounds that could not read Redis.",
        [
            target(
                rate("driftwatch_operator_reconciles_total", OPERATOR, "cluster, result"),
                "A",
                "reconcile {{result}}",
            ),
            target(
                rate("driftwatch_operator_status_writes_total", OPERATOR, "cluster"), "B", "status writes"
            ),
            target(
                rate("driftwatch_operator_notifications_total", OPERATOR, "cluster, result"),
                "C",
                "notification {{result}}",
            ),
            target(
                rate("driftwatch_operator_admission_reviews_total", OPERATOR, "cluster, decision"),
                "D",
                "admission {{decision}}",
            ),
            target(rate("driftwatch_operator_redis_errors_total", OPERATOR, "cluster"), "E", "Redis errors"),
        ],
        w=8,
        unit="ops",
    )
    timeseries(
        p,
        "Operator aggregation round p99",
        "One monitor's round: read the sidecars' summaries from Redis, merge, write status.",
        [
            target(
                hist_quantile(0.99, "driftwatch_operator_aggregate_seconds", OPERATOR, "cluster"),
                legend="p99",
            )
        ],
        w=8,
        unit="s",
    )
    timeseries(
        p,
        "Operator replicas, leaders, monitors",
        "Operator replicas scraped, how many lead (1 is healthy) and the DriftMonitors served.",
        [
            target(f"count by (cluster) (driftwatch_operator_leader{{{OPERATOR}}})", "A", "replicas"),
            target(f"sum by (cluster) (driftwatch_operator_leader{{{OPERATOR}}})", "B", "leaders"),
            target(f"max by (cluster) (driftwatch_operator_monitors{{{OPERATOR}}})", "C", "monitors"),
        ],
        w=8,
        decimals=0,
    )
    return p.panels


def variable(name: str, label: str, metric: str, filters: str, label_name: str) -> Json:
    query = (
        f"label_values({metric}{{{filters}}}, {label_name})"
        if filters
        else f"label_values({metric}, {label_name})"
    )
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        # a regex matching any value, and no value: `cluster` is absent without an external label, and
        # an unkeyed stream has no `key`
        "allValue": ".*",
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def dashboard() -> Json:
    score = "driftwatch_drift_score"
    return {
        "uid": "driftwatch-overview",
        "title": "DriftWatch",
        "description": "Which DriftMonitors and features drift, since when and how much; baseline against "
        "current quantiles; rollout verdicts; ingest; Redis and operator health.",
        "tags": ["driftwatch", "drift", "kubernetes"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 2,
        "time": {"from": "now-6h", "to": "now"},
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "name": "Drift events",
                    "datasource": DS,
                    "enable": True,
                    "iconColor": "red",
                    "expr": f"sum by ({BY_STREAM}, type) "
                    + increase_from_zero(f"driftwatch_drift_events_total{{{STREAM}}}", "2m")
                    + " > 0",
                    "step": "1m",
                    "titleFormat": "{{type}}",
                    "textFormat": "{{namespace}}/{{monitor}} {{feature}} {{key}}",
                    "useValueForTime": False,
                },
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                },
                variable("cluster", "Cluster", score, "", "cluster"),
                variable("namespace", "Namespace", score, CLUSTER, "namespace"),
                variable("monitor", "DriftMonitor", score, f'{CLUSTER}, namespace=~"$namespace"', "monitor"),
                variable("feature", "Feature", score, SIDECAR, "feature"),
                variable("key", "Key", score, f'{SIDECAR}, feature=~"$feature"', "key"),
            ]
        },
        "panels": panels(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT}")
