"""A seasonal profile: what a stream normally looks like at each time of day (or of the week).

Telemetry follows the clock: traffic peaks at noon, batch jobs run at night. Against one fixed baseline
that cycle *is* a drift, every day. The profile holds, for each bin of the cycle (``BINS_PER_DAY`` bins
a day), the stream's level and spread there; the detectors then see ``(y - level[bin]) / spread[bin]``,
so "normal for this time of day" is what they compare against, and a change relative to the same time
of day is what they find.

Honest residuals. A profile estimated from two days fits those two days better than it will fit the
third: residuals of the days it was fitted on are too small, and thresholds derived from them would
alarm too often. So the residuals the baseline is fitted on are *out of sample*: each day's against the
profile of the other days (leave one day out). Their spread includes the profile's own estimation
error, and every threshold downstream inherits that honesty.

Zero configuration. ``seasonality: auto`` uses the profile only when it explains the stream: the
out-of-sample residual variance must be below ``EXPLAINS`` of the variance around one level -- on a
stream without a cycle the held-out profile only adds noise and the ratio is above 1.

Mergeable. A profile keeps the samples behind each bin, so per-pod profiles merge into the monitor's
(``merge``: levels and spreads weighted per bin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .median import median

DAY = 86_400.0
WEEK = 7 * DAY
#: bins per day (30 minutes each); a weekly profile has 7 x this
BINS_PER_DAY = 48
#: the profile is used when held-out residuals keep at most this share of the variance
EXPLAINS = 0.8
#: per-bin spread is shrunk towards the overall spread with this many pseudo-samples
SHRINK = 10.0
#: cycles of data the profile needs before it can be judged (two: one to hold out, one to fit)
CYCLES = 2


def period_of(mode: str) -> float:
    """Seconds per cycle of a ``seasonality`` setting (``auto`` looks for a daily cycle)."""
    return WEEK if mode == "weekly" else DAY


@dataclass(slots=True)
class SeasonalProfile:
    """Level and spread per bin of a cycle, for ``y`` already log-transformed where the stream is.

    >>> rng = np.random.default_rng(0)
    >>> ts = np.arange(0, 3 * DAY, 300.0)                         # three days, every 5 minutes
    >>> y = 10 * np.sin(2 * np.pi * ts / DAY) + rng.normal(size=ts.size)
    >>> prof, resid = SeasonalProfile.fit(y, ts)
    >>> prof.useful, round(float(np.std(resid)), 1)                # the cycle is gone, the noise is left
    (True, 1.0)
    """

    period: float = DAY
    bins: int = BINS_PER_DAY
    level: np.ndarray = field(default_factory=lambda: np.zeros(BINS_PER_DAY))
    spread: np.ndarray = field(default_factory=lambda: np.ones(BINS_PER_DAY))
    #: share of the variance the held-out residuals keep (1: no cycle; small: a strong one)
    ratio: float = 1.0
    useful: bool = False
    #: samples behind each bin (the weights when profiles of several pods merge)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(BINS_PER_DAY))

    def bin_of(self, ts: np.ndarray) -> np.ndarray:
        ph = np.mod(np.asarray(ts, np.float64), self.period)
        return np.clip((ph / self.period * self.bins).astype(np.int64), 0, self.bins - 1)

    @classmethod
    def fit(cls, y: np.ndarray, ts: np.ndarray, period: float = DAY) -> tuple[SeasonalProfile, np.ndarray]:
        """Fit from samples spanning at least ``CYCLES`` cycles; returns the profile and the held-out
        (leave-one-cycle-out) standardised residuals of ``y``."""
        y = np.asarray(y, np.float64)
        ts = np.asarray(ts, np.float64)
        bins = BINS_PER_DAY * round(period / DAY)
        prof = cls(period, bins, np.zeros(bins), np.ones(bins))
        b = prof.bin_of(ts)
        cycle = np.floor((ts - ts.min()) / period).astype(np.int64)
        n = np.bincount(b, minlength=bins).astype(np.float64)
        s = np.bincount(b, y, minlength=bins)
        level = _fill(np.divide(s, n, out=np.full(bins, np.nan), where=n > 0))
        # held out: each cycle against the others' bin means (a bin seen in one cycle only keeps the
        # full mean: there is nothing to hold out, and such bins are rare after two cycles)
        held = level[b].copy()
        for c in np.unique(cycle):
            sel = cycle == c
            nc = np.bincount(b[sel], minlength=bins).astype(np.float64)
            sc = np.bincount(b[sel], y[sel], minlength=bins)
            rest_n = n - nc
            other = np.divide(s - sc, rest_n, out=np.full(bins, np.nan), where=rest_n > 0)
            ok = rest_n[b[sel]] > 0
            idx = np.flatnonzero(sel)[ok]
            held[idx] = other[b[idx]]
        resid = y - held
        dev = np.abs(resid - median(resid))
        overall = float(np.mean(dev)) or 1.0
        sd = np.bincount(b, dev, minlength=bins)
        spread = (sd + SHRINK * overall) / (n + SHRINK) / overall
        prof.level, prof.spread, prof.counts = level, spread, n
        total = float(np.var(y))
        prof.ratio = float(np.var(resid)) / total if total > 0 else 1.0
        prof.useful = prof.ratio <= EXPLAINS and np.unique(cycle).size >= CYCLES
        return prof, resid / spread[b]

    def apply(self, y: np.ndarray, ts: np.ndarray) -> np.ndarray:
        b = self.bin_of(ts)
        out: np.ndarray = (np.asarray(y, np.float64) - self.level[b]) / self.spread[b]
        return out

    def merge(self, other: SeasonalProfile) -> SeasonalProfile:
        """The profile of two pods' samples together: per bin, levels and spreads weighted by the
        samples behind them (a bin one pod never saw takes the other's). Same period and bins only.

        >>> a = SeasonalProfile(level=np.full(48, 1.0), counts=np.full(48, 3.0))
        >>> b = SeasonalProfile(level=np.full(48, 3.0), counts=np.full(48, 1.0))
        >>> float(a.merge(b).level[0])
        1.5
        """
        if (self.period, self.bins) != (other.period, other.bins):
            raise ValueError("profiles of different cycles do not merge")
        w = self.counts + other.counts
        safe = np.where(w > 0, w, 1.0)
        a, b = self.counts / safe, other.counts / safe
        level = np.where(w > 0, self.level * a + other.level * b, self.level)
        spread = np.where(w > 0, self.spread * a + other.spread * b, self.spread)
        return SeasonalProfile(
            self.period,
            self.bins,
            level,
            spread,
            max(self.ratio, other.ratio),
            self.useful and other.useful,
            w,
        )

    def as_kernel_array(self) -> np.ndarray:
        return np.concatenate([self.level, self.spread]).astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "bins": self.bins,
            "level": [float(v) for v in self.level],
            "spread": [float(v) for v in self.spread],
            "ratio": self.ratio,
            "useful": self.useful,
            "counts": [float(v) for v in self.counts],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeasonalProfile:
        return cls(
            float(d["period"]),
            int(d["bins"]),
            np.asarray(d["level"], np.float64),
            np.asarray(d["spread"], np.float64),
            float(d["ratio"]),
            bool(d["useful"]),
            np.asarray(d.get("counts", np.zeros(int(d["bins"]))), np.float64),
        )


def _fill(p: np.ndarray) -> np.ndarray:
    """Empty bins take the value of the nearest filled ones (circular linear interpolation)."""
    ok = np.isfinite(p)
    if ok.all():
        return p
    if not ok.any():
        return np.zeros_like(p)
    idx = np.arange(p.size)
    out: np.ndarray = np.interp(idx, idx[ok], p[ok], period=p.size)
    return out


def learning_span(mode: str) -> float:
    """Seconds of samples the profile needs: ``CYCLES`` cycles."""
    return CYCLES * period_of(mode)


def covers(ts_first: float, ts_last: float, mode: str) -> bool:
    return ts_last - ts_first >= learning_span(mode) - 1e-9 * max(1.0, math.fabs(ts_last))
