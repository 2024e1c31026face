"""Bounds that validation (the sidecar, ``replay``) and the engine must agree on."""

from __future__ import annotations

#: the largest magnitude a numeric sample may have. Beyond it sums of squares overflow float64, so the
#: engine drops such values as not finite and every ingest path rejects them (``not_finite``) first.
MAX_ABS = 1e150
