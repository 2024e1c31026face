"""Population stability index: the credit-risk industry's drift distance."""

from __future__ import annotations

from typing import ClassVar

from .measures import psi
from .numeric_tests import NumericPair
from .two_sample import CATEGORICAL, NUMERIC, DistanceTest, Pair


class PSI(DistanceTest):
    """PSI over categories, or over the reference's deciles for a numeric feature. Customary reading:
    below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major one -- hence the defaults.

    >>> round(PSI().compare(["a"] * 500 + ["b"] * 500, ["a"] * 700 + ["b"] * 300).statistic, 3)
    0.169
    """

    name: ClassVar[str] = "psi"
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC, CATEGORICAL)
    default_threshold: ClassVar[float] = 0.1
    default_critical: ClassVar[float] = 0.25

    def distance(self, pair: Pair) -> float:
        if isinstance(pair, NumericPair):
            return psi(*pair.binned_counts())
        return psi(pair.ref, pair.cur)
