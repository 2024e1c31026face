"""Sample reservoirs for scans: bounded, time-indexed uniform samples of what the engine applied.

With ``spec.scan`` set, the engine worker hands every stream's applied values and timestamps to
``Reservoirs.add`` (on the engine thread, after ``Engine.update``); ``redis_sync`` drains the changed
reservoirs (``drain``, an engine-thread job) and writes them to Redis on its publish interval
(docs/redis-keys.md, "Sample reservoirs"). Per stream the pod keeps

* for every time bucket of ``reservoir.bucket`` seconds a uniform sample of at most ``reservoir.size``
  of the values whose timestamps fall in it, with the count of values seen, so a scan can pool the
  buckets of a window across pods in proportion to the traffic each saw;
* with ``reference: baseline`` or a fixed window, one pinned reservoir of at most
  ``reservoir.referenceSize`` values: the first ``baseline.window`` values of the stream (again after an
  adoption), the values of ``baseline``'s ``fromWindow`` / the fixed window, or the seeded values of
  ``fromConfigMap``.

Sampling is Li's Algorithm L: after a reservoir is full, the index of the next value to keep is drawn
directly, so a batch costs one random draw per *kept* value (about ``size * ln(n / size)`` over a bucket
of ``n`` values), not one per value. Memory in the pod is bounded: buckets that closed are dropped once
written, at most ``MAX_BUCKETS`` are held while Redis is away (the oldest go first, counted in
``dropped``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftwatch.vocab import reservoir_format as fmt
from driftwatch.vocab.spec import MonitorSpec

#: (feature, key)
StreamKey = tuple[str, str]
_NEVER = 1 << 62
#: time buckets held in memory per pod at most (all streams share a bucket): while Redis is away the
#: oldest are dropped beyond this
MAX_BUCKETS = 16


@dataclass(frozen=True)
class Pinned:
    """Which values go into the pinned reference reservoir: the first ``first`` of each stream
    (``refill``: again after an adoption), and/or those with timestamps in [start, end)."""

    first: int = 0
    start: float | None = None
    end: float | None = None
    refill: bool = False


@dataclass(frozen=True)
class Policy:
    size: int
    bucket: int
    reference_size: int
    #: seconds a bucket's keys live after their last write
    retention: int
    #: seconds a bucket stays open after its end for late samples (the sidecar's allowed lateness)
    lateness: float
    pinned: Pinned | None

    @classmethod
    def of(cls, spec: MonitorSpec, lateness: float | None) -> Policy | None:
        """The policy ``spec.scan`` asks for; None without ``spec.scan`` (then nothing is sampled)."""
        scan = spec.scan
        if scan is None:
            return None
        ref, base = scan.reference_window, spec.baseline
        pinned: Pinned | None = None
        if ref.kind == "window":
            pinned = Pinned(start=ref.start, end=ref.end)
        elif ref.kind == "baseline" and base.mode == "fromWindow":
            pinned = Pinned(start=base.start_ts, end=base.end_ts)
        elif ref.kind == "baseline" and base.mode == "learned":
            pinned = Pinned(first=base.window, refill=True)
        elif ref.kind == "baseline":  # fromConfigMap: the seeded values only
            pinned = Pinned()
        r = scan.reservoir
        return cls(r.size, r.bucket, r.reference_size, scan.retention, lateness or 0.0, pinned)


class Sample:
    """A uniform sample of at most ``size`` values of one stream (Algorithm L), with the count seen."""

    __slots__ = ("_next", "_rng", "_w", "categorical", "seen", "size", "values")

    def __init__(self, size: int, categorical: bool, rng: random.Random) -> None:
        self.size = size
        self.categorical = categorical
        self.values: Any = [] if categorical else np.empty(size, dtype=np.float32)
        self.seen = 0
        self._rng = rng
        self._w = 1.0
        #: index (counting every value seen) of the next value to keep; drawn once the sample is full
        self._next = _NEVER

    def add(self, values: Any) -> None:
        n, k, start = len(values), self.size, self.seen
        if not n:
            return
        pos = 0
        if start < k:  # filling
            pos = min(k - start, n)
            if self.categorical:
                self.values.extend(values[:pos])
            else:
                self.values[start : start + pos] = np.clip(values[:pos], -fmt.FLOAT_MAX, fmt.FLOAT_MAX)
            if start + pos == k:
                self._w = math.exp(math.log(self._u()) / k)
                self._next = k - 1 + self._skip()
        end = start + n
        rng, values_ = self._rng, self.values
        while self._next < end:
            v = values[self._next - start]
            values_[rng.randrange(k)] = v if self.categorical else min(max(v, -fmt.FLOAT_MAX), fmt.FLOAT_MAX)
            self._w *= math.exp(math.log(self._u()) / k)
            self._next += self._skip()
        self.seen = end

    def _u(self) -> float:
        return 1.0 - self._rng.random()  # (0, 1]: log() is defined

    def _skip(self) -> int:
        w = self._w
        if w >= 1.0:
            return 1
        return int(math.log(self._u()) / math.log1p(-w)) + 1

    def encode(self) -> bytes:
        kept = min(self.seen, self.size)
        if self.categorical:
            return fmt.header(fmt.CATEGORICAL, self.seen) + fmt.encode_categories(self.values[:kept])
        payload: bytes = self.values[:kept].astype(fmt.FLOAT_DTYPE, copy=False).tobytes()
        return fmt.header(fmt.NUMERIC, self.seen) + payload

    @classmethod
    def decode(cls, blob: bytes, size: int, rng: random.Random) -> Sample | None:
        """A stored reservoir back into memory (a restarted pod keeps its pinned reference)."""
        decoded = fmt.decode(blob)
        if decoded is None:
            return None
        kind, seen, stored = decoded
        values: Any = stored if kind == fmt.CATEGORICAL else np.asarray(stored, dtype=np.float64)
        s = cls(size, kind == fmt.CATEGORICAL, rng)
        kept = values[:size]
        s.add(kept)
        if seen > len(kept) and len(kept) == size:
            # go on as if every value seen had been offered: after n values Algorithm L's threshold W
            # is about size / n, and the next kept index is drawn from there
            s.seen, s._w = seen, size / seen
            s._next = seen - 1 + s._skip()
        return s

    @classmethod
    def merged(cls, a: Sample, b: Sample, rng: random.Random) -> Sample:
        """One uniform sample of everything ``a`` and ``b`` saw (disjoint values): each kept slot is
        taken from ``a`` with probability seen_a / (seen_a + seen_b), without replacement, and the
        result goes on as Algorithm L would after that many values."""
        size, seen = a.size, a.seen + b.seen
        out = cls(size, a.categorical, rng)
        pools = [list(a.values[: min(a.seen, a.size)]), list(b.values[: min(b.seen, b.size)])]
        for pool in pools:
            rng.shuffle(pool)
        room = min(size, len(pools[0]) + len(pools[1]))
        take_a = min(sum(rng.random() * seen < a.seen for _ in range(room)), len(pools[0]))
        take_b = min(room - take_a, len(pools[1]))
        take_a = room - take_b  # one pool short: the other fills the rest
        kept = pools[0][:take_a] + pools[1][:take_b]
        out.add(kept if a.categorical else np.asarray(kept, dtype=np.float64))
        if seen > len(kept):  # full (a pool that saw more than ``size`` kept ``size``): go on as L would
            out.seen, out._w = seen, size / seen
            out._next = seen - 1 + out._skip()
        return out


@dataclass
class Drained:
    """What one flush writes: per bucket start and for the pinned reference, field -> reservoir."""

    buckets: dict[int, dict[str, bytes]] = field(default_factory=dict)
    pinned: dict[str, bytes] = field(default_factory=dict)
    #: (bucket or None for pinned, stream) -> values seen when drained: ``written`` compares
    marks: dict[tuple[int | None, StreamKey], int] = field(default_factory=dict)
    #: buckets written and forgotten before that took values again (late or backfilled samples): what
    #: Redis holds for them must be merged in before writing, never overwritten (``merge_stored``)
    reopened: set[int] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not self.buckets and not self.pinned


class Reservoirs:
    """Every reservoir of one pod. ``add``, ``seed``, ``adopted``, ``drain`` and ``written`` run on the
    engine thread (they are called by the worker, or are its jobs), so no lock is needed."""

    def __init__(self, policy: Policy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng or random.Random()
        self.buckets: dict[int, dict[StreamKey, Sample]] = {}
        self.pinned: dict[StreamKey, Sample] = {}
        self._dirty: set[tuple[int | None, StreamKey]] = set()
        #: starts of buckets written and then forgotten (closed), within retention
        self._forgotten: set[int] = set()
        #: of those, the ones that took values again: merged with Redis' copy before the next write
        self._reopened: set[int] = set()
        #: values that could not be kept: too old for any bucket, or in a bucket evicted unwritten
        self.dropped = 0

    # --- the engine worker feeds -----------------------------------------------------------------------

    def add(self, feature: str, key: str, values: Any, ts: np.ndarray, now: float | None = None) -> None:
        """Values the engine just applied (a float64 array or a list of str) and their timestamps."""
        n = len(values)
        if not n:
            return
        stream = (feature, key)
        categorical = isinstance(values, list)
        width = self.policy.bucket
        lo, hi = float(ts.min()), float(ts.max())
        oldest = fmt.bucket_start((now or time.time()) - self.policy.retention, width)
        if fmt.bucket_start(lo, width) == fmt.bucket_start(hi, width):
            self._into(fmt.bucket_start(lo, width), stream, values, categorical, oldest)
        else:
            starts = (ts // width).astype(np.int64) * width
            order = np.argsort(starts, kind="stable")
            sorted_starts = starts[order]
            cuts = np.flatnonzero(np.diff(sorted_starts)) + 1
            for idx in np.split(order, cuts):
                part = [values[i] for i in idx] if categorical else values[idx]
                self._into(int(starts[idx[0]]), stream, part, categorical, oldest)
        if self.policy.pinned is not None:
            self._pin(stream, values, ts, categorical)

    def seed(self, feature: str, key: str, values: Any) -> None:
        """Values a baseline was seeded with (``fromConfigMap``): the pinned reference when it is the
        baseline."""
        if self.policy.pinned is None:
            return
        stream = (feature, key)
        items = list(values)
        categorical = any(isinstance(v, str) for v in items)
        if categorical:
            values = [str(v) for v in items]
        else:
            values = np.asarray(items, dtype=np.float64)
            values = values[np.isfinite(values)]
        self._pinned_sample(stream, categorical).add(values)
        self._dirty.add((None, stream))

    def adopted(self, feature: str, key: str) -> None:
        """The stream's drifted regime became its baseline: the pinned baseline sample starts over."""
        pinned = self.policy.pinned
        if pinned is not None and pinned.refill and (feature, key) in self.pinned:
            del self.pinned[(feature, key)]

    def _into(self, start: int, stream: StreamKey, values: Any, categorical: bool, oldest: int) -> None:
        if start < oldest:
            self.dropped += len(values)
            return
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = {}
            if start in self._forgotten:
                self._reopened.add(start)
            self._evict()
        sample = bucket.get(stream)
        if sample is None or sample.categorical != categorical:
            sample = bucket[stream] = Sample(self.policy.size, categorical, self.rng)
        sample.add(values)
        self._dirty.add((start, stream))

    def _evict(self) -> None:
        while len(self.buckets) > MAX_BUCKETS:
            start = min(self.buckets)
            for stream, sample in self.buckets.pop(start).items():
                if (start, stream) in self._dirty:
                    self._dirty.discard((start, stream))
                    self.dropped += sample.seen

    def _pin(self, stream: StreamKey, values: Any, ts: np.ndarray, categorical: bool) -> None:
        pinned = self.policy.pinned
        assert pinned is not None
        sample = self.pinned.get(stream)
        if pinned.first:
            room = pinned.first - (sample.seen if sample is not None else 0)
            if room <= 0:
                return
            values = values[:room]
        elif pinned.start is not None and pinned.end is not None:
            inside = (ts >= pinned.start) & (ts < pinned.end)
            if not inside.any():
                return
            values = (
                [v for v, keep in zip(values, inside, strict=True) if keep] if categorical else values[inside]
            )
        else:
            return  # fromConfigMap: only ``seed`` fills it
        self._pinned_sample(stream, categorical).add(values)
        self._dirty.add((None, stream))

    def _pinned_sample(self, stream: StreamKey, categorical: bool) -> Sample:
        sample = self.pinned.get(stream)
        if sample is None or sample.categorical != categorical:
            sample = self.pinned[stream] = Sample(self.policy.reference_size, categorical, self.rng)
        return sample

    # --- redis_sync drains -----------------------------------------------------------------------------

    def drain(self) -> Drained:
        """Every reservoir changed since it was last written, encoded."""
        out = Drained()
        for start, stream in self._dirty:
            sample = self.pinned.get(stream) if start is None else self.buckets.get(start, {}).get(stream)
            if sample is None:
                continue
            name = fmt.stream_field(*stream)
            if start is None:
                out.pinned[name] = sample.encode()
            else:
                out.buckets.setdefault(start, {})[name] = sample.encode()
            out.marks[(start, stream)] = sample.seen
        out.reopened = self._reopened & set(out.buckets)
        return out

    def merge_stored(self, drained: Drained, stored: Mapping[int, Mapping[bytes, bytes]]) -> Drained:
        """Merge what Redis holds for reopened buckets (``stored``: start -> field -> reservoir) into
        the samples in memory, which then stand for the whole bucket again, and drain anew."""
        for start, fields in stored.items():
            bucket = self.buckets.get(start)
            if bucket is None:
                continue
            for name, blob in fields.items():
                stream = fmt.parse_stream_field(name)
                mine = bucket.get(stream) if stream is not None else None
                if stream is None or mine is None:
                    continue  # a stream that took no late values: its stored reservoir stays as it is
                old = Sample.decode(blob, self.policy.size, self.rng)
                if old is not None and old.categorical == mine.categorical:
                    bucket[stream] = Sample.merged(old, mine, self.rng)
            self._reopened.discard(start)
        return self.drain()

    def written(self, drained: Drained, now: float | None = None) -> None:
        """``drained`` is in Redis: what has not changed since is clean, and closed buckets with nothing
        left to write are forgotten."""
        for (start, stream), seen in drained.marks.items():
            sample = self.pinned.get(stream) if start is None else self.buckets.get(start, {}).get(stream)
            if sample is not None and sample.seen == seen:
                self._dirty.discard((start, stream))
        now = now or time.time()
        closed_before = now - self.policy.bucket - self.policy.lateness
        dirty_buckets = {start for start, _ in self._dirty}
        for start in [s for s in self.buckets if s < closed_before and s not in dirty_buckets]:
            del self.buckets[start]
            self._forgotten.add(start)
        oldest = fmt.bucket_start(now - self.policy.retention, self.policy.bucket)
        self._forgotten = {s for s in self._forgotten if s >= oldest}  # bounded by retention / bucket

    def restore_pinned(self, fields: Mapping[bytes, bytes]) -> int:
        """A restarted pod's pinned reference, read back (only streams not sampled since start)."""
        restored = 0
        for name, blob in fields.items():
            stream = fmt.parse_stream_field(name)
            if stream is None or stream in self.pinned:
                continue
            sample = Sample.decode(blob, self.policy.reference_size, self.rng)
            if sample is not None:
                self.pinned[stream] = sample
                restored += 1
        return restored

    def streams(self) -> Iterable[StreamKey]:
        return {s for bucket in self.buckets.values() for s in bucket} | set(self.pinned)
