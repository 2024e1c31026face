"""``CategoricalPair``: the category counts of one categorical feature in both samples.

Counting is the whole preparation: every categorical measure here (chi-square, G, PSI, Jensen-Shannon)
is a function of the 2 x K table of counts. Missing values (None, NaN, the empty string) are dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import numpy as np

#: expected count below which a category's cell is pooled with the other rare ones (the usual rule for
#: the chi-square approximation)
MIN_EXPECTED = 5.0
#: share floor for log ratios (PSI) of a category absent from one sample
SHARE_FLOOR = 1e-4


def count_values(values: Any) -> Counter[str]:
    """Category counts of a sequence or array of labels; missing values (None, NaN, "") dropped.

    numpy string arrays are counted with ``np.unique`` (a vectorised sort), anything else with a
    hash table; numbers become their ``str``.
    """
    if isinstance(values, Mapping):
        return Counter({str(k): int(v) for k, v in values.items() if _present(k) and int(v) > 0})
    a = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if a.dtype.kind == "U":
        names, counts = np.unique(a.ravel(), return_counts=True)
        return Counter({str(k): int(c) for k, c in zip(names, counts, strict=True) if k != ""})
    it: Iterable[Any] = a.ravel().tolist() if isinstance(a, np.ndarray) else values
    c = Counter(it)
    return Counter({str(k): v for k, v in c.items() if _present(k)})


def _present(v: Any) -> bool:
    return not (v is None or v == "" or (isinstance(v, float) and v != v))


class CategoricalPair:
    """Counts of one categorical feature in the reference and current samples, aligned by category.

    >>> p = CategoricalPair.from_values(["a", "a", "b"], ["a", "b", "b", "c"])
    >>> p.categories, p.ref.tolist(), p.cur.tolist()
    (['a', 'b', 'c'], [2, 1, 0], [1, 2, 1])
    """

    def __init__(self, categories: list[str], ref: np.ndarray, cur: np.ndarray) -> None:
        self.categories = categories
        self.ref = np.asarray(ref, np.int64)
        self.cur = np.asarray(cur, np.int64)
        self.n, self.m = int(self.ref.sum()), int(self.cur.sum())

    @classmethod
    def from_values(cls, reference: Any, current: Any) -> CategoricalPair:
        return cls.from_counts(count_values(reference), count_values(current))

    @classmethod
    def from_counts(cls, ref: Mapping[str, int], cur: Mapping[str, int]) -> CategoricalPair:
        cats = sorted(set(ref) | set(cur))
        return cls(
            cats,
            np.array([ref.get(c, 0) for c in cats], np.int64),
            np.array([cur.get(c, 0) for c in cats], np.int64),
        )

    @property
    def enough(self) -> bool:
        return self.n > 0 and self.m > 0

    @cached_property
    def pooled_table(self) -> np.ndarray:
        """2 x K' table for the chi-square / G tests: categories expected fewer than ``MIN_EXPECTED``
        times in either sample share one cell (dropped if it is empty)."""
        tot = self.ref + self.cur
        expected_min = tot * (min(self.n, self.m) / max(self.n + self.m, 1))
        rare = expected_min < MIN_EXPECTED
        table = np.stack([self.ref[~rare], self.cur[~rare]])
        if rare.any():
            table = np.column_stack([table, [self.ref[rare].sum(), self.cur[rare].sum()]])
        return table[:, table.sum(axis=0) > 0]

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ref / max(self.n, 1), self.cur / max(self.m, 1)
