"""Fitting a numeric baseline: everything the detectors need, derived from the baseline's samples.

One function, ``fit``, turns raw baseline values (and their timestamps) into the kernel's parameter
arrays. Each step is a mechanism with its own reason (``docs/detection.md`` explains them for users):

1. **transform** -- log for positive, right-skewed values (latency, sizes): their changes are
   multiplicative;
2. **seasonal profile** (``seasonal.py``) -- level and spread per time of day, residuals held out;
3. **robust standardisation** (``transforms.Standardizer``) -- median/MAD, a Huber clip at 3 sigma so
   one spike moves any statistic by a bounded amount;
4. **local level** (``calibration.level_gain``) -- for streams whose level wanders, the detectors look
   for changes faster than that wander (gain 0 on stationary streams);
5. **AR(1) prewhitening** -- neighbouring samples alike is not a drift;
6. **thresholds from the false-alarm budget** -- split across the detectors (``SHARES``), each from its
   own increments on the baseline: Siegmund's ARL with the increments' Cramér root (skew), averaged over
   the baseline's estimation error (``predictive_threshold``), and divided by their dispersion
   (``calibration.dispersion``: level wander, clustering) so real telemetry gets the thresholds its
   own behaviour needs;
7. **shape bins** and **tail models** (``tails.py``) for the shape and tail-mixture detectors.

Pure: numpy in, numbers out. ``NumericMonitor`` owns the state machine around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .calibration import (
    SAFETY,
    ar1_coefficient,
    chi2_critical,
    cramer_root,
    dispersion,
    level_gain,
    level_innovations,
    predictive_threshold,
    split_budget,
)
from .detectors.shape import quantile_bins
from .detectors.tail import TailMixture
from .kernel import DETECTORS, MAX_EDGES, SHAPE, Arrays, P
from .median import median
from .seasonal import SeasonalProfile
from .transforms import Standardizer, smooth_scale

#: false-alarm budget shares. The mean tests get most: level changes are the most common real change.
SHARES: dict[str, float] = {
    "cusum-mean-up": 0.3,
    "cusum-mean-down": 0.3,
    "cusum-scale-up": 0.15,
    "cusum-scale-down": 0.05,
    "tail-mixture-up": 0.07,
    "tail-mixture-down": 0.03,
    "chi2-shape": 0.1,
}


#: baseline samples a detector needs before it runs: the scale tests (the spread and skew of |d|) and
#: the tail-mixture tests (twenty exceedances beyond the 90 % quantile); the shape test needs two of
#: its windows. The mean tests run from minSamples on: their thresholds integrate the estimation error
MIN_SCALE_BASELINE = 50
MIN_TAIL_BASELINE = 200


@dataclass(frozen=True, slots=True)
class Design:
    """The detectors' design constants (what they are tuned to find), shared by every stream (one
    instance, ``DESIGN``: a copy per stream cost ~400 bytes each)."""

    #: mean CUSUM reference. 0.5 is optimal for a 1 sigma shift but slow at 0.5 sigma (ARL1 ~ h^2);
    #: 0.3 loses ~1 sample at 1 sigma and gains ~40 % at 0.5 sigma
    k: float = 0.3
    #: scale CUSUMs on |d|: |d| moves by > 1 of its sd when the std doubles; 0.5 is near-optimal there
    k_scale: float = 0.5
    #: tail mixture: the alternative is "a share EPS of samples moved into the tail" (a slow mode in
    #: 10 % of requests), with tail probabilities ~ Beta(BETA, 1): one extreme value is not enough,
    #: two or three within a short stretch are
    eps: float = 0.1
    beta: float = 0.1
    shape_window: int = 200
    cap: float = 2.0  # while Drifting, statistics are capped at cap x threshold (score 1)


#: the design every stream uses
DESIGN = Design()


#: the key tuples of every Baseline's thresholds and dispersion, one of each set of names (a handful)
_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


#: the fit section of a stream's block (``Arrays.fit``): gain, level, z_center, z_scale, w_mean, w_std,
#: the sample count (slots 0-6), the standardizer's seven fields, then thresholds and dispersion
_N, _STD, _TH = 6, 7, 14


class _Number:
    """One float of a ``Baseline``'s fit section, read and written as an attribute."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i

    def __get__(self, obj: Baseline, owner: Any = None) -> float:
        return float(obj.arrays.fit[self.i])

    def __set__(self, obj: Baseline, v: float) -> None:
        obj.arrays.fit[self.i] = v


class Baseline:
    """A fitted baseline: the kernel's arrays plus what evidence and the slow update need.

    Its numbers -- gain, level, the adoption's and the scale tests' references, the sample count, the
    ``Standardizer``'s fields, ``thresholds`` and ``dispersion`` -- live in the stream's float64 block
    (``Arrays.fit``), not as ~12 float objects, two tuples and a ``Standardizer`` of their own: ~0.4 kB
    a stream less (docs/decisions.md §35). A float64 holds each of them exactly (the count too, far
    below 2**53), so reading one gives the number that was stored. Reading ``std`` builds a
    ``Standardizer`` (nothing changes one in place); ``thresholds`` and ``dispersion`` read as a new
    dict in their names' order (one shared tuple of names per set), and changing either is an
    assignment.
    """

    __slots__ = ("_disp_keys", "_th_keys", "arrays", "profile")
    NAMES: ClassVar[tuple[str, ...]] = tuple(SHARES)

    def __init__(
        self,
        arrays: Arrays,
        std: Standardizer,
        profile: SeasonalProfile | None,
        gain: float,
        n: int,
        level: float = 0.0,
        z_center: float = 0.0,
        z_scale: float = 1.0,
        w_mean: float = 0.0,
        w_std: float = 1.0,
        thresholds: dict[str, float] | None = None,
        dispersion: dict[str, float] | None = None,
    ) -> None:
        self.arrays = arrays
        self.profile = profile
        th = {} if thresholds is None else thresholds
        disp = {} if dispersion is None else dispersion
        self._th_keys, self._disp_keys = _keys(th), _keys(disp)
        head = [gain, level, z_center, z_scale, w_mean, w_std, n]
        sd = [float(std.log), std.floor, std.center, std.scale, std.clip, std.mu, std.sigma]
        arrays.fit = np.array([*head, *sd, *th.values(), *disp.values()], np.float64)

    gain = _Number(0)
    #: the local level at the end of the baseline (0 without one)
    level = _Number(1)
    #: median and robust sd of the baseline's standardised values (adoption maps a new regime onto them)
    z_center = _Number(2)
    z_scale = _Number(3)
    #: |d| level the scale CUSUMs are centred on, and its sd (the slow update moves the level)
    w_mean = _Number(4)
    w_std = _Number(5)

    @property
    def n(self) -> int:
        return int(self.arrays.fit[_N])

    @property
    def std(self) -> Standardizer:
        log, floor, center, scale, clip, mu, sigma = self.arrays.fit[_STD:_TH].tolist()
        return Standardizer(bool(log), floor, center, scale, clip, mu, sigma)

    @property
    def thresholds(self) -> dict[str, float]:
        k = len(self._th_keys)
        return dict(zip(self._th_keys, self.arrays.fit[_TH : _TH + k].tolist(), strict=True))

    @thresholds.setter
    def thresholds(self, d: dict[str, float]) -> None:
        if tuple(d) == self._th_keys:  # the same names (the scale re-reference): the values in place
            self.arrays.fit[_TH : _TH + len(d)] = list(d.values())
        else:
            self._assign(d, self.dispersion)

    @property
    def dispersion(self) -> dict[str, float]:
        lo = _TH + len(self._th_keys)
        return dict(zip(self._disp_keys, self.arrays.fit[lo:].tolist(), strict=True))

    @dispersion.setter
    def dispersion(self, d: dict[str, float]) -> None:
        self._assign(self.thresholds, d)

    def _assign(self, th: dict[str, float], disp: dict[str, float]) -> None:
        """Both tables written back: in place when they hold as many numbers as before, else the fit
        section is rebuilt around them."""
        head = self.arrays.fit[:_TH].copy()
        self._th_keys, self._disp_keys = _keys(th), _keys(disp)
        values = np.array([*th.values(), *disp.values()], np.float64)
        if values.size == self.arrays.fit.size - _TH:
            self.arrays.fit[_TH:] = values
        else:
            self.arrays.fit = np.concatenate([head, values])


def _keys(d: dict[str, float]) -> tuple[str, ...]:
    """The names of a table, as the one shared tuple of those names."""
    keys = tuple(d)
    return _KEYS.setdefault(keys, keys)


def fit(
    x: np.ndarray,
    ts: np.ndarray | None,
    *,
    budget: float,
    recovery: int,
    transform: str = "auto",
    seasonality: str = "none",
    design: Design | None = None,
    keep_log: bool | None = None,
) -> Baseline:
    """Fit a baseline from raw values ``x`` (finite, float64) and their timestamps.

    ``seasonality`` is ``none``, ``auto`` (a daily profile if it explains the stream), ``daily`` or
    ``weekly`` (always used); a profile needs ``ts`` spanning two cycles. ``keep_log`` pins the log
    decision of an earlier fit (refits must not flip the space the state lives in)."""
    dz = design or DESIGN
    x = np.asarray(x, np.float64)
    mode = transform if keep_log is None else ("log" if keep_log else "none")
    base_std = Standardizer.fit(x, mode)  # decides log and its floor
    y = base_std.transform(x)
    profile: SeasonalProfile | None = None
    if seasonality != "none" and ts is not None and x.size >= 20:
        from .seasonal import covers, period_of

        if covers(float(ts.min()), float(ts.max()), seasonality):
            prof, held = SeasonalProfile.fit(y, ts, period_of(seasonality))
            if seasonality == "auto" and covers(float(ts.min()), float(ts.max()), "weekly"):
                # with two weeks in the baseline a weekly profile competes: the held-out residuals
                # decide (each profile is judged on days it was not fitted on, so more bins only win
                # when the week really differs from day to day -- weekends)
                week, held_w = SeasonalProfile.fit(y, ts, period_of("weekly"))
                if week.useful and week.ratio < prof.ratio:
                    prof, held = week, held_w
            if prof.useful or seasonality in ("daily", "weekly"):
                profile, y = prof, held
    # rounding-level residuals are not noise: a scale below 1e-6 of the values' own magnitude is floored
    magnitude = float(median(np.abs(base_std.transform(x)))) or 1.0
    std = Standardizer.fit(y, "none", min_scale=1e-6 * magnitude)
    std.log, std.floor = base_std.log, base_std.floor
    a = 1.0 / (std.scale * std.sigma)
    b = -(std.center / std.scale + std.mu) / std.sigma
    lo = (-std.clip - std.mu) / std.sigma
    hi = (std.clip - std.mu) / std.sigma
    raw = y * a + b
    z = np.clip(raw, lo, hi)
    gain = level_gain(z)
    if gain > 0:
        warm = min(20, z.size // 5)
        # the Huber clip around the level, as the kernel applies it: a level that wandered from the
        # baseline's centre is clipped symmetrically, not on the side it wandered to
        u, m_end, m_path = level_innovations(raw, gain, float(median(z[:warm])), lo, hi)
        # floored like the scale: an innovation below 1e-6 of the values' magnitude is rounding
        sd = max(float(np.std(u[warm:])), 1e-6 * magnitude * a) or 1.0
        # innovations in unit variance: the thresholds and k keep their meaning
        a, b, lo, hi = a / sd, b / sd, lo / sd, hi / sd
        raw, z, u, m_end, m_path = raw / sd, z / sd, u / sd, m_end / sd, m_path / sd
    else:
        u, m_end, m_path = z, 0.0, np.zeros_like(z)
    phi = ar1_coefficient(u, 0.97)
    # prewhiten only significant autocorrelation (|phi| > 2 se)
    phi = phi if abs(phi) > 2 / math.sqrt(u.size) else 0.0
    phiden = math.sqrt(1.0 - phi * phi)
    e = u.copy()
    e[1:] = (u[1:] - phi * u[:-1]) / phiden
    d = np.zeros_like(e)
    d[1:] = np.abs(np.diff(e)) * 0.7071067811865476
    dd = d[1:] if d.size > 1 else d
    # the |d| spread is floored like the scale: differences at rounding level are not noise
    w_mean, w_std = float(dd.mean()), max(float(dd.std()), 1e-6 * magnitude * a) or 1.0
    w = (dd - w_mean) / w_std
    # neighbouring |differences| share a sample (lag-1 correlation ~0.22 for Gaussian data)
    lrv_w = 1.0 + 2.0 * float(np.clip(ar1_coefficient(w, 0.45), 0.0, 0.45))
    arl = split_budget(budget * SAFETY, SHARES)
    n = int(u.size)
    disp = {"mean": dispersion(e), "scale": dispersion(w)}
    # prewhitening with an estimated phi leaves a long-run variance error ((1 + phi) / ((1 - phi) n))
    v_err = math.sqrt(1.5 + ((1 + phi) / (1 - phi) if phi else 0.0))

    def cusum_h(
        name: str, k: float, sample: np.ndarray, mean_err: float, lrv: float, var_err: float, disp_: float
    ) -> float:
        theta = round(cramer_root(sample, k, 2 * k) / lrv / disp_, 3)
        return predictive_threshold(
            arl[name], k, n, theta, round(mean_err * math.sqrt(disp_), 3), round(var_err, 3)
        )

    k, ks = dz.k, dz.k_scale
    h = {
        "cusum-mean-up": cusum_h("cusum-mean-up", k, e, 1.0, 1.0, v_err, disp["mean"]),
        "cusum-mean-down": cusum_h("cusum-mean-down", k, -e, 1.0, 1.0, v_err, disp["mean"]),
        # |d| also moves with the error of the scale estimate: 1.4 x the error of a mean
        "cusum-scale-up": cusum_h("cusum-scale-up", ks, w, 1.4, lrv_w, 1.2247, disp["scale"]) * w_std,
        "cusum-scale-down": cusum_h("cusum-scale-down", ks, -w, 1.4, lrv_w, 1.2247, disp["scale"]) * w_std,
    }
    # tails: on the level-adjusted, unclipped values (the clip is what hides a spike from the mean)
    r = raw - m_path
    z_floor = 1e-6 * magnitude * a  # a rounding-level difference, in detector units
    up = TailMixture.fit(r, arl["tail-mixture-up"], dz.eps, dz.beta, z_floor)
    dn = TailMixture.fit(-r, arl["tail-mixture-down"], dz.eps, dz.beta, z_floor)
    # a detector that cannot be calibrated on the baseline it has stays off (its alarms would be the
    # baseline's noise): the tails need twenty exceedances beyond the 90 % quantile, the shape test two
    # windows to check its own dispersion on
    tails_on = n >= MIN_TAIL_BASELINE
    if n < MIN_SCALE_BASELINE:  # the spread of |d| and its skew need a few dozen differences
        h["cusum-scale-up"] = h["cusum-scale-down"] = 0.0
    h["tail-mixture-up"] = up.h if tails_on else 0.0
    h["tail-mixture-down"] = dn.h if tails_on else 0.0
    disp["tail-up"], disp["tail-down"] = dispersion(up.increments(r)), dispersion(dn.increments(-r))
    edges, counts = quantile_bins(e, 1e-6 * magnitude * a)
    assert edges.size <= MAX_EDGES
    step = dz.shape_window // 2
    crit = chi2_critical(min(0.5, step / arl["chi2-shape"]), edges.size)
    # the shape test's own dispersion: windows of the baseline against the whole baseline, or the
    # scale increments' (better estimated: eight blocks) when larger. A stream whose noise changes
    # character from hour to hour (volatility clusters) shows it there, and the critical value grows
    # with it, as the CUSUMs' thresholds grow with their increments' dispersion
    disp["shape"] = max(shape_dispersion(e, edges, counts, dz.shape_window), disp["scale"])
    crit = crit * disp["shape"] if n >= 2 * dz.shape_window else 0.0

    params = np.zeros(len(P))
    params[P.A], params[P.B], params[P.LO], params[P.HI] = a, b, lo, hi
    params[P.LOG], params[P.FLOOR] = float(std.log), std.floor
    if profile is not None:
        params[P.PERIOD], params[P.NBINS] = profile.period, profile.bins
    params[P.LAM] = gain
    params[P.PHI], params[P.PHIDEN] = phi, phiden
    params[P.K] = k
    # the scale CUSUMs run on |d| itself: (|d| - m)/s - ks summed is linear, so k and h convert exactly
    params[P.KUP], params[P.KDN] = w_mean + ks * w_std, ks * w_std - w_mean
    for i, name in enumerate(DETECTORS[:SHAPE]):
        params[P.H0 + i] = h[name]
    params[P.EPS], params[P.BETA] = dz.eps, dz.beta
    params[P.BODY_UP], params[P.BODY_DN] = up.body, dn.body
    tu, td = up.tail, dn.tail
    params[P.TU_T], params[P.TU_ZETA], params[P.TU_XI], params[P.TU_SIGMA] = tu.t, tu.zeta, tu.xi, tu.sigma
    params[P.TD_T], params[P.TD_ZETA], params[P.TD_XI], params[P.TD_SIGMA] = td.t, td.zeta, td.xi, td.sigma
    params[P.STEP], params[P.CRIT], params[P.CAP] = step, crit, dz.cap
    params[P.REC], params[P.NEDGES] = recovery, edges.size
    arrays = Arrays.empty()
    arrays.params = params
    arrays.profile = profile.as_kernel_array() if profile is not None else np.array([0.0, 1.0])
    arrays.profile_sums = np.zeros(arrays.profile.size)
    arrays.edges = np.ascontiguousarray(edges, np.float64)
    arrays.base = np.ascontiguousarray(counts, np.int64)
    arrays.counts = np.zeros(2 * counts.size, np.int64)
    # smooth (Harrell-Davis) location and spread: adoption maps a new regime onto these with the same
    # estimator, and a sample median of quantised values jumps a whole unit (transforms.smooth_median)
    zc, zs = smooth_scale(z)
    return Baseline(arrays, std, profile, gain, n, float(m_end), zc, zs, w_mean, w_std, h, disp)


def shape_dispersion(e: np.ndarray, edges: np.ndarray, counts: np.ndarray, window: int) -> float:
    """Mean chi-square statistic of the baseline's own windows against the whole baseline, over its
    expectation (the degrees of freedom, shrunk by the window's share of the baseline, which it is part
    of); 1 unless significantly above (a chi-square gate at 1 %), like ``calibration.dispersion``."""
    from .detectors.shape import two_sample_chi2

    m = e.size // window
    df = edges.size
    if m < 2 or df < 1:
        return 1.0
    obs = np.stack(
        [
            np.bincount(
                np.searchsorted(edges, e[i * window : (i + 1) * window], side="left"), minlength=counts.size
            )
            for i in range(m)
        ]
    )
    stat = two_sample_chi2(obs, counts)
    expected = df * (1.0 - window / e.size)  # each window is part of the baseline it is tested against
    ratio = float(stat.mean()) / max(expected, 1e-9)
    gate = chi2_critical(0.01, m * df) / (m * df)
    return ratio if ratio > gate else 1.0


def baseline_info(bl: Baseline) -> dict[str, Any]:
    """What a fitted baseline decided, for status notes and evidence."""
    info: dict[str, Any] = {"transform": "log" if bl.std.log else "none", "level_gain": bl.gain}
    if bl.profile is not None:
        info["seasonality"] = "weekly" if bl.profile.period > 86_400 * 1.5 else "daily"
        info["seasonal_variance_kept"] = round(bl.profile.ratio, 3)
        info["seasonal_harmonics"] = bl.profile.harmonics  # 0: free bins; -1: day shape + weekday levels
    return info
