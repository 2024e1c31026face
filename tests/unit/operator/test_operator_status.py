"""Status rules, condition merging, the gate's answers and the merge of real engine summaries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from driftwatch.detect import Engine
from driftwatch.operator import pod_reports, status_rules
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.endpoints import gate_answer
from driftwatch.operator.options import OperatorOptions
from driftwatch.vocab.spec import MonitorSpec

OPTS = OperatorOptions()
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def monitor(**spec: Any) -> Monitor:
    body = {
        "metadata": {"name": "api", "namespace": "shop", "uid": "u", "generation": 3},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, **spec},
    }
    return Monitor.from_body(body, OPTS)


def feat(name: str, state: str, score: float = 0.0, severity: str = "none") -> dict[str, Any]:
    return {
        "name": name,
        "key": "",
        "state": state,
        "score": score,
        "severity": severity,
        "detector": "cusum",
        "pods": 1,
        "evidence": {},
    }


PODS = status_rules.PodView(selected=2, with_sidecar=2)


@pytest.mark.parametrize(
    ("features", "reporting", "phase", "verdict"),
    [
        ([], 0, "Initializing", "Inconclusive"),
        ([feat("a", "Initializing")], 1, "Initializing", "Inconclusive"),
        ([feat("a", "Stable", 0.05), feat("b", "Initializing")], 1, "Stable", "Pass"),
        ([feat("a", "Stable"), feat("b", "Drifting", 0.8, "critical")], 2, "Drifting", "Fail"),
        ([feat("a", "Stable")], 0, "Initializing", "Inconclusive"),
    ],
)
def test_phase_and_verdict(features: list[dict[str, Any]], reporting: int, phase: str, verdict: str) -> None:
    out = status_rules.compute(monitor(), features, reporting, PODS, None, {})
    assert (out.fields["phase"], out.fields["verdict"]) == (phase, verdict)
    assert out.fields["observedGeneration"] == 3


def test_drifting_fields_and_order() -> None:
    out = status_rules.compute(
        monitor(), [feat("a", "Stable", 0.1), feat("b", "Drifting", 0.8, "critical")], 2, PODS, None, {}
    )
    assert out.fields["driftingFeatures"] == "b"
    assert out.fields["score"] == 0.8
    assert [f["name"] for f in out.fields["features"]] == ["b", "a"]  # drifting first
    drifting = next(c for c in out.conditions if c["type"] == "Drifting")
    assert drifting["status"] == "True"
    assert "b (score 0.80, critical)" in drifting["message"]


def test_transitions_emit_events_once() -> None:
    m = monitor()
    born = status_rules.compute(m, [], 0, PODS, None, {})
    assert born.events == []  # a new monitor starting Initializing is no news
    first = {"phase": "Initializing", "verdict": "Inconclusive"}  # as reconcile writes it
    stable = status_rules.compute(m, [feat("a", "Stable")], 1, PODS, None, first)
    prev = {**stable.fields, "conditions": stable.conditions}
    assert {e.reason for e in stable.events} == {"PhaseStable", "VerdictChanged"}
    drift = status_rules.compute(m, [feat("a", "Drifting", 0.7, "critical")], 1, PODS, None, prev)
    reasons = [e.reason for e in drift.events]
    assert reasons == ["PhaseDrifting", "DriftStarted", "VerdictChanged"]
    assert all(e.type == "Warning" for e in drift.events)
    prev2 = {**drift.fields, "conditions": drift.conditions}
    assert (
        status_rules.compute(m, [feat("a", "Drifting", 0.7, "critical")], 1, PODS, None, prev2).events == []
    )
    back = status_rules.compute(m, [feat("a", "Stable")], 1, PODS, None, prev2)
    assert "DriftEnded" in [e.reason for e in back.events]


def test_redis_down_keeps_phase_and_is_inconclusive() -> None:
    prev = {
        "phase": "Stable",
        "verdict": "Pass",
        "features": [feat("a", "Stable")],
        "conditions": [{"type": "RedisAvailable", "status": "True"}],
    }
    out = status_rules.compute(monitor(), None, 1, PODS, "ConnectionError: refused", prev)
    assert out.fields["phase"] == "Stable"
    assert out.fields["verdict"] == "Inconclusive"
    redis_cond = next(c for c in out.conditions if c["type"] == "RedisAvailable")
    assert redis_cond["status"] == "False"
    assert "RedisUnreachable" in [e.reason for e in out.events]


def test_sidecars_condition_names_pods_needing_restart() -> None:
    view = status_rules.PodView.of(
        [
            status_rules.PodInfo("a", {"app": "api"}, True),
            status_rules.PodInfo("b", {"app": "api"}, False),
            status_rules.PodInfo("c", {"app": "other"}, False),
            status_rules.PodInfo("d", {"app": "api"}, False, active=False),
        ],
        monitor().selector,
    )
    assert view == status_rules.PodView(2, 1, ("b",))
    c = status_rules.sidecars_condition(view, 1, monitor())
    assert c["status"] == "False"
    assert c["reason"] == "PodsWithoutSidecar"
    assert "(b)" in c["message"]
    assert "rollout restart" in c["message"]
    ok = status_rules.sidecars_condition(status_rules.PodView(2, 2), 2, monitor())
    assert (ok["status"], ok["reason"]) == ("True", "AllReporting")


def test_merge_conditions_keeps_others_and_transition_times() -> None:
    existing = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"},
        {"type": "Drifting", "status": "False", "lastTransitionTime": "2025-01-01T00:00:00Z"},
        {"type": "ExternalCheck", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"},
    ]
    ours = [
        status_rules.condition("Drifting", False, "NoDrift", "", 1),
        status_rules.condition("RedisAvailable", True, "R", "", 1),
    ]
    merged = {c["type"]: c for c in status_rules.merge_conditions(existing, ours, T0)}
    assert merged["Drifting"]["lastTransitionTime"] == "2025-01-01T00:00:00Z"  # status unchanged
    assert merged["RedisAvailable"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert merged["ExternalCheck"] == existing[2]  # another writer's condition survives
    assert merged["Ready"] == existing[0]
    flipped = status_rules.merge_conditions(
        existing, [status_rules.condition("Drifting", True, "F", "", 1)], T0
    )
    assert next(c for c in flipped if c["type"] == "Drifting")["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_changed_ignores_timestamps() -> None:
    out = status_rules.compute(monitor(), [feat("a", "Stable")], 1, PODS, None, {})
    prev = {
        **out.fields,
        "lastUpdate": "x",
        "conditions": status_rules.merge_conditions([], out.conditions, T0),
    }
    assert status_rules.changed(prev, out.fields, out.conditions) is None
    assert status_rules.changed({**prev, "verdict": "Fail"}, out.fields, out.conditions) == "status.verdict"


@pytest.mark.parametrize(
    ("st", "code", "verdict"),
    [
        ({"verdict": "Pass", "score": 0.1, "lastUpdate": "2026-01-01T00:00:00Z"}, 200, "Pass"),
        ({"verdict": "Fail", "score": 0.9, "lastUpdate": "2026-01-01T00:00:00Z"}, 409, "Fail"),
        ({"verdict": "Inconclusive", "lastUpdate": "2026-01-01T00:00:00Z"}, 503, "Inconclusive"),
        ({"verdict": "Pass", "lastUpdate": "2025-12-31T00:00:00Z"}, 503, "Inconclusive"),  # stale
        ({"verdict": "Pass"}, 503, "Inconclusive"),  # never updated
        (None, 404, "Inconclusive"),
    ],
)
def test_gate_answer(st: dict[str, Any] | None, code: int, verdict: str) -> None:
    got_code, body = gate_answer(st, T0 + dt.timedelta(seconds=5), max_age=120)
    assert (got_code, body["verdict"]) == (code, verdict)


def test_gate_answer_older_generation_is_inconclusive() -> None:
    st = {"verdict": "Pass", "observedGeneration": 2, "lastUpdate": "2026-01-01T00:00:00Z"}
    assert gate_answer(st, T0, 120, generation=2)[0] == 200
    code, body = gate_answer(st, T0, 120, generation=3)
    assert (code, body["verdict"]) == (503, "Inconclusive")
    assert "generation" in body["reason"]


def _summary(pod: str, shift: float, seed: int) -> dict[str, Any]:
    spec = MonitorSpec.parse(
        {
            "features": [{"name": "latency_ms", "type": "numeric"}],
            "baseline": {"minSamples": 200, "window": 500},
        }
    )
    engine = Engine(spec, name="api")
    rng = np.random.default_rng(seed)
    engine.update("latency_ms", rng.normal(100, 10, 800))
    engine.update("latency_ms", rng.normal(100 + shift, 10, 800))
    return {**engine.summary(), "pod": pod, "time": 0}


def test_merge_real_engine_summaries() -> None:
    spec = MonitorSpec.parse({"features": [{"name": "latency_ms", "type": "numeric"}]})
    calm = pod_reports.merge([_summary("a", 0, 1), _summary("b", 0, 2)], spec)
    assert [(f["name"], f["state"]) for f in calm] == [("latency_ms", "Stable")]
    assert calm[0]["pods"] == 2
    drift = pod_reports.merge([_summary("a", 60, 1), _summary("b", 60, 2)], spec)
    assert drift[0]["state"] == "Drifting"
    out = status_rules.compute(monitor(), drift, 2, PODS, None, {})
    assert out.fields["phase"] == "Drifting"


def test_json_safe() -> None:
    assert pod_reports._json_safe(
        {"a": float("nan"), "b": np.float64(1.5), "c": np.int64(3), "d": [np.inf]}
    ) == {"a": None, "b": 1.5, "c": 3, "d": [None]}
