"""Drift events kept in memory for ``GET /v1/events``: bounded, newest last, filtered on read.

Redis (``P:events``) is the durable copy; this is what one pod saw, so a human or a test can ask the
sidecar directly. Event ids are deterministic, so a re-applied batch never shows an event twice.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class EventLog:
    def __init__(self, capacity: int) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._ids: set[str] = set()
        self.total = 0

    def add(self, event: dict[str, Any]) -> bool:
        """Record one event (a DriftEvent.to_dict()); False if its id is already here."""
        eid = event.get("id")
        if eid in self._ids:
            return False
        if self._events.maxlen is not None and len(self._events) == self._events.maxlen:
            self._ids.discard(self._events[0].get("id"))
        self._events.append(event)
        if eid is not None:
            self._ids.add(eid)
        self.total += 1
        return True

    def __len__(self) -> int:
        return len(self._events)

    def query(
        self,
        feature: str | None = None,
        key: str | None = None,
        type_: str | None = None,
        since: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(matching count, page) with the newest events first."""
        out = []
        for e in reversed(self._events):
            if feature is not None and e.get("feature") != feature:
                continue
            if key is not None and e.get("key") != key:
                continue
            if type_ is not None and e.get("type") != type_:
                continue
            if since is not None and (e.get("timestamp") is None or e["timestamp"] < since):
                continue
            out.append(e)
        return len(out), out[offset : offset + limit]
