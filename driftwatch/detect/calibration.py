"""Thresholds from the false-alarm budget, computed rather than guessed.

The one knob is ``falseAlarmsPer``: expected samples between false alarms, per stream. It is split
across the detectors of a stream (their false alarms add up, to first order), and each detector's
threshold is derived for its share:

* CUSUM: Siegmund's approximation of the in-control average run length, generalised from Gaussian
  increments to any increment law through the Cramér (Lundberg) root ``theta`` solving
  ``E exp(theta (X - k)) = 1``. For N(0, 1) increments theta = 2k and the formula is Siegmund's own:
  ``ARL0 = (exp(theta b) - theta b - 1) / (theta k)`` with ``b = h + 1.166``. The root is estimated on
  the (clipped, standardised) baseline, so a skewed increment law -- the |z| used by the scale test --
  gets the larger threshold it needs.
* Windowed tests: the per-window level is the share times the window length over the budget, turned
  into a chi-square critical value.

Estimated baselines make every real detector alarm more often than its nominal ARL (a mean that is off
by 1/sqrt(n) shortens run lengths far more than it lengthens them), so ``SAFETY`` asks for a longer
nominal ARL than the budget. The autocorrelation of the baseline is removed by AR(1) prewhitening.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: nominal ARL = SAFETY x budget: a margin for what the closed forms leave out (non-Gaussian
#: increments beyond the Cramér root, noise in that root, the windowed test's dependence on the CUSUMs)
SAFETY = 1.5
#: Siegmund's overshoot correction for unit-variance increments (2 x 0.583)
OVERSHOOT = 1.166


def split_budget(budget: float, shares: dict[str, float]) -> dict[str, float]:
    """Per-detector ARL targets whose false-alarm rates add up to ``1 / budget``.

    >>> split_budget(10_000, {"up": 0.5, "down": 0.5})
    {'up': 20000.0, 'down': 20000.0}
    """
    total = sum(shares.values())
    return {name: budget * total / s for name, s in shares.items()}


def cramer_root(x: np.ndarray, k: float, cap: float) -> float:
    """Positive root theta of mean(exp(theta (x - k))) = 1 for a standardised sample x, capped.

    The cap is the Gaussian value 2k: light tails (clipped data) would allow a larger root and a
    smaller threshold, but the sample cannot prove light tails beyond what it saw, so we stay
    conservative. Returns ``cap`` when the sample is too small to say anything.
    """
    if x.size < 20:
        return cap
    d = x - k

    def f(t: float) -> float:
        return float(np.mean(np.exp(np.minimum(t * d, 700.0)))) - 1.0

    if f(cap) <= 0:  # the root lies beyond the cap
        return cap
    lo, hi = 1e-3, cap
    if f(lo) >= 0:  # no drift towards zero: degenerate sample
        return lo
    for _ in range(40):  # bisection: monotone beyond the minimum, cheap on <= 1024 samples
        mid = (lo + hi) / 2
        if f(mid) > 0:
            hi = mid
        else:
            lo = mid
    return lo


def cusum_arl(h: float, k: float, theta: float | None = None, rho: float = OVERSHOOT) -> float:
    """Siegmund's in-control ARL of a one-sided CUSUM with reference k and threshold h."""
    theta = 2 * k if theta is None else theta
    x = theta * (h + rho)
    return (math.expm1(x) - x) / (theta * k)


@lru_cache(maxsize=4096)
def cusum_threshold(arl: float, k: float, theta: float | None = None, rho: float = OVERSHOOT) -> float:
    """Threshold h whose Siegmund ARL is ``arl`` (inverse of ``cusum_arl``).

    >>> round(cusum_threshold(20_000, 0.5), 2)
    8.05
    """
    theta = 2 * k if theta is None else theta
    c = arl * theta * k
    x = math.log(c + 1.0)
    for _ in range(50):  # fixed point of x = log(1 + c + x): contracts fast
        x = math.log1p(c + x)
    return max(x / theta - rho, 0.1)


_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(9)
_GH_W = _GH_W / _GH_W.sum()


def _rate_with_estimation_error(h: float, k: float, theta: float, err: float, verr: float) -> float:
    """False-alarm rate (1/ARL) averaged over the baseline's estimation error: the increments' mean
    is off by d ~ N(0, err^2) and their sd by a factor (1 + e), e ~ N(0, verr^2) (Gauss-Hermite)."""
    d = _GH_X[:, None] * err
    v = (1.0 + _GH_X[None, :] * verr) ** 2
    mu = np.maximum(k - d, 1e-3)
    th = theta * (mu / k) / v
    x = th * (h + OVERSHOOT * np.sqrt(v))
    arl = (np.expm1(np.minimum(x, 700.0)) - x) / (th * mu)
    return float((_GH_W[:, None] * _GH_W[None, :] / arl).sum())


@lru_cache(maxsize=4096)
def predictive_threshold(
    arl: float, k: float, n: int, theta: float | None = None, mean_err: float = 1.0, var_err: float = 1.2247
) -> float:
    """CUSUM threshold whose false-alarm rate, *averaged over the error of a baseline of n samples*,
    is 1/arl.

    A CUSUM standardised by an estimated mean is biased by ~1/sqrt(n) sd, and a bias towards the
    alarm side shortens run lengths exponentially more than the opposite bias lengthens them (the
    Jensen gap: ~100x at n = 100 for k = 0.3). Integrating Siegmund's rate over the estimation error
    keeps a 100-sample baseline honest and costs a 1000-sample one almost nothing. ``mean_err`` and
    ``var_err`` are the errors' sds times sqrt(n) (1 for a mean; sqrt(1.5) for a scale plus the residual
    autocorrelation after prewhitening).

    >>> small, large = predictive_threshold(50_000, 0.3, 100), predictive_threshold(50_000, 0.3, 1000)
    >>> small > large > cusum_threshold(50_000, 0.3)
    True
    """
    theta = 2 * k if theta is None else theta
    err, verr = mean_err / math.sqrt(n), var_err / math.sqrt(n)
    lo, hi = 0.1, 500.0
    for _ in range(50):  # bisection on a monotone rate
        mid = (lo + hi) / 2
        if _rate_with_estimation_error(mid, k, theta, err, verr) > 1.0 / arl:
            lo = mid
        else:
            hi = mid
    return hi


@lru_cache(maxsize=1024)
def chi2_critical(alpha: float, df: int) -> float:
    """Upper-alpha critical value of chi-square(df) (== ``scipy.stats.chi2.isf``)."""
    # scipy.special, imported here rather than scipy.stats at module level: scipy.stats costs a
    # sidecar ~70 MB RSS and 1-2 s at start; the special function gives the same numbers
    from scipy.special import chdtri

    return float(chdtri(max(df, 1), alpha))


def ar1_coefficient(z: np.ndarray, limit: float = 0.9) -> float:
    """Lag-1 autocorrelation of a baseline (Yule-Walker AR(1) fit), clipped to +-limit.

    Real telemetry is autocorrelated; i.i.d. thresholds on it alarm far too often because excursions
    last longer. Prewhitening with this coefficient restores (nearly) independent increments.
    """
    if z.size < 10:
        return 0.0
    d = z - z.mean()
    den = float(np.einsum("i,i->", d, d))  # not np.dot: BLAS threads stall on busy hosts
    if den <= 0:
        return 0.0
    phi = float(np.einsum("i,i->", d[1:], d[:-1])) / den
    return float(np.clip(phi, -limit, limit))


def long_run_variance_factor(phi: float) -> float:
    """Variance of a mean of AR(1) samples relative to i.i.d.: (1 + phi) / (1 - phi)."""
    return (1 + phi) / (1 - phi)
