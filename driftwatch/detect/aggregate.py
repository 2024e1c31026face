"""Monitor-level view: merge per-pod ``Engine.summary()`` dicts into one ``FeatureStatus`` per
(feature, key), as ``docs/contracts.md`` section 2 describes.

Summaries merge without raw samples (moments and sketches exactly or within the sketch's error,
category counts exactly). A feature is Drifting at monitor level when

* the merged current window differs from the merged baseline at the spec's sensitivity (a two-sample
  test whose level is the budget's share for a window of that size) *and* by a practically relevant
  amount (large merged samples make any test significant for negligible differences), or
* a strict majority of the reporting pods say Drifting.

A pod whose stream a local level follows (``follows_level``) votes but stays out of the merged test:
a wandering level's baseline summary says where the level was when learned, so a merged
baseline-vs-current test would call the wander itself a drift.

Why a majority and not "any pod": each pod's detector spends the false-alarm budget on its own stream,
so "any pod" would multiply the monitor's false alarms by the pod count (two pods, twice the alarms).
A real change in what a Deployment serves reaches most of its pods; one pod alone that deviates
strongly still moves the merged test above.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import State, severity_of
from .calibration import SAFETY
from .categorical import categorical_evidence
from .detectors.gtest import MIN_EXPECTED, two_sample_g
from .detectors.shape import two_sample_chi2
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


def merged(parts: Iterable[dict[str, Any] | None]) -> Any:
    """One summary (``NumericSummary`` or ``CategoryCounts``) merged from serialised ones; empty or
    missing parts are skipped; None when there is none."""
    out: Any = None
    for d in parts:
        if d:
            x = summary_from_dict(d)
            out = x if out is None else out.merge(x)
    return out


#: fewest samples on each side for a two-sample test
MIN_TEST_SAMPLES = 10


@dataclass(frozen=True)
class Comparison:
    """A two-sample test of a candidate summary against a reference one, at the spec's sensitivity."""

    p_value: float
    #: test name: aggregate-mean | aggregate-chi2 | aggregate-g-test
    detector: str
    #: 0.5 at the level alpha, 1 at alpha**2; capped at 0.45 when the difference is negligible
    score: float
    #: significant at alpha *and* practically relevant (MIN_SHIFT, MIN_LOG_STD_RATIO, MIN_DISTANCE)
    differs: bool
    evidence: dict[str, Any]


def compare(reference: Any, candidate: Any, kind: str, spec: Any) -> Comparison | None:
    """Test ``candidate`` against ``reference`` (merged ``NumericSummary`` or ``CategoryCounts``) at
    ``spec.sensitivity``; None below ``MIN_TEST_SAMPLES`` on either side.

    The level is the budget's share for a sample of the candidate's size, so one knob
    (``falseAlarmsPer``) sets both this test and the per-pod detectors. Used for the monitor's
    current-vs-baseline view (:func:`aggregate`) and for a rollout's canary-vs-stable verdict."""
    if reference.n < MIN_TEST_SAMPLES or candidate.n < MIN_TEST_SAMPLES:
        return None
    sens = spec.sensitivity
    alpha = min(0.01, max(1e-9, candidate.n / (sens.false_alarms_per * SAFETY)))
    evidence: dict[str, Any]
    if kind == "categorical":
        p_value, relevant = _categorical_test(reference, candidate)
        detector = "aggregate-g-test"
        evidence = categorical_evidence(reference, candidate)
    else:
        p_value, detector, relevant = _numeric_test(reference, candidate)
        evidence = {"baseline": reference.describe(), "current": candidate.describe()}
    score = _p_score(p_value, alpha)
    if not relevant:
        score = min(score, 0.45)  # significant but negligible: at most a warning
    return Comparison(p_value, detector, score, p_value < alpha and relevant, evidence)


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
        drifting = [s for _, s in items if s.get("state") == State.DRIFTING]
        kind = items[0][1].get("type", "numeric")
        # a pod whose stream a local level follows has no fixed reference: its baseline says where the
        # level was when learned, not where it should be now, and in a merged baseline-vs-current test
        # the wander itself would be the drift. Such pods vote (their own detectors look for changes
        # faster than the wander); the merged test takes the others
        fixed = [s for _, s in items if not s.get("follows_level")]
        base = merged(s.get("baseline") for s in fixed)
        cur = merged(s.get("current") for s in fixed)
        p_value: float | None = None
        detector = ""
        test_drift = False
        score = 0.0
        evidence: dict[str, Any] = {}
        cmp = compare(base, cur, kind, spec) if base is not None and cur is not None else None
        if cmp is not None:
            p_value, detector, score, evidence = cmp.p_value, cmp.detector, cmp.score, cmp.evidence
            test_drift = cmp.differs
        vote_drift = len(drifting) * 2 > len(pods)
        onset = merged(s.get("since_onset") for s in drifting)
        if vote_drift:
            pod_scores = sorted((float(s.get("score", 0.0)) for s in drifting), reverse=True)
            score = max(score, pod_scores[(len(pod_scores) - 1) // 2])
            if not test_drift:
                detector = Counter(str(s.get("detector", "")) for s in drifting).most_common(1)[0][0]
        state = State.DRIFTING if test_drift or vote_drift else State.STABLE
        if state == State.DRIFTING and onset is not None and onset.n and base is not None:
            # what the stream is now: the samples since the drifting pods' onsets, not the current
            # window (mostly pre-change samples right after a change)
            evidence["current"] = onset.describe()
            evidence["baseline"] = base.describe()
            b, c = evidence["baseline"], evidence["current"]
            if b.get("std") and c.get("mean") is not None and b.get("mean") is not None:
                evidence["shiftSigma"] = (c["mean"] - b["mean"]) / b["std"]
        if all(s.get("state") == State.INITIALIZING for _, s in items) and not test_drift:
            state = State.INITIALIZING
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
                since=min(sinces) if sinces and state == State.DRIFTING else None,
                evidence=evidence,
                pods_drifting=len(drifting),
                adopted_at=max(adopted) if adopted else None,
            )
        )
    return out
