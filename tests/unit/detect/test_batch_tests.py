"""driftwatch.detect.batch: the tests agree with scipy.stats, are calibrated under no drift, and the
merged-sort statistics handle ties, zeros and non-finite values."""

from __future__ import annotations

import doctest
import importlib
import math
import pkgutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon as scipy_js

import driftwatch.detect.batch as batch
from driftwatch.detect.batch import (
    KS,
    PSI,
    AndersonDarling,
    CategoricalPair,
    ChiSquare,
    CramerVonMises,
    GTest,
    JensenShannon,
    NumericPair,
    Wasserstein,
    benjamini_hochberg,
)
from driftwatch.detect.batch.distributions import ad_inf_sf, ks_sf
from driftwatch.detect.batch.numeric_tests import BLOCK


@pytest.mark.parametrize("name", [m.name for m in pkgutil.iter_modules(batch.__path__)])
def test_doctests(name: str) -> None:
    mod = importlib.import_module(f"driftwatch.detect.batch.{name}")
    assert doctest.testmod(mod, optionflags=doctest.ELLIPSIS).failed == 0


# --- agreement with scipy ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "m"), [(7, 9), (60, 45), (900, 1100), (3000, 5000)])
def test_ks_agrees_with_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(0.15, 1.2, size=m)
    ours, ref = KS().compare(x, y), stats.ks_2samp(x, y)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    if n * m <= 1_000_000:  # exact p-value: the same computation
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    else:  # asymptotic (ours: Kolmogorov + Stephens; scipy: exact for these sizes)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=0.15)


def test_ks_asymptotic_p_matches_scipy_asymp() -> None:
    for d in (0.01, 0.02, 0.03, 0.05):
        ours = ks_sf(d, 20_000, 15_000)
        en = 20_000 * 15_000 / 35_000
        assert ours == pytest.approx(stats.kstwo.sf(d, round(en)), rel=0.02, abs=1e-6)


@pytest.mark.parametrize(("n", "m"), [(12, 15), (80, 60), (2000, 1500)])
def test_cvm_agrees_with_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(m)
    x, y = rng.normal(size=n), rng.normal(0.2, 1.0, size=m)
    ours, ref = CramerVonMises().compare(x, y), stats.cramervonmises_2samp(x, y)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-9)


@pytest.mark.filterwarnings("ignore:p-value (capped|floored)")
@pytest.mark.parametrize(("n", "m", "ties"), [(50, 70, False), (400, 300, False), (500, 600, True)])
def test_ad_statistic_agrees_with_scipy(n: int, m: int, ties: bool) -> None:
    rng = np.random.default_rng(n + m)
    x, y = rng.normal(size=n), rng.normal(0.1, 1.1, size=m)
    if ties:
        x, y = np.round(x * 3), np.round(y * 3)
    ours = AndersonDarling().compare(x, y)
    ref = stats.anderson_ksamp([x, y], variant="midrank")
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-9)
    # scipy interpolates a table and clips to [0.001, 0.25]; inside that range the two agree roughly
    if 0.002 < ref.pvalue < 0.2:
        assert ours.p_value == pytest.approx(ref.pvalue, rel=0.25)


def test_ad_limit_distribution_known_points() -> None:
    # upper percentage points of the limiting A^2 distribution (Lewis 1961; Marsaglia & Marsaglia 2004)
    for z, p in ((1.9329, 0.10), (2.4924, 0.05), (3.0775, 0.025), (3.8781, 0.01)):
        assert ad_inf_sf(z) == pytest.approx(p, rel=0.005)


def test_chi2_and_g_agree_with_scipy() -> None:
    ref = {"a": 500, "b": 300, "c": 150, "d": 50}
    cur = {"a": 450, "b": 330, "c": 170, "d": 70}
    pair = CategoricalPair.from_counts(ref, cur)
    table = np.array([[500, 300, 150, 50], [450, 330, 170, 70]])
    c = ChiSquare().score(pair)
    exp = stats.chi2_contingency(table, correction=False)
    assert (c.statistic, c.p_value) == pytest.approx((exp.statistic, exp.pvalue), rel=1e-9)
    g = GTest().score(pair)
    exp = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    assert (g.statistic, g.p_value) == pytest.approx((exp.statistic, exp.pvalue), rel=1e-9)


def test_chi2_pools_rare_categories() -> None:
    pair = CategoricalPair.from_counts({"a": 500, "b": 500, "x": 1, "y": 2}, {"a": 500, "b": 480, "z": 3})
    assert pair.pooled_table.tolist() == [[500, 500, 3], [500, 480, 3]]


def test_distances_agree_with_scipy() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=3000), rng.normal(0.5, 2.0, size=2500)
    assert NumericPair(x, y).wasserstein == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-9)
    assert Wasserstein().compare(x, y).statistic == pytest.approx(
        stats.wasserstein_distance(x, y) / np.std(x), rel=1e-9
    )
    p, q = np.array([50, 30, 20]), np.array([35, 30, 35])
    js = JensenShannon().score(CategoricalPair(["a", "b", "c"], p, q)).statistic
    assert js == pytest.approx(scipy_js(p / 100, q / 100, base=2), rel=1e-9)
    psi = PSI().score(CategoricalPair(["a", "b", "c"], p, q)).statistic
    assert psi == pytest.approx(sum((b - a) * math.log(b / a) for a, b in zip(p / 100, q / 100, strict=True)))


# --- the merged sort: ties, zeros, non-finite values, block boundaries -----------------------------

finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.sampled_from([0.0, -0.0, 1.0])


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
@settings(max_examples=200, deadline=None)
@given(st.lists(finite_floats, min_size=1, max_size=60), st.lists(finite_floats, min_size=1, max_size=60))
def test_merged_statistics_match_scipy_on_anything(x: list[float], y: list[float]) -> None:
    p = NumericPair(x, y)
    assert p.ks_statistic == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-12)
    w = stats.wasserstein_distance(x, y)
    assert p.wasserstein == pytest.approx(w, rel=1e-6, abs=1e-300 + 1e-9 * max(map(abs, x + y)))


def test_block_boundaries_and_ties_across_them() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=3 * BLOCK + 17), 2)  # many ties, groups straddling block edges
    y = np.round(rng.normal(0.05, 1, size=2 * BLOCK + 5), 2)
    p = NumericPair(x, y)
    assert p.ks_statistic == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-12)
    assert p.wasserstein == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-9)
    assert p.distinct == np.unique(np.concatenate([x, y])).size
    assert p.scale == pytest.approx(np.std(x), rel=1e-9)


def test_non_finite_values_are_dropped_and_counted() -> None:
    x = [1.0, float("nan"), 2.0, float("inf"), 3.0, -float("inf")]
    y = [float("nan"), 2.5, float("-inf"), 4.0, float("inf")]
    p = NumericPair(x, y)
    assert (p.n, p.m) == (3, 2)
    assert p.ks_statistic == pytest.approx(stats.ks_2samp([1.0, 2.0, 3.0], [2.5, 4.0]).statistic)
    assert sorted(p.reference.tolist()) == [1.0, 2.0, 3.0]


def test_signed_zeros_are_one_value() -> None:
    p = NumericPair([-0.0] * 50 + [1.0] * 50, [0.0] * 50 + [1.0] * 50)
    assert p.ks_statistic == 0.0
    assert p.wasserstein == 0.0
    assert p.distinct == 2


def test_constant_and_empty_samples() -> None:
    p = NumericPair([5.0] * 100, [5.0] * 100)
    assert (p.ks_statistic, p.wasserstein, p.scale) == (0.0, 0.0, 1.0)
    q = NumericPair([5.0] * 100, [6.0] * 100)
    assert q.ks_statistic == 1.0
    assert q.wasserstein_norm == pytest.approx(1.0 / 0.5)
    e = NumericPair([], [1.0])
    assert not e.enough


# --- calibration under no drift ----------------------------------------------------------------------


SHARES = [0.3, 0.2, 0.15, 0.1, 0.1, 0.1, 0.04, 0.01]


def _null_pvalues(test: object, sampler: object, reps: int = 400) -> np.ndarray:
    rng = np.random.default_rng(42)
    out = []
    for _ in range(reps):
        s = test.compare(sampler(rng), sampler(rng))  # type: ignore[attr-defined, operator]
        out.append(s.p_value)
    return np.array(out)


@pytest.mark.parametrize(
    ("test", "sampler"),
    [
        (KS(), lambda r: r.normal(size=1500)),  # asymptotic p (n m > 1e6)
        (KS(), lambda r: r.lognormal(size=300)),  # exact p
        (CramerVonMises(), lambda r: r.standard_t(3, size=800)),
        (AndersonDarling(), lambda r: r.normal(size=800)),
        (ChiSquare(), lambda r: r.choice(list("abcdefgh"), size=700, p=SHARES)),
        (GTest(), lambda r: r.choice(list("abcdef"), size=2000)),
    ],
    ids=["ks-asymptotic", "ks-exact", "cvm", "ad", "chi2", "g"],
)
def test_pvalues_are_calibrated_under_no_drift(test: object, sampler: object) -> None:
    p = _null_pvalues(test, sampler)
    # size at 5%: 400 draws of Bernoulli(0.05) lie in [8, 33] with probability > 0.999
    assert 8 <= np.count_nonzero(p <= 0.05) <= 33
    # and roughly uniform overall (KS against U(0, 1); discrete tests are a little conservative)
    assert stats.kstest(p, "uniform").pvalue > 1e-3


# --- Benjamini-Hochberg --------------------------------------------------------------------------------


def test_bh_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(size=30), rng.uniform(0, 1e-3, size=5)])
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p, method="bh"))
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.2]) == [0.2]
