"""Drop samples whose ``id`` was already accepted, remembering a bounded window of ids.

Clients retry on timeouts and 429s; an id makes the retry harmless. The window is FIFO over accepted
ids (a deque for order, a set for membership): memory stays bounded and a retry within the last
``capacity`` accepted ids is always caught.
"""

from __future__ import annotations

from collections import deque


class Dedup:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def seen(self, sid: str) -> bool:
        return sid in self._ids

    def add(self, sid: str) -> None:
        """Remember an accepted id, evicting the oldest beyond capacity."""
        if self.capacity <= 0 or sid in self._ids:
            return
        self._ids.add(sid)
        self._order.append(sid)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())
