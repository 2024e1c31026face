"""The bounded queue between admission (request path) and the engine worker.

Admitted samples are appended straight into the open ``Chunk``, grouped by stream (feature, key), so
the worker receives one group per stream however many requests contributed to it: single-sample
requests extend a Python list in place, batches append an array. A chunk closes when it holds
``max_batch`` samples (the worker is woken at once) or when the worker takes it on its interval. The
bound is in samples: it is what turns overload into a 429 instead of memory growth.

Everything here runs on the event loop thread; the worker only receives chunks it has taken.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: (feature, key)
StreamKey = tuple[str, str]


@dataclass(slots=True)
class Group:
    """One stream's samples within a chunk, in arrival order: parts that are lists (values appended one
    by one) or arrays (a request's batch); ``ts`` parts run parallel to ``values`` parts."""

    values: list[Any]
    ts: list[Any]


@dataclass(slots=True)
class Chunk:
    seq: int
    n: int = 0
    groups: dict[StreamKey, Group] = field(default_factory=dict)


class QueueFull(Exception):
    """Not enough room for a request's samples; nothing of it was admitted."""

    def __init__(self, retry_after: float, waiting: int) -> None:
        super().__init__("queue full")
        self.retry_after = retry_after
        self.waiting = waiting


class Queue:
    def __init__(self, capacity: int, max_batch: int, batch_interval: float) -> None:
        self.capacity = capacity
        self.max_batch = max_batch
        self.batch_interval = batch_interval
        self.depth = 0  # samples admitted and not yet taken by the worker
        self.last_seq = 0  # chunk of the last admitted samples
        self.applied_seq = 0  # last chunk the worker has applied
        self.last_apply_seconds = 0.0
        #: called when a chunk fills up (the worker's wake-up: it should not wait out its interval)
        self.on_full: Callable[[], None] = lambda: None
        self._closed: deque[Chunk] = deque()
        self._open = Chunk(1)
        self._applied = asyncio.Event()

    # --- request path ---------------------------------------------------------------------------------

    def reserve(self, n: int) -> None:
        """Raise QueueFull unless ``n`` more samples fit (call before adding any of them)."""
        if self.depth + n > self.capacity:
            raise QueueFull(self.retry_after(), self.depth)

    def hold(self, n: int) -> None:
        """Count ``n`` samples as queued before they are (a batch admitted in steps keeps its room);
        ``hold(-n)`` gives it back."""
        self.depth += n

    def has_room(self, n: int) -> bool:
        return self.depth + n <= self.capacity

    def add(self, stream: StreamKey, values: Any, ts: Any) -> None:
        """Append one part (a list, or an array) of a stream's values and their times."""
        g = self._open.groups.get(stream)
        if g is None:
            self._open.groups[stream] = Group([values], [ts])
        elif type(values) is list and type(g.values[-1]) is list and type(g.ts[-1]) is list:
            g.values[-1].extend(values)  # a categorical column's values are a list, its times an array
            g.ts[-1].extend(ts)
        else:
            g.values.append(values)
            g.ts.append(ts)

    def add_one(self, stream: StreamKey, value: float, ts: float) -> None:
        g = self._open.groups.get(stream)
        if g is None:
            self._open.groups[stream] = Group([[value]], [[ts]])
        elif type(g.values[-1]) is list and type(g.ts[-1]) is list:
            g.values[-1].append(value)
            g.ts[-1].append(ts)
        else:
            g.values.append([value])
            g.ts.append([ts])

    def push_one(self, stream: StreamKey, value: float, ts: float) -> None:
        """``add_one`` and ``commit(1)``: the single-sample request's whole queue work."""
        self.add_one(stream, value, ts)
        self.commit(1)

    def commit(self, n: int) -> int:
        """Count ``n`` samples just added; returns the sequence number of their chunk."""
        chunk = self._open
        chunk.n += n
        self.depth += n
        self.last_seq = chunk.seq
        if chunk.n >= self.max_batch:
            self._closed.append(chunk)
            self._open = Chunk(chunk.seq + 1)
            self.on_full()
        return chunk.seq

    def retry_after(self) -> float:
        """Seconds a client should wait: the time the worker needs to drain the queue, at least 1."""
        per_batch = max(self.last_apply_seconds, self.batch_interval)
        return max(1.0, per_batch * self.depth / max(1, self.max_batch))

    # --- worker side ----------------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        """A full chunk waits (the worker should take it now)."""
        return bool(self._closed)

    def take(self) -> Chunk | None:
        """The oldest chunk (the open one when none is full), or None when nothing waits."""
        if self._closed:
            chunk = self._closed.popleft()
        elif self._open.n:
            chunk = self._open
            self._open = Chunk(chunk.seq + 1)
        else:
            return None
        self.depth -= chunk.n
        return chunk

    def done(self, seq: int, seconds: float) -> None:
        """The worker applied chunk ``seq`` in ``seconds``: wake whoever waits for room or for it."""
        self.applied_seq = seq
        self.last_apply_seconds = seconds
        self._applied.set()
        self._applied = asyncio.Event()

    # --- readers that wait instead of answering 429 (the Redis stream) ----------------------------------

    async def wait_room(self, n: int) -> None:
        while not self.has_room(n):
            await self._applied.wait()

    async def wait_applied(self, seq: int) -> None:
        while self.applied_seq < seq:
            await self._applied.wait()
