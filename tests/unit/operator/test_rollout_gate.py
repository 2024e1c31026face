"""The rollout verdict: canary pods against stable pods (real engines' summaries), pod groups by template
hash, compare: baseline with failOn, shadow mode, and how the three readers see it.

The canary-vs-stable scenario: every pod's stream follows one daily cycle (level +-2 sd over the day,
timestamps on the samples, one sample a second per pod: too fast for a learned seasonal profile, so the
summaries are raw). Three stable pods have run since midnight; a canary pod starts at 06:00 and runs
for 30 minutes, at the same time as they do. A canary shifted by +0.5 sd learns its own baseline from
its shifted traffic and never alarms, and merged with the stable pods it is diluted below the practical
floor: the monitor's baseline comparison passes. Canary against stable, at the same hour, fails it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from driftwatch.detect import Engine
from driftwatch.detect.aggregate import Comparison, aggregate
from driftwatch.operator import canary, pod_groups, rollout_gate, status_rules, telemetry
from driftwatch.operator.driftmonitor import Monitor, Selector
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.status_rules import PodInfo, PodView
from driftwatch.verdict import verdict_of_status
from driftwatch.vocab.spec import ConfigError, MonitorSpec
from driftwatch.vocab.states import Verdict, phase_of, verdict_of

DAY = 86400.0
RATE = 1.0  # samples per second per pod
SD = 10.0
CANARY_START = 6 * 3600.0  # 06:00: the cycle is at its steepest rise, +2 sd above midnight by then
CANARY_END = CANARY_START + 1800.0
STABLE_PODS = ("web-old-a", "web-old-b", "web-old-c")
SPEC_DOC: dict[str, Any] = {
    "selector": {"matchLabels": {"app": "web"}},
    "features": [{"name": "latency_ms", "type": "numeric"}],
    "baseline": {"minSamples": 100, "window": 1000},
    "gate": {"compare": "stable-pods", "minSamples": 200},
}
SPEC = MonitorSpec.parse(SPEC_DOC)


def level(t: np.ndarray) -> np.ndarray:
    return 100.0 + 2 * SD * np.sin(2 * np.pi * t / DAY)


def feed(engine: Engine, start: float, end: float, shift_sd: float, seed: int) -> Engine:
    rng = np.random.default_rng(seed)
    ts = np.arange(start, end, 1 / RATE)
    for i in range(0, ts.size, 600):  # ten minutes a batch, as a sidecar's batches would arrive
        t = ts[i : i + 600]
        engine.update("latency_ms", level(t) + shift_sd * SD + rng.normal(0, SD, t.size), ts=t)
    return engine


@pytest.fixture(scope="module")
def stable_summaries() -> list[dict[str, Any]]:
    return [
        {**feed(Engine(SPEC, name), 0.0, CANARY_END, 0.0, seed).summary(), "pod": name}
        for seed, name in enumerate(STABLE_PODS)
    ]


def canary_summary(shift_sd: float, seconds: float = CANARY_END - CANARY_START) -> dict[str, Any]:
    engine = feed(Engine(SPEC, "web-new-a"), CANARY_START, CANARY_START + seconds, shift_sd, 99)
    return {**engine.summary(), "pod": "web-new-a"}


def pod(name: str, template: str, created: str, label: str = "rollouts-pod-template-hash") -> PodInfo:
    return PodInfo(name, {"app": "web", label: template}, True, True, created)


PODS = [pod(n, "old", "2026-01-01T00:00:00Z") for n in STABLE_PODS] + [
    pod("web-new-a", "new", "2026-01-01T06:00:00Z")
]
SELECTOR = Selector.parse(SPEC_DOC["selector"])
GROUPS = pod_groups.group(PODS, SELECTOR)


def baseline_verdict(summaries: list[dict[str, Any]]) -> Verdict:
    """What compare: baseline answers for these summaries (the monitor's merged view and phase)."""
    return verdict_of(phase_of(f.state for f in aggregate(summaries, SPEC)))


def test_groups_by_template_hash_stable_is_the_oldest() -> None:
    assert GROUPS.stable is not None
    assert GROUPS.canary is not None
    assert (GROUPS.stable.template_hash, GROUPS.stable.pods) == ("old", STABLE_PODS)
    assert (GROUPS.canary.template_hash, GROUPS.canary.pods) == ("new", ("web-new-a",))


def test_shifted_canary_fails_where_the_baseline_comparison_passes(
    stable_summaries: list[dict[str, Any]],
) -> None:
    summaries = [*stable_summaries, canary_summary(0.5)]
    assert baseline_verdict(summaries) == Verdict.PASS  # the cycle and the canary's own baseline hide it
    verdict, message, details = canary.canary_verdict(summaries, GROUPS, SPEC)
    assert verdict == Verdict.FAIL, message
    assert message.startswith("canary differs from stable: latency_ms mean"), message
    feature = details["features"][0]
    assert feature["differs"] is True
    assert feature["severity"] == "critical"
    assert 0.35 < feature["shiftSigma"] < 0.65
    assert details["canary"] == {"hash": "new", "pods": 1, "reporting": 1, "samples": 1800}
    assert details["stable"]["hash"] == "old"
    assert details["stable"]["pods"] == 3


def test_same_distribution_passes_although_the_cycle_moved(stable_summaries: list[dict[str, Any]]) -> None:
    summaries = [*stable_summaries, canary_summary(0.0)]
    verdict, message, details = canary.canary_verdict(summaries, GROUPS, SPEC)
    assert verdict == Verdict.PASS, message
    assert message.startswith("canary matches stable"), message
    # the cycle did move: at 06:00 the level is +2 sd above midnight's, where the stable pods began
    assert details["features"][0]["evidence"]["canary"]["mean"] > 100.0 + 1.5 * SD


def test_too_few_canary_samples_is_inconclusive_with_the_counts(
    stable_summaries: list[dict[str, Any]],
) -> None:
    summaries = [*stable_summaries, canary_summary(0.5, seconds=150)]
    verdict, message, details = canary.canary_verdict(summaries, GROUPS, SPEC)
    assert verdict == Verdict.INCONCLUSIVE
    stable_n = details["stable"]["samples"]
    assert message == (
        f"too few samples: canary new (1 pod) has 150 samples, stable old (3 pods) {stable_n:,}; "
        "needs 200 each"
    )
    assert details["canary"]["samples"] == 150
    assert stable_n >= 3000


def test_a_canary_still_learning_its_baseline_does_not_count(stable_summaries: list[dict[str, Any]]) -> None:
    summaries = [*stable_summaries, canary_summary(0.5, seconds=60)]  # < minSamples (100): Initializing
    verdict, message, _ = canary.canary_verdict(summaries, GROUPS, SPEC)
    assert verdict == Verdict.INCONCLUSIVE
    assert "has 0 samples" in message
    assert "1 pod streams still learn their baseline" in message


def test_fail_on_sets_the_least_severity_that_fails() -> None:
    differs = Comparison(1e-5, "aggregate-mean", 0.7, True, {})
    negligible = Comparison(1e-5, "aggregate-mean", 0.45, False, {})
    warning = canary.StreamComparison("latency_ms", "", "numeric", 500, 500, differs, "warning")
    critical = canary.StreamComparison("latency_ms", "", "numeric", 500, 500, differs, "critical")
    small = canary.StreamComparison("latency_ms", "", "numeric", 500, 500, negligible, "warning")
    assert warning.fails("warning")
    assert not warning.fails("critical")
    assert critical.fails("warning")
    assert critical.fails("critical")
    assert not small.fails("warning")  # significant but below the practical floor never fails


def test_pod_groups_prefer_argo_label_and_leave_a_third_revision_out() -> None:
    pods = [
        pod("a-1", "v1", "2026-01-01T00:00:00Z"),
        pod("a-2", "v1", "2026-01-01T00:00:01Z"),
        pod("b-1", "v2", "2026-01-02T00:00:00Z"),
        pod("c-1", "v3", "2026-01-03T00:00:00Z"),
        # Argo's pods carry both labels: its own hash is the one that names the revision
        PodInfo(
            "d-1",
            {"app": "web", "pod-template-hash": "x", "rollouts-pod-template-hash": "v3"},
            True,
            created="2026-01-03T00:00:05Z",
        ),
        PodInfo("gone", {"app": "web", "pod-template-hash": "v9"}, True, active=False),
        PodInfo("other", {"app": "db", "pod-template-hash": "v9"}, True),
    ]
    groups = pod_groups.group(pods, SELECTOR)
    assert groups.stable is not None
    assert groups.canary is not None
    assert (groups.stable.template_hash, groups.stable.pods) == ("v1", ("a-1", "a-2"))
    assert (groups.canary.template_hash, groups.canary.pods) == ("v3", ("c-1", "d-1"))
    assert [g.template_hash for g in groups.others] == ["v2"]


def test_one_template_has_nothing_to_compare() -> None:
    one = pod_groups.group([pod("a-1", "v1", "t"), PodInfo("bare", {"app": "web"}, True)], SELECTOR)
    assert one.canary is None
    assert one.stable is None
    assert one.reason == (
        "one pod template (v1, 1 pods): no canary to compare with stable pods; 1 selected pods have "
        "no rollouts-pod-template-hash or pod-template-hash label"
    )
    verdict, message, details = canary.canary_verdict([], one, SPEC)
    assert (verdict, message, details) == (Verdict.INCONCLUSIVE, one.reason, {})


def monitor(**gate: Any) -> Monitor:
    body = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "generation": 3},
        "spec": {**SPEC_DOC, "gate": gate},
    }
    return Monitor.from_body(body, OperatorOptions())


DRIFTING = [{"name": "latency_ms", "key": "", "state": "Drifting", "score": 0.3, "severity": "warning"}]


@pytest.mark.parametrize(
    ("phase", "features", "fail_on", "verdict"),
    [
        ("Stable", [], "warning", Verdict.PASS),
        ("Initializing", [], "warning", Verdict.INCONCLUSIVE),
        ("Drifting", DRIFTING, "warning", Verdict.FAIL),
        ("Drifting", DRIFTING, "critical", Verdict.PASS),
        ("Drifting", [{**DRIFTING[0], "severity": "critical"}], "critical", Verdict.FAIL),
        # a drifting feature counts as a warning at least, whatever its score
        ("Drifting", [{**DRIFTING[0], "severity": "none"}], "warning", Verdict.FAIL),
    ],
)
def test_baseline_verdict_honours_fail_on(
    phase: str, features: list[dict[str, Any]], fail_on: str, verdict: Verdict
) -> None:
    assert rollout_gate.baseline_verdict(phase, features, fail_on)[0] == verdict


def test_baseline_compare_is_the_phase_verdict_and_redis_errors_are_inconclusive() -> None:
    d = rollout_gate.decide(monitor(), "Drifting", DRIFTING, None, [], [])
    assert (d.verdict, d.computed) == (Verdict.FAIL, Verdict.FAIL)
    assert d.fields["compare"] == "baseline"
    assert d.fields["message"].startswith("drifting from the baseline")
    d = rollout_gate.decide(monitor(), "Drifting", DRIFTING, "ConnectionError: down", [], [])
    assert d.verdict == Verdict.INCONCLUSIVE
    assert "Redis unreachable" in d.fields["message"]


def test_shadow_mode_passes_and_says_it_would_have_failed(stable_summaries: list[dict[str, Any]]) -> None:
    m = monitor(compare="stable-pods", mode="shadow", minSamples=200)
    summaries = [*stable_summaries, canary_summary(0.5)]
    d = rollout_gate.decide(m, "Stable", [], None, summaries, PODS)
    assert (d.verdict, d.computed) == (Verdict.PASS, Verdict.FAIL)
    assert d.fields["verdict"] == Verdict.FAIL
    assert d.fields["mode"] == "shadow"
    assert d.fields["message"].startswith("shadow mode (the gate passes): would have failed: canary differs")

    outcome = status_rules.compute(m, [], 4, PodView(4, 4), None, {})
    previous = {"verdict": "Pass", "gate": {"mode": "shadow", "verdict": "Pass"}}
    out = rollout_gate.apply(outcome, d, previous)
    assert out.fields["verdict"] == Verdict.PASS
    assert out.fields["gate"]["verdict"] == Verdict.FAIL
    shadow = [e for e in out.events if e.reason == "ShadowVerdict"]
    assert len(shadow) == 1
    assert shadow[0].type == "Warning"
    assert shadow[0].message.startswith("shadow mode (the gate passes): would have failed")
    assert not [e for e in out.events if e.reason == "VerdictChanged"]
    # the next round, unchanged: no new Event
    again = rollout_gate.apply(outcome, d, out.fields)
    assert not [e for e in again.events if e.reason == "ShadowVerdict"]


def test_an_enforced_verdict_change_says_why(stable_summaries: list[dict[str, Any]]) -> None:
    m = monitor(compare="stable-pods", minSamples=200)
    d = rollout_gate.decide(m, "Stable", [], None, [*stable_summaries, canary_summary(0.5)], PODS)
    out = rollout_gate.apply(status_rules.compute(m, [], 4, PodView(4, 4), None, {}), d, {"verdict": "Pass"})
    changed = [e for e in out.events if e.reason == "VerdictChanged"]
    assert changed[0].type == "Warning"
    assert changed[0].message.startswith("verdict Pass -> Fail: canary differs from stable: latency_ms")


NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_every_reader_passes_under_shadow_even_a_stale_status() -> None:
    status = {
        "verdict": "Pass",
        "observedGeneration": 3,
        "lastUpdate": "2026-01-01T11:00:00Z",
        "gate": {"mode": "shadow", "verdict": "Fail", "message": "shadow mode ..."},
    }
    verdict, reason = verdict_of_status(status, 3, NOW, 60)
    assert verdict == Verdict.PASS
    assert reason.startswith("shadow mode (the gate passes): status is 3600s old")
    # a status for an older spec does not speak for the current one, shadow or not
    assert verdict_of_status(status, 4, NOW, 60)[0] == Verdict.INCONCLUSIVE
    enforce = {**status, "gate": {"mode": "enforce"}}
    assert verdict_of_status(enforce, 3, NOW, 60)[0] == Verdict.INCONCLUSIVE


def test_verdict_metrics_follow_the_monitor() -> None:
    def value(name: str, **labels: str) -> float | None:
        return telemetry.REGISTRY.get_sample_value(name, labels)

    telemetry.set_gate("shop", "web", "stable-pods", "shadow", 0, 1)
    assert value("driftwatch_gate_verdict", namespace="shop", monitor="web") == 0
    labels = {"namespace": "shop", "monitor": "web", "compare": "stable-pods", "mode": "shadow"}
    assert value("driftwatch_gate_computed_verdict", **labels) == 1
    telemetry.set_gate("shop", "web", "stable-pods", "enforce", 1, 1)  # mode changed: one series left
    assert value("driftwatch_gate_computed_verdict", **labels) is None
    assert value("driftwatch_gate_computed_verdict", **{**labels, "mode": "enforce"}) == 1
    telemetry.forget_gate("shop", "web")
    assert value("driftwatch_gate_verdict", namespace="shop", monitor="web") is None


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ([], "body: must be a JSON object, got list"),
        ({"name": "web"}, "namespace: required"),
        ({"namespace": "shop"}, "name: required"),
        ({"namespace": "shop", "name": "web", "metadata": "x"}, "metadata: must be an object"),
    ],
)
def test_flagger_payload_errors_name_the_field(doc: Any, error: str) -> None:
    from driftwatch.operator.endpoints import webhook_target

    with pytest.raises(ValueError, match=error):
        webhook_target(doc)


def test_flagger_payload_names_the_monitor() -> None:
    from driftwatch.operator.endpoints import webhook_target

    body = {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "x", "metadata": {}}
    assert webhook_target(body) == ("test", "podinfo")
    assert webhook_target({**body, "metadata": {"monitor": "web"}}) == ("test", "web")


@pytest.mark.parametrize(
    ("gate", "field"),
    [
        ({"mode": "dry"}, "spec.gate.mode"),
        ({"failOn": "none"}, "spec.gate.failOn"),
        ({"minSamples": 5}, "spec.gate.minSamples"),
        ({"canary": "x"}, "spec.gate.canary"),
    ],
)
def test_gate_spec_errors_name_the_field(gate: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        MonitorSpec.parse({"gate": gate})
    assert e.value.field == field


def test_gate_cli_exit_codes_in_help_and_durations(capsys: pytest.CaptureFixture[str]) -> None:
    from driftwatch import gate

    assert gate.seconds("10m") == 600
    assert gate.seconds("45") == 45
    assert gate.seconds("1.5") == 1.5
    with pytest.raises(SystemExit):
        gate.main(["--help"])
    out = capsys.readouterr().out
    for line in ("0  Pass", "1  Fail", "2  Inconclusive", "--wait ran out", "3  the DriftMonitor could not"):
        assert line in out
    with pytest.raises(SystemExit):
        gate.main(["shop/web", "--wait", "ten minutes"])
    assert "--wait: must be a positive duration" in capsys.readouterr().err
