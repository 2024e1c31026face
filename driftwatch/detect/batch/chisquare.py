"""Pearson's chi-square test of homogeneity of the 2 x K table of counts."""

from __future__ import annotations

from typing import ClassVar

from .contingency import table_of
from .distributions import chi2_sf
from .measures import chi_square
from .two_sample import CATEGORICAL, NUMERIC, Pair, Score, TwoSampleTest, hypothesis_effect


class ChiSquare(TwoSampleTest):
    """Chi-square of the category counts (no continuity correction; categories expected fewer than 5
    times pooled into one cell). The default for categorical features, and for numeric ones with at
    most a handful of distinct values.

    >>> s = ChiSquare().compare(["a"] * 500 + ["b"] * 500, ["a"] * 600 + ["b"] * 400)
    >>> round(s.statistic, 2), s.p_value < 1e-4
    (20.2, True)
    """

    name: ClassVar[str] = "chi2"
    kinds: ClassVar[tuple[str, ...]] = (CATEGORICAL, NUMERIC)

    def score(self, pair: Pair) -> Score:
        stat, df = chi_square(table_of(pair))
        return Score(stat, chi2_sf(stat, df), hypothesis_effect(pair))
