"""Two-sample Kolmogorov-Smirnov: the largest gap between the two empirical CDFs."""

from __future__ import annotations

from typing import ClassVar

from .distributions import ks_sf
from .numeric_tests import NumericPair
from .two_sample import NUMERIC, Pair, Score, TwoSampleTest, hypothesis_effect

#: n * m up to which the p-value is exact (``scipy.stats.ks_2samp``, cheap at this size)
EXACT_MAX = 1_000_000


class KS(TwoSampleTest):
    """Kolmogorov-Smirnov, two-sided. The default for continuous numeric features: distribution-free,
    sensitive to any change of location, scale or shape, cheap from the merged sample.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> s = KS().compare(rng.normal(size=400), rng.normal(size=300))
    >>> s.p_value > 0.05
    True
    """

    name: ClassVar[str] = "ks"
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC,)

    def score(self, pair: Pair) -> Score:
        assert isinstance(pair, NumericPair)
        d = pair.ks_statistic
        if pair.n * pair.m <= EXACT_MAX:
            from scipy.stats import ks_2samp

            p = float(ks_2samp(pair.reference, pair.current, method="exact").pvalue)
        else:
            p = ks_sf(d, pair.n, pair.m)
        return Score(d, p, hypothesis_effect(pair))
