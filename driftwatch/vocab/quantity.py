"""Kubernetes resource quantities (``100m``, ``96Mi``, ``1e3``), parsed to exact decimals.

The operator compares a monitor's sidecar requests with its limits before any pod is created: a
request above its limit makes the API server refuse every pod of the workload (FailedCreate), which
the app's team would discover, not the monitor's author. Stdlib only, like the rest of ``vocab``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"^\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}
#: the same shape as a regular expression for the CRD (no sign: a negative quantity is never valid here)
PATTERN = _QUANTITY.pattern


def parse_quantity(value: object) -> Decimal:
    """``"250Mi"`` -> ``Decimal(262144000)``; ints pass through. Raises ValueError for anything else,
    negative numbers included.

    >>> parse_quantity("100m"), parse_quantity("1Ki"), parse_quantity(2)
    (Decimal('0.100'), Decimal('1024'), Decimal('2'))
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a quantity such as 100m or 128Mi, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return Decimal(value)
    m = _QUANTITY.match(value.strip())
    if not m:
        raise ValueError(f"must be a non-negative quantity such as 100m or 128Mi, got {value!r}")
    suffix = m.group("suffix") or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(m.group("num")) * Decimal(10) ** int(suffix[1:])
        return Decimal(m.group("num")) * _SUFFIX[suffix]
    except (InvalidOperation, ArithmeticError):
        raise ValueError(f"is out of range, got {value!r}") from None
