"""``CategoricalMonitor``: the default monitor of a categorical stream.

Baseline category counts, a windowed two-sample G-test against them (``detectors/gtest.py``), the
shared state machine, and evidence naming the categories that emerged, vanished or changed share.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .base import EventType, State, Transition
from .calibration import SAFETY
from .detectors.gtest import MIN_EXPECTED, WindowedGTest
from .evidence import decode_names, encode_names
from .state_machine import StateMachine, first_run
from .summaries import CategoryCounts
from .window import Tumbling

if TYPE_CHECKING:
    from driftwatch.vocab.spec import FeatureSpec, MonitorSpec


def categorical_evidence(baseline: CategoryCounts, current: CategoryCounts, top: int = 20) -> dict[str, Any]:
    """Shares side by side, and which categories emerged (never in the baseline), vanished (expected
    at least 5 times, seen 0) or changed share (two-proportion |z| >= 3)."""
    nb, nc = baseline.n, current.n
    bs, cs = baseline.shares(), current.shares()
    emerged = sorted(k for k in current.counts if k not in baseline.counts)
    vanished = sorted(k for k, p in bs.items() if current.counts.get(k, 0) == 0 and p * nc >= MIN_EXPECTED)
    changed = []
    for k in sorted(set(bs) & set(cs)):
        pooled = (baseline.counts[k] + current.counts[k]) / (nb + nc)
        se = math.sqrt(pooled * (1 - pooled) * (1 / nb + 1 / nc)) if 0 < pooled < 1 else 0.0
        if se and abs(cs[k] - bs[k]) / se >= 3.0:
            changed.append(k)

    def topn(s: dict[str, float]) -> dict[str, float]:
        return dict(sorted(s.items(), key=lambda kv: (-kv[1], kv[0]))[:top])

    return {
        "baseline": {"n": nb, "shares": topn(bs)},
        "current": {"n": nc, "shares": topn(cs)},
        "emerged": emerged,
        "vanished": vanished,
        "changed": changed,
    }


class CategoricalMonitor(StateMachine):
    """The default monitor for a categorical stream: a windowed G-test against baseline shares.

    >>> rng = np.random.default_rng(3)
    >>> m = CategoricalMonitor(min_samples=100, window=1000, budget=10_000)
    >>> m.update(rng.choice(["a", "b", "c"], 3000, p=[0.6, 0.3, 0.1]))
    []
    >>> ev = m.update(rng.choice(["a", "b", "d"], 1000, p=[0.3, 0.3, 0.4]))
    >>> ev[0].type.value, ev[0].evidence["emerged"]
    ('DRIFT_START', ['d'])
    """

    kind: ClassVar[str] = "categorical"
    WINDOW = 200
    NAME_MAX = 48
    __slots__ = ("baseline", "current", "fixed", "ring", "test")

    def __init__(
        self,
        min_samples: int = 100,
        window: int = 1000,
        budget: float = 10_000,
        recovery: int = 50,
        warning: float = 0.2,
        critical: float = 0.5,
    ) -> None:
        super().__init__(min_samples, window, budget, recovery, warning, critical)
        self.baseline = CategoryCounts()
        self.current = Tumbling(window, CategoryCounts)
        self.ring: list[str] = []  # the last WINDOW values: the alarming window, for evidence
        self.fixed = False  # a seeded baseline: not refined from the stream
        self.test: WindowedGTest | None = None

    @property
    def score(self) -> float:
        return self.test.score if self.test is not None else 0.0

    @property
    def detector(self) -> str:
        if self.state == State.DRIFTING and self.alarm_detector:
            return self.alarm_detector
        return WindowedGTest.name if self.test is not None else ""

    @classmethod
    def from_spec(cls, spec: MonitorSpec, feature: FeatureSpec | None = None) -> CategoricalMonitor:
        return cls(
            spec.baseline.min_samples,
            spec.baseline.window,
            spec.sensitivity.false_alarms_per,
            spec.recovery.consecutive_normal,
            spec.sensitivity.warning,
            spec.sensitivity.critical,
        )

    def _fit(self) -> None:
        crit_alpha = min(0.5, (self.WINDOW // 2) / (self.budget * SAFETY))  # one test per half window
        test = WindowedGTest.from_baseline(self.baseline, self.WINDOW, crit_alpha)
        test.t = self.test.t if self.test is not None else self.samples
        self.test = test

    def _recovery(self, codes: np.ndarray) -> int:
        """Track the test through a Drifting segment; the position where the stream has had
        ``recovery`` consecutive normal samples, or -1 (the test then stops there)."""
        assert self.test is not None
        snap = self.test.to_dict()
        path = self.test.track(codes, 0.0)
        pos, run = first_run(path <= self.test.recovery_level, self.normal_run, self.recovery)
        if pos < 0:
            self.normal_run = run
            return -1
        self.test = WindowedGTest.from_dict(snap)
        self.test.track(codes[: pos + 1], 0.0)
        self.normal_run = 0
        return pos

    def seed(self, values: np.ndarray) -> None:
        """Baseline from explicit reference values (see ``StreamMonitor.seed``): the first ``window``
        go into the baseline counts; with ``min_samples`` of them the stream is Stable and the
        baseline fixed."""
        if self.state != State.INITIALIZING:
            raise ValueError("the baseline is already fitted")
        vals = [v if len(v) <= self.NAME_MAX else v[: self.NAME_MAX] for v in map(str, values)]
        self.baseline.update(vals[: max(0, self.window - self.baseline.n)])
        self.samples += len(vals)
        if self.baseline.n >= self.min_samples:
            self._fit()
            self.state = State.STABLE
            self.fixed = True

    def update(self, values: np.ndarray, ts: np.ndarray | None = None) -> list[Transition]:
        # names beyond NAME_MAX characters are truncated: state (and evidence) stays bounded
        vals = [v if len(v) <= self.NAME_MAX else v[: self.NAME_MAX] for v in map(str, values)]
        out: list[Transition] = []
        i, n = 0, len(vals)
        while i < n:
            if self.state == State.INITIALIZING:
                take = vals[i : i + self.min_samples - self.baseline.n]
                self.baseline.update(take)
                self.samples += len(take)
                i += len(take)
                if self.baseline.n >= self.min_samples:
                    self._fit()
                    self.state = State.STABLE
                continue
            test = self.test
            assert test is not None
            end = n
            refining = self.state == State.STABLE and self.baseline.n < self.window and not self.fixed
            if refining:
                end = min(n, i + self.window - self.baseline.n)
            seg = vals[i:end]
            codes = test.encode(seg)
            if self.state == State.STABLE:
                p = test.update(codes)
                used = len(seg) if p < 0 else p + 1
                if refining:
                    self.baseline.update(seg[: used if p < 0 else max(0, (test.onset or 0) - self.samples)])
                    if self.baseline.n >= self.window:
                        self._fit()
                if p >= 0:
                    self.state = State.DRIFTING
                    self.normal_run = 0
                    self.alarm_detector = test.name
                    onset = (test.onset if test.onset is not None else self.samples + p) - self.samples
                    # evidence from the newest half window: the part of the alarming window that
                    # is most likely all after the change
                    ev = categorical_evidence(self.baseline, self._window_counts(vals, i + p, test.step))
                    score = round(max(test.score, 0.5), 6)
                    out.append(Transition(EventType.DRIFT_START, i + p, test.name, score, i + onset, ev))
            else:
                p = self._recovery(codes)
                used = len(seg) if p < 0 else p + 1
                if p >= 0:
                    self.state = State.STABLE
                    ev = categorical_evidence(self.baseline, self._window_counts(vals, i + p))
                    score = round(self.score, 6)
                    out.append(Transition(EventType.DRIFT_END, i + p, test.name, score, None, ev))
                    self.alarm_detector = ""
            self.samples += used
            i += used
        if vals:
            self.current.update(vals)
            # kept in its serialised form, so a restored monitor continues exactly
            self.ring = decode_names(encode_names((self.ring + vals[-self.WINDOW :])[-self.WINDOW :]))
        return out

    def _window_counts(self, vals: list[str], upto: int, size: int | None = None) -> CategoryCounts:
        size = size or self.WINDOW
        recent = (self.ring + vals[max(0, upto + 1 - size) : upto + 1])[-size:]
        c = CategoryCounts()
        c.update(recent)
        return c

    def baseline_summary(self) -> dict[str, Any]:
        return self.baseline.to_dict()

    def current_summary(self) -> dict[str, Any]:
        merged: CategoryCounts = self.current.merged()
        return merged.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self._params(),
            **self._state_dict(),
            "baseline": self.baseline.to_dict(),
            "current": self.current.to_dict(),
            "ring": encode_names(self.ring),
            "fixed": self.fixed,
            "detectors": [] if self.test is None else [self.test.to_dict()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalMonitor:
        m = cls(*d["params"])
        m._restore_state(d)
        m.baseline = CategoryCounts.from_dict(d["baseline"])
        m.current.load(d["current"], CategoryCounts)
        m.ring = decode_names(d["ring"])
        m.fixed = bool(d.get("fixed", False))
        m.test = WindowedGTest.from_dict(d["detectors"][0]) if d["detectors"] else None
        return m
