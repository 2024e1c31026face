"""Normalised Wasserstein-1 distance: how far the current distribution moved, in reference sds."""

from __future__ import annotations

from typing import ClassVar

from .numeric_tests import NumericPair
from .two_sample import NUMERIC, DistanceTest, Pair


class Wasserstein(DistanceTest):
    """Wasserstein-1 (earth mover's) distance divided by the reference standard deviation: a mean
    shift of d sd scores d, and changes of scale or shape count by how much mass they move.

    >>> import numpy as np
    >>> rng = np.random.default_rng(4)
    >>> round(Wasserstein().compare(rng.normal(size=100_000), rng.normal(0.3, 1, 100_000)).statistic, 2)
    0.3
    """

    name: ClassVar[str] = "wasserstein"
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC,)
    default_threshold: ClassVar[float] = 0.1
    default_critical: ClassVar[float] = 0.25

    def distance(self, pair: Pair) -> float:
        assert isinstance(pair, NumericPair)
        return pair.wasserstein_norm
