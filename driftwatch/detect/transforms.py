"""Per-sample transforms that make real telemetry look like the N(0, 1) the thresholds assume.

Order, as applied by ``Standardizer.apply``: optional log (positive, right-skewed metrics such as
latency), robust centring and scaling by the baseline median and MAD (one 10x spike cannot move them),
Huber clipping at ``CLIP`` robust sigmas (one spike contributes a bounded amount to any CUSUM), then an
exact re-standardisation by the mean and std of the *clipped* baseline -- so the detector input has mean
0 and variance 1 on the baseline even when clipping is asymmetric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

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
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med))) * MAD_SIGMA
    if mad <= 0:
        q25, q75 = np.quantile(x, [0.25, 0.75])
        mad = float(q75 - q25) / 1.349
    if mad <= 0:
        mad = float(x.std())
    if mad <= 0:
        mad = max(abs(med) * 1e-6, 1e-12)
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
