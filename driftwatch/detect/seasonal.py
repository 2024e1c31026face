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

import functools
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
#: values beyond this many robust sd of their bin's mean are clipped before the profile is estimated
SPIKE = 4.0
#: ... unless more than this share of them would be: then they are the stream's shape, not spikes
SPIKE_SHARE = 0.02
#: cycles of data the profile needs before it can be judged (two: one to hold out, one to fit)
CYCLES = 2
#: per-bin spread is shrunk towards the overall spread with this many pseudo-samples
SHRINK = 10.0
#: harmonics of the day a daily profile may be smoothed to (a weekly one: of the day too, so 7 x these
#: harmonics of the week); 0 stands for free bins (each bin its own mean)
HARMONICS = (1, 2, 3, 4, 6, 8, 12, 16)
#: the weekly shape "one day's shape plus a level per weekday" (``SeasonalProfile.harmonics``)
DAY_AND_WEEKDAY = -1


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
    #: the levels' shape, what ``info`` reports: harmonics of the cycle they were smoothed to, 0 for free
    #: bins, ``DAY_AND_WEEKDAY`` for one day's shape plus a level per weekday
    harmonics: int = 0

    def bin_of(self, ts: np.ndarray) -> np.ndarray:
        ph = np.mod(np.asarray(ts, np.float64), self.period)
        return np.clip((ph / self.period * self.bins).astype(np.int64), 0, self.bins - 1)

    @classmethod
    def fit(cls, y: np.ndarray, ts: np.ndarray, period: float = DAY) -> tuple[SeasonalProfile, np.ndarray]:
        """Fit from samples spanning at least ``CYCLES`` cycles; returns the profile and the held-out
        (leave-one-cycle-out) standardised residuals of ``y``."""
        y_in = np.asarray(y, np.float64)
        ts = np.asarray(ts, np.float64)
        bins = BINS_PER_DAY * round(period / DAY)
        prof = cls(period, bins, np.zeros(bins), np.ones(bins))
        b = prof.bin_of(ts)
        cycle = np.floor((ts - ts.min()) / period).astype(np.int64)
        n = np.bincount(b, minlength=bins).astype(np.float64)
        y = _clip_spikes(y_in, b, n, bins)
        # per cycle and bin: count, sum, sum of squares -- everything below works on these, not on
        # the samples (a candidate's held-out error is sum s2 - 2 pred s1 + n pred^2 per bin)
        cyc = np.unique(cycle, return_inverse=True)[1]
        ncyc = int(cyc.max()) + 1
        cell = cyc * bins + b
        cn = np.bincount(cell, minlength=ncyc * bins).reshape(ncyc, bins).astype(np.float64)
        c1 = np.bincount(cell, y, minlength=ncyc * bins).reshape(ncyc, bins)
        c2 = np.bincount(cell, y * y, minlength=ncyc * bins).reshape(ncyc, bins)
        s = c1.sum(axis=0)
        full = s / np.maximum(n, 1.0)
        # held out: each cycle against the profile of the others, for every candidate shape; the one
        # that predicts the cycles it did not see best is the profile (see ``_levels``)
        ks = _candidates(bins, period)
        sse = dict.fromkeys(ks, 0.0)
        preds = {k: np.empty((ncyc, bins)) for k in ks}
        for c in range(ncyc):
            for k, other in _levels(s - c1[c], n - cn[c], ks).items():
                if other is None:
                    sse.pop(k, None)
                elif k in sse:
                    # a bin no other cycle saw (free bins only) keeps the full mean: nothing to hold out
                    pred = preds[k][c] = np.where(n > cn[c], other, full)
                    sse[k] += float(np.sum(c2[c] - 2.0 * pred * c1[c] + cn[c] * pred * pred))
        k = min(sse, key=lambda j: (sse[j], j))  # free bins (k = 0) are always a candidate
        pred = preds[k]
        level = _levels(s, n, [k])[k]
        assert level is not None
        prof.harmonics = k
        held = pred[cyc, b]
        resid = y - held
        dev = np.abs(resid - median(resid))
        spread = _spreads(dev, cell, cn, n)
        prof.level, prof.spread, prof.counts = level, spread, n
        total = float(np.var(y))
        prof.ratio = float(np.var(resid)) / total if total > 0 else 1.0
        prof.useful = prof.ratio <= EXPLAINS and ncyc >= CYCLES
        # the residuals the detectors are fitted on keep the spikes (the tails must see them)
        return prof, (y_in - held) / spread[b]

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
            self.harmonics if self.harmonics == other.harmonics else 0,
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
            "harmonics": self.harmonics,
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
            int(d.get("harmonics", 0)),
        )


def _candidates(bins: int, period: float) -> list[int]:
    per = round(period / DAY)
    out = [k * per for k in HARMONICS if 2 * k * per + 1 < bins] + [0]
    return [*out, DAY_AND_WEEKDAY] if per == 7 else out


def _day_and_weekday(sums: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
    """Weekly levels as one day's shape plus a level per weekday (weighted least squares by
    alternating means): 48 + 7 numbers instead of 336. Most weekly telemetry is this -- the same day,
    quieter at weekends -- and a bin of the week sees one value a week, so free weekly bins from two
    weeks are as noisy as two values each, and harmonics of the week ring around a weekend's edges."""
    w = counts.reshape(7, BINS_PER_DAY)
    m = np.divide(sums.reshape(7, BINS_PER_DAY), w, out=np.zeros_like(w), where=w > 0)
    per_bin, per_day = w.sum(axis=0), w.sum(axis=1)
    if np.count_nonzero(per_day) < 2 or np.count_nonzero(per_bin) < 2:
        return None
    off = np.zeros(7)
    day = np.zeros(BINS_PER_DAY)
    for _ in range(20):
        day = np.divide(
            (w * (m - off[:, None])).sum(axis=0),
            per_bin,
            out=np.full(BINS_PER_DAY, np.nan),
            where=per_bin > 0,
        )
        day = _fill(day)
        off = np.divide((w * (m - day[None, :])).sum(axis=1), per_day, out=np.zeros(7), where=per_day > 0)
    out: np.ndarray = (day[None, :] + off[:, None]).ravel()
    return out


@functools.lru_cache(maxsize=4)
def _basis(bins: int, k: int) -> np.ndarray:
    """Columns 1, cos(x), sin(x), cos(2x), sin(2x), ... up to ``k`` harmonics at the bins' centres: the
    first 2j + 1 columns are the basis of j harmonics."""
    phase = 2 * np.pi * (np.arange(bins) + 0.5) / bins
    cols = [np.ones(bins)]
    for h in range(1, k + 1):
        cols += [np.cos(h * phase), np.sin(h * phase)]
    out = np.column_stack(cols)
    out.setflags(write=False)
    return out


def _levels(sums: np.ndarray, counts: np.ndarray, ks: list[int]) -> dict[int, np.ndarray | None]:
    """Per-bin levels from per-bin sums and counts, for each of ``ks``: free bins (0: each bin's mean,
    empty bins interpolated) or the least-squares fit of ``k`` harmonics to the bin means, weighted by
    counts (None when too few bins have values for ``k`` harmonics). One weighted Gram matrix serves
    every ``k``: the basis of j harmonics is the first 2j + 1 columns of the largest.

    Why smooth at all: a free bin's mean comes from a few dozen values, so its error (~1/sqrt(n) sd)
    is a level offset held for the bin's whole length every cycle -- half an hour a day of a small
    mean shift the mean CUSUMs add up, a false alarm at about twice the budget on a strong cycle. A
    cycle that is smooth in time is described by a few harmonics fitted to all bins at once, with a
    fraction of the error. Which one the stream gets is decided on held-out cycles, so a sharp
    pattern (a nightly batch job, a square wave) keeps free bins."""
    bins = sums.size
    seen = counts > 0
    out: dict[int, np.ndarray | None] = {}
    gap = _longest_gap(seen)
    top = max(ks)
    if top > 0:
        basis = _basis(bins, top)
        gram = (basis.T * counts) @ basis  # weighted normal equations: W m = the sums themselves
        rhs = basis.T @ sums
    for k in ks:
        if k == 0:
            out[k] = _fill(np.divide(sums, counts, out=np.full(bins, np.nan), where=seen))
            continue
        if k == DAY_AND_WEEKDAY:
            out[k] = _day_and_weekday(sums, counts)
            continue
        p = 2 * k + 1
        # harmonics are only told where the cycle was seen: across a gap longer than half their
        # shortest period they swing freely (a weekend the learning buffer never held -- its samples
        # were a drift -- came out 13 sd low), and the held-out cycles cannot see it
        if int(np.count_nonzero(seen)) <= p or gap >= bins / (2 * k):
            out[k] = None
            continue
        try:
            coef = np.linalg.solve(gram[:p, :p], rhs[:p])
        except np.linalg.LinAlgError:
            out[k] = None
            continue
        out[k] = basis[:, :p] @ coef
    return out


def _longest_gap(seen: np.ndarray) -> int:
    """The longest run of unseen bins, around the cycle (the last bin is next to the first)."""
    idx = np.flatnonzero(seen)
    if idx.size == 0:
        return int(seen.size)
    # unseen between consecutive seen bins, the last one's successor being the first's next turn
    return int(np.max(np.diff(idx, append=idx[0] + seen.size)) - 1)


def _spreads(dev: np.ndarray, cell: np.ndarray, cn: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per-bin spread relative to the overall one: per bin (mean absolute deviation, shrunk towards
    the overall with ``SHRINK`` pseudo-samples) or one spread for every bin -- whichever predicts the
    held-out cycles' deviations better (a Laplace log-likelihood, each cycle against the others).

    A bin's spread comes from a few dozen values: on a stream whose spread never changes with the time
    of day, two days of one-minute samples still give bins from 0.75 to 1.2 by chance, and a bin whose
    spread came out low scales its residuals up every day (a strong daily cycle false-alarmed at about
    twice the budget). A stream whose nights really are quieter than its days keeps per-bin spreads:
    they predict the day they were not fitted on. ``cell`` / ``cn``: each value's (cycle, bin) cell and
    the cells' counts, as ``SeasonalProfile.fit`` has them; ``n``: the bins' counts."""
    ncyc, bins = cn.shape
    overall = float(np.mean(dev)) or 1.0
    cd = np.bincount(cell, dev, minlength=ncyc * bins).reshape(ncyc, bins)
    dsum = cd.sum(axis=0)
    per_bin = (dsum + SHRINK * overall) / (n + SHRINK) / overall
    score = 0.0  # held-out log-likelihood of per-bin over one spread (positive: per-bin predicts better)
    for c in range(ncyc):
        rest_n, rest_d = n - cn[c], dsum - cd[c]
        o = float(rest_d.sum() / rest_n.sum()) if rest_n.sum() > 0 else 0.0
        if not o > 0:
            continue
        sp = (rest_d + SHRINK * o) / (rest_n + SHRINK)
        one = float(cn[c].sum()) * math.log(o) + float(cd[c].sum()) / o
        score += one - float(np.sum(cn[c] * np.log(sp) + cd[c] / sp))
    return per_bin if score > 0 else np.ones(bins)


def _clip_spikes(y: np.ndarray, b: np.ndarray, n: np.ndarray, bins: int) -> np.ndarray:
    """``y`` with values beyond ``SPIKE`` robust sd of their bin's mean pulled to that bound (one
    Huber step), for the profile's estimates only.

    A bin holds a dozen values after two days of 5-minute samples: one spike of 40 sd moves its mean
    by over 3 sd (an alarm at that time of day until the next refit), inflates its spread, and lands
    in the held-out residuals and the total variance alike, so a real cycle no longer "explains" the
    stream and a short spell of spikes in the baseline switched seasonality off. Neither the profile
    nor the spikes explain each other: the cycle is judged and estimated on the clipped values, and
    the detectors still see every spike. A stream with no noise to speak of (robust sd 0), or whose
    "spikes" are too many to be spikes (``SPIKE_SHARE``: a mostly-zero stream with regular bursts, a
    heavy tail), is left as it is."""
    means = np.bincount(b, y, minlength=bins) / np.maximum(n, 1.0)
    around = means[b]
    r = y - around
    scale = 1.4826 * float(median(np.abs(r - median(r))))
    if not scale > 0:
        return y
    lo, hi = around - SPIKE * scale, around + SPIKE * scale
    if np.count_nonzero((y < lo) | (y > hi)) > SPIKE_SHARE * y.size:
        return y  # not spikes: the stream's own shape (zero-inflated, heavy-tailed)
    out: np.ndarray = np.clip(y, lo, hi)
    return out


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
