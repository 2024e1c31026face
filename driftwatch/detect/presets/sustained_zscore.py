"""The ``sustained-zscore`` preset: a rolling window's mean and std against a fixed baseline."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from driftwatch.detect.base import EventType, State, Transition
from driftwatch.detect.presets.common import (
    CHUNK,
    PresetMonitor,
    first_true,
    pack64,
    run_lengths,
    unpack64,
    window_stats,
    window_summary,
    zscores,
)

if TYPE_CHECKING:
    from driftwatch.vocab.spec import FeatureSpec, MonitorSpec


class SustainedZScore(PresetMonitor):
    """``sustained-zscore``: a rolling window's mean and std against a fixed baseline.

    The rule (defaults in brackets, every one a constructor argument):

    * Baseline: mean ``mu`` and population std ``sigma`` of the first ``baseline_size`` [1000]
      samples, frozen for the life of the stream (no refresh, no re-learning after a drift).
      Initializing until it is complete.
    * Evaluations at every sample n > ``baseline_size`` with ``(n - baseline_size) % step == 0``
      [step 1: every sample]. The window is the last ``window`` [50] samples up to and including n;
      the first windows overlap the baseline's tail (the window is "full" as soon as the baseline is).
    * An evaluation is a *violation* when ``|mean_w - mu| / s > z_threshold`` [3] or
      ``std_w / sigma`` is outside ``[1/std_ratio, std_ratio]`` [2] (strict comparisons: a ratio of
      exactly 2 is not a violation). ``s`` depends on ``z_basis``:
      ``"se"`` [default] -- the standard error ``sigma / sqrt(window)``, so "3" means three standard
      errors of the window mean: a 3-sigma-of-the-mean test that detects a 0.5 sigma shift with a
      50-sample window. ``"sigma"`` -- sigma itself, the literal reading of some legacy configs, which
      only reacts to shifts of more than ``z_threshold`` standard deviations.
      Zero sigma: mean distance is 0 if mean_w == mu else inf; the std ratio is 1 if std_w == 0 else inf.
    * DRIFT_START at the evaluation that completes ``violations`` [3] consecutive violations;
      DRIFT_END at the evaluation that completes ``recoveries`` [5] consecutive normal evaluations.
      Counters restart from zero at each transition (the triggering evaluation counts for neither).
      Note the spec's ``recovery.consecutiveNormal`` (default 50, in samples) is *not* used: this rule
      counts evaluations and its legacy default is 5.
    """

    kind: ClassVar[str] = "numeric"
    name: ClassVar[str] = "sustained-zscore"
    __slots__ = (
        "base_stats",
        "base_summary",
        "baseline_size",
        "init_buf",
        "last_mean_z",
        "last_ratio",
        "mu",
        "normal_run",
        "recoveries",
        "sd",
        "std_ratio",
        "step",
        "tail",
        "viol_run",
        "violations",
        "window",
        "z_basis",
        "z_threshold",
    )

    def __init__(
        self,
        *,
        baseline_size: int = 1000,
        window: int = 50,
        z_threshold: float = 3.0,
        z_basis: str = "se",
        std_ratio: float = 2.0,
        violations: int = 3,
        recoveries: int = 5,
        step: int = 1,
        warning: float = 0.2,
        critical: float = 0.5,
    ) -> None:
        if z_basis not in ("se", "sigma"):
            raise ValueError("z_basis must be 'se' or 'sigma'")
        if min(baseline_size, window, violations, recoveries, step) < 1 or window < 2:
            raise ValueError("sizes and counts must be >= 1 (window >= 2)")
        if std_ratio <= 1:
            raise ValueError("std_ratio must be > 1")
        self.baseline_size = baseline_size
        self.window = window
        self.z_threshold = z_threshold
        self.z_basis = z_basis
        self.std_ratio = std_ratio
        self.violations = violations
        self.recoveries = recoveries
        self.step = step
        self._start(warning, critical)
        self.init_buf = np.empty(0)  # baseline samples, only while Initializing
        self.tail = np.empty(0)  # the last `window` finite samples
        self.mu = 0.0
        self.sd = 0.0
        self.base_stats: dict[str, Any] = {"n": 0}  # evidence: exact mean/std/percentiles
        self.base_summary: dict[str, Any] = window_summary(np.empty(0))  # mergeable, for the engine
        self.viol_run = 0
        self.normal_run = 0
        self.last_mean_z = 0.0
        self.last_ratio = 1.0

    @classmethod
    def from_spec(cls, spec: MonitorSpec, feature: FeatureSpec | None = None) -> SustainedZScore:
        """Baseline size from the spec's baseline.window (default 1000, the legacy value); everything
        else at the legacy defaults (the spec has no per-preset parameters -- construct the class
        directly to override them). ``transform`` is ignored, as for zscore-consecutive."""
        return cls(
            baseline_size=spec.baseline.window,
            warning=spec.sensitivity.warning,
            critical=spec.sensitivity.critical,
        )

    @property
    def score(self) -> float:
        if self.state is State.INITIALIZING:
            return 0.0
        if self.state is State.DRIFTING:
            return 0.5 + 0.5 * (1.0 - self.normal_run / self.recoveries)
        return 0.5 * min(self.viol_run / self.violations, 1.0)

    def baseline_summary(self) -> dict[str, Any]:
        return self.base_summary

    def current_summary(self) -> dict[str, Any]:
        """The last ``window`` samples (the last evaluation's window, with step 1)."""
        return window_summary(self.tail)

    def _scale(self) -> float:
        return self.sd / math.sqrt(self.window) if self.z_basis == "se" else self.sd

    def _learn_left(self) -> int:
        return max(0, self.baseline_size - self.samples)

    def _update(self, xf: np.ndarray, pos: np.ndarray) -> list[Transition]:
        out: list[Transition] = []
        i = 0
        if self.state is State.INITIALIZING:
            take = min(self.baseline_size - self.samples, xf.size)
            self.init_buf = np.concatenate([self.init_buf, xf[:take]])
            self.samples += take
            i = take
            if self.samples >= self.baseline_size:
                b = self.init_buf
                self.mu, self.sd = float(np.mean(b)), float(np.std(b))
                self.base_stats = window_stats(b)
                self.base_summary = window_summary(b)
                self.tail = b[-self.window :].copy()
                self.init_buf = np.empty(0)
                self.state = State.STABLE
        if i >= xf.size:
            return out
        ext = np.concatenate([self.tail, xf[i:]])
        off = self.tail.size - i  # ext index of xf[j] is j + off
        n0 = self.samples + 1  # sample number of xf[i]
        # evaluation samples: n > baseline_size with (n - baseline_size) % step == 0
        first = n0 + (-(n0 - self.baseline_size) % self.step)
        eval_n = np.arange(first, self.samples + (xf.size - i) + 1, self.step, dtype=np.int64)
        eval_j = eval_n - n0 + i  # index into xf
        scale = self._scale()
        for k in range(0, eval_n.size, CHUNK):
            js, ns = eval_j[k : k + CHUNK], eval_n[k : k + CHUNK]
            rows = sliding_window_view(ext, self.window)[js + off - self.window + 1]
            mean_w, std_w = rows.mean(axis=1), rows.std(axis=1)
            mz = zscores(mean_w, self.mu, scale)
            ratio = std_w / self.sd if self.sd > 0 else np.where(std_w == 0, 1.0, np.inf)
            viol = (np.abs(mz) > self.z_threshold) | (ratio > self.std_ratio) | (ratio < 1.0 / self.std_ratio)
            self.last_mean_z, self.last_ratio = float(mz[-1]), float(ratio[-1])
            a = 0
            while a < viol.size:
                stable = self.state is State.STABLE
                need = self.violations if stable else self.recoveries
                run = (
                    run_lengths(viol[a:], self.viol_run)
                    if stable
                    else run_lengths(~viol[a:], self.normal_run)
                )
                t = first_true(run >= need)
                if t < 0:
                    if stable:
                        self.viol_run = int(run[-1])
                    else:
                        self.normal_run = int(run[-1])
                    break
                e = a + t
                j, n_t = int(js[e]), int(ns[e])
                # the run's first evaluation, `need - 1` steps back (possibly in an earlier batch)
                onset_f = n_t - (need - 1) * self.step - n0 + i
                if stable:
                    etype, rule = EventType.DRIFT_START, self._rule()
                    self.state = State.DRIFTING
                else:
                    etype, rule = EventType.DRIFT_END, f"{self.recoveries} consecutive normal evaluations"
                    self.state = State.STABLE
                self.viol_run = self.normal_run = 0
                self.since = n_t
                out.append(
                    Transition(
                        etype,
                        self._position(pos, j),
                        self.name,
                        self.score,
                        onset_position=self._position(pos, onset_f),
                        evidence={
                            "rule": rule,
                            "mean_z": float(mz[e]),
                            "std_ratio": float(ratio[e]),
                            "baseline": self.base_stats,
                            "current": window_stats(ext[j + off - self.window + 1 : j + off + 1]),
                        },
                    )
                )
                a = e + 1
        self.samples += xf.size - i
        self.tail = ext[-self.window :].copy()
        return out

    def _rule(self) -> str:
        basis = "standard errors" if self.z_basis == "se" else "sigma"
        return (
            f"{self.violations} consecutive evaluations with |mean_w - mu| > {self.z_threshold:g} {basis}"
            f" or std ratio outside [1/{self.std_ratio:g}, {self.std_ratio:g}]"
        )

    _PARAMS = (
        "baseline_size",
        "window",
        "z_threshold",
        "z_basis",
        "std_ratio",
        "violations",
        "recoveries",
        "step",
        "warning",
        "critical",
    )

    def to_dict(self) -> dict[str, Any]:
        return self._to_dict(
            init_buf=pack64(self.init_buf),
            tail=pack64(self.tail),
            mu=self.mu,
            sd=self.sd,
            base_stats=self.base_stats,
            base_summary=self.base_summary,
            viol_run=self.viol_run,
            normal_run=self.normal_run,
            last_mean_z=self.last_mean_z,
            last_ratio=self.last_ratio,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SustainedZScore:
        m = cls(**d["params"])
        m._restore(d)
        m.init_buf = unpack64(d["init_buf"])
        m.tail = unpack64(d["tail"])
        m.mu, m.sd = float(d["mu"]), float(d["sd"])
        m.base_stats = dict(d["base_stats"])
        m.base_summary = dict(d["base_summary"])
        m.viol_run, m.normal_run = int(d["viol_run"]), int(d["normal_run"])
        m.last_mean_z, m.last_ratio = float(d["last_mean_z"]), float(d["last_ratio"])
        return m


# --- registration ------------------------------------------------------------------------------------
