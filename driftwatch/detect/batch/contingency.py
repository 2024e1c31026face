"""The table a chi-square or G test reads: categories of a categorical feature, or the distinct values
of a numeric one with few of them (counts, ratings, flags: ties make KS conservative there)."""

from __future__ import annotations

import numpy as np

from .categorical_tests import CategoricalPair
from .numeric_tests import NumericPair


def table_of(pair: NumericPair | CategoricalPair) -> np.ndarray:
    """2 x K counts, rare cells pooled (``CategoricalPair.pooled_table``)."""
    if isinstance(pair, CategoricalPair):
        return pair.pooled_table
    ref, cur = pair.value_counts()
    return CategoricalPair([], ref, cur).pooled_table
