"""The ``zscore-consecutive`` preset: per-sample z-scores against a refreshed baseline."""

from __future__ import annotations

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


class ZScoreConsecutive(PresetMonitor):
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
    __slots__ = (
        "baseline_at",
        "baseline_n",
        "buf",
        "frozen",
        "min_samples",
        "mu",
        "normal_run",
        "recent",
        "recovery_length",
        "recovery_threshold",
        "refresh_every",
        "run_hi",
        "run_length",
        "run_threshold",
        "sd",
        "window",
        "window_hits",
        "window_size",
        "window_threshold",
    )

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
    def from_spec(cls, spec: MonitorSpec, feature: FeatureSpec | None = None) -> ZScoreConsecutive:
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
        return window_summary(self.baseline_window())

    def current_summary(self) -> dict[str, Any]:
        """The last ``recovery_length`` samples: the span the recovery rule looks at."""
        return window_summary(self.buf[-self.recovery_length :])

    def _baseline_evidence(self) -> dict[str, Any]:
        return {**window_stats(self.baseline_window()), "at_sample": self.baseline_at}

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
        az = np.abs(zscores(x, mu, sd))

        run = run_lengths(az > self.run_threshold, self.run_hi)
        t_run = first_true(run >= self.run_length)
        flags = np.concatenate([self.recent, az > self.window_threshold])
        cs = np.concatenate([[0], np.cumsum(flags)])
        L = self.recent.size
        hi = np.arange(L + 1, L + 1 + x.size)
        hits = cs[hi] - cs[np.maximum(hi - self.window_size, 0)]
        t_win = first_true(hits >= self.window_hits)

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
        z_t = float(zscores(x[t : t + 1], self.mu, self.sd)[0])
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
                    "current": window_stats(cur),
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
        az = np.abs(zscores(x, self.mu, self.sd))
        run = run_lengths(az <= self.recovery_threshold, self.normal_run)
        t = first_true(run >= self.recovery_length)
        if t < 0:
            self.normal_run = int(run[-1])
            self.samples += x.size
            return -1
        self.samples += t + 1
        n_t = self.samples
        evidence = {
            "rule": f"{self.recovery_length} consecutive |z| <= {self.recovery_threshold:g}",
            "baseline": self._baseline_evidence(),
            "current": window_stats(ext[max(0, n_t - base - self.recovery_length) : n_t - base]),
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
            buf=pack64(self.buf),
            frozen=None if self.frozen is None else pack64(self.frozen),
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
        m.buf = unpack64(d["buf"])
        m.frozen = None if d.get("frozen") is None else unpack64(d["frozen"])
        m.mu, m.sd = float(d["mu"]), float(d["sd"])
        m.baseline_n, m.baseline_at = int(d["baseline_n"]), int(d["baseline_at"])
        m.run_hi = int(d["run_hi"])
        m.recent = np.asarray(d["recent"], dtype=bool)
        m.normal_run = int(d["normal_run"])
        return m
