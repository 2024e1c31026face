"""Per-key event-time watermark: a sample older than (newest ts seen for its key - allowed lateness)
is late and rejected.

The engine's windows assume roughly ordered time; a replayed hour of old data arriving after the fact
would otherwise be mistaken for the present. Keys are capped upstream, so this map stays bounded.
"""

from __future__ import annotations


class Watermarks:
    def __init__(self, allowed_lateness: float | None) -> None:
        self.allowed = allowed_lateness
        self.newest: dict[str, float] = {}

    def late_by(self, key: str, ts: float) -> float:
        """Seconds beyond the allowed lateness (> 0 means late), without recording anything."""
        if self.allowed is None:
            return 0.0
        newest = self.newest.get(key)
        if newest is None:
            return 0.0
        return (newest - self.allowed) - ts

    def advance(self, key: str, ts: float) -> None:
        if ts > self.newest.get(key, 0.0):
            self.newest[key] = ts

    def to_dict(self) -> dict[str, float]:
        return dict(self.newest)

    def restore(self, d: dict[str, float]) -> None:
        self.newest.update({str(k): float(v) for k, v in d.items()})
