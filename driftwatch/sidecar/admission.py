"""Admission: what happens to validated samples before they are queued -- dedup by id, the key cap,
the lateness watermark -- then the queue.

The key cap is the engine's policy (docs/contracts.md section 2): the first ``spec.keys.maxKeys``
distinct keys get their own streams; any further key is folded into ``__overflow__``
(``detect.engine.OVERFLOW_KEY``): never dropped, never an unbounded label value. Folding happens here,
before the per-key state (watermarks, counters, metric labels) sees the key, so that state stays
bounded and ``driftwatch replay`` and the sidecar put the same samples in the same streams.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from driftwatch.detect.engine import OVERFLOW_KEY
from driftwatch.sidecar.decode import Rejection, Rejections
from driftwatch.sidecar.dedup import Dedup
from driftwatch.sidecar.queue import Queue, StreamKey
from driftwatch.sidecar.settings import Limits
from driftwatch.sidecar.validate import (
    SLICE,
    ArrayBatch,
    Batch,
    ColumnBatch,
    Sample,
    SampleBatch,
    Steps,
    run_steps,
)
from driftwatch.sidecar.watermark import Watermarks


@dataclass(slots=True)
class _Collected:
    """One stream's samples admitted from one general batch, queued together at its end."""

    values: list[float | str]
    ts: list[float]


class KeyCap:
    """The first ``cap`` distinct keys, in order of arrival; any other key reads as OVERFLOW_KEY."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.keys: dict[str, None] = {}  # an insertion-ordered set, like the engine's

    def __len__(self) -> int:
        return len(self.keys)

    def fold(self, key: str) -> str:
        if key in self.keys:
            return key
        if len(self.keys) < self.cap:
            self.keys[key] = None
            return key
        return OVERFLOW_KEY

    def restore(self, keys: Iterable[str]) -> None:
        for k in keys:
            if len(self.keys) >= self.cap:
                break
            self.keys[str(k)] = None


class Admission:
    def __init__(self, limits: Limits, max_keys: int, queue: Queue) -> None:
        self.queue = queue
        self.keys = KeyCap(max_keys)
        self.dedup = Dedup(limits.dedup_window)
        self.watermarks = Watermarks(limits.allowed_lateness)

    def admit(self, batch: Batch, now: float) -> int:
        """Queue what passes; append this step's rejections to ``batch.rejected``. Raises QueueFull,
        admitting nothing, when the batch does not fit. Returns how many samples were queued."""
        return run_steps(self.admit_steps(batch, now))

    def admit_steps(self, batch: Batch, now: float) -> Steps[int]:
        """``admit`` in steps (a yield after every ``SLICE`` samples of a general batch). QueueFull is
        raised before the first step; the room is held from then on, so the batch is admitted whole."""
        self.queue.reserve(batch.count)
        if type(batch) is ArrayBatch:
            return self._arrays(batch, now)
        if type(batch) is ColumnBatch:
            return self._column(batch, now)
        assert type(batch) is SampleBatch
        return (yield from self._samples(batch, now))

    def admit_one(self, feature: str, value: float, now: float) -> bool:
        """One validated numeric sample without key, ts or id (the single-sample fast path); False,
        with nothing done, when the queue is full (the general path then answers 429)."""
        queue = self.queue
        if queue.depth >= queue.capacity:
            return False
        key = self.keys.fold("")
        newest = self.watermarks.newest
        if now > newest.get(key, 0.0):
            newest[key] = now
        queue.push_one((feature, key), value, now)
        return True

    # --- the three batch forms ------------------------------------------------------------------------

    def _samples(self, batch: SampleBatch, now: float) -> Steps[int]:
        """Per sample: dedup, fold, lateness. Lateness is judged against each key's watermark as it was
        before this batch, so samples of one batch are never late relative to each other. Between
        steps other requests may be admitted: this batch's room is held meanwhile (its ids are
        recorded at the end, so a copy of it sent concurrently is not recognised as a duplicate)."""
        rejected = batch.rejected
        newest = self.watermarks.newest
        dedup = self.dedup
        first_index: dict[str, int] = {}  # id -> index of its first sample in this batch
        maxts: dict[str, float] = {}
        groups: dict[StreamKey, _Collected] = {}
        n = 0
        samples = batch.samples
        held = len(samples) if len(samples) > SLICE else 0
        self.queue.hold(held)
        try:
            for start in range(0, len(samples), SLICE):
                if start:
                    yield
                n += self._slice(samples[start : start + SLICE], now, first_index, maxts, groups, rejected)
        finally:
            self.queue.hold(-held)
        for key, ts in maxts.items():
            if ts > newest.get(key, 0.0):
                newest[key] = ts
        for sid in first_index:
            dedup.add(sid)
        if n:
            for stream, g in groups.items():
                if set(map(type, g.values)) == {float}:
                    # a numeric stream's values as arrays now: the body's float objects are freed with
                    # the request instead of living on in the queue until the engine applies the chunk
                    # -- interleaved with the streams' long-lived objects created meanwhile, they left
                    # the small-object allocator's arenas pinned (~3 MB per 1,000 streams filled)
                    self.queue.add(stream, np.array(g.values, np.float64), np.array(g.ts, np.float64))
                else:
                    self.queue.add(stream, g.values, g.ts)
            self.queue.commit(n)
        return n

    def _slice(
        self,
        samples: list[Sample],
        now: float,
        first_index: dict[str, int],
        maxts: dict[str, float],
        groups: dict[StreamKey, _Collected],
        rejected: Rejections,
    ) -> int:
        fold = self.keys.fold
        newest = self.watermarks.newest
        allowed = self.watermarks.allowed
        dedup = self.dedup
        n = 0
        for s in samples:
            sid = s.id
            if sid is not None:
                first = first_index.get(sid)
                if first is None:
                    if dedup.seen(sid):
                        rejected.append(_duplicate(s.index, sid))
                        continue
                    first_index[sid] = s.index
                elif first != s.index:  # a wide object's values share its index and its id
                    rejected.append(_duplicate(s.index, sid))
                    continue
            key = fold(s.key)
            ts = s.ts
            if ts is None:
                ts = now
            elif allowed is not None and key in newest and ts < newest[key] - allowed:
                rejected.append(_late(s.index, f"ts: late by {newest[key] - allowed - ts:.3f}s", allowed))
                continue
            if ts > maxts.get(key, 0.0):
                maxts[key] = ts
            g = groups.get((s.feature, key))
            if g is None:
                g = groups[(s.feature, key)] = _Collected([], [])
            g.values.append(s.value)
            g.ts.append(ts)
            n += 1
        return n

    def _arrays(self, batch: ArrayBatch, now: float) -> int:
        """Every column stamped ``now``: columns of one length (a wide batch's, one per feature) share
        one array of times -- nothing downstream writes into it -- instead of one ``np.full`` each."""
        key = self.keys.fold("")
        if now > self.watermarks.newest.get(key, 0.0):
            self.watermarks.newest[key] = now
        n = 0
        stamps: dict[int, np.ndarray] = {}
        add = self.queue.add
        for f, arr in batch.columns.items():
            m = len(arr)
            ts = stamps.get(m)
            if ts is None:
                ts = stamps[m] = np.full(m, now)
            add((f, key), arr, ts)
            n += m
        self.queue.commit(n)
        return n

    def _column(self, col: ColumnBatch, now: float) -> int:
        """The same rules as ``_samples``, vectorised; the id covers the whole batch. Rejections use
        positions in the body's ``values``."""
        n = col.count
        if not n:
            return 0
        if col.id is not None and self.dedup.seen(col.id):
            col.rejected.extend(_duplicate(i, col.id) for i in col.index.tolist())
            return 0
        key = self.keys.fold(col.key)
        newest = self.watermarks.newest
        allowed = self.watermarks.allowed
        values, ts = col.values, col.ts
        if ts is None:
            ts = np.full(n, now)
        elif allowed is not None and key in newest:
            late = ts < newest[key] - allowed
            if late.any():
                for i in np.flatnonzero(late).tolist():
                    j = int(col.index[i])
                    col.rejected.append(_late(j, f"ts[{j}]: late", allowed))
                keep = ~late
                ts = ts[keep]
                values = (
                    values[keep]
                    if isinstance(values, np.ndarray)
                    else [v for v, k in zip(values, keep.tolist(), strict=True) if k]
                )
                n = len(ts)
        if col.id is not None:
            self.dedup.add(col.id)
        if not n:
            return 0
        top = float(ts.max())
        if top > newest.get(key, 0.0):
            newest[key] = top
        self.queue.add((col.feature, key), values, ts)
        self.queue.commit(n)
        return n


def _duplicate(index: int, sid: str) -> Rejection:
    return {"index": index, "error": f"id: duplicate {sid!r}", "reason": "duplicate"}


def _late(index: int, what: str, allowed: float) -> Rejection:
    return {"index": index, "error": f"{what} (allowed lateness {allowed:g}s)", "reason": "late"}
