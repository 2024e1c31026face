"""Tail mixture: a share of the samples moved far out -- a slow mode, a burst of outliers, a spike train.

The mean and scale CUSUMs see standardised values clipped at 3 sigma (one spike must not decide
anything), so a mode of 10 % of requests at 3x the latency barely moves them. This detector scores each
value by how surprising it is under the baseline's tail (its tail probability ``p``: the empirical share
in the body, a generalised Pareto fit beyond, ``tails.TailModel``) and accumulates the log-likelihood
ratio of "a share ``eps`` of samples now comes from the far tail" (tail probabilities ~ Beta(beta, 1))
against "nothing changed":

    X = log(1 - eps + eps * beta * p ** (beta - 1))

Under no change ``p`` is uniform, so E exp(X) = 1 whatever the data look like: the threshold follows
from Siegmund's approximation with Cramér root 1 (``calibration.llr_threshold``). One extreme value
adds a lot but not enough; two or three close together alarm; a slow mode in 10 % of samples alarms
within a few dozen (an increment is capped at half the threshold, so no single value, however
extreme, alarms on its own). Inside the body (``p`` above the tail level) the increment is the body's
mean: the body only sets the pace at which evidence decays.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from driftwatch.detect.base import Detector
from driftwatch.detect.tails import TailModel

from .cusum import capped_lindley, lindley


class TailMixture(Detector):
    """CUSUM of tail-mixture log-likelihood ratios on the upper tail of ``r`` (use ``-r`` for the lower).

    >>> rng = np.random.default_rng(5)
    >>> det = TailMixture.fit(rng.normal(size=2000), arl=150_000)
    >>> det.update(rng.normal(size=20_000))
    -1
    >>> x = rng.normal(size=500); x[::10] += 6.0          # a mode of 10 % at +6 sigma
    >>> det.update(x) < 60
    True
    """

    name: ClassVar[str] = "tail-mixture"
    __slots__ = ("beta", "body", "eps", "h", "last_zero", "s", "t", "tail")
    EPS = 0.1
    BETA = 0.1

    def __init__(self, tail: TailModel, body: float, h: float, eps: float = EPS, beta: float = BETA) -> None:
        super().__init__()
        self.tail = tail
        self.body = float(body)
        self.h = float(h)
        self.eps = float(eps)
        self.beta = float(beta)
        self.s = 0.0
        self.t = 0
        self.last_zero = -1

    @classmethod
    def fit(
        cls, baseline: np.ndarray, arl: float, eps: float = EPS, beta: float = BETA, min_sigma: float = 0.0
    ) -> TailMixture:
        """Tail model, body increment and threshold from baseline values (``TailModel.fit`` for
        ``min_sigma``)."""
        from driftwatch.detect.calibration import llr_threshold

        r = np.asarray(baseline, np.float64)
        det = cls.refit_tail(r, math.inf, eps, beta, min_sigma)  # no cap while the threshold is derived
        det.h = llr_threshold(arl, det.increments(r))
        return det

    @classmethod
    def refit_tail(
        cls, r: np.ndarray, h: float, eps: float, beta: float, min_sigma: float = 0.0
    ) -> TailMixture:
        """Tail model and body increment from values ``r``, with a given threshold ``h`` (``fit`` derives
        it; adoption keeps the baseline's)."""
        r = np.asarray(r, np.float64)
        tm = TailModel.fit(r, min_sigma)
        det = cls(tm, 0.0, h, eps, beta)
        srt = np.sort(r)
        p = (srt.size - np.searchsorted(srt, r, side="left") + 0.5) / (srt.size + 1)
        body = r <= tm.t
        det.body = float(det.llr(p[body]).mean()) if body.any() else -0.05
        return det

    def llr(self, p: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.log(
            1.0 - self.eps + self.eps * self.beta * np.power(np.clip(p, 1e-300, 1.0), self.beta - 1.0)
        )
        return out

    def increments(self, r: np.ndarray) -> np.ndarray:
        r = np.asarray(r, np.float64)
        inc = np.full(r.size, self.body)
        beyond = r > self.tail.t
        if beyond.any():
            tm = self.tail
            z = (r[beyond] - tm.t) / tm.sigma
            p = tm.zeta * (1.0 + tm.xi * z) ** (-1.0 / tm.xi) if tm.xi > 1e-9 else tm.zeta * np.exp(-z)
            inc[beyond] = self.llr(p)
        # one value is never a drift: an increment is capped at half the threshold
        out: np.ndarray = np.minimum(inc, 0.5 * self.h)
        return out

    def update(self, z: np.ndarray) -> int:
        self.drift_detected = False
        if z.size == 0:
            return -1
        s = lindley(self.increments(z), self.s, 0.0)
        hit = s > self.h
        pos = int(np.argmax(hit)) if hit.any() else -1
        used = s if pos < 0 else s[: pos + 1]
        zeros = np.flatnonzero(used <= 0.0)
        if zeros.size:
            self.last_zero = self.t + int(zeros[-1])
        self.s = float(used[-1])
        self.t += used.size
        if pos >= 0:
            self.onset = self.last_zero + 1
            self.drift_detected = True
        return pos

    def track(self, z: np.ndarray, cap: float) -> np.ndarray:
        if z.size == 0:
            return np.zeros(0)
        s = capped_lindley(self.increments(z), self.s, cap)
        self.s = float(s[-1])
        self.t += z.size
        return s

    def reset(self) -> None:
        self.s = 0.0
        self.last_zero = self.t - 1
        self.onset = None
        self.drift_detected = False

    @property
    def statistic(self) -> float:
        return self.s

    @property
    def threshold(self) -> float:
        return self.h

    def to_dict(self) -> dict[str, Any]:
        return {
            "tail": self.tail.to_dict(),
            "body": self.body,
            "h": self.h,
            "eps": self.eps,
            "beta": self.beta,
            "s": self.s,
            "t": self.t,
            "last_zero": self.last_zero,
            "onset": self.onset,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TailMixture:
        det = cls(TailModel.from_dict(d["tail"]), d["body"], d["h"], d["eps"], d["beta"])
        det.s, det.t, det.last_zero, det.onset = float(d["s"]), int(d["t"]), int(d["last_zero"]), d["onset"]
        return det
