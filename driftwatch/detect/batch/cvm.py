"""Two-sample Cramer-von Mises: the squared gap between the empirical CDFs, summed over the pooled
sample (Anderson 1962). More weight on the body of the distribution than KS's single largest gap."""

from __future__ import annotations

from typing import ClassVar

from .distributions import cvm_2samp_sf
from .numeric_tests import NumericPair
from .two_sample import NUMERIC, Pair, Score, TwoSampleTest, hypothesis_effect

#: sample sizes up to which the p-value is exact (``scipy.stats.cramervonmises_2samp``'s own rule)
EXACT_MAX = 20


class CramerVonMises(TwoSampleTest):
    """Cramer-von Mises T (ties: each distinct value weighted by its pooled multiplicity).

    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> s = CramerVonMises().compare(rng.normal(size=2000), rng.normal(0, 1.5, size=2000))
    >>> s.p_value < 1e-6
    True
    """

    name: ClassVar[str] = "cvm"
    kinds: ClassVar[tuple[str, ...]] = (NUMERIC,)

    def score(self, pair: Pair) -> Score:
        assert isinstance(pair, NumericPair)
        n, m = pair.n, pair.m
        big_n = n + m
        w = pair.walk_at_values
        if pair.tie_end is None:
            ssq = float((w * w).sum())  # not np.dot: threaded BLAS stalls on a busy machine
        else:
            _, _, mult = pair.group_counts
            ssq = float((mult * w * w).sum())
        t = n * m / big_n**2 * ssq
        if max(n, m) <= EXACT_MAX:
            from scipy.stats import cramervonmises_2samp

            p = float(cramervonmises_2samp(pair.reference, pair.current, method="exact").pvalue)
        else:
            p = cvm_2samp_sf(t, n, m)
        return Score(t, p, hypothesis_effect(pair))
