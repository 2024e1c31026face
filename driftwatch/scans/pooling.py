"""Reservoirs of many pods and buckets -> one uniform sample per feature. Pure (numpy).

Each reservoir (one pod, one bucket, one stream) holds a uniform sample of the values its pod saw and
how many that was. A uniform sample of the whole window takes from every reservoir in proportion to
what it saw: at the rate of the most thinned one (``min kept / seen``), a uniformly chosen subset of
each. Keys of one feature pool together: a scan judges the feature, monitor-wide.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NUMERIC, CATEGORICAL = "numeric", "categorical"


@dataclass(frozen=True)
class Part:
    """One stored reservoir."""

    pod: str
    feature: str
    key: str
    kind: str  # numeric | categorical
    seen: int
    values: Any  # float64 array or list of str


@dataclass
class Pooled:
    """Per feature: the pooled sample, its type, values seen in the window, pods that contributed."""

    values: dict[str, Any] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    pods: set[str] = field(default_factory=set)


def pool(parts: Iterable[Part], seed: int = 0) -> Pooled:
    rng = np.random.default_rng(seed)
    by_feature: defaultdict[str, list[Part]] = defaultdict(list)
    for p in parts:
        if p.seen > 0 and len(p.values):
            by_feature[p.feature].append(p)
    out = Pooled()
    for feature in sorted(by_feature):
        group = by_feature[feature]
        # a feature whose type changed (auto typing in another pod): the type that saw the most wins
        seen_by_kind: defaultdict[str, int] = defaultdict(int)
        for p in group:
            seen_by_kind[p.kind] += p.seen
        kind = max(seen_by_kind, key=lambda k: (seen_by_kind[k], k))
        group = [p for p in group if p.kind == kind]
        rate = min(min(1.0, len(p.values) / p.seen) for p in group)
        chosen: list[Any] = []
        for p in group:
            take = min(len(p.values), max(1, round(rate * p.seen)))
            if take >= len(p.values):
                chosen.append(p.values)
            else:
                idx = np.sort(rng.choice(len(p.values), size=take, replace=False))
                chosen.append([p.values[i] for i in idx] if kind == CATEGORICAL else p.values[idx])
        if kind == CATEGORICAL:
            out.values[feature] = [v for part in chosen for v in part]
        else:
            out.values[feature] = np.concatenate([np.asarray(c, dtype=np.float64) for c in chosen])
        out.types[feature] = kind
        out.seen[feature] = sum(p.seen for p in group)
        out.pods |= {p.pod for p in group}
    return out
