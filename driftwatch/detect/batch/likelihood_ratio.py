"""The G (likelihood-ratio) test of homogeneity of the 2 x K table of counts."""

from __future__ import annotations

from typing import ClassVar

from .contingency import table_of
from .distributions import chi2_sf
from .measures import g_statistic
from .two_sample import CATEGORICAL, NUMERIC, Pair, Score, TwoSampleTest, hypothesis_effect


class GTest(TwoSampleTest):
    """G = 2 sum O ln(O/E) on the same table as ``ChiSquare``; the sidecar's streaming categorical
    detector uses the same statistic, so a scan and the sidecar agree on what they measure.

    >>> s = GTest().compare(["a"] * 500 + ["b"] * 500, ["a"] * 600 + ["b"] * 400)
    >>> round(s.statistic, 2), s.p_value < 1e-4
    (20.24, True)
    """

    name: ClassVar[str] = "g"
    kinds: ClassVar[tuple[str, ...]] = (CATEGORICAL, NUMERIC)

    def score(self, pair: Pair) -> Score:
        stat, df = g_statistic(table_of(pair))
        return Score(stat, chi2_sf(stat, df), hypothesis_effect(pair))
