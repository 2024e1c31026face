"""Monitor-level view: merge per-pod ``Engine.summary()`` dicts into one ``FeatureStatus`` per
(feature, key), as ``docs/contracts.md`` section 2 describes.

Summaries merge without raw samples (moments and sketches exactly or within the sketch's error,
category counts exactly). A feature is Drifting at monitor level when

* the merged current window differs from the merged baseline at the spec's sensitivity (a two-sample
  test whose level is the budget's share for a window of that size) *and* by a practically relevant
  amount (large merged samples make any test significant for negligible differences), or
* a strict majority of the reporting pods say Drifting.

Why a majority and not "any pod": each pod's detector spends the false-alarm budget on its own stream,
so "any pod" would multiply the monitor's false alarms by the pod count (two pods, twice the alarms).
A real change in what a Deployment serves reaches most of its pods; one pod alone that deviates
strongly still moves the merged test above.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import severity_of
from .calibration import SAFETY
from .categorical import MIN_EXPECTED, categorical_evidence, two_sample_g
from .shape import two_sample_chi2
from .summaries import CategoryCounts, NumericSummary, summary_from_dict

#: practical-significance floors: |mean shift| in baseline sds, std ratio, share distance (TV)
MIN_SHIFT = 0.2
MIN_LOG_STD_RATIO = math.log(1.25)
MIN_DISTANCE = 0.1
BINS = 10


@dataclass
class FeatureStatus:
    """One entry of ``DriftMonitor.status.features[]``."""

    name: str
    key: str
    state: str
    score: float
    severity: str
    detector: str
    pods: int
    p_value: float | None = None
    since: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    pods_drifting: int = 0
    #: latest index at which a pod adopted a drifted regime as its baseline (the drift lifecycle)
    adopted_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "key": self.key,
            "state": self.state,
            "score": self.score,
            "severity": self.severity,
            "detector": self.detector,
            "pods": self.pods,
            "evidence": self.evidence,
        }
        if self.p_value is not None:
            d["pValue"] = self.p_value
        if self.since is not None:
            d["since"] = self.since
        if self.adopted_at is not None:
            d["baselineAdoptedAt"] = self.adopted_at
        return d


def _p_score(p: float, alpha: float) -> float:
    """p-value -> score: 0.5 at p = alpha, 1 at p = alpha**2, log-linear in between."""
    if p >= 1.0:
        return 0.0
    r = math.log(max(p, 1e-300)) / math.log(alpha)
    return float(min(1.0, max(0.0, r / 2)))


def _numeric_test(base: NumericSummary, cur: NumericSummary) -> tuple[float, str, bool]:
    """(p-value, test name, practically relevant) for current vs baseline."""
    mb, mc = base.moments, cur.moments
    sd = mb.std or 1.0
    # mean: Welch z
    se = math.sqrt(mb.var / max(mb.n, 1) + mc.var / max(mc.n, 1)) or 1e-300
    z = (mc.mean - mb.mean) / se
    from scipy.special import chdtrc, ndtr  # on first use, not at import (see chi2_critical)

    p_mean = float(2 * ndtr(-abs(z)))  # == 2 * scipy.stats.norm.sf(|z|)
    # distribution: two-sample chi-square on BINS bins at merged-baseline quantiles (via the sketches)
    edges = np.unique(np.asarray(base.sketch.quantiles(np.linspace(0, 1, BINS + 1)[1:-1]), float))
    p_shape, tv = 1.0, 0.0
    if edges.size:
        cb = np.diff(np.concatenate([[0.0], base.sketch.cdf(edges), [1.0]])) * mb.n
        cc = np.diff(np.concatenate([[0.0], cur.sketch.cdf(edges), [1.0]])) * mc.n
        x2 = float(two_sample_chi2(cc[None, :], cb)[0])
        p_shape = float(chdtrc(max(edges.size, 1), max(x2, 0.0)))  # == scipy.stats.chi2.sf
        tv = 0.5 * float(np.abs(cb / max(mb.n, 1) - cc / max(mc.n, 1)).sum())
    p = min(1.0, 2 * min(p_mean, p_shape))  # Bonferroni over the two tests
    relevant = (
        abs(mc.mean - mb.mean) / sd >= MIN_SHIFT
        or abs(math.log(max(mc.std, 1e-300) / sd)) >= MIN_LOG_STD_RATIO
        or tv >= MIN_DISTANCE
    )
    return p, ("aggregate-mean" if p_mean <= p_shape else "aggregate-chi2"), relevant


def _categorical_test(base: CategoryCounts, cur: CategoryCounts) -> tuple[float, bool]:
    names = sorted(set(base.counts) | set(cur.counts))
    nb, nc = base.n, cur.n
    own = [k for k in names if base.counts.get(k, 0) * nc / max(nb, 1) >= MIN_EXPECTED]
    rest = [k for k in names if k not in own]
    b = np.array([base.counts.get(k, 0) for k in own] + [sum(base.counts.get(k, 0) for k in rest)], float)
    c = np.array([cur.counts.get(k, 0) for k in own] + [sum(cur.counts.get(k, 0) for k in rest)], float)
    g = float(two_sample_g(c[None, :], b)[0])
    from scipy.special import chdtrc  # lazily, as in _numeric_test

    p = float(chdtrc(max(len(own), 1), max(g, 0.0)))  # == scipy.stats.chi2.sf (which is 1 below 0)
    bs, cs = base.shares(), cur.shares()
    tv = 0.5 * sum(abs(bs.get(k, 0.0) - cs.get(k, 0.0)) for k in names)
    emerged = any(k not in base.counts for k in cur.counts)
    return p, tv >= MIN_DISTANCE or emerged


def aggregate(summaries: list[dict[str, Any]], spec: Any) -> list[FeatureStatus]:
    """Merge per-pod summaries; one FeatureStatus per (feature, key), sorted by (feature, key)."""
    groups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for i, summ in enumerate(summaries):
        pod = str(summ.get("pod", i))
        for s in summ.get("streams", []):
            groups.setdefault((s["feature"], s.get("key", "")), []).append((pod, s))
    sens = spec.sensitivity
    out = []
    for (feature, key), items in sorted(groups.items()):
        pods = {pod for pod, _ in items}
        drifting = [s for _, s in items if s.get("state") == "Drifting"]
        kind = items[0][1].get("type", "numeric")
        base: Any = None
        cur: Any = None
        for _, s in items:
            if s.get("baseline"):
                b = summary_from_dict(s["baseline"])
                base = b if base is None else base.merge(b)
            if s.get("current"):
                c = summary_from_dict(s["current"])
                cur = c if cur is None else cur.merge(c)
        p_value: float | None = None
        detector = ""
        test_drift = False
        score = 0.0
        evidence: dict[str, Any] = {}
        if base is not None and cur is not None and base.n >= 10 and cur.n >= 10:
            alpha = min(0.01, max(1e-9, cur.n / (sens.false_alarms_per * SAFETY)))
            if kind == "categorical":
                p_value, relevant = _categorical_test(base, cur)
                detector = "aggregate-g-test"
                evidence = categorical_evidence(base, cur)
            else:
                p_value, detector, relevant = _numeric_test(base, cur)
                evidence = {"baseline": base.describe(), "current": cur.describe()}
            score = _p_score(p_value, alpha)
            test_drift = p_value < alpha and relevant
            if not relevant:
                score = min(score, 0.45)  # significant but negligible: at most a warning
        vote_drift = len(drifting) * 2 > len(pods)
        if vote_drift:
            pod_scores = sorted((float(s.get("score", 0.0)) for s in drifting), reverse=True)
            score = max(score, pod_scores[(len(pod_scores) - 1) // 2])
            if not test_drift:
                detector = Counter(str(s.get("detector", "")) for s in drifting).most_common(1)[0][0]
        state = "Drifting" if test_drift or vote_drift else "Stable"
        if all(s.get("state") == "Initializing" for _, s in items) and not test_drift:
            state = "Initializing"
        sinces = [int(s["since"]) for s in drifting if s.get("since") is not None]
        adopted = [int(s["adopted_at"]) for _, s in items if s.get("adopted_at") is not None]
        evidence["podsDrifting"] = len(drifting)
        out.append(
            FeatureStatus(
                name=feature,
                key=key,
                state=state,
                score=round(score, 6),
                severity=severity_of(score, sens.warning, sens.critical),
                detector=detector,
                pods=len(pods),
                p_value=p_value,
                since=min(sinces) if sinces and state == "Drifting" else None,
                evidence=evidence,
                pods_drifting=len(drifting),
                adopted_at=max(adopted) if adopted else None,
            )
        )
    return out
