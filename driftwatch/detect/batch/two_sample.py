"""The contract of a batch two-sample test: ``TwoSampleTest`` and what it returns, ``Score``.

A scan asks one question per feature: *is the current sample drawn from the reference distribution,
and if not, does the difference matter?* A test answers with a ``Score``: its ``statistic``, a
``p_value`` (hypothesis tests; ``None`` for pure distances) and an ``effect`` -- a distance in units a
person can judge (reference standard deviations, Jensen-Shannon distance, PSI) that the effect floor
(``threshold``) is applied to. Significance alone is not drift: at a million rows every test rejects a
0.01 sd difference that nobody cares about.

Tests work on a *pair* (``NumericPair`` / ``CategoricalPair``): both samples of one feature prepared
once -- sorted and merged, or counted -- so the statistic and the effect of a feature share that work.
Subclasses set the class attributes and implement ``score``; nothing else is part of the contract.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .categorical_tests import CategoricalPair
from .numeric_tests import NumericPair

Pair = NumericPair | CategoricalPair

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class Effect:
    """How a hypothesis test's effect is measured for one feature type, and its default levels."""

    name: str
    floor: float  # default threshold: smaller effects are never drift, however significant
    critical: float


#: the effect of a hypothesis test, by feature type. Numeric: Wasserstein-1 in reference standard
#: deviations (a mean shift of d sd scores d; it sees shape and scale changes too); categorical: the
#: Jensen-Shannon distance (bits) of the category shares.
EFFECTS = {
    NUMERIC: Effect("wasserstein (sd)", 0.05, 0.25),
    CATEGORICAL: Effect("jensen-shannon", 0.05, 0.2),
}


def infer_type(values: Any) -> str:
    """numeric for numbers (None and NaN allowed among them; bool excluded), categorical otherwise."""
    if isinstance(values, Mapping):
        return CATEGORICAL  # {category: count}
    a = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if a.dtype.kind in "iuf":
        return NUMERIC
    if a.dtype.kind != "O" or a.size == 0:
        return CATEGORICAL
    numbers = [v for v in a.ravel().tolist() if v is not None]
    is_number = all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
    return NUMERIC if numbers and is_number else CATEGORICAL


def kind_of(pair: Pair) -> str:
    return NUMERIC if isinstance(pair, NumericPair) else CATEGORICAL


def hypothesis_effect(pair: Pair) -> float:
    """The effect a hypothesis test reports (``EFFECTS``)."""
    if isinstance(pair, NumericPair):
        return pair.wasserstein_norm
    from .measures import jensen_shannon

    return jensen_shannon(pair.ref, pair.cur)


@dataclass(frozen=True)
class Score:
    """One test's answer for one feature. ``p_value`` is None for distances (no sampling model)."""

    statistic: float
    p_value: float | None
    effect: float


class TwoSampleTest(ABC):
    """A batch two-sample test of one feature: reference sample vs current sample.

    ``kinds`` are the feature types it applies to. ``threshold(kind)`` is the default smallest
    ``effect`` that counts as drift -- for hypothesis tests the effect floor of the feature type
    (``EFFECTS``), for distances the drift threshold itself; an effect of ``critical(kind)`` or more is
    a critical drift. ``compare`` runs the test alone on two raw samples (no multiple-testing control:
    that is ``driftwatch.detect.batch.comparison``'s job).

    >>> import numpy as np
    >>> from driftwatch.detect.batch import KS
    >>> rng = np.random.default_rng(0)
    >>> s = KS().compare(rng.normal(size=20_000), rng.normal(0.2, 1.0, size=20_000))
    >>> s.p_value < 1e-6, round(s.effect, 1)  # significant, and a shift of about 0.2 sd
    (True, 0.2)
    """

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    #: True: a distance with no p-value; drift is ``effect >= threshold`` alone
    is_distance: ClassVar[bool] = False

    @abstractmethod
    def score(self, pair: Pair) -> Score:
        """The statistic, p-value and effect of one feature's prepared pair."""

    def threshold(self, kind: str) -> float:
        return EFFECTS[kind].floor

    def critical(self, kind: str) -> float:
        return EFFECTS[kind].critical

    def effect_name(self, kind: str) -> str:
        return EFFECTS[kind].name

    def compare(self, reference: Any, current: Any) -> Score:
        """Prepare two raw samples as this test's first kind and score them."""
        pair: Pair
        kind = infer_type(reference)
        if (kind if kind in self.kinds else self.kinds[0]) == NUMERIC:
            pair = NumericPair(reference, current)
        else:
            pair = CategoricalPair.from_values(reference, current)
        return self.score(pair)


class DistanceTest(TwoSampleTest):
    """A distance with its own drift threshold and no p-value (``statistic == effect``)."""

    is_distance: ClassVar[bool] = True
    default_threshold: ClassVar[float]
    default_critical: ClassVar[float]

    @abstractmethod
    def distance(self, pair: Pair) -> float:
        """The distance between the two samples of ``pair``."""

    def score(self, pair: Pair) -> Score:
        d = self.distance(pair)
        return Score(d, None, d)

    def threshold(self, kind: str) -> float:
        return self.default_threshold

    def critical(self, kind: str) -> float:
        return self.default_critical

    def effect_name(self, kind: str) -> str:
        return self.name
