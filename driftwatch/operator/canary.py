"""Canary against stable pods, at the same time: the verdict of ``spec.gate.compare: stable-pods``. Pure.

A baseline comparison asks "is the stream still what it was when the baseline was learned?" -- and a
canary pod, new, learns its baseline from its own (possibly shifted) traffic, while the stable pods'
baselines were learned at another hour, under another load. This one asks "do the canary pods see what
the stable pods see *now*?": the canary group's current windows, merged, against the stable group's,
merged (``driftwatch.detect.aggregate.merged`` / ``compare``: the same two-sample test and level as the
monitor's own view, set by ``spec.sensitivity.falseAlarmsPer``). Both groups share the hour of the day
and the load of the moment, so those cancel.

A pod's stream counts once it is past learning its baseline: until then its summary may be in other
terms than the stable pods' (a seasonal stream's summaries are seasonally adjusted by the profile its
pod learned, docs/contracts.md). A stream is compared once both groups hold ``spec.gate.minSamples``
of its samples; the verdict is ``Inconclusive`` until one is, and says how many each group has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftwatch.detect.aggregate import Comparison, compare, merged
from driftwatch.detect.base import severity_of
from driftwatch.operator.pod_groups import PodGroup, PodGroups
from driftwatch.operator.status_rules import MAX_FEATURES
from driftwatch.vocab.spec import MonitorSpec
from driftwatch.vocab.states import Severity, State, Verdict

#: severities in increasing order, for ``spec.gate.failOn``
RANK = {Severity.NONE: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class StreamComparison:
    """One (feature, key) stream: the samples each group has, and the test once both have enough."""

    feature: str
    key: str
    kind: str
    canary_samples: int
    stable_samples: int
    #: None until both groups hold ``minSamples``
    result: Comparison | None
    severity: str

    def fails(self, fail_on: str) -> bool:
        """Compared, different, and at least ``fail_on`` severe."""
        differs = self.result is not None and self.result.differs
        return differs and RANK[Severity(self.severity)] >= RANK[Severity(fail_on)]

    @property
    def label(self) -> str:
        return f"{self.feature}[{self.key}]" if self.key else self.feature

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.feature,
            "key": self.key,
            "canarySamples": self.canary_samples,
            "stableSamples": self.stable_samples,
        }
        r = self.result
        if r is not None:
            d.update(pValue=r.p_value, score=round(r.score, 6), severity=self.severity, differs=r.differs)
            d["test"] = r.detector
            shift = self.shift_sigma
            if shift is not None:
                d["shiftSigma"] = round(shift, 4)
            d["evidence"] = {"stable": r.evidence.get("baseline"), "canary": r.evidence.get("current")}
        return d

    @property
    def shift_sigma(self) -> float | None:
        """Numeric streams: the canary's mean minus the stable pods', in the stable pods' sds."""
        if self.result is None or self.kind == "categorical":
            return None
        s, c = self.result.evidence.get("baseline") or {}, self.result.evidence.get("current") or {}
        if not s.get("std") or s.get("mean") is None or c.get("mean") is None:
            return None
        return float((c["mean"] - s["mean"]) / s["std"])


@dataclass(frozen=True)
class CanaryComparison:
    """Everything the stable-pods verdict rests on, and the words for it."""

    canary: PodGroup
    stable: PodGroup
    #: pods of each group whose sidecar reported a summary this round
    canary_reporting: int
    stable_reporting: int
    #: (pod, stream) pairs left out because the pod's stream still learns its baseline
    learning: int
    streams: tuple[StreamComparison, ...]
    needed: int

    def limiting(self) -> StreamComparison | None:
        """The stream furthest from enough samples (whose counts an Inconclusive verdict quotes)."""
        return min(
            self.streams, key=lambda s: (min(s.canary_samples, s.stable_samples), s.label), default=None
        )

    def counts(self) -> str:
        s = self.limiting()
        nc, ns = (s.canary_samples, s.stable_samples) if s is not None else (0, 0)
        what = f" of {s.label}" if s is not None and len(self.streams) > 1 else ""
        return (
            f"canary {self.canary.template_hash} ({_pods(self.canary_reporting)}) has {nc:,} samples{what}, "
            f"stable {self.stable.template_hash} ({_pods(self.stable_reporting)}) {ns:,}; "
            f"needs {self.needed:,} each"
        )

    def verdict(self, fail_on: str) -> tuple[Verdict, str]:
        """(verdict, message): Fail when a compared stream differs at least at ``fail_on`` severity;
        Pass when some stream is compared and none does; Inconclusive before any is."""
        compared = [s for s in self.streams if s.result is not None]
        failing = [s for s in compared if s.fails(fail_on)]
        if failing:
            worst = max(failing, key=lambda s: s.result.score if s.result else 0.0)
            return Verdict.FAIL, f"canary differs from stable: {_describe(worst)}" + _also(failing, worst)
        if not compared:
            learning = f"; {self.learning} pod streams still learn their baseline" if self.learning else ""
            return Verdict.INCONCLUSIVE, f"too few samples: {self.counts()}{learning}"
        pending = [s.label for s in self.streams if s.result is None]
        left = f"; not yet compared (too few samples): {', '.join(pending[:5])}" if pending else ""
        worst = max(compared, key=lambda s: s.result.score if s.result else 0.0)
        return Verdict.PASS, f"canary matches stable ({_describe(worst)}){left}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "canary": _group_dict(self.canary, self.canary_reporting, self, canary=True),
            "stable": _group_dict(self.stable, self.stable_reporting, self, canary=False),
            "needed": self.needed,
            # worst first, as many as status.features holds
            "features": [s.to_dict() for s in sorted(self.streams, key=_worst_first)[:MAX_FEATURES]],
        }


def _worst_first(s: StreamComparison) -> tuple[float, str]:
    return (-(s.result.score if s.result is not None else -1.0), s.label)


def _pods(n: int) -> str:
    return f"{n} pod{'s' if n != 1 else ''}"


def _group_dict(g: PodGroup, reporting: int, cmp: CanaryComparison, *, canary: bool) -> dict[str, Any]:
    s = cmp.limiting()
    samples = 0 if s is None else s.canary_samples if canary else s.stable_samples
    return {"hash": g.template_hash, "pods": len(g.pods), "reporting": reporting, "samples": samples}


def _describe(s: StreamComparison) -> str:
    r = s.result
    assert r is not None
    shift = s.shift_sigma
    ev = r.evidence
    if shift is not None:
        c, b = ev.get("current") or {}, ev.get("baseline") or {}
        what = f"mean {c.get('mean', 0.0):.4g} vs {b.get('mean', 0.0):.4g} ({shift:+.2f} sd)"
    else:
        changed = [*ev.get("emerged", []), *ev.get("changed", [])]
        what = "category shares" + (f" ({', '.join(map(str, changed[:3]))})" if changed else "")
    p = f"p={r.p_value:.2g}" if r.p_value > 0 else "p<1e-300"  # below float range: a certainty
    return (
        f"{s.label} {what}, {p}, {s.severity}; "
        f"{s.canary_samples:,} canary vs {s.stable_samples:,} stable samples"
    )


def _also(failing: Sequence[StreamComparison], worst: StreamComparison) -> str:
    others = [s.label for s in failing if s is not worst]
    return f"; also {', '.join(others[:5])}" if others else ""


def _streams_of(
    summaries: Iterable[Mapping[str, Any]], pods: set[str]
) -> tuple[dict[tuple[str, str], list[Mapping[str, Any]]], int, int]:
    """(feature, key) -> the streams of ``pods`` past learning; pods that reported; streams learning."""
    out: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    reporting: set[str] = set()
    learning = 0
    for summ in summaries:
        pod = str(summ.get("pod", ""))
        if pod not in pods:
            continue
        reporting.add(pod)
        for s in summ.get("streams") or []:
            if s.get("state") == State.INITIALIZING:
                learning += 1
                continue
            out.setdefault((str(s.get("feature")), str(s.get("key") or "")), []).append(s)
    return out, len(reporting), learning


def compare_groups(
    summaries: Sequence[Mapping[str, Any]], canary: PodGroup, stable: PodGroup, spec: MonitorSpec
) -> CanaryComparison:
    """Merge each group's current windows per stream and test the canary's against the stable's."""
    c_streams, c_reporting, c_learning = _streams_of(summaries, set(canary.pods))
    s_streams, s_reporting, s_learning = _streams_of(summaries, set(stable.pods))
    needed = spec.gate.min_samples
    sens = spec.sensitivity
    out = []
    for fk in sorted(set(c_streams) | set(s_streams)):
        kind = str((c_streams.get(fk) or s_streams[fk])[0].get("type", "numeric"))
        cur = merged(s.get("current") for s in c_streams.get(fk, []))
        ref = merged(s.get("current") for s in s_streams.get(fk, []))
        nc, ns = (cur.n if cur is not None else 0), (ref.n if ref is not None else 0)
        result = compare(ref, cur, kind, spec) if nc >= needed and ns >= needed else None
        severity = Severity.NONE
        if result is not None:
            severity = Severity(severity_of(result.score, sens.warning, sens.critical))
        out.append(StreamComparison(fk[0], fk[1], kind, nc, ns, result, severity))
    return CanaryComparison(
        canary, stable, c_reporting, s_reporting, c_learning + s_learning, tuple(out), needed
    )


def canary_verdict(
    summaries: Sequence[Mapping[str, Any]], groups: PodGroups, spec: MonitorSpec
) -> tuple[Verdict, str, dict[str, Any]]:
    """(verdict, message, status.gate's details) for ``compare: stable-pods``.

    The details name the canary group the verdict is about (``canaryHash``): a reader that names the
    canary it asks about (``?canary=``, ``driftwatch gate --canary``) gets Inconclusive for a verdict
    about other pods (``driftwatch.verdict.canary_scope``). No canary group, no ``canaryHash``."""
    if groups.canary is None or groups.stable is None:
        return Verdict.INCONCLUSIVE, groups.reason, {}
    cmp = compare_groups(summaries, groups.canary, groups.stable, spec)
    verdict, message = cmp.verdict(spec.gate.fail_on)
    return verdict, message, {"canaryHash": groups.canary.template_hash, **cmp.to_dict()}
