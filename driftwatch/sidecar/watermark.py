"""Per-key event-time watermark: a sample older than (newest ts admitted for its key - allowed
lateness) is late and rejected.

The engine's windows assume roughly ordered time; a replayed hour of old data arriving after the fact
would otherwise be mistaken for the present. Keys are capped upstream (admission folds keys beyond
the cap), so this map stays bounded. Admission reads ``newest`` and ``allowed`` directly in its
per-sample loop (a method call per sample would cost more than the check).
"""

from __future__ import annotations


class Watermarks:
    def __init__(self, allowed_lateness: float | None) -> None:
        self.allowed = allowed_lateness  # None: no watermark
        self.newest: dict[str, float] = {}

    def to_dict(self) -> dict[str, float]:
        return dict(self.newest)

    def restore(self, d: dict[str, float]) -> None:
        self.newest.update({str(k): float(v) for k, v in d.items()})
