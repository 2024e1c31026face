"""How surprising a value is under the baseline's tail: a generalised Pareto fit beyond a high quantile.

The tail-mixture detectors (``detectors/tail.py``) score a value by its tail probability under the
baseline. A baseline of a few hundred samples says little about one-in-a-million values, so the tail
beyond the baseline's ``LEVEL`` quantile is modelled the way extreme-value theory says any tail looks
far enough out (Pickands-Balkema-de Haan): a generalised Pareto distribution, fitted here by probability-
weighted moments (Hosking & Wallis 1987: closed form, robust with ~50-100 exceedances). The fit is made
conservative twice over, because an underestimated tail turns into false alarms: the shape is raised
by one standard error, and never below 0 (an exponential tail: lighter tails, such as the Gaussian's,
then get probabilities that are too large, never too small).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: the tail starts at this quantile of the baseline (10 % of its values are exceedances)
LEVEL = 0.9
#: fewer exceedances than this: no shape is estimated (exponential tail)
MIN_EXCEEDANCES = 10


@dataclass(slots=True)
class TailModel:
    """P(R > r) for r beyond ``t``: ``zeta * (1 + xi (r - t) / sigma) ** (-1 / xi)``.

    >>> rng = np.random.default_rng(4)
    >>> tm = TailModel.fit(rng.standard_exponential(2000))
    >>> round(tm.zeta, 2), 0.0 <= tm.xi < 0.2
    (0.1, True)
    >>> tm.p(tm.t + 9.0) > 0.1 * math.exp(-9.0)  # true: 0.1 exp(-9) ~ 1.2e-5; the fit is conservative
    True
    """

    t: float = 0.0
    zeta: float = LEVEL
    xi: float = 0.0
    sigma: float = 1.0

    @classmethod
    def fit(cls, r: np.ndarray, min_sigma: float = 0.0) -> TailModel:
        """``min_sigma`` is a rounding-level difference: it floors the scale (exceedances that differ only
        at rounding level must not make the tail look infinitely thin) and the tail's start."""
        r = np.sort(np.asarray(r, np.float64))
        if r.size < 2:
            return cls()
        # the tail starts ``min_sigma`` beyond the quantile: with ties (a noise-free signal's residuals)
        # a value a rounding error above the quantile is no exceedance -- else float noise in a later
        # window reads as a tail grown from the quantile's share to most values
        t = float(r[min(int(LEVEL * r.size), r.size - 1)]) + min_sigma
        y = r[r > t] - t
        zeta = max(y.size, 1) / r.size
        spread = float(r[-1] - r[0]) or 1.0
        if y.size < MIN_EXCEEDANCES or not float(y.mean()) > 0:
            sigma = float(y.mean()) if y.size and y.mean() > 0 else 0.1 * spread
            return cls(t, zeta, 0.0, max(sigma, min_sigma))
        m = y.size
        b0 = float(y.mean())
        b1 = float(np.mean(y * (1.0 - np.arange(m) / (m - 1))))  # PWM a1 = E[y (1 - F)]
        den = b0 - 2.0 * b1
        if den > 1e-12 * b0:
            xi = 2.0 - b0 / den
            sigma = 2.0 * b0 * b1 / den
        else:  # degenerate (ties): an exponential tail with the exceedances' mean
            xi, sigma = 0.0, b0
        if not (sigma > 0 and math.isfinite(xi)):
            xi, sigma = 0.0, b0
        # conservative: one standard error heavier (asymptotic sd of the shape ~ (1 + xi) / sqrt(m))
        xi = float(np.clip(xi + (1.0 + max(xi, 0.0)) / math.sqrt(m), 0.0, 1.0))
        return cls(t, zeta, xi, max(float(sigma), min_sigma))

    def p(self, r: float) -> float:
        """Tail probability of a value beyond ``t`` (callers use the empirical share inside)."""
        z = (r - self.t) / self.sigma
        if self.xi > 1e-9:
            p = self.zeta * (1.0 + self.xi * z) ** (-1.0 / self.xi)
        else:
            p = self.zeta * math.exp(-z)
        return float(min(max(p, 1e-300), 1.0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TailModel:
        return cls(**{k: float(v) for k, v in d.items()})
