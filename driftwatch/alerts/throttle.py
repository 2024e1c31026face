"""Dedup and rate limits: a flapping stream must not storm a receiver.

* ``Deduplicator``: an alert id already delivered is never sent again (retries, replays, a second
  operator round); an alert saying the same thing (``Alert.dedup_key``: monitor, type, feature, key,
  severity) is sent at most once per repeat interval.
* ``TokenBucket``: per channel, ``burst`` at once, then ``per_hour``; what it holds back is counted and
  reported in the next delivered alert (``suppressed``).

In memory, per notifier: an operator restart forgets them, at the cost of at most one repeat per alert.
"""

from __future__ import annotations

from collections import OrderedDict

#: delivered alert ids remembered (oldest forgotten first)
MAX_IDS = 10_000


class Deduplicator:
    def __init__(self, repeat_interval: float, max_ids: int = MAX_IDS) -> None:
        self.repeat_interval = repeat_interval
        self.max_ids = max_ids
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._last: dict[str, float] = {}

    def is_duplicate(self, alert_id: str, dedup_key: str, now: float) -> bool:
        if alert_id in self._ids:
            return True
        last = self._last.get(dedup_key)
        return last is not None and now - last < self.repeat_interval

    def record(self, alert_id: str, dedup_key: str, now: float) -> None:
        self._ids[alert_id] = None
        self._ids.move_to_end(alert_id)
        while len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)
        self._last[dedup_key] = now
        if len(self._last) > self.max_ids:  # forget keys whose interval has passed
            self._last = {k: t for k, t in self._last.items() if now - t < self.repeat_interval}


class TokenBucket:
    def __init__(self, burst: int, per_hour: float) -> None:
        self.capacity = float(burst)
        self.rate = per_hour / 3600.0
        self.tokens = float(burst)
        self.stamp: float | None = None
        #: alerts held back since the last one let through
        self.suppressed = 0

    def take(self, now: float) -> bool:
        if self.stamp is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.suppressed += 1
        return False
