"""What events carry so a human can believe them: exact numbers of small raw samples, compact packing.

Kept apart from the statistics: evidence is for people (and the operator's status), the detectors never
read it.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from driftwatch.vocab.limits import MAX_ABS

from .summaries import OTHER

__all__ = ["MAX_ABS", "decode_names", "describe", "encode_names", "pack_f32", "unpack_f32"]


def pack_f32(a: np.ndarray) -> str:
    """float32 array -> base64 (4 bytes a value instead of ~20 JSON characters)."""
    return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode("ascii")


def unpack_f32(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), "<f4").copy()


def describe(x: np.ndarray) -> dict[str, float | int | None]:
    """Exact evidence numbers of a small raw sample."""
    if x.size == 0:
        return {"n": 0, "mean": None, "std": None, "p50": None, "p95": None, "p99": None}
    x = np.sort(x.astype(np.float64))
    n = x.size
    mean = float(x.sum()) / n
    d = x - mean
    # numpy's default (linear) quantiles on the sorted sample: np.quantile costs ~0.5 ms a call
    pos = np.array([0.5, 0.95, 0.99]) * (x.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, x.size - 1)
    p50, p95, p99 = x[lo] + (x[hi] - x[lo]) * (pos - lo)
    return {
        "n": int(x.size),
        "mean": mean,
        "std": math.sqrt(float(np.einsum("i,i->", d, d)) / (n - 1)) if n > 1 else 0.0,
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
    }


def encode_names(values: list[str], max_names: int = 24) -> dict[str, Any]:
    """A list of category names as a name table plus codes (200 repeats of a long name cost once).
    Beyond ``max_names`` distinct names the rest become ``__other__``: evidence, not statistics."""
    table: dict[str, int] = {}
    codes = []
    for v in values:
        c = table.get(v)
        if c is None:
            if len(table) >= max_names:
                v = OTHER
            c = table.setdefault(v, len(table))
        codes.append(c)
    return {"names": list(table), "codes": codes}


def decode_names(d: dict[str, Any]) -> list[str]:
    names = [str(v) for v in d["names"]]
    return [names[int(c)] for c in d["codes"]]
