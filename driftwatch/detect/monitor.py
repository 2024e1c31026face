"""The default ``StreamMonitor``s: baseline learning, detectors, state machine and evidence.

Numeric: the first ``minSamples`` accepted values become the baseline (transform chosen, robust centre
and scale, AR(1) coefficient, bins, thresholds); while Stable the baseline keeps growing and is refitted
at doubling milestones up to ``min(window, 1024)`` samples, then frozen -- except for a slow update
(``SLOW_BLOCK`` / ``SLOW_RATE``: time constant ~1e5 samples) while Stable. Detectors, with the
false-alarm budget split by ``SHARES``: CUSUM mean up/down (k = 0.3) on the prewhitened, Huber-clipped,
standardised input e; CUSUM scale up/down on |e_t - e_{t-1}|; a chi-square shape test on half-
overlapping windows. Thresholds integrate Siegmund's ARL over the baseline's estimation error
(``calibration.predictive_threshold``), so a 100-sample baseline is as honest as a 1000-sample one.
The first alarm of any detector starts a drift (DRIFT_START, onset = the alarming detector's
maximum-likelihood change point); the stream recovers (DRIFT_END) after ``recovery.consecutiveNormal``
consecutive samples with every statistic below half its threshold (hysteresis: no flapping on a
persisting small shift).

Categorical: baseline category counts, a windowed two-sample G-test against them, the same state
machine, and evidence naming emerged / vanished / changed categories.

Batches are split only at milestones, slow-update blocks and transitions; within a segment every step
is vectorised.
"""

from __future__ import annotations

import base64
import math
from typing import Any, ClassVar

import numpy as np

from .base import Detector, EventType, State, StreamMonitor, Transition, severity_of
from .calibration import (
    SAFETY,
    ar1_coefficient,
    chi2_critical,
    cramer_root,
    predictive_threshold,
    split_budget,
)
from .categorical import WindowedGTest, categorical_evidence
from .cusum import Cusum
from .scale import ScaleCusum, abs_deviation, successive_abs
from .shape import WindowedShape, quantile_bins
from .summaries import OTHER, CategoryCounts, NumericSummary
from .transforms import Standardizer

# -- helpers ------------------------------------------------------------------------------------------


F32_MAX = float(np.finfo(np.float32).max)
#: larger magnitudes are rejected like NaN: their squares (variances) would overflow float64
MAX_ABS = 1e150


def pack_f32(a: np.ndarray) -> str:
    """float32 array -> base64 (4 bytes a value instead of ~20 JSON characters)."""
    return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode("ascii")


def unpack_f32(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), "<f4").copy()


def describe(x: np.ndarray) -> dict[str, float | int | None]:
    """Exact evidence numbers of a small raw sample."""
    if x.size == 0:
        return {"n": 0, "mean": None, "std": None, "p50": None, "p95": None, "p99": None}
    x = np.sort(x.astype(np.float64))
    n = x.size
    mean = float(x.sum()) / n
    d = x - mean
    # numpy's default (linear) quantiles on the sorted sample: np.quantile costs ~0.5 ms a call
    pos = np.array([0.5, 0.95, 0.99]) * (x.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, x.size - 1)
    p50, p95, p99 = x[lo] + (x[hi] - x[lo]) * (pos - lo)
    return {
        "n": int(x.size),
        "mean": mean,
        "std": math.sqrt(float(np.einsum("i,i->", d, d)) / (n - 1)) if n > 1 else 0.0,
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
    }


def first_run(normal: np.ndarray, carry: int, length: int) -> tuple[int, int]:
    """Position where a run of ``length`` consecutive True values completes (run may start ``carry``
    samples before the batch), or -1; and the run length at the end of the batch.

    >>> first_run(np.array([True, False, True, True, True]), 0, 3)
    (4, 3)
    """
    n = normal.size
    ar = np.arange(n)
    last_bad = np.maximum.accumulate(np.where(normal, -1 - carry, ar))
    run = ar - last_bad
    hit = run >= length
    pos = int(np.argmax(hit)) if hit.any() else -1
    return pos, int(run[-1]) if n else carry


def _encode_names(values: list[str], max_names: int = 24) -> dict[str, Any]:
    """A list of category names as a name table plus codes (200 repeats of a long name cost once).
    Beyond ``max_names`` distinct names the rest become ``__other__``: evidence, not statistics."""
    table: dict[str, int] = {}
    codes = []
    for v in values:
        c = table.get(v)
        if c is None:
            if len(table) >= max_names:
                v = OTHER
            c = table.setdefault(v, len(table))
        codes.append(c)
    return {"names": list(table), "codes": codes}


def _decode_names(d: dict[str, Any]) -> list[str]:
    names = [str(v) for v in d["names"]]
    return [names[int(c)] for c in d["codes"]]


class _Tumbling:
    """The 'current' mergeable window: the last completed block of ``size`` samples plus the block in
    progress. Only the samples that end up in those two blocks are summarised, so a 100k batch costs
    at most two blocks of sketch work."""

    def __init__(self, size: int, make: Any) -> None:
        self.size = size
        self.make = make
        self.prev = make()
        self.cur = make()
        self.fill = 0

    def update(self, x: Any) -> None:
        n = len(x)
        if self.fill + n < self.size:
            self.cur.update(x)
            self.fill += n
            return
        end_fill = (self.fill + n) % self.size
        head = n - end_fill  # samples up to the last completed block boundary
        if head >= self.size:  # the whole last completed block is inside this batch
            self.prev = self.make()
            self.prev.update(x[head - self.size : head])
        else:
            self.cur.update(x[:head])
            self.prev = self.cur
        self.cur = self.make()
        self.cur.update(x[head:])
        self.fill = end_fill

    def merged(self) -> Any:
        return self.prev.merge(self.cur)

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "fill": self.fill, "prev": self.prev.to_dict(), "cur": self.cur.to_dict()}

    def load(self, d: dict[str, Any], cls: Any) -> None:
        self.size, self.fill = int(d["size"]), int(d["fill"])
        self.prev, self.cur = cls.from_dict(d["prev"]), cls.from_dict(d["cur"])


def _snapshot(dets: list[Detector]) -> list[dict[str, Any]]:
    return [dict(d.__dict__) for d in dets]


def _restore(dets: list[Detector], snaps: list[dict[str, Any]]) -> None:
    for d, s in zip(dets, snaps, strict=True):
        d.__dict__.clear()
        d.__dict__.update(s)


class _StateMachine(StreamMonitor):
    """Shared plumbing: counters, thresholds of severity, the Stable/Drifting split of a segment."""

    def __init__(
        self, min_samples: int, window: int, budget: float, recovery: int, warning: float, critical: float
    ):
        self.min_samples = int(min_samples)
        self.window = int(window)
        self.budget = float(budget)
        self.recovery = int(recovery)
        self.warning = float(warning)
        self.critical = float(critical)
        self.state = State.INITIALIZING
        self.samples = 0
        self.rejected = 0
        self.normal_run = 0
        self.alarm_detector = ""
        self.detectors: list[Detector] = []
        self._drift_chunks = 0  # transient: growth of the Drifting scan chunk within one batch

    def _params(self) -> list[Any]:
        """The constructor's shared arguments, in order, as ``to_dict`` saves them."""
        return [self.min_samples, self.window, self.budget, self.recovery, self.warning, self.critical]

    def _state_dict(self) -> dict[str, Any]:
        """The state-machine part of ``to_dict`` (``_restore_state`` reads it back)."""
        return {
            "state": self.state.value,
            "samples": self.samples,
            "rejected": self.rejected,
            "normal_run": self.normal_run,
            "alarm_detector": self.alarm_detector,
        }

    def _restore_state(self, d: dict[str, Any]) -> None:
        self.state = State(d["state"])
        self.samples, self.rejected, self.normal_run = (
            int(d["samples"]),
            int(d["rejected"]),
            int(d["normal_run"]),
        )
        self.alarm_detector = d["alarm_detector"]

    @property
    def score(self) -> float:
        return max((d.score for d in self.detectors), default=0.0)

    @property
    def severity(self) -> str:
        return severity_of(self.score, self.warning, self.critical)

    @property
    def detector(self) -> str:
        if self.state == State.DRIFTING and self.alarm_detector:
            return self.alarm_detector
        if not self.detectors:
            return ""
        best = max(self.detectors, key=lambda d: d.score)
        return str(getattr(best, "label", best.name))

    def _first_alarm(
        self, inputs: list[np.ndarray], csums: list[np.ndarray | None] | None = None
    ) -> tuple[int, Detector | None]:
        """Feed every detector; on alarms keep only the earliest (others are rolled back to it)."""
        snaps = _snapshot(self.detectors)
        if csums is None:
            csums = self._csums(inputs)
        pos = [self._feed(d, x, c, None) for d, x, c in zip(self.detectors, inputs, csums, strict=True)]
        hits = [p for p in pos if p >= 0]
        first = min(hits) if hits else -1
        fired = [d for d, p in zip(self.detectors, pos, strict=True) if p == first]
        for d, x, c, p, snap in zip(self.detectors, inputs, csums, pos, snaps, strict=True):
            if hits and p != first:  # consumed past the first alarm: take it back to there
                if isinstance(d, Cusum):
                    d.rewind(first + 1)
                else:
                    d.__dict__.clear()
                    d.__dict__.update(snap)
                    self._feed(d, x, c, first + 1)
            if isinstance(d, Cusum):
                d.__dict__.pop("_path", None)  # do not keep a batch-sized array alive
        if not hits:
            return -1, None
        return first, max(fired, key=lambda d: d.score)

    @staticmethod
    def _csums(inputs: list[np.ndarray]) -> list[np.ndarray | None]:
        """One cumsum per distinct input array (the up and down CUSUMs share theirs)."""
        seen: dict[int, np.ndarray] = {}
        out: list[np.ndarray | None] = []
        for x in inputs:
            if x.dtype.kind != "f":
                out.append(None)
                continue
            c = seen.get(id(x))
            if c is None:
                c = seen[id(x)] = np.cumsum(x)
            out.append(c)
        return out

    @staticmethod
    def _feed(d: Detector, x: np.ndarray, c: np.ndarray | None, upto: int | None) -> int:
        if upto is not None:
            x = x[:upto]
            c = None if c is None else c[:upto]
        if isinstance(d, Cusum):
            return d.update(x, c)
        return d.update(x)

    def _first_recovery(self, inputs: list[np.ndarray], caps: list[float]) -> int:
        """Track every detector through a Drifting segment; the position where the stream has had
        ``recovery`` consecutive normal samples, or -1 (detectors then stop there)."""
        snaps = _snapshot(self.detectors)
        paths = [d.track(x, c) for d, x, c in zip(self.detectors, inputs, caps, strict=True)]  # type: ignore[attr-defined]
        normal = np.ones(inputs[0].size, bool)
        for d, p in zip(self.detectors, paths, strict=True):
            normal &= p <= d.recovery_level  # type: ignore[attr-defined]
        pos, run = first_run(normal, self.normal_run, self.recovery)
        if pos < 0:
            self.normal_run = run
            return -1
        _restore(self.detectors, snaps)
        for d, x, c, p in zip(self.detectors, inputs, caps, paths, strict=True):
            if isinstance(d, Cusum):  # the kept path up to pos: no second pass over the data
                d._advance(p[: pos + 1], pos + 1)
            else:
                d.track(x[: pos + 1], c)  # type: ignore[attr-defined]
        self.normal_run = 0
        return pos


# -- numeric ------------------------------------------------------------------------------------------


class NumericMonitor(_StateMachine):
    """The default monitor for a numeric stream.

    >>> rng = np.random.default_rng(7)
    >>> m = NumericMonitor(min_samples=100, window=1000, budget=1_000_000)  # one false alarm per 1e6
    >>> m.update(rng.normal(10, 2, 5000)), m.state.value
    ([], 'Stable')
    >>> [t.type.value for t in m.update(rng.normal(13, 2, 200))]
    ['DRIFT_START']
    """

    kind: ClassVar[str] = "numeric"
    #: false-alarm budget shares: the mean tests get most (they are the most common real change)
    SHARES: ClassVar[dict[str, float]] = {
        "cusum-mean-up": 0.3,
        "cusum-mean-down": 0.3,
        "cusum-scale-up": 0.18,
        "cusum-scale-down": 0.07,
        "chi2-shape": 0.15,
    }
    #: mean CUSUM reference. 0.5 is optimal for a 1 sigma shift but slow at 0.5 sigma (ARL1 ~ h^2);
    #: 0.3 loses ~1 sample at 1 sigma and gains ~40 % at 0.5 sigma (Siegmund ARL1 21 and 66 at ARL0 5e4)
    K = 0.3
    K_SCALE = 0.5  # |e| moves by > 1 sd when the std doubles: 0.5 is near-optimal there
    SHAPE_WINDOW = 200
    can_adopt = True
    BUFFER_CAP = 1024  # baseline values kept for fitting (float32, ~5.5 KB base64), dropped once frozen
    RING = 256  # recent raw values kept for evidence
    CAP = 2.0  # while Drifting, a CUSUM statistic is capped at CAP * h (score 1)
    #: The slow update while Stable (frozen baseline): every SLOW_BLOCK Stable samples, centre,
    #: scale and the |d| level move SLOW_RATE of the way to that block's values (time constant
    #: ~100k samples: seasonal creep is absorbed, a step change is long detected before it matters).
    #: Blocks also bound a Stable segment, so an alarm wastes at most one block of detector work.
    SLOW_BLOCK = 8192
    SLOW_RATE = 0.08

    def __init__(
        self,
        min_samples: int = 100,
        window: int = 1000,
        budget: float = 10_000,
        recovery: int = 50,
        warning: float = 0.2,
        critical: float = 0.5,
        transform: str = "auto",
        adopt_after: int = 0,
    ) -> None:
        super().__init__(min_samples, window, budget, recovery, warning, critical)
        self.transform = transform
        # drift lifecycle: after this many samples of Drifting the new regime becomes the baseline
        # (0 = never); drift_since is the absolute sample index of the current DRIFT_START
        self.adopt_after = int(adopt_after)
        self.drift_since = 0
        self.adopted = 0  # times a drifted regime became the baseline
        self.buffer = np.zeros(0, np.float32)
        self.base_n = 0  # samples in the fitted baseline
        self.frozen = False
        self.std: Standardizer | None = None
        self.phi = 0.0
        self.w_mean = 0.0
        self.w_std = 1.0
        self.x_prev: float | None = None  # last accepted raw value (prewhitening carries over)
        self.e_prev = 0.0  # last detector input (the scale statistic differences carry over)
        self.slow: list[Any] = [0, 0.0, 0.0, 0.0]  # Stable samples, sum e, sum e^2, sum |d| this block
        self.baseline = NumericSummary()
        self.current = _Tumbling(window, NumericSummary)
        self.ring = np.zeros(0, np.float32)
        self.pending = 0  # values at the end of the ring not yet in the current summary
        self.unit = 1.0  # power-of-two scale of the float32 state (see _to32)
        self._fits = 0  # transient: bumps on every refit, invalidating the per-batch input cache
        self._cache: tuple[Any, ...] | None = None
        self._described: tuple[int, dict[str, Any]] | None = None

    @classmethod
    def from_spec(cls, spec: Any, feature: Any = None) -> NumericMonitor:
        return cls(
            spec.baseline.min_samples,
            spec.baseline.window,
            spec.sensitivity.false_alarms_per,
            spec.recovery.consecutive_normal,
            spec.sensitivity.warning,
            spec.sensitivity.critical,
            getattr(feature, "transform", "auto") if feature is not None else "auto",
            spec.baseline.adopt_samples,
        )

    # -- fitting ----------------------------------------------------------------------------------------

    @property
    def _cap_n(self) -> int:
        return min(self.window, self.BUFFER_CAP)

    def _next_milestone(self) -> int:
        return min(self._cap_n, max(2 * self.base_n, self.min_samples))

    def _fit(self) -> None:
        """(Re)derive transform, scale, AR(1), bins and thresholds from the baseline buffer."""
        x = self._to64(self.buffer)
        mode = self.transform if self.std is None else ("log" if self.std.log else "none")
        self.std = Standardizer.fit(x, mode)
        u = self.std.apply(x)
        phi = ar1_coefficient(u, 0.97)
        # prewhiten only significant autocorrelation (|phi| > 2 se): saves passes on i.i.d. streams
        self.phi = phi if abs(phi) > 2 / math.sqrt(x.size) else 0.0
        e = self._prewhiten(u, None)
        self.e_prev = float(e[-1])
        a = successive_abs(e, None)
        self.w_mean, self.w_std = float(a.mean()), float(a.std()) or 1.0
        w = abs_deviation(a, 0.0, 1.0)
        w = (w - self.w_mean) / self.w_std
        # neighbouring |differences| share a sample: their lag-1 autocorrelation (~0.22 for Gaussian
        # data) stretches excursions; calibrate on the long-run variance 1 + 2 rho
        lrv = 1.0 + 2.0 * float(np.clip(ar1_coefficient(w, 0.45), 0.0, 0.45))
        arl = split_budget(self.budget * SAFETY, self.SHARES)
        k, ks, n = self.K, self.K_SCALE, x.size

        def th(
            name: str,
            kk: float,
            sample: np.ndarray,
            mean_err: float,
            lrv: float = 1.0,
            var_err: float = 1.2247,
        ) -> float:
            # rounded root: cache-friendly, and it is noisy to that level anyway
            theta = round(cramer_root(sample, kk, 2 * kk) / lrv, 3)
            return predictive_threshold(arl[name], kk, n, theta, mean_err, round(var_err, 3))

        # prewhitening with an estimated phi leaves a long-run variance ((1 - phi^) / (1 - phi))^2:
        # its relative sd is sqrt((1 + phi) / ((1 - phi) n)) -- large as phi nears 1 -- on top of the
        # scale's own error (1.5 / n); the thresholds integrate over it
        v_err = math.sqrt(1.5 + ((1 + self.phi) / (1 - self.phi) if self.phi else 0.0))
        hs = {
            "cusum-mean-up": th("cusum-mean-up", k, e, 1.0, 1.0, v_err),
            "cusum-mean-down": th("cusum-mean-down", k, -e, 1.0, 1.0, v_err),
            # |d| also moves with the error of the scale estimate: 1.4 x the error of a mean
            "cusum-scale-up": th("cusum-scale-up", ks, w, 1.4, lrv),
            "cusum-scale-down": th("cusum-scale-down", ks, -w, 1.4, lrv),
        }
        edges, counts = quantile_bins(e)
        crit = chi2_critical(min(0.5, (self.SHAPE_WINDOW // 2) / arl["chi2-shape"]), edges.size)
        # The scale CUSUMs run on |d| itself: (|d| - m)/s - ks summed is linear, so k and h convert
        # to |d| units exactly (k_up = m + ks s, k_down = ks s - m, h x s) and the per-sample
        # standardisation of w disappears from the hot path.
        m, sd = self.w_mean, self.w_std
        params = {
            "cusum-mean-up": (k, hs["cusum-mean-up"]),
            "cusum-mean-down": (k, hs["cusum-mean-down"]),
            "cusum-scale-up": (m + ks * sd, hs["cusum-scale-up"] * sd),
            "cusum-scale-down": (ks * sd - m, hs["cusum-scale-down"] * sd),
        }
        if not self.detectors:
            t = self.samples
            self.detectors = [
                Cusum(*params["cusum-mean-up"], 1),
                Cusum(*params["cusum-mean-down"], -1),
                ScaleCusum(*params["cusum-scale-up"], 1),
                ScaleCusum(*params["cusum-scale-down"], -1),
                WindowedShape(edges, counts, self.SHAPE_WINDOW, crit),
            ]
            for d in self.detectors:
                d.t = t  # type: ignore[attr-defined]
                if isinstance(d, Cusum):
                    d.last_zero = t - 1
        else:
            for d in self.detectors[:4]:
                assert isinstance(d, Cusum)
                d.k, d.h = params[d.label]
            shape = self.detectors[4]
            assert isinstance(shape, WindowedShape)
            shape.edges, shape.base, shape.crit = edges, counts, crit
            shape.cur, shape.filled = np.zeros(counts.size, np.int64), 0  # restart the window on new bins
            shape.prev = np.zeros(counts.size, np.int64)
        self._fits += 1
        self.base_n = x.size
        if self.base_n >= self._cap_n:
            self.frozen = True
            self.buffer = np.zeros(0, np.float32)

    def _slow_accumulate(self, e: np.ndarray, d: np.ndarray, ce: np.ndarray, cd: np.ndarray) -> None:
        """Add a Stable segment's sums (those of e and d are the last entries of their cumsums, which
        the detectors have already computed); at a block boundary move the baseline a little."""
        n, se, see, sd = self.slow
        self.slow = [
            n + e.size,
            se + float(ce[e.size - 1]),
            see + float(np.einsum("i,i->", e, e)),
            sd + float(cd[d.size - 1]),
        ]
        if self.slow[0] < self.SLOW_BLOCK:
            return
        assert self.std is not None
        n, se, see, sd = self.slow
        a, phi = self.SLOW_RATE, self.phi
        mean_e = se / n
        # a level offset m in u shows in the innovations as m (1 - phi) / sqrt(1 - phi^2)
        mean_u = mean_e * math.sqrt(1 - phi * phi) / (1 - phi)
        std_e = math.sqrt(max(see / n - mean_e * mean_e, 1e-12))
        mu0, sigma0 = self.std.mu, self.std.sigma
        self.std.mu += a * self.std.sigma * mean_u
        self.std.sigma *= 1 + a * (std_e - 1)
        # keep the shape bins where they were in the clipped-z space: u' = r u + c maps the
        # innovations e' = r e + c (1 - phi) / sqrt(1 - phi^2)
        shape = self.detectors[4]
        assert isinstance(shape, WindowedShape)
        r, c = sigma0 / self.std.sigma, (mu0 - self.std.mu) / self.std.sigma
        shape.edges = shape.edges * r + c * (1 - phi) / math.sqrt(1 - phi * phi)
        self.w_mean += a * (sd / n - self.w_mean)
        ks, m, s = self.K_SCALE, self.w_mean, self.w_std
        up, down = self.detectors[2], self.detectors[3]
        assert isinstance(up, Cusum)
        assert isinstance(down, Cusum)
        up.k, down.k = m + ks * s, ks * s - m
        self.slow = [0, 0.0, 0.0, 0.0]
        self._fits += 1  # parameters changed: recompute detector inputs from here on

    def _prewhiten(self, u: np.ndarray, u_prev: float | None) -> np.ndarray:
        """AR(1) innovations, rescaled to the variance of u (so k = 0.5 keeps its meaning)."""
        phi = self.phi
        if phi == 0.0:
            return u
        e = u.copy()
        e[1:] -= phi * u[:-1]
        if u_prev is not None:
            e[0] -= phi * u_prev
        e *= 1.0 / math.sqrt(1.0 - phi * phi)
        return e

    def _inputs(self, x: np.ndarray, i: int, end: int) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Detector inputs and their cumsums for x[i:end]. Computed once per batch from ``i`` on (and
        again only after a refit), then sliced: a batch split by alarms is not re-standardised and
        re-summed for every piece."""
        c = self._cache
        if c is None or c[0] != self._fits or i < c[1] or end > c[1] + c[2].size:
            assert self.std is not None
            # only up to the segment's end: a segment ends at a milestone, a slow-update boundary or a
            # Drifting chunk's end, and a Stable segment cut short by an alarm is reused after recovery
            u = self.std.apply(x[i:end])
            u_prev = None if self.x_prev is None else float(self.std.apply(np.array([self.x_prev]))[0])
            e = self._prewhiten(u, u_prev)
            w = successive_abs(e, self.e_prev)  # the scale CUSUMs work in |d| units (see _fit)
            c = self._cache = (self._fits, i, e, w, np.cumsum(e), np.cumsum(w))
        _, base, e, w, ce, cw = c
        a, b = i - base, end - base
        e, w = e[a:b], w[a:b]
        if a > 0:
            ce = ce[a:b] - ce[a - 1]
            cw = cw[a:b] - cw[a - 1]
        else:
            ce, cw = ce[:b], cw[:b]
        return [e, e, w, w, e], [ce, ce, cw, cw, None]

    # -- the state machine ------------------------------------------------------------------------------

    def seed(self, values: np.ndarray) -> None:
        """Baseline from explicit reference values (see ``StreamMonitor.seed``). The first
        ``max(min(window, BUFFER_CAP), min_samples)`` usable values are fitted, the first ``window`` go
        into the baseline summary; with enough values the baseline is frozen at once (no refinement
        from the stream: it is what the user asked for; the slow update while Stable still runs)."""
        if self.state != State.INITIALIZING:
            raise ValueError("the baseline is already fitted")
        x = np.asarray(values, dtype=np.float64).ravel()
        ok = np.isfinite(x) & (np.abs(x) <= MAX_ABS)
        if not ok.all():
            self.rejected += int(x.size - np.count_nonzero(ok))
            x = x[ok]
        if x.size == 0:
            return
        take = x[: max(0, max(self._cap_n, self.min_samples) - self.buffer.size)]
        self._learn(take)
        rest = x[take.size :]
        if rest.size:
            room = self.window - self.baseline.n
            if room > 0:
                self.baseline.update(rest[:room])
            self.samples += rest.size
            self.x_prev = float(rest[-1])
        if self.buffer.size >= self.min_samples:
            self._fit()
            self.state = State.STABLE
            self.frozen = True
            self.buffer = np.zeros(0, np.float32)

    def update(self, values: np.ndarray) -> list[Transition]:
        x = np.asarray(values, dtype=np.float64).ravel()
        pos_map: np.ndarray | None = None
        # one fused pass: a sum of squares <= MAX_ABS**2 (NaN-free) proves every value finite and in range
        if x.size and not float(np.einsum("i,i->", x, x)) <= MAX_ABS * MAX_ABS:
            ok = np.isfinite(x) & (np.abs(x) <= MAX_ABS)
            if not ok.all():
                pos_map = np.flatnonzero(ok)
                self.rejected += int(x.size - pos_map.size)
                x = x[ok]
        out: list[Transition] = []
        start = self.samples
        i = 0
        n = x.size
        self._drift_chunks = 0
        while i < n:
            if self.state == State.INITIALIZING:
                take = x[i : i + self.min_samples - self.buffer.size]
                self._learn(take)
                i += take.size
                if self.buffer.size >= self.min_samples:
                    self._fit()
                    self.state = State.STABLE
                continue
            end = n
            if self.state == State.STABLE:
                if self.frozen:
                    end = min(n, i + self.SLOW_BLOCK - self.slow[0])
                else:
                    end = min(n, i + max(1, self._next_milestone() - self.buffer.size))
            else:
                # recovery usually comes within a few hundred samples: scan growing chunks rather
                # than the whole rest of a big batch (the capped scan costs log2(n) passes)
                end = min(n, i + max(8 * self.recovery, 1024) * (1 << min(self._drift_chunks, 16)))
                self._drift_chunks += 1
                if self.adopt_after:  # stop the chunk where the drift is old enough to adopt
                    end = min(end, i + max(1, self.drift_since + self.adopt_after - self.samples))
            seg = x[i:end]
            adopted_now = False
            inputs, csums = self._inputs(x, i, end)
            if self.state == State.STABLE:
                p, det = self._first_alarm(inputs, csums)
                used = seg.size if p < 0 else p + 1
                if not self.frozen:
                    keep = used
                    if det is not None:
                        keep = max(0, min(used, int(det.onset or 0) - self.samples))  # type: ignore[attr-defined]
                    self._learn(seg[:keep])
                    if self.buffer.size >= self._next_milestone():
                        self._fit()
                elif self.state == State.STABLE:
                    ce, cw = csums[0], csums[2]
                    assert ce is not None
                    assert cw is not None
                    self._slow_accumulate(inputs[0][:used], inputs[2][:used], ce, cw)
                if det is not None:
                    out.append(self._start(det, x, i + p, start, pos_map))
                    self._drift_chunks = 0  # each Drifting episode starts with a small chunk
            else:
                p = self._first_recovery(inputs, [self.CAP * getattr(d, "h", 0.0) for d in self.detectors])
                used = seg.size if p < 0 else p + 1
                if p >= 0:
                    out.append(self._end(x, i + p, start, pos_map))
                elif self.adopt_after and self.samples + used - self.drift_since >= self.adopt_after:
                    out.append(self._adopt(x, i + used - 1, start, pos_map))
                    adopted_now = True
            self.samples += used
            self.x_prev = float(seg[used - 1])
            if not adopted_now:  # after an adoption _fit has set it on the new scale
                self.e_prev = float(inputs[0][used - 1])
            i += used
        self._cache = None
        self._summarise(x)
        return out

    def _to32(self, x: np.ndarray) -> np.ndarray:
        """float64 -> the float32 kept in state (buffer, ring), scaled by a power of two ``unit`` so
        streams of 1e300 or 1e-300 fit (exact: only the exponent changes); clipped to float32's range."""
        if self.unit != 1.0:
            x = x * (1.0 / self.unit)
        return np.clip(x, -F32_MAX, F32_MAX).astype(np.float32)

    def _to64(self, a: np.ndarray) -> np.ndarray:
        out = a.astype(np.float64)
        if self.unit != 1.0:
            out *= self.unit
        return out

    def _learn(self, x: np.ndarray) -> None:
        """Add accepted values to the baseline (buffer for fitting, summary for evidence)."""
        if x.size == 0:
            return
        room = self.window - self.baseline.n
        if room > 0:
            self.baseline.update(x[:room])
        if self.samples == 0 and self.buffer.size == 0:
            top = float(np.abs(x).max())
            if top > 1e30 or 0.0 < top < 1e-30:
                self.unit = 2.0 ** round(math.log2(top))
        if not self.frozen:
            self.buffer = np.concatenate([self.buffer, self._to32(x)])
        if self.state == State.INITIALIZING:
            self.samples += x.size
            self.x_prev = float(x[-1])

    def _summarise(self, x: np.ndarray) -> None:
        """Ring of recent values (evidence) and the tumbling 'current' summary. Small batches only
        go to the ring; the summary takes them RING at a time (a sketch update costs the same for 1
        value as for 256), always as float32-rounded values so the result does not depend on batching.
        """
        if x.size == 0:
            return
        pending = self.pending + x.size
        if pending < self.RING:
            self.ring = np.concatenate([self.ring, self._to32(x)])[-self.RING :]
            self.pending = pending
            return
        old = self.ring[self.ring.size - self.pending :] if self.pending else self.ring[:0]
        vals = self._to64(np.concatenate([old, self._to32(x)]))
        self.current.update(vals)
        self.ring = self._to32(vals[-self.RING :])
        self.pending = 0

    def _recent(self, x: np.ndarray, upto: int) -> np.ndarray:
        """The last RING raw values up to batch position ``upto`` (inclusive)."""
        have = np.concatenate([self.ring, self._to32(x[max(0, upto + 1 - self.RING) : upto + 1])])
        return self._to64(have[-self.RING :])

    def _raw_pos(self, p: int, pos_map: np.ndarray | None) -> int:
        """Accepted-sample position in this batch -> position in the batch as passed in."""
        if pos_map is None or p < 0:
            return p
        return int(pos_map[p])

    def _start(
        self, det: Detector, x: np.ndarray, p: int, start: int, pos_map: np.ndarray | None
    ) -> Transition:
        self.state = State.DRIFTING
        self.normal_run = 0
        self.drift_since = start + p + 1  # samples seen when the drift began
        label = str(getattr(det, "label", det.name))
        self.alarm_detector = label
        onset = getattr(det, "onset", None)
        onset_abs = int(onset) if onset is not None else start + p
        onset_rel = onset_abs - start
        recent = self._recent(x, p)
        n_post = min(recent.size, max(1, start + p + 1 - onset_abs))
        return Transition(
            type=EventType.DRIFT_START,
            position=self._raw_pos(p, pos_map),
            detector=label,
            score=round(max(det.score, 0.5), 6),
            onset_position=self._raw_pos(onset_rel, pos_map),
            evidence=self._evidence(recent[-n_post:], det),
        )

    def _end(self, x: np.ndarray, p: int, start: int, pos_map: np.ndarray | None) -> Transition:
        self.state = State.STABLE
        recent = self._recent(x, p)[-self.recovery :]
        label = self.alarm_detector
        self.alarm_detector = ""
        return Transition(
            type=EventType.DRIFT_END,
            position=self._raw_pos(p, pos_map),
            detector=label,
            score=round(self.score, 6),
            onset_position=None,
            evidence={
                "reason": "recovered",
                "baseline": self._baseline_described(),
                "current": describe(recent),
            },
        )

    def _adopt(self, x: np.ndarray, p: int, start: int, pos_map: np.ndarray | None) -> Transition:
        """The drift has lasted ``adopt_after`` samples: its regime becomes the baseline.

        The new baseline is fitted from the most recent values (the ring, all post-onset once the drift
        is older than RING), exactly as a learned baseline is fitted at start-up; if the ring holds
        fewer than ``min_samples`` values the stream learns the rest from the samples that follow
        (Initializing). The DRIFT_END carries the replaced baseline."""
        recent = self._recent(x, p)
        label = self.alarm_detector
        replaced = self._baseline_described()
        self.adopt(recent)
        return Transition(
            type=EventType.DRIFT_END,
            position=self._raw_pos(p, pos_map),
            detector=label,
            score=0.0,
            onset_position=None,
            evidence={
                "reason": "adopted",
                "replaced": replaced,
                "baseline": describe(recent),
                "current": describe(recent),
            },
        )

    def adopt(self, values: np.ndarray | None = None) -> None:
        """Make ``values`` (default: the recent ring) the new baseline and go Stable -- the engine call
        behind automatic adoption and ``driftwatch ack --adopt``. Detector thresholds are re-derived
        from the new baseline; counters (samples, rejected) carry on."""
        x = self._to64(self.ring) if values is None else np.asarray(values, np.float64)
        self.state = State.INITIALIZING
        self.alarm_detector = ""
        self.normal_run = 0
        self.detectors = []
        self.std = None
        self.frozen = False
        self.base_n = 0
        self.phi = 0.0
        self.slow = [0, 0.0, 0.0, 0.0]
        self.baseline = NumericSummary()
        self._described = None
        self.buffer = np.zeros(0, np.float32)
        # the 'current' window restarts too: its pre-adoption samples would make the operator's merged
        # baseline-vs-current test call the adopted regime a drift until they age out
        self.current = _Tumbling(self.window, NumericSummary)
        self.pending = 0
        self.adopted += 1
        x = x[: max(self._cap_n, self.min_samples)]
        if x.size:
            self.baseline.update(x[: self.window])
            self.buffer = self._to32(x)
        if self.buffer.size >= self.min_samples:
            self._fit()
            self.state = State.STABLE

    def _baseline_described(self) -> dict[str, Any]:
        """The baseline's evidence numbers, cached per baseline size (sketch quantiles are not free)."""
        c = self._described
        if c is None or c[0] != self.baseline.n:
            c = self._described = (self.baseline.n, self.baseline.describe())
        return dict(c[1])

    def _evidence(self, post: np.ndarray, det: Detector) -> dict[str, Any]:
        ev: dict[str, Any] = {"baseline": self._baseline_described(), "current": describe(post)}
        assert self.std is not None
        ev["transform"] = "log" if self.std.log else "none"
        ev["statistic"] = float(getattr(det, "s", getattr(det, "stat", 0.0)))
        ev["threshold"] = float(getattr(det, "h", getattr(det, "crit", 0.0)))
        b, c = ev["baseline"], ev["current"]
        if b["std"] and c["mean"] is not None:
            ev["shift_sigma"] = (c["mean"] - b["mean"]) / b["std"]
            ev["std_ratio"] = (c["std"] or 0.0) / b["std"]
        return ev

    # -- summaries and serialisation --------------------------------------------------------------------

    def baseline_summary(self) -> dict[str, Any]:
        return self.baseline.to_dict()

    def current_summary(self) -> dict[str, Any]:
        merged: NumericSummary = self.current.merged()
        if self.pending:  # values still waiting in the ring
            extra = NumericSummary()
            extra.update(self._to64(self.ring[self.ring.size - self.pending :]))
            merged = merged.merge(extra)
        return merged.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self._params(),
            "transform": self.transform,
            **self._state_dict(),
            "buffer": pack_f32(self.buffer),
            "base_n": self.base_n,
            "frozen": self.frozen,
            "std": self.std.to_dict() if self.std else None,
            "phi": self.phi,
            "w": [self.w_mean, self.w_std],
            "x_prev": self.x_prev,
            "e_prev": self.e_prev,
            "slow": self.slow,
            "baseline": self.baseline.to_dict(),
            "current": self.current.to_dict(),
            "ring": pack_f32(self.ring),
            "pending": self.pending,
            "unit": self.unit,
            "detectors": [d.to_dict() for d in self.detectors],
            "adopt": [self.adopt_after, self.drift_since, self.adopted],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericMonitor:
        ms, win, budget, rec, warn, crit = d["params"]
        after, since, adopted = d.get("adopt", (0, 0, 0))  # checkpoints from before the lifecycle
        m = cls(ms, win, budget, rec, warn, crit, d["transform"], int(after))
        m.drift_since, m.adopted = int(since), int(adopted)
        m._restore_state(d)
        m.buffer = unpack_f32(d["buffer"])
        m.base_n, m.frozen = int(d["base_n"]), bool(d["frozen"])
        m.std = Standardizer.from_dict(d["std"]) if d["std"] else None
        m.phi = float(d["phi"])
        m.w_mean, m.w_std = (float(v) for v in d["w"])
        m.x_prev = d["x_prev"]
        m.e_prev = float(d["e_prev"])
        m.slow = [int(d["slow"][0]), *(float(v) for v in d["slow"][1:])]
        m.baseline = NumericSummary.from_dict(d["baseline"])
        m.current.load(d["current"], NumericSummary)
        m.ring = unpack_f32(d["ring"])
        m.pending = int(d["pending"])
        m.unit = float(d["unit"])
        dets = d["detectors"]
        if dets:
            m.detectors = [
                Cusum.from_dict(dets[0]),
                Cusum.from_dict(dets[1]),
                ScaleCusum.from_dict(dets[2]),
                ScaleCusum.from_dict(dets[3]),
                WindowedShape.from_dict(dets[4]),
            ]
        return m


# -- categorical --------------------------------------------------------------------------------------


class CategoricalMonitor(_StateMachine):
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
        self.current = _Tumbling(window, CategoryCounts)
        self.ring: list[str] = []  # the last WINDOW values: the alarming window, for evidence
        self.fixed = False  # a seeded baseline: not refined from the stream

    @classmethod
    def from_spec(cls, spec: Any, feature: Any = None) -> CategoricalMonitor:
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
        if self.detectors:
            old = self.detectors[0]
            test.t = old.t  # type: ignore[attr-defined]
        else:
            test.t = self.samples
        self.detectors = [test]

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

    def update(self, values: np.ndarray) -> list[Transition]:
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
            test = self.detectors[0]
            assert isinstance(test, WindowedGTest)
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
                p = self._first_recovery([codes], [0.0])
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
            self.ring = _decode_names(_encode_names((self.ring + vals[-self.WINDOW :])[-self.WINDOW :]))
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
            "ring": _encode_names(self.ring),
            "fixed": self.fixed,
            "detectors": [d.to_dict() for d in self.detectors],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalMonitor:
        m = cls(*d["params"])
        m._restore_state(d)
        m.baseline = CategoryCounts.from_dict(d["baseline"])
        m.current.load(d["current"], CategoryCounts)
        m.ring = _decode_names(d["ring"])
        m.fixed = bool(d.get("fixed", False))
        m.detectors = [WindowedGTest.from_dict(x) for x in d["detectors"]]
        return m
