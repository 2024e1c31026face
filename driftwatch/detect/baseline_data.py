"""``baseline.mode: fromConfigMap``: the reference samples in a ConfigMap's ``data``, parsed.

Pure (no Kubernetes, no files): the caller hands in the ConfigMap's ``data`` mapping (or the files of
its mounted volume, name -> content). Each data key is ``<feature>`` (the stream with key "") or
``<feature>.<key>``; the split is at the first ``.`` after a declared feature name when ``features`` is
given (feature names may themselves contain dots), else at the first ``.``. Each value is either a JSON
list (numbers, strings, or null for a missing value) or newline-separated values (blank lines and lines
starting with ``#`` skipped; a line that parses as a number is a number).

>>> parse_baseline_data({"latency_ms": "[1.5, 2.0, 3]", "route.eu": "a\\nb\\n"})
{('latency_ms', ''): [1.5, 2.0, 3.0], ('route', 'eu'): ['a', 'b']}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any


class BaselineDataError(ValueError):
    """A ConfigMap data entry that is not a list of values; ``key`` is the data key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"ConfigMap data key {key!r}: {message}")
        self.key = key


def _split(name: str, features: Iterable[str] | None) -> tuple[str, str]:
    if features is not None:
        best = ""
        for f in features:
            if (name == f or name.startswith(f + ".")) and len(f) > len(best):
                best = f
        if best:
            return best, name[len(best) + 1 :]
    feature, _, key = name.partition(".")
    return feature, key


def _value(key: str, v: Any, where: str) -> float | str:
    if v is None:
        return math.nan
    if isinstance(v, bool):
        raise BaselineDataError(key, f"{where}: booleans are not values ({v!r})")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        return v
    raise BaselineDataError(key, f"{where}: expected a number or string, got {type(v).__name__}")


def _line(s: str) -> float | str:
    try:
        return float(s)
    except ValueError:
        return s


def parse_baseline_data(
    data: Mapping[str, Any], features: Iterable[str] | None = None
) -> dict[tuple[str, str], list[Any]]:
    """ConfigMap ``data`` -> {(feature, key): values} for ``Engine.seed_baseline``. Values of one entry
    are all numbers (NaN for null) or all strings; errors name the data key."""
    feats = None if features is None else list(features)
    out: dict[tuple[str, str], list[Any]] = {}
    for name, raw in data.items():
        if not isinstance(raw, str):
            raise BaselineDataError(name, f"expected text, got {type(raw).__name__}")
        text = raw.strip()
        values: list[Any]
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as e:
                raise BaselineDataError(name, f"invalid JSON list: {e.msg} at line {e.lineno}") from None
            if not isinstance(parsed, list):
                raise BaselineDataError(name, "expected a JSON list")
            values = [_value(name, v, f"item {i}") for i, v in enumerate(parsed)]
        else:
            values = [_line(ln.strip()) for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if not values:
            raise BaselineDataError(name, "no values")
        nums = sum(isinstance(v, float) for v in values)
        if 0 < nums < len(values):
            raise BaselineDataError(name, "mixes numbers and strings (one feature has one type)")
        feature, key = _split(name, feats)
        if not feature:
            raise BaselineDataError(name, "expected <feature> or <feature>.<key>")
        out[(feature, key)] = values
    return out
