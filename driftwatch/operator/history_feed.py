"""What happened to a monitor, written to its history (``P:history``) and handed to its alerts.

Status rounds see the monitor-wide picture (every pod's streams merged), so a feature's transition is
read there, once per monitor -- not once per pod as the sidecars' own ``P:events`` have it:
``transitions`` compares the previous status with the new one (pure). ``Feed`` does the I/O off the
round: each item is appended to the history and passed to the alert sink, in the order they
happened, on one background task per monitor so a slow Redis or receiver never holds a round.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from redis.exceptions import RedisError

from driftwatch.history import stream_log
from driftwatch.history.entries import DRIFT_END, DRIFT_START, Entry
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.pod_reports import RedisPool
from driftwatch.vocab.states import State

log = logging.getLogger("driftwatch.operator")
#: items waiting per monitor at most (a Redis outage must not grow the operator)
MAX_PENDING = 1000


@dataclass(frozen=True)
class Transition:
    """A feature (stream) of the monitor started or stopped drifting, monitor-wide."""

    type: str  # DRIFT_START | DRIFT_END
    feature: str
    key: str
    severity: str
    score: float
    detector: str
    since: Any  # the drift's onset as the status has it (stable across rounds)
    reason: str = ""  # DRIFT_END: recovered | adopted
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def event(self, namespace: str, name: str, now: float) -> dict[str, Any]:
        """As a ``DriftEvent.to_dict()`` (what ``Alert.from_event`` reads), with a deterministic id."""
        raw = "\x1f".join((namespace, name, self.type, self.feature, self.key, str(self.since)))
        evidence = dict(self.evidence)
        if self.type == DRIFT_END:
            evidence["reason"] = self.reason
        return {
            "id": hashlib.sha256(raw.encode()).hexdigest()[:20],
            "type": self.type,
            "feature": self.feature,
            "key": self.key,
            "severity": self.severity,
            "score": self.score,
            "timestamp": now,
            "detector": self.detector,
            "onset": self.since,
            "evidence": evidence,
        }

    def entry(self, now: float) -> Entry:
        where = self.feature + (f" [{self.key}]" if self.key else "")
        if self.type == DRIFT_START:
            summary = f"{where}: drift started ({self.severity}, score {self.score:.2f}, {self.detector})"
        else:
            summary = f"{where}: drift ended ({self.reason})"
        details: dict[str, Any] = {"detector": self.detector, "since": self.since, "score": self.score}
        if self.reason:
            details["reason"] = self.reason
        if self.evidence:
            details["evidence"] = dict(self.evidence)
        return Entry(self.type, now, summary, self.feature, self.key, self.severity, details)


def transitions(previous: Mapping[str, Any], fields: Mapping[str, Any]) -> list[Transition]:
    """Features whose state entered or left Drifting between two statuses."""
    old = {(f.get("name"), f.get("key") or ""): f for f in previous.get("features") or []}
    out: list[Transition] = []
    for f in fields.get("features") or []:
        k = (f.get("name"), f.get("key") or "")
        before = old.get(k, {})
        was, now = before.get("state"), f.get("state")
        if was == now or State.DRIFTING not in (was, now):
            continue
        started = now == State.DRIFTING
        adopted = f.get("baselineAdoptedAt") not in (None, before.get("baselineAdoptedAt"))
        evidence = f.get("evidence") if isinstance(f.get("evidence"), Mapping) else {}
        out.append(
            Transition(
                DRIFT_START if started else DRIFT_END,
                str(f.get("name")),
                str(k[1]),
                str((f if started else before).get("severity") or "warning"),
                float((f if started else before).get("score") or 0.0),
                str((f if started else before).get("detector") or ""),
                (f if started else before).get("since"),
                "" if started else ("adopted" if adopted else "recovered"),
                evidence or {},
            )
        )
    return out


#: what the alerting side does with a transition (``alerting.Alerting.on_transition``)
AlertSink = Callable[[Monitor, Transition], Awaitable[None]]


class Feed:
    """One ordered queue of work per monitor, drained by its own task while work waits: transitions
    (history, then alerts) and whatever else must follow them in order (a scan's alert)."""

    def __init__(self, redis: RedisPool, clock: Callable[[], float]) -> None:
        self.redis = redis
        self.clock = clock
        self.alerts: AlertSink | None = None
        self._queues: dict[tuple[str, str], list[Callable[[], Awaitable[None]]]] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.dropped = 0

    def submit(self, monitor: Monitor, items: list[Transition]) -> None:
        for t in items:
            self.later(monitor, partial(self._transition, monitor, t))

    def later(self, monitor: Monitor, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work()`` after what is queued for this monitor (dropped beyond ``MAX_PENDING``)."""
        key = (monitor.namespace, monitor.name)
        queue = self._queues.setdefault(key, [])
        if len(queue) >= MAX_PENDING:
            self.dropped += 1
            return
        queue.append(work)
        task = self._tasks.get(key)
        if task is None or task.done():
            self._tasks[key] = asyncio.create_task(self._drain(key), name=f"feed-{key[0]}/{key[1]}")

    async def _drain(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        while queue:
            work = queue.pop(0)
            try:
                await work()
            except Exception:  # one failing item must not stop the ones behind it
                log.exception("%s/%s: history/alert work failed", *key)

    async def _transition(self, monitor: Monitor, t: Transition) -> None:
        try:
            await stream_log.append(
                self.redis.get(monitor.redis_url), monitor.keys.history, t.entry(self.clock())
            )
        except (RedisError, OSError, TimeoutError) as e:
            log.warning(
                "%s/%s: history not written (Redis: %s)", monitor.namespace, monitor.name, type(e).__name__
            )
        if self.alerts is not None:
            await self.alerts(monitor, t)

    async def idle(self) -> None:
        """Until every queued item is handled (tests; shutdown)."""
        while any(not t.done() for t in self._tasks.values()):
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
