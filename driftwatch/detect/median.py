"""``median``: ``np.median`` of a 1-D float array, value for value, without loading ``numpy.ma``.

``np.median`` checks its result for NaN through ``np.ma.isMaskedArray``, and that attribute imports
``numpy.ma`` (~1.1 MB resident) into every sidecar the first time a stream fits its baseline. This is
the same computation -- one ``np.partition`` at numpy's own positions, the middle element or
``np.mean`` of the middle two, NaN when the partition puts one last -- and anything other than a
non-empty 1-D float array goes to ``np.median`` itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def median(x: Any) -> Any:
    a = np.asarray(x)
    n = a.size
    if a.ndim != 1 or a.dtype.kind != "f" or n == 0:
        return np.median(a)
    h = n // 2
    part = np.partition(a, [h - 1, h, -1] if n % 2 == 0 else [h, -1])
    last = part[-1]
    if np.isnan(last):
        return last
    return np.mean(part[h - 1 : h + 1]) if n % 2 == 0 else np.mean(part[h : h + 1])
