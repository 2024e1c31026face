"""Prometheus metrics, built at scrape time from the sidecar's own state.

The request path only bumps plain ints and dicts (a labelled prometheus-client ``Counter.inc`` costs
microseconds — more than the rest of a single-sample request); a custom Collector turns that state
into metric families when Prometheus scrapes. Label values stay bounded: features and keys are capped
at admission, reasons and states are fixed sets.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from driftwatch.sidecar.runtime import Sidecar

STATES = ("Initializing", "Stable", "Drifting")
SEVERITY_LEVEL = {"none": 0, "warning": 1, "critical": 2}
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class FastHistogram:
    """A histogram whose observe() is a bisect and two adds: no lock, no label lookup (one event loop)."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, v)] += 1
        self.sum += v

    def buckets(self) -> list[tuple[str, float]]:
        out, acc = [], 0
        for b, c in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            acc += c
            out.append((b, float(acc)))
        return out


def mean_std(summary: Any) -> tuple[float | None, float | None]:
    """Mean and standard deviation from a numeric summary dict, whatever its exact layout: direct
    ``mean``/``std`` fields, or ``count``/``mean``/``m2`` moments (possibly nested under ``moments``)."""
    if not isinstance(summary, dict):
        return None, None
    moments = summary.get("moments")
    src: dict[str, Any] = moments if isinstance(moments, dict) else summary
    mean = src.get("mean")
    std = src.get("std")
    if std is None and src.get("var") is not None:
        std = float(src["var"]) ** 0.5
    if std is None and src.get("m2") is not None:
        n = src.get("count", src.get("n", 0)) or 0
        std = (float(src["m2"]) / (n - 1)) ** 0.5 if n > 1 else None
    try:
        return (float(mean) if mean is not None else None, float(std) if std is not None else None)
    except (TypeError, ValueError):
        return None, None


class SidecarCollector(Collector):
    def __init__(self, sidecar: Sidecar) -> None:
        self.sc = sidecar

    def collect(self) -> Iterator[Any]:
        sc = self.sc
        base = [sc.settings.monitor, sc.settings.namespace]
        ml = ["monitor", "namespace"]
        fl = [*ml, "feature", "key"]

        ing = CounterMetricFamily(
            "driftwatch_samples_ingested", "Samples applied to the detection engine.", labels=fl
        )
        for (f, k), n in sorted(sc.pipeline.ingested.items()):
            ing.add_metric([*base, f, k], n)
        yield ing

        rej = CounterMetricFamily(
            "driftwatch_samples_rejected", "Samples (or bodies) rejected, by reason.", labels=[*ml, "reason"]
        )
        for reason, n in sorted(sc.pipeline.rejected.items()):
            rej.add_metric([*base, reason], n)
        yield rej

        score = GaugeMetricFamily("driftwatch_drift_score", "Drift score of a stream in [0, 1].", labels=fl)
        state = GaugeMetricFamily(
            "driftwatch_drift_state", "1 for the stream's current state.", labels=[*fl, "state"]
        )
        sev = GaugeMetricFamily(
            "driftwatch_drift_severity", "Severity of a stream: 0 none, 1 warning, 2 critical.", labels=fl
        )
        bmean = GaugeMetricFamily("driftwatch_baseline_mean", "Baseline mean of a numeric stream.", labels=fl)
        bstd = GaugeMetricFamily(
            "driftwatch_baseline_std", "Baseline standard deviation of a numeric stream.", labels=fl
        )
        for s in sc.stream_dicts():
            lv = [*base, str(s.get("feature", "")), str(s.get("key", ""))]
            score.add_metric(lv, float(s.get("score") or 0.0))
            for st in STATES:
                state.add_metric([*lv, st], 1.0 if s.get("state") == st else 0.0)
            sev.add_metric(lv, SEVERITY_LEVEL.get(str(s.get("severity")), 0))
            if s.get("type", "numeric") == "numeric":
                m, sd = mean_std(s.get("baseline"))
                if m is not None:
                    bmean.add_metric(lv, m)
                if sd is not None:
                    bstd.add_metric(lv, sd)
        yield from (score, state, sev, bmean, bstd)

        ev = CounterMetricFamily(
            "driftwatch_drift_events", "Drift events (DRIFT_START, DRIFT_END).", labels=[*fl, "type"]
        )
        for (f, k, t), n in sorted(sc.event_counts.items()):
            ev.add_metric([*base, f, k, t], n)
        yield ev

        lat = HistogramMetricFamily(
            "driftwatch_ingest_latency_seconds", "Time to validate and enqueue one ingest request.", labels=ml
        )
        lat.add_metric(base, sc.latency.buckets(), sc.latency.sum)
        yield lat

        yield _g("driftwatch_queue_depth", "Samples waiting for the engine.", ml, base, sc.pipeline.depth)
        yield _g(
            "driftwatch_queue_capacity",
            "Queue bound in samples (429 beyond it).",
            ml,
            base,
            sc.pipeline.capacity,
        )
        yield _g(
            "driftwatch_redis_up",
            "1 when Redis answers, 0 while degraded to memory only.",
            ml,
            base,
            1.0 if sc.redis_up else 0.0,
        )
        yield _g(
            "driftwatch_keys",
            "Distinct keys admitted (capped by spec.keys.maxKeys).",
            ml,
            base,
            len(sc.pipeline.keys),
        )
        cp = CounterMetricFamily(
            "driftwatch_checkpoints",
            "Engine checkpoints written to Redis, by result.",
            labels=[*ml, "result"],
        )
        for result in ("ok", "error"):
            cp.add_metric([*base, result], sc.checkpoints[result])
        yield cp
        if sc.scraper is not None:
            doc = "Scrapes of the app's metrics endpoint, by result."
            sf = CounterMetricFamily("driftwatch_scrapes", doc, labels=[*ml, "result"])
            sf.add_metric([*base, "ok"], sc.scraper.scrapes)
            sf.add_metric([*base, "error"], sc.scraper.errors)
            yield sf


def _g(name: str, doc: str, labels: list[str], values: list[str], v: float) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=labels)
    g.add_metric(values, v)
    return g


def build_registry(sidecar: Sidecar) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SidecarCollector(sidecar))
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    return reg
