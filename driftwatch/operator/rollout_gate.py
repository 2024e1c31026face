"""The rollout verdict of a round, as ``spec.gate`` asks: what is compared, what fails, shadow mode. Pure.

* ``compare: baseline`` -- the monitor's phase: Stable passes, Initializing is Inconclusive, Drifting
  fails when a drifting feature's severity reaches ``failOn`` (below it: Pass);
* ``compare: stable-pods`` -- the canary pods against the stable pods (``canary``);
* Redis unreadable -- Inconclusive whatever the comparison: we cannot vouch for what we did not read;
* ``mode: shadow`` -- the verdict above is computed and reported (``status.gate``, the metric, an
  Event) but ``status.verdict`` is ``Pass``: how a team tries a gate before trusting it.

``status.verdict`` stays the one field every reader uses (``driftwatch.verdict.verdict_of_status``:
the HTTP gate, ``driftwatch gate``, the printer column); ``status.gate`` says how it was reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from driftwatch.operator import canary, pod_groups, status_rules
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.status_rules import Event, Outcome, PodInfo
from driftwatch.vocab.states import Phase, Severity, State, Verdict

#: a verdict as a number: ``driftwatch gate``'s exit codes, and the value of the verdict metrics
CODE = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.INCONCLUSIVE: 2}
#: ``status.gate`` keys only some rounds have (a stable-pods round with a canary group): a round
#: without them must remove them from the status (a merge patch keeps what it does not name), or the
#: status would claim a canary -- ``canaryHash`` above all -- that the verdict is not about
DETAIL_KEYS = ("canaryHash", "canary", "stable", "needed", "features")


@dataclass(frozen=True)
class Decision:
    """The gate's answer this round (``verdict``), the verdict computed (``computed``: they differ only
    under shadow mode) and ``status.gate``."""

    verdict: Verdict
    computed: Verdict
    fields: dict[str, Any] = field(default_factory=dict)


def baseline_verdict(phase: str, features: Sequence[Mapping[str, Any]], fail_on: str) -> tuple[Verdict, str]:
    """``compare: baseline``: the phase's verdict, a Drifting one failing only at ``fail_on`` or worse."""
    if phase == Phase.STABLE:
        return Verdict.PASS, "phase Stable: every feature matches its baseline"
    if phase != Phase.DRIFTING:
        return Verdict.INCONCLUSIVE, f"phase {phase}: baselines still being learned"
    drifting = [f for f in features if f.get("state") == State.DRIFTING]
    listed = ", ".join(f"{status_rules.feature_label(f)} ({_severity(f).value})" for f in drifting[:5])
    # a drifting feature is at least a warning, whatever its score says
    severe = [f for f in drifting if canary.RANK[_severity(f)] >= canary.RANK[Severity(fail_on)]]
    if severe:
        return Verdict.FAIL, f"drifting from the baseline: {listed}"
    return Verdict.PASS, f"drifting below failOn {fail_on}: {listed}"


def _severity(f: Mapping[str, Any]) -> Severity:
    given = str(f.get("severity") or "")
    sev = Severity(given) if given in set(Severity) else Severity.NONE
    return max(sev, Severity.WARNING, key=lambda s: canary.RANK[s])


def decide(
    monitor: Monitor,
    phase: str,
    features: Sequence[Mapping[str, Any]],
    redis_error: str | None,
    summaries: Sequence[Mapping[str, Any]],
    pods: Iterable[PodInfo],
) -> Decision:
    """The gate's decision for one round (see the module docstring)."""
    gate = monitor.spec.gate
    details: dict[str, Any] = {}
    if redis_error is not None:
        computed, message = Verdict.INCONCLUSIVE, "Redis unreachable: no verdict can be vouched for"
    elif gate.compare == "stable-pods":
        groups = pod_groups.group(pods, monitor.selector)
        computed, message, details = canary.canary_verdict(summaries, groups, monitor.spec)
    else:
        computed, message = baseline_verdict(phase, features, gate.fail_on)
    verdict = computed
    if gate.mode == "shadow":
        verdict = Verdict.PASS
        would = "failed" if computed == Verdict.FAIL else f"answered {computed}"
        message = f"shadow mode (the gate passes): would have {would}: {message}"
    fields = {
        "compare": gate.compare,
        "mode": gate.mode,
        "failOn": gate.fail_on,
        "verdict": computed,
        "message": message[:1000],
        **details,
    }
    return Decision(verdict, computed, fields)


def apply(outcome: Outcome, decision: Decision, previous: Mapping[str, Any]) -> Outcome:
    """``outcome`` with the gate's verdict and ``status.gate``, and the Events that now follow."""
    fields = {**outcome.fields, "verdict": decision.verdict, "gate": decision.fields}
    events = status_rules.transitions(previous, fields, outcome.conditions) + shadow_events(
        previous, decision
    )
    return replace(outcome, fields=fields, events=events)


def shadow_events(previous: Mapping[str, Any], decision: Decision) -> list[Event]:
    """Under shadow mode ``status.verdict`` does not move, so a change of the computed verdict gets an
    Event of its own: ``ShadowVerdict`` (a Warning when it would have failed)."""
    if decision.fields.get("mode") != "shadow":
        return []
    before = (previous.get("gate") or {}).get("verdict")
    if before == decision.computed or (before is None and decision.computed == Verdict.INCONCLUSIVE):
        return []
    kind = "Warning" if decision.computed == Verdict.FAIL else "Normal"
    return [Event(kind, "ShadowVerdict", str(decision.fields["message"]))]
