"""Per-sample transforms that make real telemetry look like the N(0, 1) the thresholds assume.

Order, as applied by ``Standardizer.apply``: optional log (positive, right-skewed metrics such as
latency), robust centring and scaling by the baseline median and MAD (one 10x spike cannot move them),
Huber clipping at ``CLIP`` robust sigmas (one spike contributes a bounded amount to any CUSUM), then an
exact re-standardisation by the mean and std of the *clipped* baseline -- so the detector input has mean
0 and variance 1 on the baseline even when clipping is asymmetric.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .median import median

#: Huber clip, in robust sigmas: loses ~1 % efficiency on Gaussian data, caps an outlier's push
CLIP = 3.0
#: MAD -> sigma for Gaussian data
MAD_SIGMA = 1.482602218505602


def skewness(x: np.ndarray) -> float:
    """Sample skewness, computed on standardised values (cubes of raw 1e140s would overflow)."""
    d = x - x.mean()
    sd = float(np.sqrt(np.mean(d * d)))
    if not sd > 0:
        return 0.0
    z = d / sd
    return float(np.mean(z * z * z))


def wants_log(x: np.ndarray, mode: str = "auto") -> bool:
    """Log-transform a positive, right-skewed baseline (latency, sizes) when it makes it more
    symmetric. ``mode`` is the feature's ``transform`` (auto | none | log)."""
    if mode == "none" or x.size == 0:
        return False
    positive = bool(np.all(x > 0))
    if mode == "log":
        return positive
    if not positive or x.size < 20:
        return False
    raw = skewness(x)
    return raw > 0.5 and abs(skewness(np.log(x))) < raw


def robust_scale(x: np.ndarray) -> tuple[float, float]:
    """(median, MAD-based sigma); falls back to the IQR, then the std, then 1 for constant data."""
    med = float(median(x))
    mad = float(median(np.abs(x - med))) * MAD_SIGMA
    if mad <= 0:
        q25, q75 = np.quantile(x, [0.25, 0.75])
        mad = float(q75 - q25) / 1.349
    if mad <= 0:
        mad = float(x.std())
    if mad <= 0:
        mad = max(abs(med) * 1e-6, 1e-12)
    return med, mad


def smooth_median(x: np.ndarray) -> float:
    """Harrell-Davis median: every order statistic weighted by a Beta((n+1)/2, (n+1)/2) kernel.

    The sample median of quantised telemetry (whole milliseconds, whole percent) jumps a full unit
    when the middle of the data falls between two units -- 0.5 sd on a narrow stream -- and a
    baseline or an adopted regime anchored on such a jump starts out shifted. The Harrell-Davis
    estimate moves smoothly with the data (it interpolates the units' shares) and is as robust to a
    few outliers as the median in practice (their weights are ~0 far from the middle).

    >>> smooth_median(np.array([1.0, 1.0, 2.0, 2.0]))
    1.5
    >>> round(smooth_median(np.array([1.0] * 51 + [2.0] * 49)), 2)  # the sample median says 1
    1.42
    """
    s = np.sort(np.asarray(x, np.float64))
    n = s.size
    if n < 3:
        return float(s.mean()) if n else 0.0
    lo, w = _hd_weights(n)
    c = float(s[n // 2])  # weights sum to 1 only to rounding: a constant sample must give itself back
    return c + float(w @ (s[lo : lo + w.size] - c))


#: sub-intervals per order statistic when integrating the Beta kernel (midpoint rule)
_HD_SUB = 16


@lru_cache(maxsize=64)
def _hd_weights(n: int) -> tuple[int, np.ndarray]:
    """Harrell-Davis weights of the median of n sorted values: the Beta((n+1)/2, (n+1)/2) mass on each
    ((i-1)/n, i/n], as (first index, weights over the band that holds all but ~1e-15 of it).

    Integrated here rather than with ``scipy.special.betainc``: importing scipy costs every sidecar
    ~15 MB and a few hundred ms (see ``calibration.chi2_critical``), for a kernel this smooth."""
    a = (n + 1) / 2.0
    half = min(0.5, 8.5 * 0.5 / math.sqrt(n + 2))  # the kernel's sd is 1 / (2 sqrt(n + 2))
    lo = max(0, math.floor((0.5 - half) * n))
    hi = min(n, math.ceil((0.5 + half) * n))
    t = (lo + (np.arange((hi - lo) * _HD_SUB) + 0.5) / _HD_SUB) / n
    logpdf = (a - 1.0) * (np.log(t) + np.log1p(-t))
    w = np.exp(logpdf - logpdf.max()).reshape(hi - lo, _HD_SUB).sum(axis=1)
    return lo, w / w.sum()


def smooth_scale(x: np.ndarray) -> tuple[float, float]:
    """(Harrell-Davis median, Harrell-Davis MAD as a sigma): ``robust_scale`` without the unit jumps
    of sample quantiles on quantised data; the same fallbacks for a degenerate spread."""
    x = np.asarray(x, np.float64)
    med = smooth_median(x)
    mad = smooth_median(np.abs(x - med)) * MAD_SIGMA
    if not mad > 0:
        mad = float(x.std()) or 1.0
    return med, mad


@dataclass(slots=True)
class Standardizer:
    """Raw value -> detector input: log?, robust z, Huber clip, exact re-standardisation."""

    log: bool = False
    floor: float = 0.0  # log only: values at or below this map to log(floor)
    center: float = 0.0
    scale: float = 1.0
    clip: float = CLIP
    mu: float = 0.0  # mean of the clipped baseline z
    sigma: float = 1.0  # std of the clipped baseline z

    @classmethod
    def fit(cls, x: np.ndarray, transform: str = "auto", min_scale: float = 0.0) -> Standardizer:
        """``min_scale`` floors the robust scale: residuals of a noise-free signal (a profile that
        explains everything) must not turn rounding errors into many-sigma deviations."""
        log = wants_log(x, transform)
        floor = float(x.min()) / 10 if log else 0.0
        y = np.log(x) if log else x
        center, scale = robust_scale(y)
        floored = scale < min_scale
        scale = max(scale, min_scale)
        s = cls(log, floor, center, scale)
        z = s._clipped(y)
        s.mu = float(z.mean())
        # a floored scale is the unit: re-standardising by the (tiny) spread would undo the floor
        s.sigma = 1.0 if floored else float(z.std()) or 1.0
        return s

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Only the log step (the space in which center/scale live)."""
        return np.log(np.maximum(x, self.floor)) if self.log else x

    def _clipped(self, y: np.ndarray) -> np.ndarray:
        z = (y - self.center) * (1.0 / self.scale)
        return np.clip(z, -self.clip, self.clip, out=z)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Standardised, clipped detector input (float64, new array).

        One affine map and one clip (3 passes): clip((y - c)/s, -C, C) then (. - mu)/sigma equals
        clip(a y + b, lo, hi) with the bounds mapped through the second affine (sigma > 0)."""
        a = 1.0 / (self.scale * self.sigma)
        b = -(self.center / self.scale + self.mu) / self.sigma
        lo = (-self.clip - self.mu) / self.sigma
        hi = (self.clip - self.mu) / self.sigma
        z = self.transform(x) * a
        z += b
        return np.clip(z, lo, hi, out=z)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        return cls(**d)
