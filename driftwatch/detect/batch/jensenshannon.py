"""Jensen-Shannon distance between the two samples' distributions."""

from __future__ import annotations

from typing import ClassVar

from .measures import jensen_shannon
from .numeric_tests import NumericPair
from .two_sample import CATEGORICAL, NUMERIC, DistanceTest, Pair


class JensenShannon(DistanceTest):
    """Jensen-Shannon distance in bits (square root of the divergence; 0 same, 1 disjoint), over
    categories or the reference's deciles. Symmetric and bounded, unlike PSI.

    >>> round(JensenShannon().compare(["a"] * 500 + ["b"] * 500, ["a"] * 700 + ["b"] * 300).statistic, 3)
    0.174
    """

    name: ClassVar[str] = "jensenshannon"
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC, CATEGORICAL)
    default_threshold: ClassVar[float] = 0.1
    default_critical: ClassVar[float] = 0.25

    def distance(self, pair: Pair) -> float:
        if isinstance(pair, NumericPair):
            return jensen_shannon(*pair.binned_counts())
        return jensen_shannon(pair.ref, pair.cur)
