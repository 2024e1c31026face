"""One-sided CUSUM for a mean shift, vectorised over a batch.

The recursion S_t = max(0, S_{t-1} + x_t - k) is Lindley's, and has the closed form
S_t = W_t - min(-S_0, min_{s<=t} W_s) with W = cumsum(x - k): one ``np.cumsum`` and one
``np.minimum.accumulate`` per batch, no Python loop. The first alarm is ``argmax(S > h)``; the last
reset before it (the last S = 0, i.e. the running minimum of W) is the maximum-likelihood change point.

While a stream is Drifting the statistic is also capped (S <= cap) so it can come back down soon after
the change ends; the doubly clamped recursion is still vectorised, by an associative scan over the
composition of clamp-and-add maps (``clamped_lindley``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from driftwatch.detect.base import Detector

#: batches up to this size run the scalar recursion (same values up to rounding)
SMALL = 16
#: [1, 2, ...] as float64, built on first use: 512 kB resident from import in every sidecar otherwise,
#: whose default monitor never calls ``lindley`` (the compiled loop runs its CUSUMs)
_ARANGE = np.zeros(0, np.float64)


def _steps(n: int) -> np.ndarray:
    """[1, 2, ..., n] as float64: one shared read-only array, grown as needed and sliced. (Caching
    k * steps per k instead thrashes: every stream has its own k for the scale tests.)"""
    global _ARANGE
    if _ARANGE.size < n:
        _ARANGE = np.arange(1, max(2 * n, 1 << 16) + 1, dtype=np.float64)
        _ARANGE.setflags(write=False)
    return _ARANGE[:n]


def lindley(x: np.ndarray, s0: float, k: float, csum: np.ndarray | None = None, sign: int = 1) -> np.ndarray:
    """S_t = max(0, S_{t-1} + sign * x_t - k) for a whole batch, vectorised.

    ``csum`` = ``np.cumsum(x)`` if the caller has it (the up and down tests share one cumsum).

    >>> lindley(np.array([1.0, 2.0, -5.0, 1.0]), 0.0, 0.5).tolist()
    [0.5, 2.0, 0.0, 0.5]
    """
    c = np.cumsum(x) if csum is None else csum
    w = _steps(x.size) * -k  # W = sign * C - k t
    if sign > 0:
        w += c
    else:
        w -= c
    # running min of (-s0, W_1, ..., W_t): fold -s0 into the first element instead of a extra pass
    w0 = float(w[0])
    w[0] = min(w0, -s0)
    m = np.minimum.accumulate(w)
    w[0] = w0
    w -= m
    return w


def clamped_lindley(inc: np.ndarray, s0: float, cap: float) -> np.ndarray:
    """S_t = min(cap, max(0, S_{t-1} + inc_t)), vectorised by a Hillis-Steele scan.

    Each step is the map f(s) = clamp(s + b, L, H); composing two such maps gives another:
    f2(f1(s)) = clamp(s + b1 + b2, clamp(L1 + b2, L2, H2), clamp(H1 + b2, L2, H2)). log2(n) passes.

    >>> clamped_lindley(np.array([3.0, 3.0, -1.0, -9.0]), 0.0, 4.0).tolist()
    [3.0, 4.0, 3.0, 0.0]
    """
    b = inc.astype(np.float64, copy=True)
    lo = np.zeros_like(b)
    hi = np.full_like(b, cap)
    d = 1
    n = b.size
    while d < n:
        b2, lo2, hi2 = b[d:], lo[d:], hi[d:]
        nlo = np.clip(lo[:-d] + b2, lo2, hi2)
        nhi = np.clip(hi[:-d] + b2, lo2, hi2)
        nb = b[:-d] + b2
        b[d:], lo[d:], hi[d:] = nb, nlo, nhi
        d *= 2
    return np.minimum(hi, np.maximum(lo, s0 + b))


def capped_lindley(inc: np.ndarray, s0: float, cap: float, max_phases: int = 8) -> np.ndarray:
    """The same path as ``clamped_lindley``, by alternating one-sided phases: the path is the lower-
    reflected walk (a plain Lindley recursion) until it first exceeds ``cap`` (there it is ``cap``),
    then the upper-reflected walk ``cap - max(0, ...)`` until it first drops below 0 (there it is 0),
    and so on. Each phase is one running minimum over the rest of the batch on a shared cumsum; a
    crossing of the whole band [0, cap] takes many samples, so there are few phases -- after
    ``max_phases`` the rest goes to the log-depth scan, which bounds the cost for any input.

    >>> capped_lindley(np.array([3.0, 3.0, -1.0, -9.0, 2.0]), 0.0, 4.0).tolist()
    [3.0, 4.0, 3.0, 0.0, 2.0]
    """
    n = inc.size
    out = np.empty(n)
    c = np.cumsum(inc)
    i, s, lower = 0, float(s0), True
    for _ in range(max_phases):
        # W = +-(c[i:] - c[i-1]); S (or D) = W - min(-start, running min of W), as in ``lindley``
        w = c[i:] - c[i - 1] if i else c.copy()
        if not lower:
            np.negative(w, out=w)  # D_t = cap - U_t follows the Lindley recursion on -inc
        d0 = s if lower else cap - s
        w0 = float(w[0])
        w[0] = min(w0, -d0)
        m = np.minimum.accumulate(w)
        w[0] = w0
        w -= m  # the phase's one-sided path (S while lower, D = cap - U while upper)
        over = w > cap
        j = int(np.argmax(over))
        if not over[j]:
            j = -1
        seg = out[i:] if j < 0 else out[i : i + j]
        if lower:
            seg[...] = w[: seg.size]
        else:
            np.subtract(cap, w[: seg.size], out=seg)
        if j < 0:
            return out
        s = cap if lower else 0.0
        out[i + j] = s
        i += j + 1
        lower = not lower
        if i >= n:
            return out
    out[i:] = clamped_lindley(inc[i:], s, cap)
    return out


_NO_PATH: tuple[int, int, np.ndarray] = (0, -1, np.zeros(0))


class Cusum(Detector):
    """One-sided CUSUM on a standardised stream: ``direction=+1`` looks for an upward mean shift,
    ``-1`` downward. ``k`` is half the shift it is tuned for (0.5: a 1 sigma shift), ``h`` the threshold
    (from ``calibration.cusum_threshold``). ``cap`` bounds the statistic while tracking a drift.

    >>> det = Cusum(k=0.5, h=5.0)
    >>> det.update(np.zeros(100)), det.drift_detected
    (-1, False)
    >>> det.update(np.full(100, 2.0)), det.drift_detected, det.onset
    (3, True, 100)
    """

    name: ClassVar[str] = "cusum-mean"
    __slots__ = ("_path", "direction", "h", "k", "last_zero", "s", "t")

    def __init__(self, k: float = 0.5, h: float = 5.0, direction: int = 1, label: str | None = None) -> None:
        super().__init__()
        self.k = float(k)
        self.h = float(h)
        self.direction = 1 if direction >= 0 else -1
        self.label = label or f"{self.name}-{'up' if self.direction > 0 else 'down'}"
        self.s = 0.0
        self.t = 0  # samples seen (absolute, in the caller's accepted-sample count)
        self.last_zero = -1  # absolute index of the last sample with S = 0
        self._path: tuple[int, int, np.ndarray] = _NO_PATH  # the last update's, for rewind()

    # -- the detector API ----------------------------------------------------------------------------

    def update(self, z: np.ndarray, csum: np.ndarray | None = None) -> int:
        """Feed a batch; stop at (and return) the first alarm position, or -1. ``csum`` is
        ``np.cumsum(z)`` when the caller already has it."""
        self.drift_detected = False
        n = z.size
        if n == 0:
            return -1
        s = self._loop(z) if n <= SMALL else lindley(z, self.s, self.k, csum, self.direction)
        self._path = (self.t, self.last_zero, s)  # transient, for rewind(); cleared by the caller
        if s.max() <= self.h:
            self._advance(s, n)
            return -1
        pos = int(np.argmax(s > self.h))
        self._advance(s[: pos + 1], pos + 1)
        self.onset = self.last_zero + 1
        self.drift_detected = True
        return pos

    def _loop(self, z: np.ndarray) -> np.ndarray:
        """The recursion itself, for tiny batches (a sidecar posting a few values): a handful of
        float operations beat ten numpy calls."""
        k, s, out = self.k, self.s, []
        for v in (z if self.direction > 0 else -z).tolist():
            s = s + v - k
            if s < 0.0:
                s = 0.0
            out.append(s)
        return np.array(out)

    def rewind(self, used: int) -> None:
        """Undo the last ``update`` beyond its first ``used`` samples (the stream's first alarm came
        from another detector there) from the kept path: no second pass over the data."""
        t0, lz0, s = self._path
        self.t, self.last_zero = t0, lz0
        self._advance(s[:used], used)
        self.onset = None
        self.drift_detected = False

    def _advance(self, s: np.ndarray, n: int) -> None:
        if s[-1] <= 0.0:  # common under no change: the last reset is the last sample, no search
            self.last_zero = self.t + n - 1
            self.s = 0.0
            self.t += n
            return
        last_min = s.size - 1 - int(np.argmin(s[::-1]))  # last occurrence of the minimum: one pass
        if s[last_min] <= 0.0:
            self.last_zero = self.t + last_min
        self.s = float(s[-1])
        self.t += n

    def track(self, z: np.ndarray, cap: float) -> np.ndarray:
        """While Drifting: the whole path of the statistic, capped at ``cap`` (no stop at alarms)."""
        if z.size == 0:
            return np.zeros(0)
        inc = z - self.k if self.direction > 0 else -self.k - z
        s = capped_lindley(inc, self.s, cap)
        self._advance(s, z.size)
        return s

    @property
    def statistic(self) -> float:
        return self.s

    @property
    def threshold(self) -> float:
        return self.h

    def reset(self) -> None:
        self.s = 0.0
        self.last_zero = self.t - 1
        self.onset = None
        self.drift_detected = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "h": self.h,
            "direction": self.direction,
            "label": self.label,
            "s": self.s,
            "t": self.t,
            "last_zero": self.last_zero,
            "onset": self.onset,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cusum:
        det = cls(d["k"], d["h"], d["direction"], d["label"])
        det.s, det.t, det.last_zero, det.onset = float(d["s"]), int(d["t"]), int(d["last_zero"]), d["onset"]
        return det
