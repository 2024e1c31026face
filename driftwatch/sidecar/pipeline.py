"""Admission (dedup, key cap, watermark), the bounded queue, and batching into ``Engine.update``.

The request path only validates and appends a per-request group ``{(feature, key): (values, ts)}``
to a deque; a single worker task drains it every ``batch_interval`` (or sooner when a batch's worth
is waiting), merges the groups and calls ``Engine.update`` once per stream. So the engine's cost is
paid per batch, off the request path, and the queue bound (in samples) is what turns overload into
a 429 instead of memory growth.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np

from driftwatch.sidecar.dedup import Dedup
from driftwatch.sidecar.parse import Column, Rejection, Sample
from driftwatch.sidecar.settings import Limits
from driftwatch.sidecar.watermark import Watermarks

log = logging.getLogger("driftwatch.sidecar")

#: (feature, key) -> (value parts, ts parts); a part is a list or an ndarray, concatenated when applied
Groups = dict[tuple[str, str], tuple[list[Any], list[Any]]]


class QueueFull(Exception):
    """Not enough room for this request's samples; nothing of it was admitted."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("queue full")
        self.retry_after = retry_after


class Pipeline:
    def __init__(
        self,
        engine: Any,
        limits: Limits,
        max_keys: int,
        types: dict[str, str],
        on_events: Callable[[list[Any]], None],
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.max_keys = max_keys
        self.types = types  # the Validator's pinned feature types (shared dict)
        self.on_events = on_events
        self.capacity = limits.queue_capacity
        self.depth = 0
        self._chunks: deque[tuple[int, int, Groups]] = deque()
        self._seq = 0  # last admitted chunk
        self.applied_seq = 0  # last chunk applied to the engine
        self._applied = asyncio.Event()
        self._wake = asyncio.Event()
        self.lock = asyncio.Lock()
        self.keys: set[str] = set()
        self.dedup = Dedup(limits.dedup_window)
        self.watermarks = Watermarks(limits.allowed_lateness)
        self.ingested: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.rejected: defaultdict[str, int] = defaultdict(int)
        self.last_apply_seconds = 0.0
        self.engine_errors = 0

    # --- request path ---------------------------------------------------------------------------------

    def count_rejections(self, rejected: list[Rejection]) -> None:
        for r in rejected:
            self.rejected[r["reason"]] += 1

    def admit(self, accepted: list[Sample], rejected: list[Rejection], now: float) -> int:
        """Admit validated samples: dedup, key cap, lateness, then enqueue as one group. Appends its own
        rejections to ``rejected``. Raises QueueFull (admitting nothing) when there is no room.

        Lateness is judged against each key's watermark as it was before this request, so samples of
        one request are never late relative to each other."""
        if self.depth + len(accepted) > self.capacity:
            raise QueueFull(self.retry_after())
        groups: Groups = {}
        keys = self.keys
        newest = self.watermarks.newest
        allowed = self.watermarks.allowed
        dedup = self.dedup
        local_ids: dict[str, int] = {}
        maxts: dict[str, float] = {}
        n = 0
        for f, key, v, ts, sid, idx in accepted:
            if sid is not None:
                first = local_ids.get(sid)
                if first is None:
                    if dedup.seen(sid):
                        rejected.append(
                            {"index": idx, "error": f"id: duplicate {sid!r}", "reason": "duplicate"}
                        )
                        continue
                    local_ids[sid] = idx
                elif first != idx:
                    rejected.append({"index": idx, "error": f"id: duplicate {sid!r}", "reason": "duplicate"})
                    continue
            if key not in keys:
                if len(keys) >= self.max_keys:
                    err = f"key: too many distinct keys (cap {self.max_keys})"
                    rejected.append({"index": idx, "error": err, "reason": "too_many_keys"})
                    continue
                keys.add(key)
            if ts is None:
                ts = now
            elif allowed is not None and key in newest and ts < newest[key] - allowed:
                late = newest[key] - allowed - ts
                err = f"ts: late by {late:.3f}s (allowed lateness {allowed:g}s)"
                rejected.append({"index": idx, "error": err, "reason": "late"})
                continue
            if ts > maxts.get(key, 0.0):
                maxts[key] = ts
            g = groups.get((f, key))
            if g is None:
                g = groups[(f, key)] = ([[]], [[]])
            g[0][0].append(v)
            g[1][0].append(ts)
            n += 1
        for key, ts in maxts.items():
            if ts > newest.get(key, 0.0):
                newest[key] = ts
        for sid in local_ids:
            dedup.add(sid)
        if rejected:
            self.count_rejections(rejected)
        if n:
            self.enqueue(groups, n)
        return n

    def admit_one(self, f: str, v: float, now: float) -> bool:
        """One validated numeric sample without key, ts or id; False (nothing done) when it needs the
        general path (a new key over the cap, or a full queue: that path answers)."""
        if self.depth >= self.capacity or ("" not in self.keys and len(self.keys) >= self.max_keys):
            return False
        self.keys.add("")
        newest = self.watermarks.newest
        if now > newest.get("", 0.0):
            newest[""] = now
        self.enqueue({(f, ""): ([[v]], [[now]])}, 1)
        return True

    def admit_arrays(self, columns: dict[str, np.ndarray], now: float, key: str = "") -> int:
        """Admit the validator's fast-path output (no ids, no ts: arrival time). Returns how many were
        admitted; 0 with nothing done when the key is over the cap (the caller takes the slow path, which
        explains the rejection). Raises QueueFull like ``admit``."""
        n = sum(len(a) for a in columns.values())
        if self.depth + n > self.capacity:
            raise QueueFull(self.retry_after())
        if key not in self.keys:
            if len(self.keys) >= self.max_keys:
                return 0
            self.keys.add(key)
        if now > self.watermarks.newest.get(key, 0.0):
            self.watermarks.newest[key] = now
        groups: Groups = {(f, key): ([arr], [np.full(len(arr), now)]) for f, arr in columns.items()}
        self.enqueue(groups, n)
        return n

    def admit_column(self, col: Column, rejected: list[Rejection], now: float) -> int:
        """Admit a validated column body: the same rules as ``admit`` (the id covers the whole batch),
        vectorised. Rejections use positions in the body's ``values``."""
        f, key, values, ts, sid, idx = col
        n = len(idx)
        if self.depth + n > self.capacity:
            raise QueueFull(self.retry_after())

        def reject_all(error: str, reason: str) -> int:
            rejected.extend({"index": i, "error": error, "reason": reason} for i in idx.tolist())
            self.count_rejections(rejected)
            return 0

        if sid is not None and self.dedup.seen(sid):
            return reject_all(f"id: duplicate {sid!r}", "duplicate")
        if key not in self.keys:
            if len(self.keys) >= self.max_keys:
                return reject_all(f"key: too many distinct keys (cap {self.max_keys})", "too_many_keys")
            self.keys.add(key)
        newest = self.watermarks.newest
        allowed = self.watermarks.allowed
        if ts is None:
            ts = np.full(n, now)
        elif allowed is not None and key in newest:
            late = ts < newest[key] - allowed
            if late.any():
                for i in np.flatnonzero(late).tolist():
                    err = f"ts[{int(idx[i])}]: late (allowed lateness {allowed:g}s)"
                    rejected.append({"index": int(idx[i]), "error": err, "reason": "late"})
                keep = ~late
                ts = ts[keep]
                values = (
                    values[keep]
                    if isinstance(values, np.ndarray)
                    else [v for v, k in zip(values, keep, strict=True) if k]
                )
                n = len(ts)
        if n:
            top = float(ts.max())
            if top > newest.get(key, 0.0):
                newest[key] = top
        if sid is not None:
            self.dedup.add(sid)
        if rejected:
            self.count_rejections(rejected)
        if n:
            self.enqueue({(f, key): ([values], [ts])}, n)
        return n

    def enqueue(self, groups: Groups, n: int) -> int:
        """Append an admitted group; returns its sequence number (see ``wait_applied``)."""
        self._seq += 1
        self._chunks.append((self._seq, n, groups))
        self.depth += n
        if self.depth >= self.limits.max_batch:
            self._wake.set()
        return self._seq

    @property
    def last_seq(self) -> int:
        """Sequence number of the last admitted chunk."""
        return self._seq

    def has_room(self, n: int) -> bool:
        return self.depth + n <= self.capacity

    def retry_after(self) -> float:
        """Seconds a client should wait: the time the worker needs to drain the queue, at least 1."""
        per_batch = max(self.last_apply_seconds, self.limits.batch_interval)
        return max(1.0, per_batch * self.depth / max(1, self.limits.max_batch))

    async def wait_room(self, n: int) -> None:
        """Until ``n`` samples fit (readers that can wait instead of answering 429)."""
        while not self.has_room(n):
            ev = self._applied
            await ev.wait()

    async def wait_applied(self, seq: int) -> None:
        """Until the chunk with this sequence number has been applied to the engine."""
        while self.applied_seq < seq:
            ev = self._applied
            await ev.wait()

    # --- worker ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        """The worker: apply a batch, sleep until the next interval or until a batch's worth waits."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.limits.batch_interval)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._chunks:
                continue
            async with self.lock:  # held by engine reads that run in a thread (Sidecar.snapshot)
                self.step()
            # a backlog of full batches is worked off at once (yielding in between); anything less
            # waits for the next interval, so the engine's fixed cost per call is paid per batch
            while self.depth >= self.limits.max_batch:
                await asyncio.sleep(0)
                async with self.lock:
                    self.step()

    def drain(self) -> None:
        """Apply everything queued (shutdown)."""
        while self._chunks:
            self.step()

    def step(self) -> int:
        """Apply up to ``max_batch`` queued samples; returns how many."""
        merged: Groups = {}
        taken = 0
        last_seq = self.applied_seq
        while self._chunks and taken < self.limits.max_batch:
            seq, n, groups = self._chunks.popleft()
            for sk, (vals, tss) in groups.items():
                m = merged.get(sk)
                if m is None:
                    merged[sk] = (list(vals), list(tss))
                else:
                    m[0].extend(vals)
                    m[1].extend(tss)
            taken += n
            last_seq = seq
        self.depth -= taken
        t0 = time.perf_counter()
        events: list[Any] = []
        for (f, key), (vals, tss) in merged.items():
            events.extend(self._apply(f, key, vals, tss))
        self.last_apply_seconds = time.perf_counter() - t0
        self.applied_seq = last_seq
        self._applied.set()
        self._applied = asyncio.Event()
        if events:
            self.on_events(events)
        return taken

    def _apply(self, f: str, key: str, parts: list[Any], ts_parts: list[Any]) -> list[Any]:
        categorical = self.types.get(f) == "categorical"
        values: Any = [v for part in parts for v in part] if categorical else _concat(parts)
        ts = _concat(ts_parts)
        n = len(values)
        try:
            events = self.engine.update(f, values, key=key, ts=ts)
        except Exception as e:  # the engine must never take the sidecar down; count and go on
            from driftwatch.detect.base import InputError

            reason = "wrong_type" if isinstance(e, InputError) else "engine_error"
            self.rejected[reason] += n
            self.engine_errors += 1
            if self.engine_errors <= 10 or self.engine_errors % 1000 == 0:
                log.exception("engine.update(%r, key=%r) failed on %d samples", f, key, n)
            return []
        self.ingested[(f, key)] += n
        return list(events or [])


def _concat(parts: list[Any]) -> np.ndarray:
    """float64 array from parts that are lists (single-sample requests: many tiny ones) or arrays."""
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=np.float64)
    if all(type(p) is list for p in parts):
        return np.array(list(chain.from_iterable(parts)), dtype=np.float64)
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
