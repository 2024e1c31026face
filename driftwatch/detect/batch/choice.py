"""Tests by name, and the choice per feature type and size when none is named."""

from __future__ import annotations

from collections.abc import Sequence

from .ad import AndersonDarling
from .chisquare import ChiSquare
from .cvm import CramerVonMises
from .jensenshannon import JensenShannon
from .ks import KS
from .likelihood_ratio import GTest
from .numeric_tests import NumericPair
from .psi import PSI
from .two_sample import CATEGORICAL, NUMERIC, Pair, TwoSampleTest
from .wasserstein import Wasserstein

#: every test, by the name ``--tests``, ``spec.scan.tests`` and results use
TESTS: dict[str, type[TwoSampleTest]] = {
    t.name: t
    for t in (KS, CramerVonMises, AndersonDarling, ChiSquare, GTest, PSI, JensenShannon, Wasserstein)
}
#: choose by type and size (``choose``)
AUTO = "auto"
#: a numeric feature with at most this many distinct values (pooled) is tested as categories
DISCRETE_MAX = 10


class TestChoiceError(ValueError):
    """A named test that does not exist or does not apply to the feature's type."""


def choose(pair: Pair) -> TwoSampleTest:
    """The test for a feature nobody named one for.

    * categorical: chi-square (rare categories pooled, so small samples stay valid);
    * numeric with at most ``DISCRETE_MAX`` distinct values: chi-square on the values (counts,
      ratings, flags -- KS is conservative with that many ties);
    * numeric otherwise: Kolmogorov-Smirnov (exact p-values for small samples, asymptotic beyond
      n x m = 1e6).

    The effect floor, not a switch to a distance at large n, keeps big samples from flagging trivia.
    """
    if isinstance(pair, NumericPair) and pair.distinct > DISCRETE_MAX:
        return KS()
    return ChiSquare()


def pick(names: Sequence[str], kind: str) -> str:
    """The first of ``names`` that applies to ``kind`` (``auto`` applies to both); ``auto`` if none."""
    for name in names:
        if name == AUTO or kind in test_class(name).kinds:
            return name
    return AUTO


def test_class(name: str) -> type[TwoSampleTest]:
    try:
        return TESTS[name]
    except KeyError:
        known = ", ".join([AUTO, *TESTS])
        raise TestChoiceError(f"unknown test {name!r} (one of {known})") from None


def instantiate(name: str, kind: str) -> TwoSampleTest:
    cls = test_class(name)
    if kind not in cls.kinds:
        raise TestChoiceError(
            f"test {name!r} does not apply to {kind} features ({', '.join(cls.kinds)} only)"
        )
    return cls()


__all__ = ["AUTO", "CATEGORICAL", "NUMERIC", "TESTS", "TestChoiceError", "choose", "instantiate", "pick"]
