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

from .median import median

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
    conservative. A sample too small to say anything (< 20) gets half the cap: increments twice as
    variable as Gaussian ones, not the Gaussian best case.
    """
    if x.size < 20:
        return cap / 2
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


#: the 9-point Gauss-Hermite rule for N(0, 1) (probabilists'; weights summing to 1): exactly the values
#: of ``np.polynomial.hermite_e.hermegauss(9)`` with its weights normalised, written out because
#: computing them at import loads numpy.polynomial and numpy.linalg and runs LAPACK in every sidecar
#: (tests/unit/detect/test_gauss_hermite.py checks them against numpy)
_GH_NODES = (1.0232556637891326, 2.07684797867783, 3.20542900285647, 4.512745863399783)
_GH_WEIGHTS = (0.24409750289493953, 0.04991640676521782, 0.0027891413212317692, 2.2345844007746607e-05)
_GH_X = np.array([-x for x in reversed(_GH_NODES)] + [0.0] + list(_GH_NODES))
_GH_W = np.array([*reversed(_GH_WEIGHTS), 0.40634920634920635, *_GH_WEIGHTS])


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
    """Upper-alpha critical value of chi-square(df): ``scipy.special.chdtri(df, alpha)`` to ~1e-12.

    Computed here, not with scipy: importing scipy.special costs every sidecar ~15 MB of RSS and a
    few hundred ms at start, for a handful of numbers. Newton's method on ``log Q`` (Q the regularised
    upper incomplete gamma function) from the Wilson-Hilferty approximation, kept inside a bracket.
    """
    k = max(df, 1)
    if not 0.0 < alpha < 1.0:
        return math.inf if alpha <= 0.0 else 0.0
    a, target = k / 2.0, math.log(alpha)
    c = 2.0 / (9.0 * k)
    base = 1.0 - c + _normal_isf(alpha) * math.sqrt(c)
    # Wilson-Hilferty; in the far lower tail (alpha near 1) P(a, x/2) ~ (x/2)^a / Gamma(a + 1) instead
    x = k * base**3 if base > 0.1 else 2.0 * math.exp((math.lgamma(a + 1.0) + math.log1p(-alpha)) / a)
    lo, hi = 0.0, math.inf
    for _ in range(200):
        logq = _log_gamma_q(a, x / 2.0)
        if logq > target:
            lo = x  # Q too large: the critical value is further out
        else:
            hi = x
        # d log Q / dx = -hazard(x) = -pdf(x) / Q(x), pdf of chi-square(k) at x
        log_pdf = (a - 1.0) * math.log(x / 2.0) - x / 2.0 - math.lgamma(a) - math.log(2.0)
        hazard = math.exp(log_pdf - logq)
        nxt = x + (logq - target) / hazard if hazard > 0.0 else math.nan
        if not lo < nxt < hi:  # Newton left the bracket: bisect it (geometrically when it is wide)
            if not math.isfinite(hi):
                nxt = 2.0 * x
            elif lo > 0.0 and hi > 4.0 * lo:
                nxt = math.sqrt(lo * hi)
            else:
                nxt = (lo + hi) / 2.0
        if abs(nxt - x) <= 1e-15 * x:
            return nxt
        x = nxt
    return x


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


#: batch means: this many blocks of the baseline (7 degrees of freedom for the variance of their means)
BLOCKS = 8
#: the block variance must exceed its i.i.d. expectation by this factor (chi-square(7) upper 5 %)
#: before it is used: on well-behaved data the factor stays 1 and nothing changes
BLOCK_GATE = 2.01


def dispersion(x: np.ndarray, blocks: int = BLOCKS) -> float:
    """Long-run variance of ``x`` relative to its variance, by batch means: how much more sums of ``x``
    over long stretches vary than independent samples would. 1 for independent data; larger when the
    stream's level wanders, its values cluster, or its autocorrelation outlasts what prewhitening
    removed. A CUSUM's increments with dispersion D behave like independent ones with D times the
    variance, so its Cramér root shrinks by D (``thresholds`` use ``theta / D``).

    >>> rng = np.random.default_rng(1)
    >>> dispersion(rng.normal(size=1000))
    1.0
    >>> walk = np.cumsum(rng.normal(size=1000)); dispersion(walk - walk.mean()) > 10
    True
    """
    x = np.asarray(x, np.float64)
    length = x.size // blocks
    if length < 8:
        return 1.0
    var = float(np.var(x[: length * blocks]))
    if not var > 0:
        return 1.0
    sums = x[: length * blocks].reshape(blocks, length).sum(axis=1)
    d = float(np.var(sums, ddof=1)) / (length * var)
    return d if d > BLOCK_GATE else 1.0


#: local-level gains tried on the baseline (0: a fixed level)
LEVEL_GAINS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def level_gain(u: np.ndarray) -> float:
    """The gain of a local level (an exponentially weighted mean, m += g (u - m)) that best predicts
    the baseline one step ahead, or 0 when a fixed level predicts as well.

    A service whose level wanders (a temperature, a queue, a price) is better described as "near where
    it was a moment ago" than as "near its long-run mean": the detectors then look for changes faster
    than the stream's own wander. The alternative it must beat is the stationary one the detectors
    already handle -- an AR(1) around a fixed mean (prewhitening) -- so neighbouring samples being alike
    is not mistaken for wander (a local level would absorb a dip that AR(1) leaves to the detectors).
    The choice is penalised like BIC (one parameter: ``log(n) / n``), so a stationary stream keeps gain
    0 and behaves exactly as with a fixed baseline.

    >>> rng = np.random.default_rng(2)
    >>> level_gain(rng.normal(size=1000))
    0.0
    >>> ar = np.zeros(1000)
    >>> for i in range(1, 1000): ar[i] = 0.7 * ar[i - 1] + rng.normal()
    >>> level_gain(ar)                       # neighbours alike is AR(1), not a wandering level
    0.0
    >>> level_gain(np.cumsum(rng.normal(size=1000)) * 0.3 + rng.normal(size=1000)) > 0
    True
    """
    u = np.asarray(u, np.float64)
    n = u.size
    if n < 50:
        return 0.0
    warm = min(20, n // 5)
    penalty = math.exp(math.log(n) / n)
    # around the mean, as ar1_coefficient fits it: around the median, a skewed i.i.d. stream's
    # mean-median gap alone inflates the AR(1)'s errors and hands the choice to a slow local level
    d = u - u.mean()
    phi = ar1_coefficient(u, 0.97)
    ar = d[1:] - phi * d[:-1]  # one-step errors of an AR(1) around the mean
    best_v = float(np.mean(ar[warm - 1 :] ** 2))
    best = 0.0
    for g in LEVEL_GAINS[1:]:
        e = level_errors(u, g, float(median(u[:warm])))[0]
        v = float(np.mean(e[warm:] ** 2))
        if v * penalty < best_v:
            best_v, best = v, g
    return best


def level_errors(u: np.ndarray, gain: float, m0: float) -> tuple[np.ndarray, float]:
    """One-step-ahead errors of the local level over ``u`` (unclipped) and the level after the last
    value: what ``level_gain`` compares across gains and adoption measures a regime's spread with."""
    out = np.empty_like(u)
    m = m0
    for i, v in enumerate(u.tolist()):
        d = v - m
        out[i] = d
        m += gain * d
    return out, m


def level_innovations(
    u: np.ndarray, gain: float, m0: float, lo: float, hi: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """``level_errors`` as the kernel computes them: each error clipped to ``[lo, hi]`` before it moves
    the level (the Huber clip around the level); also the level before each value (the tail model's
    input). A loop over a baseline or an adopted regime only: at most a few thousand values, once per
    fit."""
    out = np.empty_like(u)
    before = np.empty_like(u)
    m = m0
    for i, v in enumerate(u.tolist()):
        before[i] = m
        d = v - m
        if d < lo:
            d = lo
        elif d > hi:
            d = hi
        out[i] = d
        m += gain * d
    return out, m, before


def llr_threshold(arl: float, increments: np.ndarray, overshoot: float = 1.0) -> float:
    """Threshold of a CUSUM whose increments are log-likelihood ratios (the tail-mixture detectors),
    from their values on the baseline.

    Under no change a log-likelihood ratio has E exp(X) = 1: Cramér's root is 1, whatever the data,
    and Siegmund's approximation gives ARL = (e^x - x - 1) / |E X| with x = h + overshoot. Dispersion
    (clustered tail events) divides the root, as for the other CUSUMs.

    >>> round(llr_threshold(150_000, np.full(1000, -0.06)), 1)
    8.1
    """
    mu = min(float(np.mean(increments)), -1e-3)
    theta = 1.0 / dispersion(increments)
    c = arl * theta * abs(mu)
    x = math.log(c + 1.0)
    for _ in range(50):
        x = math.log1p(c + x)
    return max(x / theta - overshoot, 1.0)


def _log_gamma_q(a: float, x: float) -> float:
    """log Q(a, x), the regularised upper incomplete gamma function: a series for P below a + 1, a
    continued fraction (modified Lentz) for Q above, as in Numerical Recipes' gammq."""
    if x <= 0.0:
        return 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-17:
            n += 1.0
            term *= x / n
            total += term
        return math.log1p(-math.exp(log_front + math.log(total)))
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    i = 0
    while True:
        i += 1
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16 or i > 10_000:
            return log_front + math.log(h)


def _normal_isf(p: float) -> float:
    """z with P(Z > z) = p, to ~1e-8 (Acklam's rational approximation): only a starting point."""
    q = min(p, 1.0 - p)
    if q < 0.02425:  # tail
        r = math.sqrt(-2.0 * math.log(q))
        z = -_horner(_ACKLAM_C, r) / _horner((*_ACKLAM_D, 1.0), r)
    else:
        r = q - 0.5
        z = -r * _horner(_ACKLAM_A, r * r) / _horner((*_ACKLAM_B, 1.0), r * r)
    return z if p <= 0.5 else -z


def _horner(coefficients: tuple[float, ...], x: float) -> float:
    out = 0.0
    for c in coefficients:
        out = out * x + c
    return out


_ACKLAM_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_ACKLAM_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_ACKLAM_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
