"""The fused per-sample loop of the default numeric monitor, and its Python reference.

``NumericMonitor`` keeps every number its detectors need in two flat float64 arrays -- parameters
(fixed between baseline fits) and state (moved by every sample) -- plus a few small side arrays.
``run`` feeds a batch through the compiled loop (``_kernel.c``): per sample it applies the transform
(log, seasonal profile, robust standardisation, Huber clip), the local level, AR(1) prewhitening and
the successive difference, then updates the six CUSUMs and the windowed shape test, and stops at the
first alarm (Stable) or at the completed recovery run (Drifting). The Python side acts once per event.

``run_reference`` is the same loop, sample by sample, in Python: the definition the compiled loop is
tested against (``tests/unit/detect/test_kernel.py``) and the place to read what each slot means.

Why one fused loop rather than one vectorised pass per detector: a numpy pass per detector reads the
batch ~40 times and needs scan tricks (rewinds, clamped Lindley recursions) to stop at the first
alarm; one loop reads it once, stops exactly where it must, and makes per-sample mechanisms (a local
level, tail probabilities) as cheap as the rest. The detectors' definitions live in
``detectors/``; this module only executes them together.

Inside, the loop is shaped for the CPU (``_kernel.c``; docs/decisions.md §30): blocks of 256 samples
in three passes (transform and level; the tail increments, computed only for samples beyond a tail
threshold; the rest), and the six CUSUMs as three two-lane vectors with no data-dependent branch. Every
number is the one ``run_reference`` computes, bit for bit: the same IEEE operations in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from . import _kernel


class P(IntEnum):
    """Parameter slots (float64), fixed between baseline fits."""

    A = 0  # u = clip(A * y + B - level, LO, HI): the robust standardisation, Huber clip around the level
    B = 1
    LO = 2
    HI = 3
    LOG = 4  # 1: y = log(max(x, FLOOR))
    FLOOR = 5
    PERIOD = 6  # seasonal profile: seconds per cycle (0: no profile)
    NBINS = 7  # bins per cycle; y = (y - level[bin]) / spread[bin]
    LAM = 8  # local level: m += LAM * (z - m) while Stable (0: a fixed level)
    PHI = 9  # AR(1) prewhitening: e = (u - PHI u_prev) / PHIDEN
    PHIDEN = 10
    K = 11  # mean CUSUM reference (sd units)
    KUP = 12  # scale CUSUM references, in |d| units
    KDN = 13
    H0 = 14  # thresholds of the six CUSUMs: mean up/down, scale up/down, tail up/down (0: off)
    H1 = 15
    H2 = 16
    H3 = 17
    H4 = 18
    H5 = 19
    EPS = 20  # tail mixture alternative: a share EPS of samples moved into the tail ...
    BETA = 21  # ... with tail probabilities ~ Beta(BETA, 1)
    BODY_UP = 22  # the tail CUSUMs' increment for a sample inside the body (mean LLR there)
    BODY_DN = 23
    TU_T = 24  # upper tail: threshold, share beyond it, GPD shape and scale
    TU_ZETA = 25
    TU_XI = 26
    TU_SIGMA = 27
    TD_T = 28  # lower tail, same slots on -r
    TD_ZETA = 29
    TD_XI = 30
    TD_SIGMA = 31
    STEP = 32  # shape test: half window
    CRIT = 33  # shape test: chi-square critical value (0: off)
    CAP = 34  # while Drifting, a CUSUM statistic is capped at CAP x its threshold
    REC = 35  # recovery: consecutive normal samples
    NEDGES = 36  # shape test: bin edges in use
    FOLLOW = 37  # 1: the local level follows while Drifting too (0: it freezes at the drift's start)


class S(IntEnum):
    """State slots (float64), moved by every sample."""

    S0 = 0  # CUSUM statistics, in detector order
    S1 = 1
    S2 = 2
    S3 = 3
    S4 = 4
    S5 = 5
    LZ0 = 6  # absolute index of each CUSUM's last zero (its onset is the sample after)
    LZ1 = 7
    LZ2 = 8
    LZ3 = 9
    LZ4 = 10
    LZ5 = 11
    M = 12  # local level
    UPREV = 13  # last level-adjusted value and last innovation (prewhitening, differences)
    EPREV = 14
    HAVEPREV = 15
    T = 16  # samples seen (absolute)
    NORMAL = 17  # consecutive normal samples while Drifting
    FILLED = 18  # shape: samples in the step in progress
    SHSTAT = 19  # shape: statistic of the last completed window
    SLOW_N = 20  # sums for the slow baseline update while Stable: n, sum e, sum e^2, sum |d|
    SLOW_SE = 21
    SLOW_SEE = 22
    SLOW_SD = 23


N_PARAMS = len(P)
N_STATE = len(S)
#: detector indices as the loop reports them (0-5 the CUSUMs, 6 the shape test)
DETECTORS = (
    "cusum-mean-up",
    "cusum-mean-down",
    "cusum-scale-up",
    "cusum-scale-down",
    "tail-mixture-up",
    "tail-mixture-down",
    "chi2-shape",
)
SHAPE = 6
MAX_EDGES = 7  # the shape test's bins: at most 8 (quantile_bins makes at most 7 edges)


class Code(IntEnum):
    NONE = 0  # the limit or the end of the batch
    ALARM = 1
    RECOVERED = 2


_CODES = tuple(Code)


@dataclass
class Step:
    """What one call did: samples consumed, why it stopped, which detector (alarms only)."""

    used: int
    code: Code
    detector: int


_NO_FIT = np.zeros(0)
_NO_FIT.setflags(write=False)


class _Part:
    """One part of an ``Arrays`` block, between two of its offsets: read as a view (int64 for the
    counts), assigned through ``Arrays._replace`` (in place when the size is the same)."""

    __slots__ = ("hi", "i", "ints", "lo")

    def __init__(self, i: int, lo: str, hi: str, ints: bool = False) -> None:
        self.i, self.lo, self.hi, self.ints = i, lo, hi, ints

    def __get__(self, obj: Arrays, owner: object = None) -> np.ndarray:
        v: np.ndarray = obj._f[getattr(obj, self.lo) : getattr(obj, self.hi)]
        return v.view(np.int64) if self.ints else v

    def __set__(self, obj: Arrays, a: np.ndarray) -> None:
        obj._replace(self.i, a)


class Arrays:
    """Everything the loop reads and writes, for one stream, in one block: a float64 array holding the
    parameters, the state, the seasonal profile, its sums and the shape test's edges at fixed offsets,
    then the shape test's baseline counts and step counts as int64 bit patterns (read and written
    only through int64 views).

    Each part is a view of its block, made when it is read (the loop and the events index the views
    as they indexed the arrays before). Assigning a part of the same size writes into its block, so
    views of the other parts held by the caller (``p, s = arr.params, arr.state``) stay live; a part
    of another size (only while a fit builds its arrays) builds a new block. One array a stream
    instead of seven: a numpy array is ~100 bytes of header and allocation around a few bytes of
    data (docs/decisions.md §32).

    * ``params``: float64[N_PARAMS]; ``state``: float64[N_STATE]
    * ``profile``: float64[2 * nbins], level then spread (spread 1 without a profile); ``profile_sums``:
      float64[2 * nbins], sums of standardised values and counts while Stable
    * ``edges``: float64[NEDGES]
    * ``base``: int64[NEDGES + 1], baseline counts per shape bin; ``counts``: int64[2 * (NEDGES + 1)],
      shape counts of the step in progress, then the last step
    * ``fit``: float64[...], not read by the loop: the fitted baseline's own numbers
      (``numeric_fit.Baseline`` keeps its floats here rather than as a dozen float objects a stream;
      docs/decisions.md §35). Empty until a baseline is fitted.
    """

    #: ``_f`` the block; the offsets where state, profile, its sums, edges, the fit's numbers, the ints
    #: (the baseline counts) and the step counts start (small ints: no object of their own)
    __slots__ = ("_edges", "_f", "_fit", "_intc", "_ints", "_prof", "_state", "_sums")
    _start, _end = 0, None  # the block's ends, for the parts' slices

    def __init__(
        self,
        params: np.ndarray,
        state: np.ndarray,
        profile: np.ndarray,
        profile_sums: np.ndarray,
        edges: np.ndarray,
        base: np.ndarray,
        counts: np.ndarray,
        fit: np.ndarray = _NO_FIT,
    ) -> None:
        self._pack(params, state, profile, profile_sums, edges, base, counts, fit)

    def _pack(self, *parts: np.ndarray) -> None:
        params, state, profile, profile_sums, edges, base, counts, fit = parts
        f = (params, state, profile, profile_sums, edges, fit)
        sizes = tuple(int(a.size) for a in f)
        self._state = sizes[0]
        self._prof = self._state + sizes[1]
        self._sums = self._prof + sizes[2]
        self._edges = self._sums + sizes[3]
        self._fit = self._edges + sizes[4]
        self._ints = self._fit + sizes[5]
        self._intc = self._ints + int(base.size)
        ints = np.concatenate([np.asarray(base, np.int64).ravel(), np.asarray(counts, np.int64).ravel()])
        # the int64 counts ride in the same block as bit patterns (views of it as int64, never as floats)
        self._f = np.concatenate([*(np.asarray(a, np.float64).ravel() for a in f), ints.view(np.float64)])

    @classmethod
    def empty(cls) -> Arrays:
        return cls(
            np.zeros(N_PARAMS),
            np.zeros(N_STATE),
            np.ones(2),
            np.zeros(2),
            np.zeros(0),
            np.zeros(1, np.int64),
            np.zeros(2, np.int64),
        )

    def parts(
        self,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The seven views, in the loop's argument order (sliced here: one call per loop call, not seven)."""
        f, st, pr, su, ed, it = self._f, self._state, self._prof, self._sums, self._edges, self._ints
        ints = f[it:].view(np.int64)
        c = self._intc - it
        return (f[:st], f[st:pr], f[pr:su], f[su:ed], f[ed : self._fit], ints[:c], ints[c:])

    def _replace(self, i: int, a: np.ndarray) -> None:
        parts = [*self.parts(), self.fit]
        if np.size(a) == parts[i].size:  # in place: views of the other parts taken earlier stay live
            parts[i][...] = a
            return
        parts[i] = a
        self._pack(*parts)

    params = _Part(0, "_start", "_state")
    state = _Part(1, "_state", "_prof")
    profile = _Part(2, "_prof", "_sums")
    profile_sums = _Part(3, "_sums", "_edges")
    edges = _Part(4, "_edges", "_fit")
    base = _Part(5, "_ints", "_intc", ints=True)
    counts = _Part(6, "_intc", "_end", ints=True)
    fit = _Part(7, "_fit", "_ints")


def run(arr: Arrays, x: np.ndarray, ts: np.ndarray | None, drifting: bool, limit: int) -> Step:
    """Feed ``x`` (float64, contiguous; ``ts`` epoch seconds or None) through the compiled loop."""
    params, state, profile, profile_sums, edges, base, counts = arr.parts()
    used, code, det = _kernel.run(
        x,
        ts,
        params,
        state,
        profile,
        profile_sums,
        edges,
        base,
        counts,
        1 if drifting else 0,
        int(limit),
    )
    return Step(used, _CODES[code], det)  # ints from the extension; the enum by index, not Code(code)


def tail_llr(r: float, t: float, zeta: float, xi: float, sigma: float, eps: float, beta: float) -> float:
    """The tail CUSUM's increment for a value ``r`` beyond the tail threshold ``t``: the log-likelihood
    ratio of "a share eps of samples moved into the tail" for the value's tail probability under the
    baseline's generalised Pareto fit (see ``detectors/tail.py``), computed through log p."""
    z = (r - t) / sigma
    logp = math.log(zeta) - math.log1p(xi * z) / xi if xi > 1e-9 else math.log(zeta) - z
    logp = min(max(logp, -690.0), 0.0)  # p in [1e-300, 1]
    return math.log(1.0 - eps + eps * beta * math.exp((beta - 1.0) * logp))


def chi2_two_sample(obs: np.ndarray, base: np.ndarray) -> float:
    w, n = float(obs.sum()), float(base.sum())
    num = obs * n - base * w
    den = np.maximum(obs + base, 1)
    return float((num * num / den).sum()) / max(w * n, 1.0)


def run_reference(arr: Arrays, x: np.ndarray, ts: np.ndarray | None, drifting: bool, limit: int) -> Step:
    """``run`` in plain Python, sample by sample (the definition; slow)."""
    p, st = arr.params, arr.state
    n = min(x.size, int(limit))
    nbins, nedges = int(p[P.NBINS]), int(p[P.NEDGES])
    nb = nedges + 1
    period = p[P.PERIOD]
    use_prof = nbins > 0 and ts is not None and period > 0
    h = p[P.H0 : P.H5 + 1]
    use_tail = h[4] > 0
    step = int(p[P.STEP])
    cur, prev = arr.counts[:nb], arr.counts[nb:]
    code, det, i = Code.NONE, -1, 0
    while i < n:
        y = float(x[i])
        if p[P.LOG]:
            y = math.log(max(y, p[P.FLOOR]))
        b = 0
        if use_prof:
            assert ts is not None
            ph = math.fmod(float(ts[i]), period)
            if ph < 0:
                ph += period
            b = min(max(int(ph / period * nbins), 0), nbins - 1)
            y = (y - arr.profile[b]) / arr.profile[nbins + b]
        raw = p[P.A] * y + p[P.B]
        u = min(max(raw - st[S.M], p[P.LO]), p[P.HI])  # the Huber clip, around the level
        r = raw - st[S.M]
        if p[P.LAM] > 0 and (not drifting or p[P.FOLLOW]):
            st[S.M] += p[P.LAM] * u
        have = st[S.HAVEPREV] != 0
        e = (u - p[P.PHI] * st[S.UPREV]) / p[P.PHIDEN] if have else u
        d = abs(e - st[S.EPREV]) * 0.7071067811865476 if have else 0.0
        st[S.UPREV], st[S.EPREV], st[S.HAVEPREV] = u, e, 1.0
        inc = [e - p[P.K], -e - p[P.K], d - p[P.KUP], -p[P.KDN] - d, -1.0, -1.0]
        if use_tail:
            eps, beta = p[P.EPS], p[P.BETA]
            inc[4] = (
                tail_llr(r, p[P.TU_T], p[P.TU_ZETA], p[P.TU_XI], p[P.TU_SIGMA], eps, beta)
                if r > p[P.TU_T]
                else p[P.BODY_UP]
            )
            inc[5] = (
                tail_llr(-r, p[P.TD_T], p[P.TD_ZETA], p[P.TD_XI], p[P.TD_SIGMA], eps, beta)
                if -r > p[P.TD_T]
                else p[P.BODY_DN]
            )
            inc[4], inc[5] = min(inc[4], 0.5 * h[4]), min(inc[5], 0.5 * h[5])  # one value is never a drift
        for j in range(6):
            v = st[S.S0 + j] + inc[j]
            if v <= 0.0:
                v = 0.0
                st[S.LZ0 + j] = st[S.T]
            elif drifting and v > p[P.CAP] * h[j]:
                v = p[P.CAP] * h[j]
            st[S.S0 + j] = v
        if step > 0:
            cur[int(np.count_nonzero(e > arr.edges[:nedges]))] += 1
            st[S.FILLED] += 1
            if st[S.FILLED] >= step:
                st[S.SHSTAT] = chi2_two_sample(cur + prev, arr.base)
                prev[:] = cur
                cur[:] = 0
                st[S.FILLED] = 0
        st[S.T] += 1
        i += 1
        if not drifting:
            st[S.SLOW_N] += 1
            st[S.SLOW_SE] += e
            st[S.SLOW_SEE] += e * e
            st[S.SLOW_SD] += d
            if use_prof:
                arr.profile_sums[b] += raw
                arr.profile_sums[nbins + b] += 1
            best = 1.0
            for j in range(6):
                if h[j] > 0 and st[S.S0 + j] > h[j] and st[S.S0 + j] / h[j] > best:
                    best, det = st[S.S0 + j] / h[j], j
            crit = p[P.CRIT]
            if st[S.FILLED] == 0 and crit > 0 and st[S.SHSTAT] > crit and st[S.SHSTAT] / crit > best:
                det = SHAPE
            if det >= 0:
                code = Code.ALARM
                break
        else:
            ok = st[S.SHSTAT] <= p[P.CRIT] / 2 and all(
                h[j] <= 0 or st[S.S0 + j] <= h[j] / 2 for j in range(6)
            )
            st[S.NORMAL] = st[S.NORMAL] + 1 if ok else 0.0
            if st[S.NORMAL] >= p[P.REC]:
                code = Code.RECOVERED
                st[S.NORMAL] = 0.0
                break
    return Step(i, code, det)
