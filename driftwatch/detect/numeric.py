"""``NumericMonitor``: the default monitor of a numeric stream -- a baseline, the detectors, the lifecycle.

Lifecycle (``docs/detection.md`` for users):

* **Initializing** -- the first ``min_samples`` values are the baseline (longer for slow streams with
  timestamps under ``seasonality`` auto/daily/weekly: two full cycles, so the time of day is learned
  rather than mistaken for a drift). Then ``numeric_fit.fit`` derives every parameter, and the stream
  is Stable.
* **Stable** -- the fused loop (``kernel``) runs every detector on every sample and stops at the first
  alarm: DRIFT_START, with the alarming detector's change point as onset and evidence from the samples
  since then. While Stable the baseline keeps refining (refits at doubling sizes up to
  ``min(window, BUFFER_CAP)``), and once frozen follows slow changes: every ``SLOW_BLOCK`` Stable samples
  its centre, scale, |d| level and seasonal levels move ``SLOW_RATE`` of the way to what the block saw.
* **Drifting** -- statistics are capped at ``cap x threshold`` so they can come down soon after the
  change ends. The drift ends by **recovery** (``recovery`` consecutive samples with every statistic
  below half its threshold: hysteresis, no flapping) or by **adoption** (it lasted ``adopt_after``
  samples, or ``adopt_after_seconds``: the new regime becomes the baseline). Adoption moves the
  baseline's location and spread to the recent samples' and keeps everything else it knows about the
  stream (transform, seasonal shape, autocorrelation, tails, thresholds): a level that moved is a new
  normal, the stream's character is not new -- except a tail or a shape the adopted regime itself
  would call drifted, which become the regime's (``adoption.py``).

Batches are split only at events, milestones and slow-update blocks, so the Python loop runs once per
event, never per sample. The result does not depend on how a stream is cut into batches.
"""

from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .adoption import rereference
from .base import EventType, State, Transition, severity_of, statistic_score
from .evidence import MAX_ABS, describe, pack_f32, unpack_f32
from .kernel import DETECTORS, SHAPE, Arrays, Code, P, S, run
from .numeric_fit import DESIGN, Baseline, baseline_info, fit
from .seasonal import SeasonalProfile, covers, learning_span
from .state_machine import StateMachine
from .summaries import NumericSummary
from .transforms import Standardizer
from .window import Tumbling

if TYPE_CHECKING:
    from driftwatch.vocab.spec import FeatureSpec, MonitorSpec

F32_MAX = float(np.finfo(np.float32).max)
_F32_LO, _F32_HI = np.float64(-F32_MAX), np.float64(F32_MAX)  # as numpy scalars: no conversion per call
_EMPTY = np.zeros(0, np.float64)
#: the since-onset summary of a stream that has never drifted, shared: never updated (a drift start
#: gives the stream its own), so a Stable stream holds no empty summary of its own (~300 bytes)
_NO_ONSET = NumericSummary()


def _last(kept: np.ndarray, new: np.ndarray, cap: int) -> np.ndarray:
    """The last ``cap`` of ``kept`` then ``new``, as an array of its own."""
    if new.size >= cap:
        return new[-cap:].copy() if new.base is not None or new.size > cap else new
    return np.concatenate([kept, new])[-cap:]


def _round6(v: float) -> float:
    """An event's score to six decimals as numpy rounds a float64 (``rint(v * 1e6) / 1e6``, half to even;
    not Python's correctly rounded ``round(v, 6)``), in Python floats: numpy's scalar ``round`` costs
    ~10 us, and the scores were numpy scalars when this was written."""
    y = v * 1e6
    if not math.isfinite(y):
        return float(np.round(np.float64(v), 6))
    return math.copysign(float(round(y)), y) / 1e6


def _pack64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, "<f8").tobytes()).decode("ascii")


def _unpack64(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), "<f8").copy()


def _pack_i64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, "<i8").tobytes()).decode("ascii")


def _unpack_i64(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), "<i8").copy()


class NumericMonitor(StateMachine):
    """The default monitor for a numeric stream.

    >>> rng = np.random.default_rng(7)
    >>> m = NumericMonitor(min_samples=100, window=1000, budget=1_000_000)  # one false alarm per 1e6
    >>> m.update(rng.normal(10, 2, 5000)), m.state.value
    ([], 'Stable')
    >>> [t.type.value for t in m.update(rng.normal(13, 2, 200))]
    ['DRIFT_START']
    """

    kind: ClassVar[str] = "numeric"
    can_adopt: ClassVar[bool] = True
    BUFFER_CAP = 1024  # baseline values kept for (re)fitting once Stable; dropped when frozen
    #: a seasonal baseline is learned when two cycles hold at most this many samples (slow telemetry:
    #: one sample every ~42 s or slower for a daily cycle), whatever the window; a faster stream has its
    #: daily drift followed by the slow update instead. The learning buffer holds at most this many.
    LEARN_CAP = 4096
    RING = 256  # recent raw values kept for evidence and adoption (more while Drifting: _ring_cap)
    SLOW_BLOCK = 8192
    SLOW_RATE = 0.08
    __slots__ = (
        "_described",
        "adopt_after",
        "adopt_after_seconds",
        "adopted",
        "arr",
        "base_n",
        "baseline",
        "bl",
        "buffer",
        "buffer_ts",
        "current",
        "design",
        "drift_since",
        "drift_since_ts",
        "first_n",
        "frozen",
        "learned",
        "note",
        "onset",
        "onset_fed",
        "pending",
        "ring",
        "ring_ts",
        "seasonal_learning",
        "seasonality",
        "stride",
        "transform",
        "ts_first",
        "ts_last",
        "unit",
    )

    def __init__(
        self,
        min_samples: int = 100,
        window: int = 1000,
        budget: float = 10_000,
        recovery: int = 50,
        warning: float = 0.2,
        critical: float = 0.5,
        transform: str = "auto",
        adopt_after: int | None = 0,
        seasonality: str = "none",
        adopt_after_seconds: float = 0.0,
    ) -> None:
        super().__init__(min_samples, window, budget, recovery, warning, critical)
        self.transform = transform
        self.seasonality = seasonality
        # samples of Drifting before adoption: 0 never (or by time), None twice the baseline's size
        self.adopt_after = None if adopt_after is None else int(adopt_after)
        self.adopt_after_seconds = float(adopt_after_seconds)
        self.design = DESIGN
        self.drift_since = 0  # samples seen when the current drift began
        self.drift_since_ts: float | None = None
        self.adopted = 0
        # learning / refining
        self.buffer = np.zeros(0, np.float32)
        self.buffer_ts = np.zeros(0, np.float64)
        self.stride = 1  # learning keeps every stride-th value (thinning by halves)
        self.learned = 0  # values offered to the learning buffer (for the stride)
        self.ts_first: float | None = None
        self.ts_last: float | None = None
        self.seasonal_learning: bool | None = None  # decided at min_samples from the sampling rate
        self.base_n = 0
        self.first_n = 0  # samples of the first fit (the learning period's)
        self.frozen = False
        self.bl: Baseline | None = None
        self.arr = Arrays.empty()
        self.note = ""
        # summaries and evidence
        self.baseline = NumericSummary()
        self.current = Tumbling(window, NumericSummary)
        self.ring = np.zeros(0, np.float32)
        self.ring_ts = np.zeros(0, np.float64)
        self.onset = _NO_ONSET  # while Drifting: every sample since the onset (evidence); see _start
        self.onset_fed = 0  # samples seen when ``onset`` was last fed
        self.pending = 0
        self.unit = 1.0
        self._described: tuple[int, dict[str, Any]] | None = None

    @classmethod
    def from_spec(cls, spec: MonitorSpec, feature: FeatureSpec | None = None) -> NumericMonitor:
        b = spec.baseline
        return cls(
            b.min_samples,
            b.window,
            spec.sensitivity.false_alarms_per,
            spec.recovery.consecutive_normal,
            spec.sensitivity.warning,
            spec.sensitivity.critical,
            feature.transform if feature is not None else "auto",
            None if b.adopt_after is None and not b.adopt_seconds else (b.adopt_after or 0),
            b.seasonality,
            b.adopt_seconds,
        )

    # -- views ----------------------------------------------------------------------------------------

    @property
    def score(self) -> float:
        if self.bl is None:
            return 0.0
        # Python floats (the same IEEE values as numpy's scalars, at a tenth of the cost per operation)
        p, s = self.arr.params.tolist(), self.arr.state.tolist()
        best = 0.0
        for j in range(6):
            h = p[P.H0 + j]
            if h > 0:
                best = max(best, statistic_score(s[S.S0 + j], h))
        if p[P.CRIT] > 0:
            best = max(best, statistic_score(s[S.SHSTAT], p[P.CRIT]))
        return best

    @property
    def detector(self) -> str:
        if self.state == State.DRIFTING and self.alarm_detector:
            return self.alarm_detector
        if self.bl is None:
            return ""
        p, s = self.arr.params, self.arr.state
        scores = [statistic_score(s[S.S0 + j], p[P.H0 + j]) if p[P.H0 + j] > 0 else -1.0 for j in range(6)]
        scores.append(statistic_score(s[S.SHSTAT], p[P.CRIT]) if p[P.CRIT] > 0 else -1.0)
        return DETECTORS[int(np.argmax(scores))]

    @property
    def severity(self) -> str:
        return severity_of(self.score, self.warning, self.critical)

    def standardised(self, x: np.ndarray, ts: np.ndarray | None = None) -> np.ndarray:
        """The detectors' input for raw values (transform, profile, standardisation, clip), as the
        baseline stands now: what a value "is" in baseline terms. Empty before the baseline is fitted."""
        if self.bl is None:
            return np.zeros(0)
        p = self.arr.params
        y = self.bl.std.transform(np.asarray(x, np.float64))
        if self.bl.profile is not None and ts is not None:
            y = self.bl.profile.apply(y, ts)
        out: np.ndarray = np.clip(p[P.A] * y + p[P.B], p[P.LO], p[P.HI])
        return out

    def band(
        self, n: int, ts: np.ndarray | None = None, width: float = 3.0
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The range of raw values the baseline calls normal (``width`` standardised units either side of
        its centre, and of the local level when there is one), at ``ts`` when a seasonal profile is in use:
        what ``replay --plot`` draws behind the stream. None before the baseline is fitted."""
        if self.bl is None:
            return None
        p, bl = self.arr.params, self.bl
        centre = self.arr.state[S.M] if p[P.LAM] > 0 else bl.z_center
        lo_z, hi_z = np.full(n, centre - width), np.full(n, centre + width)

        def back(z: np.ndarray) -> np.ndarray:
            y = (z - p[P.B]) / p[P.A]
            if bl.profile is not None and ts is not None:
                b = bl.profile.bin_of(ts)
                y = y * bl.profile.spread[b] + bl.profile.level[b]
            out: np.ndarray = np.exp(y) if bl.std.log else y
            return out

        return back(lo_z), back(hi_z)

    @property
    def follows_level(self) -> bool:
        return self.bl is not None and self.arr.params[P.LAM] > 0

    def info(self) -> dict[str, Any]:
        """What the fitted baseline decided (transform, seasonality, level gain), for notes."""
        return baseline_info(self.bl) if self.bl is not None else {}

    # -- learning -------------------------------------------------------------------------------------

    @property
    def _cap_n(self) -> int:
        return min(self.window, self.BUFFER_CAP)

    def _next_milestone(self) -> int:
        return min(self._cap_n, max(2 * self.base_n, self.min_samples))

    def _to32(self, x: np.ndarray) -> np.ndarray:
        """float64 -> the float32 kept in state, scaled by a power-of-two ``unit`` so streams of 1e300 or
        1e-300 fit (exact: only the exponent changes); clipped to float32's range."""
        # maximum/minimum: np.clip's result (NaN stays NaN) without its Python-level dispatch
        y = np.maximum(x * (1.0 / self.unit) if self.unit != 1.0 else x, _F32_LO)
        out: np.ndarray = np.minimum(y, _F32_HI, out=y).astype(np.float32)
        return out

    def _to64(self, a: np.ndarray) -> np.ndarray:
        out = a.astype(np.float64)
        if self.unit != 1.0:
            out *= self.unit
        return out

    def _wants_seasonal_learning(self) -> bool:
        """Decided once, when ``min_samples`` timestamped values are in: learn two cycles when they
        hold at most ``LEARN_CAP`` samples at the rate seen so far."""
        if self.seasonal_learning is None:
            ok = (
                self.seasonality != "none"
                and self.ts_first is not None
                and self.ts_last is not None
                and self.ts_last > self.ts_first
            )
            if ok:
                assert self.ts_first is not None
                assert self.ts_last is not None
                rate = (self.learned - 1) / (self.ts_last - self.ts_first)
                need = rate * learning_span(self.seasonality)
                ok = need <= self.LEARN_CAP
                if not ok:
                    self.note = (
                        f"seasonality {self.seasonality}: not learned (two cycles are {need:,.0f} samples "
                        f"at this rate; the slow baseline update follows the cycle instead)"
                    )
            self.seasonal_learning = ok
        return self.seasonal_learning

    @property
    def _keeps_ts(self) -> bool:
        """Whether timestamps are kept with the learning buffer and the ring: they serve only a seasonal
        profile (its fit, and ``_adjusted``), and once seasonal learning is ruled out no profile is ever
        fitted -- so then neither keeps them (2 kB a stream in the ring, up to 8 kB in the buffer)."""
        return self.seasonal_learning is not False

    def _learn(self, x: np.ndarray, ts: np.ndarray | None) -> None:
        """Add accepted values to the baseline buffer (and summary)."""
        if x.size == 0:
            return
        room = self.window - self.baseline.n
        if room > 0:
            self.baseline.update(self._adjusted(x[:room], None if ts is None else ts[:room]))
        if self.samples == 0 and self.buffer.size == 0 and self.bl is None:
            top = float(np.abs(x).max())
            if top > 1e30 or 0.0 < top < 1e-30:
                self.unit = 2.0 ** round(math.log2(top))
        if ts is not None:
            if self.ts_first is None:
                self.ts_first = float(ts[0])
            self.ts_last = float(ts[-1])
        if self.frozen:
            return
        idx = np.arange(self.learned, self.learned + x.size)
        self.learned += x.size
        keep = idx % self.stride == 0
        self.buffer = np.concatenate([self.buffer, self._to32(x[keep])])
        if not self._keeps_ts:
            self.buffer_ts = _EMPTY  # up to 8 kB a stream (8 MB per 1,000) while it refines
        elif ts is not None:
            self.buffer_ts = np.concatenate([self.buffer_ts, ts[keep]])
        while self.state == State.INITIALIZING and self.buffer.size > self.LEARN_CAP:
            self.buffer, self.stride = self.buffer[::2], self.stride * 2  # positions stay multiples
            if self.buffer_ts.size:
                self.buffer_ts = self.buffer_ts[::2]

    def _learning_done(self) -> bool:
        if self.learned < self.min_samples:
            return False
        if self.ts_first is None or not self._wants_seasonal_learning():
            return True
        assert self.ts_last is not None
        return covers(self.ts_first, self.ts_last, self.seasonality)

    def _fit(self) -> None:
        """(Re)fit every parameter from the buffer; statistics, onsets and the sample count carry on."""
        x = self._to64(self.buffer)
        ts = self.buffer_ts if self.buffer_ts.size == x.size and self.buffer_ts.size else None
        keep_log = None if self.bl is None else self.bl.std.log
        old = self.arr
        self.bl = fit(
            x,
            ts,
            budget=self.budget,
            recovery=self.recovery,
            transform=self.transform,
            seasonality=self.seasonality if self.seasonal_learning else "none",
            design=self.design,
            keep_log=keep_log,
        )
        if self.bl.profile is None and self.seasonal_learning and self.seasonality != "none":
            self.note = f"seasonality {self.seasonality}: no cycle found in the baseline"
        elif self.bl.profile is not None:
            self.note = (
                f"seasonality: {baseline_info(self.bl)['seasonality']} profile "
                f"(keeps {self.bl.profile.ratio:.0%} of the variance)"
            )
        arr = self.bl.arrays
        if self.base_n:  # a refit: the statistics and their onsets carry on
            arr.state[S.S0 : S.LZ5 + 1] = old.state[S.S0 : S.LZ5 + 1]
            for slot in (S.UPREV, S.EPREV, S.HAVEPREV, S.SLOW_N, S.SLOW_SE, S.SLOW_SEE, S.SLOW_SD):
                arr.state[slot] = old.state[slot]
        else:
            arr.state[S.LZ0 : S.LZ5 + 1] = self.samples - 1
            if self.bl.profile is not None and ts is not None:  # summaries in seasonally adjusted terms
                self.baseline = NumericSummary()
                self.baseline.update(self._adjusted(x[: self.window], ts[: self.window]))
                self._described = None
        # a wandering level keeps following while Drifting unless the old baseline must be kept
        arr.params[P.FOLLOW] = 0.0 if self.adopt_after == 0 and not self.adopt_after_seconds else 1.0
        arr.state[S.M] = self.bl.level
        arr.state[S.T] = old.state[S.T] if self.base_n else self.samples
        self.arr = arr
        self.base_n = x.size
        self.first_n = self.first_n or x.size
        if self.base_n >= self._cap_n:
            self.frozen = True
            self._unshare_ring()
            self.buffer = np.zeros(0, np.float32)
            self.buffer_ts = np.zeros(0, np.float64)

    def _adjusted(self, x: np.ndarray, ts: np.ndarray | None) -> np.ndarray:
        """Values for the mergeable summaries: seasonally adjusted once a profile is in use (each value
        moved to what it would be at the profile's average time), so the monitor-level test compares
        like with like; raw otherwise."""
        bl = self.bl
        if bl is None or bl.profile is None or ts is None:
            return x
        prof = bl.profile
        y = bl.std.transform(x)
        b = prof.bin_of(ts)
        adj = (y - prof.level[b]) / prof.spread[b] + float(prof.level.mean())
        out: np.ndarray = np.exp(adj) if bl.std.log else adj
        return out

    # -- the state machine ----------------------------------------------------------------------------

    def seed(self, values: np.ndarray) -> None:
        """Baseline from explicit reference values (see ``StreamMonitor.seed``): fitted at once and
        frozen (no refinement from the stream; the slow update still runs). No timestamps: no profile."""
        if self.state != State.INITIALIZING:
            raise ValueError("the baseline is already fitted")
        x = np.asarray(values, dtype=np.float64).ravel()
        ok = np.isfinite(x) & (np.abs(x) <= MAX_ABS)
        if not ok.all():
            self.rejected += int(x.size - np.count_nonzero(ok))
            x = x[ok]
        if x.size == 0:
            return
        self._unshare_ring()  # the buffer is replaced here, outside update
        take = x[: max(0, max(self._cap_n, self.min_samples) - self.buffer.size)]
        self.seasonal_learning = False
        self._learn(take, None)
        rest = x[take.size :]
        if rest.size:
            room = self.window - self.baseline.n
            if room > 0:
                self.baseline.update(rest[:room])
        self.samples += x.size
        if self.buffer.size >= self.min_samples:
            self._fit()
            self.state = State.STABLE
            self.frozen = True
            self._unshare_ring()
            self.buffer = np.zeros(0, np.float32)

    def update(self, values: np.ndarray, ts: np.ndarray | None = None) -> list[Transition]:
        x = np.ascontiguousarray(values, dtype=np.float64).ravel()
        t = None if ts is None else np.ascontiguousarray(ts, dtype=np.float64).ravel()
        pos_map: np.ndarray | None = None
        # one fused pass: a sum of squares <= MAX_ABS**2 (NaN-free) proves every value finite and in range
        if x.size and not float(np.einsum("i,i->", x, x)) <= MAX_ABS * MAX_ABS:
            ok = np.isfinite(x) & (np.abs(x) <= MAX_ABS)
            if not ok.all():
                pos_map = np.flatnonzero(ok)
                self.rejected += int(x.size - pos_map.size)
                x = np.ascontiguousarray(x[ok])
                t = None if t is None else np.ascontiguousarray(t[ok])
        if t is not None and not np.isfinite(t).all():
            t = None  # timestamps are optional: unusable ones are ignored, the values are not
        out: list[Transition] = []
        i, n = 0, x.size
        while i < n:
            if self.state == State.INITIALIZING:
                i += self._initializing(x, t, i)
                continue
            if self.state == State.STABLE:
                i += self._stable(x, t, i, pos_map, out)
            else:
                i += self._drifting(x, t, i, pos_map, out)
        self._summarise(x, t)
        return out

    def _initializing(self, x: np.ndarray, t: np.ndarray | None, i: int) -> int:
        if t is None and self.learned >= self.min_samples:
            take = x.size - i  # no timestamps in this batch: it cannot end a seasonal learning period
        elif self.learned < self.min_samples or t is None or self.seasonal_learning is False:
            take = min(x.size - i, max(1, self.min_samples - self.learned))
        else:  # learning two cycles: take what falls before the end of the second one
            assert self.ts_first is not None
            end = self.ts_first + learning_span(self.seasonality)
            take = max(1, int(np.searchsorted(t[i:], end, side="left")))
        seg_t = None if t is None else t[i : i + take]
        self._learn(x[i : i + take], seg_t)
        self.samples += take
        if self._learning_done():
            self._fit()
            self.state = State.STABLE
        return take

    def _stable(
        self, x: np.ndarray, t: np.ndarray | None, i: int, pos_map: np.ndarray | None, out: list[Transition]
    ) -> int:
        if self.frozen:
            limit = max(1, self.SLOW_BLOCK - int(self.arr.state[S.SLOW_N]))
        else:
            limit = max(1, self._next_milestone() - self.buffer.size)
        seg = x[i : i + limit]
        seg_t = None if t is None else t[i : i + limit]
        step = run(self.arr, seg, seg_t, False, limit)
        used = step.used
        self.samples += used
        if not self.frozen:
            self._learn(seg[:used], None if seg_t is None else seg_t[:used])
            if step.code == Code.ALARM:
                # the baseline learns only what came before the change: drop what followed its onset
                # (some of it may have come in earlier batches -- dropping, not skipping, keeps the
                # result independent of how the stream was batched)
                drop = min(self.samples - self._onset(step.detector), self.buffer.size - self.base_n)
                if drop > 0:
                    self.buffer = self.buffer[:-drop]
                    if self.buffer_ts.size:
                        self.buffer_ts = self.buffer_ts[:-drop]
            elif self.buffer.size >= self._next_milestone():
                self._fit()
        elif self.arr.state[S.SLOW_N] >= self.SLOW_BLOCK:
            self._slow_update()
        if step.code == Code.ALARM:
            out.append(self._start(step.detector, x, t, i + used - 1, pos_map))
        return used

    def _drifting(
        self, x: np.ndarray, t: np.ndarray | None, i: int, pos_map: np.ndarray | None, out: list[Transition]
    ) -> int:
        limit = x.size - i
        after = self._adopt_samples()
        if after:
            limit = min(limit, max(1, self.drift_since + after - self.samples))
        elif self.adopt_after_seconds and t is not None and self.drift_since_ts is not None:
            due = self.drift_since_ts + self.adopt_after_seconds
            limit = min(limit, max(1, int(np.searchsorted(t[i:], due, side="left"))))
        seg = x[i : i + limit]
        step = run(self.arr, seg, None if t is None else t[i : i + limit], True, limit)
        self.samples += step.used
        last = i + step.used - 1
        if step.code == Code.RECOVERED:
            out.append(self._end(x, t, last, pos_map))
        elif self._adoption_due(t, last):
            out.append(self._adopt_drift(x, t, last, pos_map))
        return step.used

    def _adopt_samples(self) -> int:
        """Samples of Drifting before adoption (0: never, or by time). The default is twice the size of
        the baseline (at least of the one it is designed to grow into): a drift that lasted twice as
        long as the monitor needed to learn "normal" is, by its own standard, a new normal -- 2 x window
        (2,000) samples for a fast stream; for slow telemetry that learned over two days, twice what
        it holds: four days for one sampled every five minutes while it refines, up to 2 x window."""
        if self.adopt_after is None:
            design = max(self.first_n, self.min_samples) if self.seasonal_learning else self.window
            return 2 * max(self.base_n, design)
        return self.adopt_after

    def _adoption_due(self, t: np.ndarray | None, last: int) -> bool:
        after = self._adopt_samples()
        if after:
            return self.samples - self.drift_since >= after
        if self.adopt_after_seconds and t is not None and self.drift_since_ts is not None:
            return float(t[last]) >= self.drift_since_ts + self.adopt_after_seconds
        return False

    def _slow_update(self) -> None:
        """Every SLOW_BLOCK Stable samples: centre, scale, |d| level and the seasonal levels move
        SLOW_RATE of the way to the block's (time constant ~1e5 samples: seasonal creep is absorbed, a
        step change is long detected before it matters). With a local level the level follows the
        stream already: only the scale moves."""
        assert self.bl is not None
        p, s = self.arr.params, self.arr.state
        n = s[S.SLOW_N]
        mean_e, std_e = s[S.SLOW_SE] / n, math.sqrt(max(s[S.SLOW_SEE] / n - (s[S.SLOW_SE] / n) ** 2, 1e-12))
        rate, phi = self.SLOW_RATE, p[P.PHI]
        a_then = p[P.A]  # the mapping the block's profile sums were taken with
        # a level offset m in u shows in the innovations as m (1 - phi) / sqrt(1 - phi^2)
        mean_u = mean_e * p[P.PHIDEN] / (1 - phi) if p[P.LAM] == 0 else 0.0
        # z' = (z - rate * mean_u) / (1 + rate (std_e - 1)): move B (and A) so the block maps to 0, 1
        c = 1.0 / (1.0 + rate * (std_e - 1.0))
        p[P.A] *= c
        p[P.B] = (p[P.B] - rate * mean_u) * c
        p[P.LO] = (p[P.LO] - rate * mean_u) * c
        p[P.HI] = (p[P.HI] - rate * mean_u) * c
        s[S.M] *= c
        shift = rate * mean_u * c  # keep the shape bins where they were relative to the data
        edges = self.arr.edges * c - shift * (1 - phi) / p[P.PHIDEN]
        self.arr.edges = np.ascontiguousarray(edges)
        self.bl.w_mean += rate * (s[S.SLOW_SD] / n - self.bl.w_mean)
        ks = self.design.k_scale
        p[P.KUP], p[P.KDN] = self.bl.w_mean + ks * self.bl.w_std, ks * self.bl.w_std - self.bl.w_mean
        prof = self.bl.profile
        if prof is not None:
            sums, cnt = self.arr.profile_sums[: prof.bins], self.arr.profile_sums[prof.bins :]
            seen = cnt > 0
            # a bin's mean standardised value *relative to the block's*, back in y units, moves its
            # level: the profile follows the cycle's shape, the centre above follows the stream's level.
            # Relative to B instead, a level B already carries (an adopted step) moved every bin too and
            # the stream read as shifted back by rate x the step (mean alarms every slow update after
            # an adoption on a seasonal stream: 11.5 per 10k samples, bench/detection.py)
            centre = float(sums[seen].sum() / cnt[seen].sum()) if seen.any() else 0.0
            prof.level[seen] += rate * (sums[seen] / cnt[seen] - centre) / a_then * prof.spread[seen]
            self.arr.profile[: prof.bins] = prof.level
            self.arr.profile_sums[:] = 0.0
        s[S.SLOW_N] = s[S.SLOW_SE] = s[S.SLOW_SEE] = s[S.SLOW_SD] = 0.0

    # -- transitions ----------------------------------------------------------------------------------

    def _onset(self, det: int) -> int:
        """Absolute index of the first sample of the change the detector found."""
        if det == SHAPE:
            return int(self.arr.state[S.T]) - 2 * int(self.arr.params[P.STEP])
        return int(self.arr.state[S.LZ0 + det]) + 1

    def _raw_pos(self, p: int, pos_map: np.ndarray | None) -> int:
        if pos_map is None or p < 0:
            return p
        return int(pos_map[p])

    def _recent(
        self, x: np.ndarray, t: np.ndarray | None, upto: int, n: int = 0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The last ``n`` (default RING) raw values (and timestamps) up to batch position ``upto``
        (inclusive); fewer if the ring and the batch hold fewer."""
        n = n or self.RING
        lo = max(0, upto + 1 - n)
        part = self._to32(x[lo : upto + 1])
        vals = self._to64(part if part.size == n else np.concatenate([self.ring, part])[-n:])
        if t is None or self.ring_ts.size != self.ring.size:
            return vals, None
        tss = np.concatenate([self.ring_ts, t[lo : upto + 1]])[-n:]
        return vals, tss

    def _ring_cap(self) -> int:
        """Values the ring keeps: RING, and while Drifting as many as the baseline was fitted on (at
        most ``BUFFER_CAP``), so that adoption estimates the new regime from as many values as the
        thresholds were calibrated for (``_regime_size``)."""
        if self.state != State.DRIFTING:
            return self.RING
        return max(self.RING, min(self.base_n, self.BUFFER_CAP))

    def _regime_size(self) -> int:
        """Values adoption learns the new regime from: those since the drift started (at most
        ``_ring_cap``), and never fewer than the last RING.

        The thresholds were calibrated for the error of a location and spread estimated from ``base_n``
        values; an adopted regime estimated from 256 (a smooth median and MAD: as noisy as a mean and sd
        of ~160 and ~95) shifted and scaled the detectors' input by a few per cent, and the shape test
        and the CUSUMs then alarmed 3x as often after an adoption as before it (Gaussian, adopted +1.5
        sd step: 1.3 false alarms per 10k samples, 0.5 with the regime's last 1,024 values)."""
        since = self.samples - self.drift_since if self.state == State.DRIFTING else 0
        return max(self.RING, min(self._ring_cap(), since))

    def _start(
        self, det: int, x: np.ndarray, t: np.ndarray | None, p: int, pos_map: np.ndarray | None
    ) -> Transition:
        self.state = State.DRIFTING
        self.drift_since = self.samples
        self.drift_since_ts = None if t is None else float(t[p])
        name = DETECTORS[det]
        self.alarm_detector = name
        onset_abs = self._onset(det)
        onset_rel = onset_abs - (self.samples - (p + 1))  # position in this batch (may be negative)
        vals, tss = self._recent(x, t, p)
        n_post = min(vals.size, max(1, self.samples - onset_abs))
        post, post_t = vals[-n_post:], None if tss is None else tss[-n_post:]
        self.onset = NumericSummary()
        self.onset.update(self._adjusted(post, post_t))
        self.onset_fed = self.samples
        pr, s = self.arr.params, self.arr.state
        stat = s[S.SHSTAT] if det == SHAPE else s[S.S0 + det]
        thr = pr[P.CRIT] if det == SHAPE else pr[P.H0 + det]
        score = statistic_score(stat, thr)
        ev: dict[str, Any] = {
            "baseline": self._baseline_described(),
            "current": describe(self._adjusted(post, post_t)),
            "statistic": float(stat),
            "threshold": float(thr),
            **self.info(),
        }
        b, c = ev["baseline"], ev["current"]
        if b["std"] and c["mean"] is not None:
            ev["shift_sigma"] = (c["mean"] - b["mean"]) / b["std"]
            ev["std_ratio"] = (c["std"] or 0.0) / b["std"]
        return Transition(
            type=EventType.DRIFT_START,
            position=self._raw_pos(p, pos_map),
            detector=name,
            score=_round6(max(score, 0.5)),
            onset_position=self._raw_pos(onset_rel, pos_map) if onset_rel >= 0 else onset_rel,
            evidence=ev,
        )

    def _end(self, x: np.ndarray, t: np.ndarray | None, p: int, pos_map: np.ndarray | None) -> Transition:
        self.state = State.STABLE
        vals, tss = self._recent(x, t, p)
        label = self.alarm_detector
        self.alarm_detector = ""
        return Transition(
            type=EventType.DRIFT_END,
            position=self._raw_pos(p, pos_map),
            detector=label,
            score=_round6(self.score),
            onset_position=None,
            evidence={
                "reason": "recovered",
                "baseline": self._baseline_described(),
                "current": describe(
                    self._adjusted(vals[-self.recovery :], None if tss is None else tss[-self.recovery :])
                ),
            },
        )

    def _adopt_drift(
        self, x: np.ndarray, t: np.ndarray | None, p: int, pos_map: np.ndarray | None
    ) -> Transition:
        """The drift has lasted ``adopt_after``: its regime becomes the baseline. DRIFT_END carries the
        replaced baseline."""
        vals, tss = self._recent(x, t, p, self._regime_size())
        label = self.alarm_detector
        replaced = self._baseline_described()
        self.adopt(vals, tss)
        return Transition(
            type=EventType.DRIFT_END,
            position=self._raw_pos(p, pos_map),
            detector=label,
            score=0.0,
            onset_position=None,
            evidence={
                "reason": "adopted",
                "replaced": replaced,
                "baseline": self._baseline_described(),
                "current": describe(self._adjusted(vals, tss)),
            },
        )

    def adopt(self, values: np.ndarray | None = None, ts: np.ndarray | None = None) -> None:
        """Make the recent regime (``values``, default the ring of recent values) the baseline and go
        Stable: the engine call behind automatic adoption and ``driftwatch ack --adopt``.

        The statistics are ``adoption.rereference``'s (location and spread move to the regime's, the
        stream's character stays); here the stream's bookkeeping. With fewer than 20 values (or no
        baseline yet) the stream learns a new baseline from scratch."""
        if values is None:
            n = self._regime_size()
            vals = self._to64(self.ring[-n:])
            ts = self.ring_ts[-n:] if self.ring_ts.size == self.ring.size and self.ring_ts.size else None
        else:
            vals = np.asarray(values, np.float64)
        self.alarm_detector = ""
        self.adopted += 1
        # the 'current' window restarts too: its pre-adoption samples would make the operator's merged
        # baseline-vs-current test call the adopted regime a drift until they age out
        self.current = Tumbling(self.window, NumericSummary)
        self.pending = 0
        if self.bl is None or vals.size < 20:
            self._relearn(vals)
            return
        rereference(self.bl, self.arr, vals, ts, self.samples)
        self.baseline = NumericSummary()
        self.baseline.update(self._adjusted(vals, ts))
        self._described = None
        self.state = State.STABLE

    def _relearn(self, vals: np.ndarray) -> None:
        self.state = State.INITIALIZING
        self.bl, self.arr = None, Arrays.empty()
        self.frozen, self.base_n, self.learned, self.stride = False, 0, 0, 1
        self._unshare_ring()
        self.buffer, self.buffer_ts = np.zeros(0, np.float32), np.zeros(0, np.float64)
        self.baseline = NumericSummary()
        self._described = None
        self.seasonal_learning = False if self.seasonal_learning is None else self.seasonal_learning
        if vals.size:
            self._learn(vals[: max(self._cap_n, self.min_samples)], None)
        if self.buffer.size >= self.min_samples:
            self._fit()
            self.state = State.STABLE

    def _baseline_described(self) -> dict[str, Any]:
        c = self._described
        if c is None or c[0] != self.baseline.n:
            c = self._described = (self.baseline.n, self.baseline.describe())
        return dict(c[1])

    # -- summaries ------------------------------------------------------------------------------------

    def _summarise(self, x: np.ndarray, t: np.ndarray | None) -> None:
        """Ring of recent values (evidence, adoption) and the tumbling 'current' summary. Small batches
        only go to the ring; the summary takes them RING at a time, always as float32-rounded values, so
        the result does not depend on batching. Timestamps ride along while every batch has them."""
        if x.size == 0:
            return
        if self.state == State.DRIFTING and self.samples > self.onset_fed:
            tail = min(self.samples - self.onset_fed, x.size)
            if self.onset is _NO_ONSET:  # Drifting always starts with a summary of its own: defensive
                self.onset = NumericSummary()
            self.onset.update(self._adjusted(x[-tail:], None if t is None else t[-tail:]))
            self.onset_fed = self.samples
        have_ts = t is not None and self.ring_ts.size == self.ring.size and self._keeps_ts
        pending = self.pending + x.size
        cap = self._ring_cap()
        if pending < self.RING:
            self._push_ring(x, t if have_ts else None, cap)
            self.pending = pending
            return
        # only the values the summary reads and the ring keeps are converted (a 1M batch costs two
        # blocks, not a million float32 round trips): the last `need` of pending + batch
        need = min(pending, max(self.current.reads(pending), self.RING))
        if need <= x.size:
            vals = self._to64(self._to32(x[x.size - need :]))
        else:
            old = self.ring[self.ring.size - (need - x.size) :]
            vals = self._to64(np.concatenate([old, self._to32(x)]))
        tss = None
        if have_ts and t is not None:
            if need <= t.size:
                tss = t[t.size - need :]
            else:
                tss = np.concatenate([self.ring_ts[self.ring_ts.size - (need - t.size) :], t])
        self.current.update(self._adjusted(vals, tss), pending)
        self._push_ring(x, t if have_ts else None, cap)
        self.pending = 0

    def _push_ring(self, x: np.ndarray, t: np.ndarray | None, cap: int) -> None:
        """The batch's last values (and their timestamps, or none) onto the ring, which keeps ``cap``.
        Only the last ``cap`` of a batch are converted, into arrays of the ring's own (copies: the ring
        never keeps a batch alive, nor more than a batch shorter than itself beyond its size)."""
        self.ring = _last(self.ring, self._to32(x[-cap:]), cap)
        self.ring_ts = _EMPTY if t is None else _last(self.ring_ts, t, cap)
        self._share_ring()

    def _share_ring(self) -> None:
        """While the learning buffer ends with the ring's values -- a young stream, whose every value is
        in both until the baseline freezes -- the ring is a view of the buffer's tail, not a copy of its
        own (up to 1 kB a stream). Only when the bits are equal, so what the ring holds is unchanged; the
        buffer is never written in place, only replaced, and whatever replaces it outside ``update`` (a
        freeze, a relearn) first gives the ring its own copy (``_unshare_ring``)."""
        r, b = self.ring, self.buffer
        n = r.size
        if n == 0 or b.size < n or r is b or r.base is b:
            return
        tail = b[b.size - n :] if b.size > n else b  # the whole buffer: itself, not a view of it
        if np.array_equal(tail.view(np.int32), r.view(np.int32)):
            self.ring = tail

    def _unshare_ring(self) -> None:
        """The ring's own copy when it is a view of the learning buffer, before the buffer is dropped."""
        if np.may_share_memory(self.ring, self.buffer):
            self.ring = self.ring.copy()

    def baseline_summary(self) -> dict[str, Any]:
        return self.baseline.to_dict()

    def since_onset_summary(self) -> dict[str, Any] | None:
        return self.onset.to_dict() if self.state == State.DRIFTING else None

    def current_summary(self) -> dict[str, Any]:
        merged: NumericSummary = self.current.merged()
        if self.pending:
            extra = NumericSummary()
            tail = self.ring[self.ring.size - self.pending :]
            tts = (
                self.ring_ts[self.ring_ts.size - self.pending :]
                if self.ring_ts.size == self.ring.size
                else None
            )
            extra.update(self._adjusted(self._to64(tail), tts))
            merged = merged.merge(extra)
        return merged.to_dict()

    # -- checkpoints ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        bl = self.bl
        d: dict[str, Any] = {
            "params": self._params(),
            "transform": self.transform,
            "seasonality": self.seasonality,
            **self._state_dict(),
            "adopt": [
                -1 if self.adopt_after is None else self.adopt_after,  # -1: the default
                self.drift_since,
                self.adopted,
                self.adopt_after_seconds,
                self.drift_since_ts,
            ],
            "learning": {
                "buffer": pack_f32(self.buffer),
                "ts": _pack64(self.buffer_ts),
                "stride": self.stride,
                "learned": self.learned,
                "ts_span": [self.ts_first, self.ts_last],
                "seasonal": self.seasonal_learning,
                "base_n": self.base_n,
                "first_n": self.first_n,
                "frozen": self.frozen,
            },
            "note": self.note,
            "baseline": self.baseline.to_dict(),
            "current": self.current.to_dict(),
            "ring": pack_f32(self.ring),
            "ring_ts": _pack64(self.ring_ts),
            "onset": [self.onset.to_dict(), self.onset_fed],
            "pending": self.pending,
            "unit": self.unit,
            "fit": None,
        }
        if bl is not None:
            a = self.arr
            d["fit"] = {
                "kernel": {
                    "params": _pack64(a.params),
                    "state": _pack64(a.state),
                    "profile": _pack64(a.profile),
                    "profile_sums": _pack64(a.profile_sums),
                    "edges": _pack64(a.edges),
                    "base": _pack_i64(a.base),
                    "counts": _pack_i64(a.counts),
                },
                "std": bl.std.to_dict(),
                "profile": None if bl.profile is None else bl.profile.to_dict(),
                "gain": bl.gain,
                "n": bl.n,
                "level": bl.level,
                "z": [bl.z_center, bl.z_scale],
                "w": [bl.w_mean, bl.w_std],
                "thresholds": bl.thresholds,
                "dispersion": bl.dispersion,
            }
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericMonitor:
        ms, win, budget, rec, warn, crit = d["params"]
        after, since, adopted, after_s, since_ts = d["adopt"]
        default = int(after) < 0
        m = cls(
            ms,
            win,
            budget,
            rec,
            warn,
            crit,
            d["transform"],
            None if default else int(after),
            d["seasonality"],
            float(after_s),
        )
        m.drift_since, m.adopted, m.drift_since_ts = int(since), int(adopted), since_ts
        m._restore_state(d)
        lr = d["learning"]
        m.buffer, m.buffer_ts = unpack_f32(lr["buffer"]), _unpack64(lr["ts"])
        m.stride, m.learned = int(lr["stride"]), int(lr["learned"])
        m.ts_first, m.ts_last = lr["ts_span"]
        m.seasonal_learning = lr["seasonal"]
        m.base_n, m.first_n, m.frozen = int(lr["base_n"]), int(lr["first_n"]), bool(lr["frozen"])
        m.note = d["note"]
        m.baseline = NumericSummary.from_dict(d["baseline"])
        m.current.load(d["current"], NumericSummary)
        m.ring, m.ring_ts = unpack_f32(d["ring"]), _unpack64(d["ring_ts"])
        m.onset, m.onset_fed = NumericSummary.from_dict(d["onset"][0]), int(d["onset"][1])
        if m.state != State.DRIFTING and m.onset.to_dict() == _NO_ONSET.to_dict():
            m.onset = _NO_ONSET
        m.pending, m.unit = int(d["pending"]), float(d["unit"])
        f = d.get("fit")
        if f is not None:
            k = f["kernel"]
            arr = Arrays(
                _unpack64(k["params"]),
                _unpack64(k["state"]),
                _unpack64(k["profile"]),
                _unpack64(k["profile_sums"]),
                _unpack64(k["edges"]),
                _unpack_i64(k["base"]),
                _unpack_i64(k["counts"]),
            )
            m.arr = arr
            m.bl = Baseline(
                arr,
                Standardizer.from_dict(f["std"]),
                None if f["profile"] is None else SeasonalProfile.from_dict(f["profile"]),
                float(f["gain"]),
                int(f["n"]),
                float(f["level"]),
                float(f["z"][0]),
                float(f["z"][1]),
                float(f["w"][0]),
                float(f["w"][1]),
                {str(kk): float(v) for kk, v in f["thresholds"].items()},
                {str(kk): float(v) for kk, v in f["dispersion"].items()},
            )
        return m
