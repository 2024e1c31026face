"""Compatibility presets: older rule sets reproduced exactly, for users migrating to DriftWatch.

Both are ``StreamMonitor``s of their own (not Detectors) because their rules include baseline handling
and recovery. They are numeric-only and deliberately *not* calibrated to ``sensitivity.falseAlarmsPer``:
a migrating user wants the alarms their old system raised, sample for sample. ``bench/detection.py``
shows what that costs in false alarms.

Both are batch-first: a batch is split only at transitions (and into bounded chunks), and every rule is
evaluated with numpy over the chunk. ``tests/unit/detect/test_presets.py`` checks them against a
plain per-sample reference implementation and against every way of splitting the same stream.

Conventions shared by both presets
----------------------------------
* Non-finite values (NaN, +-inf) are dropped before anything else and counted in ``rejected``; they
  do not advance any counter or cadence. "Sample n" below means the n-th *finite* sample (1-based).
* Standard deviations are **population** standard deviations (``ddof=0``, numpy's default), for the
  baseline and for rolling windows alike.
* A zero baseline standard deviation (a constant baseline) makes any value different from the mean
  infinitely far from it (|z| = inf) and a value equal to it |z| = 0: the legacy rules divided by it.
* ``Transition.position`` is the position in the batch as passed in (non-finite values included).
  ``onset_position`` may be negative when the change began in an earlier batch; it then counts raw
  values (accepted and rejected, as the Engine does) back from the batch start: -1 is the last value
  of the previous batch.
* Scores: the legacy rules have no notion of magnitude, so the score is progress towards the rule's
  alarm -- in Stable ``0.5 * progress`` (0.5 would be the alarm), in Drifting
  ``0.5 + 0.5 * (1 - normal_run / recovery_length)``: 1.0 at DRIFT_START, falling towards 0.5 as
  normal samples accumulate. A DRIFT_START event therefore carries score 1.0, a DRIFT_END score 0.0.
"""

from __future__ import annotations

import base64
import math
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from driftwatch.detect.base import EventType, State, StreamMonitor, Transition, severity_of
from driftwatch.detect.registry import MonitorFactory, register_preset
from driftwatch.detect.summaries import NumericSummary

#: upper bound on samples handled per vectorised step: bounds the work wasted past a transition
#: (the rest of the chunk is re-evaluated under the new state) and the size of temporaries.
CHUNK = 4096


# --- vectorised helpers -------------------------------------------------------------------------------


def _runs(flags: np.ndarray, carry: int) -> np.ndarray:
    """``run[i]`` = length of the run of True ending at ``i``, counting ``carry`` Trues just before the
    array (the run left over from the previous chunk). False positions have run 0."""
    idx = np.arange(flags.size)
    last_false = np.maximum.accumulate(np.where(flags, -1, idx))
    run = idx - last_false
    run[last_false < 0] += carry
    return run


def _first(cond: np.ndarray) -> int:
    """Index of the first True, or -1."""
    if cond.size == 0:
        return -1
    i = int(np.argmax(cond))
    return i if cond[i] else -1


def _zscores(x: np.ndarray, mu: np.ndarray | float, sd: np.ndarray | float) -> np.ndarray:
    """(x - mu) / sd with the zero-std convention: 0 where x == mu, +-inf elsewhere."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mu) / sd
    z[np.isnan(z)] = 0.0  # 0/0: x equals a constant baseline (x itself is finite here)
    return z


def _stats(x: np.ndarray) -> dict[str, Any]:
    """Evidence summary of a window: n, mean, std, p50/p95/p99, min, max (JSON-safe).

    Quantiles by linear interpolation (numpy's default method) from one sort: ``np.percentile``'s
    overhead dominated event-heavy streams (a legacy rule can fire hundreds of times per 100k)."""
    if x.size == 0:
        return {"n": 0}
    srt = np.sort(x)
    pos = np.array([0.50, 0.95, 0.99]) * (srt.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, srt.size - 1)
    q = srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)
    return {
        "n": int(x.size),
        "mean": float(np.mean(x)),
        "std": float(np.std(x)),
        "p50": float(q[0]),
        "p95": float(q[1]),
        "p99": float(q[2]),
        "min": float(srt[0]),
        "max": float(srt[-1]),
    }


def _summary(x: np.ndarray) -> dict[str, Any]:
    """The engine's mergeable numeric summary (moments + quantile sketch) of a window."""
    s = NumericSummary()
    s.update(x)
    return s.to_dict()


def _pack(a: np.ndarray) -> str:
    """float64 array -> base64: exact (the rules compare floats exactly) and ~half the size of JSON."""
    return base64.b64encode(np.ascontiguousarray(a, "<f8").tobytes()).decode("ascii")


def _unpack(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), "<f8").copy()


def _split_finite(values: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """(finite values, their positions in the batch, number rejected)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(x)
    if ok.all():
        return x, np.arange(x.size), 0
    pos = np.flatnonzero(ok)
    return x[pos], pos, int(x.size - pos.size)


class _Preset(StreamMonitor):
    """Shared input handling: drop and count non-finite values, and map finite-sample indices back to
    positions in the batch as passed in -- also for onsets in earlier batches, which the Engine
    resolves by counting raw values (accepted and rejected) back from the batch start."""

    #: raw positions remembered for the last this-many finite samples (longer look-backs assume no
    #: rejected values in between)
    LOOKBACK = 256

    name: ClassVar[str]
    _PARAMS: ClassVar[tuple[str, ...]]  # the constructor arguments, saved with the state
    rejected: int
    lookback: np.ndarray  # raw positions of the last finite samples, relative to the current batch
    since: int | None  # sample count at the last transition
    warning: float
    critical: float

    @property
    def severity(self) -> str:
        return severity_of(self.score, self.warning, self.critical)

    @property
    def detector(self) -> str:
        return self.name

    def _start(self, warning: float, critical: float) -> None:
        """``__init__``: severity thresholds and the fresh state every preset starts from."""
        self.warning, self.critical = warning, critical
        self.state = State.INITIALIZING
        self.samples = 0
        self.rejected = 0
        self.lookback = np.zeros(0, dtype=np.int64)
        self.since = None

    def _to_dict(self, **fields: Any) -> dict[str, Any]:
        """``to_dict``: what every preset saves around the preset's own ``fields``."""
        return {
            "preset": self.name,
            "params": {p: getattr(self, p) for p in self._PARAMS},
            "state": str(self.state),
            "samples": self.samples,
            "rejected": self.rejected,
            **fields,
            "since": self.since,
            "lookback": self.lookback.tolist(),
        }

    def _restore(self, d: dict[str, Any]) -> None:
        """``from_dict``: restore what ``_to_dict`` saved for every preset."""
        self.state = State(d["state"])
        self.samples, self.rejected = int(d["samples"]), int(d["rejected"])
        self.since = d["since"]
        self.lookback = np.asarray(d["lookback"], dtype=np.int64)

    def update(self, values: np.ndarray) -> list[Transition]:
        xf, pos, rejected = _split_finite(values)
        self.rejected += rejected
        out = self._update(xf, pos) if xf.size else []
        n_raw = pos.size + rejected
        self.lookback = np.concatenate([self.lookback - n_raw, pos[-self.LOOKBACK :] - n_raw])[
            -self.LOOKBACK :
        ]
        return out

    def _update(self, xf: np.ndarray, pos: np.ndarray) -> list[Transition]:
        raise NotImplementedError

    def _learn_left(self) -> int:
        """Samples still to learn before the first one is scored."""
        raise NotImplementedError

    def seed(self, values: np.ndarray) -> None:
        """The presets' baselines are their first samples: seeding feeds up to that many finite
        values as if they had come first (the rest is not used)."""
        if self.state is not State.INITIALIZING:
            raise ValueError("the baseline is already fitted")
        x = np.asarray(values, dtype=np.float64).ravel()
        x = x[np.isfinite(x)][: self._learn_left()]
        if x.size:
            out = self.update(x)
            assert not out

    def _position(self, pos: np.ndarray, f: int) -> int:
        """Finite index ``f`` of this batch (negative: an earlier batch) -> raw batch position."""
        if f >= 0:
            return int(pos[f])
        lb = self.lookback
        if -f <= lb.size:
            return int(lb[f])
        return int(lb[0]) + f + lb.size if lb.size else f


# --- zscore-consecutive ------------------------------------------------------------------------------


class ZScoreConsecutive(_Preset):
    """``zscore-consecutive``: per-sample z-scores against a refreshed baseline of recent samples.

    The rule (defaults are the legacy values):

    * The baseline is the mean and population std of the last ``window`` (1000) samples. No decision
      is made before ``min_samples`` (100) samples: the state is Initializing until then.
    * The first baseline is computed right after sample ``min_samples`` (from all samples so far);
      the state becomes Stable and sample ``min_samples + 1`` is the first one scored.
    * Refresh cadence: after processing sample n, if ``n % refresh_every == 0`` (50) and the state
      *after* that sample is Stable, the baseline is recomputed from the last ``window`` samples
      **including sample n**. The cadence follows the absolute sample count, so after a recovery at
      sample 1234 the next refresh is at 1250. No refresh while Drifting (the baseline stays frozen at
      the one that was in effect when drift started); a sample that starts drift does not refresh, a
      sample that ends it does (if on the cadence).
    * The buffer of "last ``window`` samples" holds every finite sample in every state, including
      those seen while Drifting -- the legacy system kept one history list -- so the first refresh
      after a recovery may include drifted samples.
    * z = (x - mean) / std, computed before x enters the buffer (a sample never scores itself).
    * DRIFT_START at the first sample where either holds (both are evaluated on the same sample; the
      event's ``rule`` says which fired, ``run`` wins a tie):
      ``run``: this sample and the ``run_length - 1`` (4) before it all have |z| > ``run_threshold``
      (3), i.e. exactly 5 consecutive; 4 never fire.
      ``window``: among the last ``window_size`` (20) scored samples *including this one*, at least
      ``window_hits`` (10) have |z| > ``window_threshold`` (2.5). Fewer than 20 scored samples since
      the last reset is a shorter window (10 hits among the first 10 scored samples do fire).
    * Comparisons are strict (> 3, > 2.5): |z| == 3 exactly is not a hit.
    * DRIFT_END at the sample that completes ``recovery_length`` (50) consecutive samples with
      |z| <= ``recovery_threshold`` (2, inclusive) -- scored against the frozen baseline. The sample
      that started drift is not counted (it is always a hit, so it could not be).
    * At every transition all counters restart from zero: after DRIFT_START the recovery run starts
      with the next sample; after DRIFT_END the consecutive run and the 20-sample window are empty,
      so samples seen while Drifting never count towards the next DRIFT_START.
    """

    kind: ClassVar[str] = "numeric"
    name: ClassVar[str] = "zscore-consecutive"

    def __init__(
        self,
        *,
        min_samples: int = 100,
        window: int = 1000,
        refresh_every: int = 50,
        run_threshold: float = 3.0,
        run_length: int = 5,
        window_threshold: float = 2.5,
        window_size: int = 20,
        window_hits: int = 10,
        recovery_threshold: float = 2.0,
        recovery_length: int = 50,
        warning: float = 0.2,
        critical: float = 0.5,
    ) -> None:
        if not 1 <= min_samples <= window:
            raise ValueError("need 1 <= min_samples <= window")
        if min(refresh_every, run_length, window_size, window_hits, recovery_length) < 1:
            raise ValueError("counts must be >= 1")
        if window_hits > window_size:
            raise ValueError("window_hits must be <= window_size")
        self.min_samples = min_samples
        self.window = window
        self.refresh_every = refresh_every
        self.run_threshold = run_threshold
        self.run_length = run_length
        self.window_threshold = window_threshold
        self.window_size = window_size
        self.window_hits = window_hits
        self.recovery_threshold = recovery_threshold
        self.recovery_length = recovery_length
        self._start(warning, critical)
        self.buf = np.empty(0)  # the last `window + refresh_every` finite samples, every state
        #: the baseline window, kept from DRIFT_START until the next refresh (the buffer moves on)
        self.frozen: np.ndarray | None = None
        self.mu = 0.0
        self.sd = 0.0
        self.baseline_n = 0
        self.baseline_at = 0  # sample count at the last refresh
        self.run_hi = 0  # consecutive |z| > run_threshold (Stable)
        self.recent = np.zeros(0, dtype=bool)  # last <= window_size-1 flags |z| > window_threshold
        self.normal_run = 0  # consecutive |z| <= recovery_threshold (Drifting)

    @classmethod
    def from_spec(cls, spec: Any, feature: Any = None) -> ZScoreConsecutive:
        """The legacy rule with the spec's baseline.minSamples / baseline.window /
        recovery.consecutiveNormal (whose defaults, 100 / 1000 / 50, are the legacy values). The
        feature's ``transform`` is ignored: the legacy rule worked on raw values."""
        return cls(
            min_samples=spec.baseline.min_samples,
            window=spec.baseline.window,
            recovery_length=spec.recovery.consecutive_normal,
            warning=spec.sensitivity.warning,
            critical=spec.sensitivity.critical,
        )

    # -- StreamMonitor ---------------------------------------------------------------------------------

    @property
    def score(self) -> float:
        if self.state is State.INITIALIZING:
            return 0.0
        if self.state is State.DRIFTING:
            return 0.5 + 0.5 * (1.0 - self.normal_run / self.recovery_length)
        progress = max(self.run_hi / self.run_length, int(self.recent.sum()) / self.window_hits)
        return 0.5 * min(progress, 1.0)

    def baseline_window(self) -> np.ndarray:
        """The samples behind the baseline in effect (at most ``window``)."""
        if self.frozen is not None:
            return self.frozen
        # while no drift intervened, the last refresh is < refresh_every samples back: in the buffer
        end = self.buf.size - (self.samples - self.baseline_at)
        return self.buf[max(0, end - self.baseline_n) : max(0, end)]

    def baseline_summary(self) -> dict[str, Any]:
        return _summary(self.baseline_window())

    def current_summary(self) -> dict[str, Any]:
        """The last ``recovery_length`` samples: the span the recovery rule looks at."""
        return _summary(self.buf[-self.recovery_length :])

    def _baseline_evidence(self) -> dict[str, Any]:
        return {**_stats(self.baseline_window()), "at_sample": self.baseline_at}

    def _learn_left(self) -> int:
        return max(0, self.min_samples - self.samples)

    def _update(self, xf: np.ndarray, pos: np.ndarray) -> list[Transition]:
        out: list[Transition] = []
        # ext[j] is sample number base + j + 1: the buffer followed by this batch
        ext = np.concatenate([self.buf, xf])
        base = self.samples - self.buf.size
        off = self.buf.size  # ext index of xf[0]
        i, m = 0, xf.size
        while i < m:
            if self.state is State.INITIALIZING:
                take = min(self.min_samples - self.samples, m - i)
                i += take
                self.samples += take
                if self.samples >= self.min_samples:
                    self._refresh(ext, base, self.samples)
                    self.state = State.STABLE
                continue
            end = min(m, i + CHUNK)
            if self.state is State.STABLE:
                t = self._stable(xf, i, end, ext, base, off, pos, out)
            else:
                t = self._drifting(xf, i, end, ext, base, pos, out)
            i = end if t < 0 else t + 1
        keep = min(self.window + self.refresh_every, ext.size)
        self.buf = ext[ext.size - keep :].copy()
        return out

    # -- the rule --------------------------------------------------------------------------------------

    def _window_of(self, ext: np.ndarray, base: int, n: int) -> np.ndarray:
        """The last ``window`` samples up to and including sample ``n`` (a view into ext)."""
        hi = n - base
        return ext[max(0, hi - self.window) : hi]

    def _refresh(self, ext: np.ndarray, base: int, n: int) -> None:
        w = self._window_of(ext, base, n)
        self.mu, self.sd = float(np.mean(w)), float(np.std(w))
        self.baseline_n, self.baseline_at = int(w.size), n
        self.frozen = None

    def _candidates(self, ext: np.ndarray, base: int, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Baseline (mean, std) that a refresh after each sample count in ``bounds`` would compute.
        Full-length windows are reduced as one 2-D array (bit-identical to the 1-D reductions)."""
        mu = np.empty(bounds.size)
        sd = np.empty(bounds.size)
        his = bounds - base
        full = his >= self.window
        if full.any():
            rows = sliding_window_view(ext, self.window)[his[full] - self.window]
            mu[full] = rows.mean(axis=1)
            sd[full] = rows.std(axis=1)
        for k in np.flatnonzero(~full):
            w = ext[: his[k]]
            mu[k], sd[k] = np.mean(w), np.std(w)
        return mu, sd

    def _stable(
        self,
        xf: np.ndarray,
        i: int,
        end: int,
        ext: np.ndarray,
        base: int,
        off: int,
        pos: np.ndarray,
        out: list[Transition],
    ) -> int:
        """Score xf[i:end] in Stable; on DRIFT_START return its index in xf, else -1."""
        x = xf[i:end]
        n0 = self.samples + 1  # sample number of x[0]
        counts = np.arange(n0, n0 + x.size)
        r = self.refresh_every
        first_b = -(-n0 // r) * r
        bounds = np.arange(first_b, counts[-1] + 1, r, dtype=np.int64)
        cmu, csd = self._candidates(ext, base, bounds)
        # sample n uses the refresh from the last boundary b <= n - 1 (or the current baseline)
        k = np.searchsorted(bounds, counts - 1, side="right")
        mu = np.concatenate([[self.mu], cmu])[k]
        sd = np.concatenate([[self.sd], csd])[k]
        az = np.abs(_zscores(x, mu, sd))

        run = _runs(az > self.run_threshold, self.run_hi)
        t_run = _first(run >= self.run_length)
        flags = np.concatenate([self.recent, az > self.window_threshold])
        cs = np.concatenate([[0], np.cumsum(flags)])
        L = self.recent.size
        hi = np.arange(L + 1, L + 1 + x.size)
        hits = cs[hi] - cs[np.maximum(hi - self.window_size, 0)]
        t_win = _first(hits >= self.window_hits)

        if t_run < 0 and t_win < 0:
            self.run_hi = int(run[-1])
            self.recent = flags[-(self.window_size - 1) :].copy() if self.window_size > 1 else flags[:0]
            if bounds.size:
                self.frozen = None
                self.mu, self.sd = float(cmu[-1]), float(csd[-1])
                self.baseline_n = int(min(self.window, bounds[-1]))
                self.baseline_at = int(bounds[-1])
            self.samples += x.size
            return -1

        if t_win < 0 or (t_run >= 0 and t_run <= t_win):
            t, rule = t_run, f"{self.run_length} consecutive |z| > {self.run_threshold:g}"
            onset_f = i + t - (self.run_length - 1)
        else:
            t, rule = (
                t_win,
                f"{self.window_hits} of the last {self.window_size} |z| > {self.window_threshold:g}",
            )
            w_lo = max(L + t + 1 - self.window_size, 0)
            onset_f = i + (w_lo + int(np.argmax(flags[w_lo : L + t + 1]))) - L
        # the baseline in effect for the triggering sample is frozen for the drift period
        kt = int(k[t])
        if kt > 0:
            self.frozen = None
            self.mu, self.sd = float(cmu[kt - 1]), float(csd[kt - 1])
            self.baseline_n = int(min(self.window, bounds[kt - 1]))
            self.baseline_at = int(bounds[kt - 1])
        if self.frozen is None:
            self.frozen = self._window_of(ext, base, self.baseline_at).copy()
        self.samples += t + 1
        self.state = State.DRIFTING
        self.since = self.samples
        self.run_hi, self.recent, self.normal_run = 0, np.zeros(0, dtype=bool), 0
        n_t = self.samples
        cur = ext[max(0, n_t - base - self.window_size) : n_t - base]
        z_t = float(_zscores(x[t : t + 1], self.mu, self.sd)[0])
        out.append(
            Transition(
                EventType.DRIFT_START,
                self._position(pos, i + t),
                self.name,
                self.score,
                onset_position=self._position(pos, onset_f),
                evidence={
                    "rule": rule,
                    "z": z_t,
                    "baseline": self._baseline_evidence(),
                    "current": _stats(cur),
                },
            )
        )
        return i + t

    def _drifting(
        self,
        xf: np.ndarray,
        i: int,
        end: int,
        ext: np.ndarray,
        base: int,
        pos: np.ndarray,
        out: list[Transition],
    ) -> int:
        """Score xf[i:end] in Drifting against the frozen baseline; on DRIFT_END return its index."""
        x = xf[i:end]
        az = np.abs(_zscores(x, self.mu, self.sd))
        run = _runs(az <= self.recovery_threshold, self.normal_run)
        t = _first(run >= self.recovery_length)
        if t < 0:
            self.normal_run = int(run[-1])
            self.samples += x.size
            return -1
        self.samples += t + 1
        n_t = self.samples
        evidence = {
            "rule": f"{self.recovery_length} consecutive |z| <= {self.recovery_threshold:g}",
            "baseline": self._baseline_evidence(),
            "current": _stats(ext[max(0, n_t - base - self.recovery_length) : n_t - base]),
            "drift_samples": n_t - (self.since or n_t),
        }
        self.state = State.STABLE
        self.since = n_t
        self.run_hi, self.recent, self.normal_run = 0, np.zeros(0, dtype=bool), 0
        if n_t % self.refresh_every == 0:
            self._refresh(ext, base, n_t)
        out.append(
            Transition(
                EventType.DRIFT_END,
                self._position(pos, i + t),
                self.name,
                self.score,
                onset_position=self._position(pos, i + t - (self.recovery_length - 1)),
                evidence=evidence,
            )
        )
        return i + t

    # -- checkpoint ------------------------------------------------------------------------------------

    _PARAMS = (
        "min_samples",
        "window",
        "refresh_every",
        "run_threshold",
        "run_length",
        "window_threshold",
        "window_size",
        "window_hits",
        "recovery_threshold",
        "recovery_length",
        "warning",
        "critical",
    )

    def to_dict(self) -> dict[str, Any]:
        return self._to_dict(
            buf=_pack(self.buf),
            frozen=None if self.frozen is None else _pack(self.frozen),
            mu=self.mu,
            sd=self.sd,
            baseline_n=self.baseline_n,
            baseline_at=self.baseline_at,
            run_hi=self.run_hi,
            recent=self.recent.astype(int).tolist(),
            normal_run=self.normal_run,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ZScoreConsecutive:
        m = cls(**d["params"])
        m._restore(d)
        m.buf = _unpack(d["buf"])
        m.frozen = None if d.get("frozen") is None else _unpack(d["frozen"])
        m.mu, m.sd = float(d["mu"]), float(d["sd"])
        m.baseline_n, m.baseline_at = int(d["baseline_n"]), int(d["baseline_at"])
        m.run_hi = int(d["run_hi"])
        m.recent = np.asarray(d["recent"], dtype=bool)
        m.normal_run = int(d["normal_run"])
        return m


# --- sustained-zscore --------------------------------------------------------------------------------


class SustainedZScore(_Preset):
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
        self.base_summary: dict[str, Any] = _summary(np.empty(0))  # mergeable, for the engine
        self.viol_run = 0
        self.normal_run = 0
        self.last_mean_z = 0.0
        self.last_ratio = 1.0

    @classmethod
    def from_spec(cls, spec: Any, feature: Any = None) -> SustainedZScore:
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
        return _summary(self.tail)

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
                self.base_stats = _stats(b)
                self.base_summary = _summary(b)
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
            mz = _zscores(mean_w, self.mu, scale)
            ratio = std_w / self.sd if self.sd > 0 else np.where(std_w == 0, 1.0, np.inf)
            viol = (np.abs(mz) > self.z_threshold) | (ratio > self.std_ratio) | (ratio < 1.0 / self.std_ratio)
            self.last_mean_z, self.last_ratio = float(mz[-1]), float(ratio[-1])
            a = 0
            while a < viol.size:
                stable = self.state is State.STABLE
                need = self.violations if stable else self.recoveries
                run = _runs(viol[a:], self.viol_run) if stable else _runs(~viol[a:], self.normal_run)
                t = _first(run >= need)
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
                            "current": _stats(ext[j + off - self.window + 1 : j + off + 1]),
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
            init_buf=_pack(self.init_buf),
            tail=_pack(self.tail),
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
        m.init_buf = _unpack(d["init_buf"])
        m.tail = _unpack(d["tail"])
        m.mu, m.sd = float(d["mu"]), float(d["sd"])
        m.base_stats = dict(d["base_stats"])
        m.base_summary = dict(d["base_summary"])
        m.viol_run, m.normal_run = int(d["viol_run"]), int(d["normal_run"])
        m.last_mean_z, m.last_ratio = float(d["last_mean_z"]), float(d["last_ratio"])
        return m


# --- registration ------------------------------------------------------------------------------------


def _numeric_only(cls: type[ZScoreConsecutive] | type[SustainedZScore]) -> MonitorFactory:
    """A registry factory: the preset for numeric streams; None (the default monitor) for categorical
    ones -- the legacy rules only ever watched numbers."""

    def make(spec: Any, feature: Any, kind: str) -> StreamMonitor | None:
        return cls.from_spec(spec, feature) if kind == "numeric" else None

    return make


register_preset(ZScoreConsecutive.name, _numeric_only(ZScoreConsecutive), ZScoreConsecutive)
register_preset(SustainedZScore.name, _numeric_only(SustainedZScore), SustainedZScore)
