"""Drift events as the sidecar keeps them: a bounded log for ``GET /v1/events``, counts for
``driftwatch_drift_events_total`` and an outbox for Redis ``P:events``.

Redis is the durable copy; the log is what one pod saw, so a human or a test can ask the sidecar
directly. Event ids are deterministic, so a re-applied batch never shows an event twice.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from driftwatch.detect import DriftEvent

log = logging.getLogger("driftwatch.sidecar")

#: (feature, key, type, reason): the reason is how a DRIFT_END ended (recovered | adopted) and the
#: alarming detector for a DRIFT_START
EventKey = tuple[str, str, str, str]


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


class DriftEvents:
    """Where the engine worker's events go (on the event loop): log, count, outbox, and a nudge for
    whoever publishes them (``on_event``)."""

    def __init__(self, capacity: int, on_event: Callable[[], None] = lambda: None) -> None:
        self.log = EventLog(capacity)
        self.counts: defaultdict[EventKey, int] = defaultdict(int)
        self.outbox: deque[dict[str, Any]] = deque(maxlen=capacity)  # not yet in Redis
        self.on_event = on_event
        #: (feature, key) -> when its open drift started (the DRIFT_START's sample time, else when it was
        #: recorded), for ``driftwatch_drift_since_timestamp_seconds``; removed by its DRIFT_END. Bounded
        #: by the streams, as the counts are.
        self.started: dict[tuple[str, str], float] = {}

    def record(self, events: Iterable[DriftEvent]) -> None:
        new = False
        for ev in events:
            d = ev.to_dict()
            if not self.log.add(d):
                continue
            new = True
            reason = ev.detector if ev.type == "DRIFT_START" else str(ev.evidence.get("reason", ""))
            self.counts[(ev.feature, ev.key, ev.type, reason)] += 1
            if ev.type == "DRIFT_START":
                self.started[(ev.feature, ev.key)] = ev.timestamp if ev.timestamp is not None else time.time()
            else:
                self.started.pop((ev.feature, ev.key), None)
            self.outbox.append(d)
            log.info(
                "drift event %s feature=%s key=%s score=%.3f", ev.type, ev.feature, ev.key, ev.score or 0
            )
        if new:
            self.on_event()
