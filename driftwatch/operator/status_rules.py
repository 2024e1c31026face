"""A monitor's status from merged features, pod counts and Redis health. Pure, so every rule is tested.

Phase and verdict:

* no reporting pod, or every feature still learning its baseline -> ``Initializing`` / ``Inconclusive``
* any feature Drifting -> ``Drifting`` / ``Fail``
* otherwise -> ``Stable`` / ``Pass``
* Redis unreachable: the phase is kept (we cannot know), the verdict is ``Inconclusive`` (we cannot vouch)

Conditions are owned per type: the aggregation timer writes ``SidecarsReporting``, ``RedisAvailable`` and
``Drifting``; the reconcile handler writes ``Ready``; any other type (another controller's) is left as is.
``lastTransitionTime`` moves only when a condition's status changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftwatch.operator.driftmonitor import Monitor, Selector
from driftwatch.redisconn import redact, redact_text
from driftwatch.vocab.names import SIDECAR_CONTAINER
from driftwatch.vocab.states import Condition, Phase, State, Verdict, phase_of, verdict_of

MAX_FEATURES = 100
MAX_LISTED_PODS = 10


@dataclass(frozen=True)
class PodInfo:
    """What the pod index keeps per pod: enough to count and name, nothing more."""

    name: str
    labels: Mapping[str, str]
    has_sidecar: bool
    active: bool = True
    #: creationTimestamp (RFC 3339, sorts as text): which pod template is newer (``pod_groups``)
    created: str = ""

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> PodInfo:
        """A pod's entry: labels, whether it has the sidecar, and whether it counts (not finished or
        being deleted)."""
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
        phase = (pod.get("status") or {}).get("phase")
        return cls(
            str(meta.get("name")),
            dict(meta.get("labels") or {}),
            any(c.get("name") == SIDECAR_CONTAINER for c in containers),
            not meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"),
            str(meta.get("creationTimestamp") or ""),
        )


@dataclass(frozen=True)
class PodView:
    selected: int = 0
    with_sidecar: int = 0
    without_sidecar: tuple[str, ...] = ()

    @classmethod
    def of(cls, pods: Iterable[PodInfo], selector: Selector) -> PodView:
        chosen = [p for p in pods if p.active and selector.matches(p.labels)]
        without = sorted(p.name for p in chosen if not p.has_sidecar)
        return cls(len(chosen), len(chosen) - len(without), tuple(without))


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Outcome:
    fields: dict[str, Any]
    conditions: list[dict[str, Any]]
    events: list[Event] = field(default_factory=list)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(ctype: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def feature_label(f: Mapping[str, Any]) -> str:
    return f"{f.get('name')}[{f['key']}]" if f.get("key") else str(f.get("name"))


def _rank(f: Mapping[str, Any]) -> tuple[int, float, str, str]:
    return (
        0 if f.get("state") == State.DRIFTING else 1,
        -float(f.get("score") or 0.0),
        str(f.get("name")),
        str(f.get("key")),
    )


def sidecars_condition(pods: PodView, reporting: int, monitor: Monitor) -> dict[str, Any]:
    msg = f"{reporting} of {pods.selected} selected pods report"
    if pods.without_sidecar:
        n = len(pods.without_sidecar)
        listed = ", ".join(pods.without_sidecar[:MAX_LISTED_PODS])
        msg += (
            f"; {n} selected pod{'s' if n != 1 else ''} lack the sidecar ({listed}): pods created before the "
            f"DriftMonitor or while the injector was unavailable need a rollout restart, e.g. "
            f"`kubectl -n {monitor.namespace} rollout restart deployment/<name>`"
        )
        if not monitor.injection_enabled:
            msg += " (injection.enabled is false on this monitor)"
        return condition(Condition.SIDECARS_REPORTING, False, "PodsWithoutSidecar", msg, monitor.generation)
    if reporting == 0:
        return condition(Condition.SIDECARS_REPORTING, False, "NoneReporting", msg, monitor.generation)
    if reporting < pods.with_sidecar:
        return condition(Condition.SIDECARS_REPORTING, False, "SomeNotReporting", msg, monitor.generation)
    return condition(Condition.SIDECARS_REPORTING, True, "AllReporting", msg, monitor.generation)


def compute(
    monitor: Monitor,
    features: Sequence[Mapping[str, Any]] | None,
    reporting: int,
    pods: PodView,
    redis_error: str | None,
    previous: Mapping[str, Any],
) -> Outcome:
    """The status fields this round, its conditions, and the Events its transitions deserve.

    ``features`` is None when Redis could not be read (then the previous features are kept).
    """
    prev_phase = previous.get("phase")
    prev_features = list(previous.get("features") or [])
    phase: str
    if redis_error is not None or features is None:
        feats = prev_features
        phase = prev_phase or Phase.INITIALIZING
        verdict = Verdict.INCONCLUSIVE  # we cannot vouch for what we could not read
    else:
        feats = sorted((dict(f) for f in features), key=_rank)[:MAX_FEATURES]
        phase = phase_of(f.get("state") for f in feats) if reporting else Phase.INITIALIZING
        verdict = verdict_of(phase)
    drifting = [f for f in feats if f.get("state") == State.DRIFTING]
    score = max((float(f.get("score") or 0.0) for f in feats), default=0.0)
    fields: dict[str, Any] = {
        "observedGeneration": monitor.generation,
        "phase": phase,
        "verdict": verdict,
        "score": round(score, 4),
        "driftingFeatures": ",".join(feature_label(f) for f in drifting)[:200],
        "pods": {
            "selected": pods.selected,
            "withSidecar": pods.with_sidecar,
            "reporting": reporting,
            "withoutSidecar": list(pods.without_sidecar[:MAX_LISTED_PODS]),
        },
        "features": feats,
    }
    conditions = [
        sidecars_condition(pods, reporting, monitor),
        condition(
            Condition.REDIS_AVAILABLE,
            redis_error is None,
            "Reachable" if redis_error is None else "Unreachable",
            redact(monitor.redis_url) + (f": {redact_text(redis_error)}" if redis_error else ""),
            monitor.generation,
        ),
        condition(
            Condition.DRIFTING,
            bool(drifting),
            "FeaturesDrifting" if drifting else "NoDrift",
            (
                "drifting: "
                + ", ".join(
                    f"{feature_label(f)} (score {float(f.get('score') or 0):.2f}, "
                    f"{f.get('severity', 'none')})"
                    for f in drifting[:10]
                )
                if drifting
                else f"{len(feats)} feature streams, none drifting"
            ),
            monitor.generation,
        ),
    ]
    events = transitions(previous, fields, conditions)
    return Outcome(fields, conditions, events)


def _evidence_text(f: Mapping[str, Any]) -> str:
    ev = f.get("evidence") or {}
    if not isinstance(ev, Mapping):
        return ""
    base, cur = ev.get("baseline"), ev.get("current")
    if isinstance(base, Mapping) and isinstance(cur, Mapping) and "mean" in base and "mean" in cur:
        try:
            return f"; mean {float(base['mean']):.4g} -> {float(cur['mean']):.4g}"
        except (TypeError, ValueError):
            return ""
    parts = [f"{k} {ev[k]}" for k in ("emerged", "vanished") if ev.get(k)]
    return "; " + ", ".join(parts) if parts else ""


def transitions(
    previous: Mapping[str, Any], fields: Mapping[str, Any], conditions: Sequence[Mapping[str, Any]]
) -> list[Event]:
    """Events for what changed since the previous status: phase, verdict, each feature, Redis."""
    out: list[Event] = []
    old_phase, new_phase = previous.get("phase"), fields["phase"]
    if old_phase != new_phase and not (
        old_phase is None and new_phase == Phase.INITIALIZING
    ):  # birth: no news
        out.append(
            Event(
                "Warning" if new_phase == Phase.DRIFTING else "Normal",
                f"Phase{new_phase}",
                f"phase {old_phase or '(none)'} -> {new_phase}"
                + (f": {fields['driftingFeatures']}" if new_phase == Phase.DRIFTING else ""),
            )
        )
    old = {(f.get("name"), f.get("key") or ""): f for f in previous.get("features") or []}
    for f in fields["features"]:
        was = old.get((f.get("name"), f.get("key") or ""), {}).get("state")
        now = f.get("state")
        if was == now:
            continue
        label = feature_label(f)
        if now == State.DRIFTING:
            out.append(
                Event(
                    "Warning",
                    "DriftStarted",
                    f"feature {label} drifting: score {float(f.get('score') or 0):.2f} "
                    f"({f.get('severity', 'none')}), "
                    f"detector {f.get('detector') or '?'}{_evidence_text(f)}",
                )
            )
        elif was == State.DRIFTING:
            before = old.get((f.get("name"), f.get("key") or ""), {}).get("baselineAdoptedAt")
            adopted = f.get("baselineAdoptedAt") not in (None, before)
            why = " (drifted regime adopted as the new baseline)" if adopted else " (recovered)"
            out.append(Event("Normal", "DriftEnded", f"feature {label} back to {now}{why}"))
    if previous.get("verdict") != fields["verdict"] and previous.get("verdict") is not None:
        out.append(
            Event(
                "Warning" if fields["verdict"] == Verdict.FAIL else "Normal",
                "VerdictChanged",
                f"verdict {previous.get('verdict') or '(none)'} -> {fields['verdict']}"
                + (f": {fields['gate']['message']}" if (fields.get("gate") or {}).get("message") else ""),
            )
        )
    prev_conds = {c.get("type"): c for c in previous.get("conditions") or []}
    for c in conditions:
        if c["type"] != Condition.REDIS_AVAILABLE:
            continue
        was_status = prev_conds.get(c["type"], {}).get("status")
        if was_status is not None and was_status != c["status"]:
            out.append(
                Event("Normal" if c["status"] == "True" else "Warning", f"Redis{c['reason']}", c["message"])
            )
    return out


def merge_conditions(
    existing: Sequence[Mapping[str, Any]] | None, ours: Sequence[Mapping[str, Any]], now: dt.datetime
) -> list[dict[str, Any]]:
    """Our conditions merged into the list by type; others' untouched; transition times kept stable."""
    by_type = {c.get("type"): dict(c) for c in existing or []}
    for c in ours:
        old = by_type.get(c["type"])
        new = dict(c)
        if old is not None and old.get("status") == c["status"] and old.get("lastTransitionTime"):
            new["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            new["lastTransitionTime"] = rfc3339(now)
        by_type[c["type"]] = new
    order = list(Condition)
    return sorted(
        by_type.values(), key=lambda c: (order.index(c["type"]) if c["type"] in order else 99, c["type"])
    )


def changed(
    previous: Mapping[str, Any], fields: Mapping[str, Any], conditions: Sequence[Mapping[str, Any]]
) -> str | None:
    """What differs besides timestamps (for the debug log), or None: then the write (and the watch
    event it would cause for every watcher) is skipped."""
    for k, v in fields.items():
        if previous.get(k) != v:
            return f"status.{k}"
    prev = {c.get("type"): c for c in previous.get("conditions") or []}
    for c in conditions:
        p = prev.get(c["type"]) or {}
        for k in ("status", "reason", "message", "observedGeneration"):
            if p.get(k) != c[k]:
                return f"condition {c['type']}.{k}"
    return None
