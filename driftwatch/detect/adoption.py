"""Adoption: a fitted baseline re-referenced to a new regime (the drift lifecycle's second way out).

When a drift has lasted ``adopt.after`` (or is acknowledged with ``driftwatch ack --adopt``), the
regime it drifted to becomes the baseline. ``NumericMonitor.adopt`` keeps the stream's bookkeeping
(counters, windows, summaries); this module does the statistics, on the baseline and the loop's arrays
in place, and nothing else: no I/O, no monitor state.

The baseline's location and spread move to the regime's (smooth median and MAD of the standardised
values, then -- without a local level -- its clipped mean and sd: ``_match_clipped_moments``); the
scale CUSUMs' mean |d| follows (``_rereference_scale``); its transform, seasonal shape,
autocorrelation, tails, shape bins and thresholds stay -- they describe the stream's character, which a
level change does not alter -- except a tail or a shape the regime itself would call drifted, which
become the regime's (``_rereference_tails``, ``_rereference_shape``). docs/decisions.md §11, §31 and
§34 say why each part is there and what it was measured against.

>>> from driftwatch.detect.numeric import NumericMonitor
>>> rng = np.random.default_rng(3)
>>> m = NumericMonitor()
>>> _ = m.update(rng.normal(100.0, 10.0, 2_000))
>>> m.adopt(rng.normal(130.0, 10.0, 1_000))  # the regime 3 sd higher is the baseline now
>>> [e.type.value for e in m.update(rng.normal(130.0, 10.0, 5_000))]
[]
"""

from __future__ import annotations

import numpy as np

from .calibration import level_errors, level_innovations
from .detectors.cusum import lindley
from .detectors.tail import TailMixture
from .kernel import DETECTORS, Arrays, P, S, chi2_two_sample
from .median import median
from .numeric_fit import DESIGN, MIN_SCALE_BASELINE, MIN_TAIL_BASELINE, Baseline
from .tails import TailModel
from .transforms import smooth_scale


def rereference(bl: Baseline, arr: Arrays, vals: np.ndarray, ts: np.ndarray | None, samples: int) -> None:
    """Make ``vals`` (raw values, with their timestamps if any) the regime ``bl`` and ``arr`` describe,
    and restart every detector from zero at sample ``samples``. At least 20 values (the caller learns
    afresh below that)."""
    p, s = arr.params, arr.state
    y0 = y = bl.std.transform(vals)
    if bl.profile is not None and ts is not None:
        y = bl.profile.apply(y, ts)
    z = p[P.A] * y + p[P.B]
    # floored as the fit floors its scale: a noise-free regime's spread is rounding, and dividing by
    # it would turn the next rounding-level difference into a drift
    floor = 1e-6 * (float(median(np.abs(y0))) or 1.0) * abs(p[P.A])
    med, sd = smooth_scale(z)  # as the baseline's z_center / z_scale were fitted
    r = bl.z_scale / max(sd, floor)
    level = bl.z_center
    if p[P.LAM] > 0:
        r, m_end = _innovation_scale(p, z, floor)
        level = (m_end - med) * r + bl.z_center  # where the regime's level is now, not its median
    # z' = (z - med) * r + centre: the new regime maps onto where the old one was
    p[P.A] *= r
    p[P.B] = (p[P.B] - med) * r + bl.z_center
    if p[P.LAM] == 0:
        _match_clipped_moments(bl, p, y, sd > floor)
    r_new, e_new = _regime(p, y)
    _rereference_scale(bl, p, e_new, y.size)
    _rereference_tails(p, r_new, y.size, floor)
    _rereference_shape(arr, e_new, y.size)
    s[S.S0 : S.S5 + 1] = 0.0
    s[S.LZ0 : S.LZ5 + 1] = samples - 1
    s[S.M] = level if p[P.LAM] > 0 else 0.0
    s[S.HAVEPREV] = s[S.NORMAL] = s[S.FILLED] = s[S.SHSTAT] = 0.0
    arr.counts[:] = 0


def _match_clipped_moments(bl: Baseline, p: np.ndarray, y: np.ndarray, scaled: bool) -> None:
    """Location and spread, second stage: the regime's *clipped mean and sd* go where the fit put the
    baseline's (0 and 1), as ``Standardizer.fit`` follows its robust centre and scale.

    The first stage matched medians and MADs, which is the same only for a regime of the baseline's
    shape. The detectors test the mean: a regime skewed differently (an additive step on a stream
    learned in log space: log(x + c) is skewed where log x was not) had its mean off the baseline's by
    a fraction of a sd, and the mean CUSUM alarmed and recovered again and again (6.4 false alarms per
    10k samples after such an adoption; bench/detection.py's after-adoption table). The whole map moves
    by one affine -- clip bounds and the robust centre and scale in detector units too -- so what is
    clipped, the evidence band and the next adoption's first stage stay consistent. ``scaled``: False
    when the first stage floored the spread (a noise-free regime: the floor is the unit, as in the fit,
    and only the location moves)."""
    zc = np.clip(p[P.A] * y + p[P.B], p[P.LO], p[P.HI])
    m = float(zc.mean())
    sd = float(zc.std()) if scaled else 1.0
    if not sd > 0:
        sd = 1.0
    p[P.A] /= sd
    p[P.B] = (p[P.B] - m) / sd
    p[P.LO] = (p[P.LO] - m) / sd
    p[P.HI] = (p[P.HI] - m) / sd
    bl.z_center, bl.z_scale = (bl.z_center - m) / sd, bl.z_scale / sd


def _rereference_scale(bl: Baseline, p: np.ndarray, e: np.ndarray, n: int) -> None:
    """The scale CUSUMs' reference (the mean |d|, short-term spread) moves to the regime's, as its
    median and MAD (marginal spread) just did.

    The two spreads keep a fixed ratio only if the baseline described the stream's dependence exactly;
    when it did not (an autocorrelated stream learned from 50 samples), the adopted regime has the old
    |d| / MAD ratio's error in its scale CUSUMs and re-drifts on "scale" a few hundred samples after
    every adoption, for good. A real variance change moves both spreads together, so there the ratio
    is ~1 and nothing changes. ``e``: the regime's innovations (``_regime``); ``n``: its size."""
    if n < MIN_SCALE_BASELINE or not bl.w_mean > 0:
        return
    w_new = float(np.mean(np.abs(np.diff(e)))) * 0.7071067811865476
    if not w_new > 0:
        return
    ratio = w_new / bl.w_mean
    bl.w_mean, bl.w_std = w_new, bl.w_std * ratio
    ks = DESIGN.k_scale
    p[P.KUP], p[P.KDN] = bl.w_mean + ks * bl.w_std, ks * bl.w_std - bl.w_mean
    thresholds = bl.thresholds  # a copy (Baseline keeps them compact): written back below
    for name in ("cusum-scale-up", "cusum-scale-down"):  # thresholds are in |d| units
        p[P.H0 + DETECTORS.index(name)] *= ratio
        if name in thresholds:
            thresholds[name] *= ratio
    bl.thresholds = thresholds


def _regime(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The regime ``y`` (baseline y units) as the detectors see it under the current mapping, once for
    every re-reference: ``r`` (the tails' input: unclipped, around the local level if any) and ``e``
    (the mean, scale and shape detectors': clipped, around the level, prewhitened)."""
    raw = p[P.A] * y + p[P.B]
    z = np.clip(raw, p[P.LO], p[P.HI])
    r = raw
    if p[P.LAM] > 0:
        warm = min(20, z.size // 5)
        u, _, level = level_innovations(raw, p[P.LAM], float(median(z[:warm])), p[P.LO], p[P.HI])
        r, z = (raw - level)[warm:], u[warm:]
    e: np.ndarray = (z[1:] - p[P.PHI] * z[:-1]) / p[P.PHIDEN]
    return r, e


def _rereference_shape(arr: Arrays, e: np.ndarray, n: int) -> None:
    """A shape the regime itself would call drifted becomes the reference. The shape test compares
    windows against the baseline's counts in its quantile bins; a regime adopted after a shape drift
    (or one whose level moved in a way the location and spread do not capture) failed the first window
    after adoption, for good -- on NAB's nyc_taxi exactly 100 samples (one window) after two adoptions.
    The test is the recovery criterion's: the regime's counts against the baseline's below half the
    critical value, else the regime's counts replace them (bins kept: they are the stream's quantiles
    in the same units). ``e``: the regime's innovations (``_regime``)."""
    p = arr.params
    crit = float(p[P.CRIT])
    if crit <= 0 or n < 2 * int(p[P.STEP]):
        return
    obs = np.bincount(np.searchsorted(arr.edges, e, side="left"), minlength=arr.edges.size + 1)
    if chi2_two_sample(obs, arr.base) > crit / 2:
        arr.base = np.ascontiguousarray(obs, np.int64)


def _innovation_scale(p: np.ndarray, z: np.ndarray, floor: float) -> tuple[float, float]:
    """The spread for a stream with a local level: what maps the regime's one-step innovations around
    its level onto unit spread, as the fit did (``numeric_fit.fit`` divides by their sd).

    Its detectors see the innovations, not the marginal values, and a wandering stream's marginal
    spread is mostly its wander over the stretch it is measured on -- it grows with the stretch's
    length. Mapping the adopted regime's marginal spread (256 values) onto the baseline's (up to
    ``window`` values) scaled the innovations by the ratio of two wanders: on a random-walk level the
    adopted regime re-drifted on shape or scale within a window of every adoption. Returns the ratio
    and the regime's level after its last value (where the local level restarts: its median is where
    the level *was* on average, and starting there re-drifted a few samples later)."""
    # unclipped, with a robust spread: the clip is set around the *baseline's* level, and a drifted
    # regime can sit wholly beyond it (every value clipped: no spread at all)
    warm = min(20, z.size // 5)
    u, m_end = level_errors(z, float(p[P.LAM]), float(median(z[:warm])))
    u = u[warm:]
    spread = 1.4826 * float(median(np.abs(u - float(median(u)))))
    return 1.0 / max(spread, floor), float(m_end)


def _rereference_tails(p: np.ndarray, r: np.ndarray, n: int, floor: float) -> None:
    """A tail the regime itself would call drifted is re-fitted on it.

    Location and spread move on adoption; a tail model learned before would still call the adopted
    regime's share of far values a drift. A drift *of the tail* (1 % of values now ten times larger, a
    spike train that became the norm) adopted with the old tail model re-drifted a few hundred samples
    after every adoption, for good: 22 alarms in 20,000 samples on one of ten such streams learned from
    200 samples. The test is the recovery criterion's: the tail CUSUM run over the adopted values from
    zero must stay below half its threshold, else the tail and the body's increment are re-fitted on
    them (its threshold stays: the baseline's budget, not a new one). A regime whose tail did not
    change passes and keeps the baseline's tail model, which was fitted on more values. ``r``: the
    regime's tail input (``_regime``); ``floor``: the rounding-level scale."""
    if p[P.H0 + 4] <= 0 or n < MIN_TAIL_BASELINE:
        return
    for sign, slots in ((1.0, (P.TU_T, P.BODY_UP, 4)), (-1.0, (P.TD_T, P.BODY_DN, 5))):
        t0, body_slot, j = slots
        h = float(p[P.H0 + j])
        tail = TailModel(*(float(v) for v in p[t0 : t0 + 4]))
        det = TailMixture(tail, float(p[body_slot]), h, float(p[P.EPS]), float(p[P.BETA]))
        if h <= 0 or float(lindley(det.increments(sign * r), 0.0, 0.0).max()) <= 0.5 * h:
            continue
        new = TailMixture.refit_tail(sign * r, h, float(p[P.EPS]), float(p[P.BETA]), floor)
        tm = new.tail
        p[t0], p[t0 + 1], p[t0 + 2], p[t0 + 3] = tm.t, tm.zeta, tm.xi, tm.sigma
        p[body_slot] = new.body
