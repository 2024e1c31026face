"""OTLP metrics to samples: the pure mapping of ``POST /v1/metrics`` (no I/O, no clock).

Each configured metric (``spec.ingest.otlp.metrics``) feeds one feature; its data points become
samples keyed by the ``keyAttribute`` attribute of the data point (else of the resource; absent: key
``""``). Per export and key:

* gauge -- each data point's value;
* monotonic sum (Counter) -- the rate per second, like the scrape path's counters, summed over the
  key's series: a delta point's value over its interval; a cumulative point's increase since the
  series' previous point (the first only sets the reference; a restart -- a new start time or a value
  that went down -- counts the new value from zero);
* non-monotonic sum (UpDownCounter) -- the level: a cumulative point's value; delta points summed
  per series since the first one seen;
* explicit-bucket and exponential histograms -- the interval's observations, rebuilt from the bucket
  counts by ``buckets.py`` (the scrape path's reconstruction), at most ``maxSamples`` per key. A
  cumulative histogram's interval is the difference from the series' previous point.

A data point that cannot be used (NaN, buckets that do not match their bounds, a Summary, a key that
is not a scalar) is rejected with a message naming the metric and the field; the others go on.
State for cumulative series is kept per series (metric, resource and point attributes), at most
``MAX_SERIES`` of them (least recently seen dropped: its next point is a new reference), and changed
only by ``commit`` -- after the samples were admitted, so an export the queue refused (429) and the
exporter sends again is not lost to an already-moved reference.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from driftwatch.sidecar import buckets
from driftwatch.sidecar.validate import MAX_KEY_LEN, Steps
from driftwatch.vocab.limits import MAX_ABS
from driftwatch.vocab.spec import OtlpSpec

DELTA, CUMULATIVE = 1, 2  # opentelemetry.proto.metrics.v1.AggregationTemporality
NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
#: cumulative series remembered (each a few hundred bytes; a hostile client cannot grow it further)
MAX_SERIES = 10_000
#: an exponential histogram's buckets, reference and reading together, over at most this many indices
#: (the SDK's default is 160 buckets per sign): a wider span is refused, never allocated
MAX_EXP_SPAN = 1 << 14
MIN_SCALE, MAX_SCALE = -10, 20  # what the OTLP specification allows
#: data points mapped between two yields of ``convert`` (a few ms of the event loop)
POINTS_PER_STEP = 500
NS = 1e-9

SeriesId = tuple[str, bytes, bytes]
_NO_SERIES: SeriesId = ("", b"", b"")


@dataclass(slots=True)
class Problem:
    """A data point refused before validation: ``error`` names metric and field; ``reason`` is the
    ``driftwatch_samples_rejected_total`` label."""

    error: str
    reason: str


@dataclass(slots=True)
class Mapped:
    """One export's samples (``{"feature", "value", "key"?}``) and, per sample, the data points it came
    from (``origins[i]``: the location of the first and how many); the points refused outright; the
    cumulative state to ``commit`` once the samples are admitted."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    origins: list[tuple[str, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    points: int = 0
    pending: dict[SeriesId, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Exp:
    """One sign of an exponential histogram: counts from bucket index ``offset`` at ``scale``."""

    offset: int
    counts: np.ndarray


@dataclass(slots=True)
class _Acc:
    """What one (feature, key) collects over an export before it becomes samples."""

    where: str
    n: int = 0
    rate: float | None = None
    levels: list[float] = field(default_factory=list)
    points: list[float] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)


class OtlpConverter:
    """Decoded ``ExportMetricsServiceRequest`` -> samples, per the monitor's ``spec.ingest.otlp``."""

    def __init__(self, cfg: OtlpSpec, since_ns: int | None = None) -> None:
        #: the sidecar's start (epoch ns): a cumulative series that started after it is new, and its first
        #: reading is all interval (in a pod the sidecar starts before the app: nothing is lost)
        self.since_ns = since_ns
        self.features = dict(cfg.metrics)
        self.key_attribute = cfg.key_attribute
        self.max_samples = cfg.max_samples
        self.series: OrderedDict[SeriesId, Any] = OrderedDict()

    # --- the walk -------------------------------------------------------------------------------------

    def convert(self, request: Any) -> Mapped:
        """All at once (tests, small exports)."""
        steps = self.convert_steps(request)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result: Mapped = done.value
                return result

    def convert_steps(self, request: Any) -> Steps[Mapped]:
        """``convert`` in steps: a yield every ``POINTS_PER_STEP`` data points."""
        out = Mapped()
        acc: dict[tuple[str, str], _Acc] = {}
        budget = POINTS_PER_STEP
        for ri, rm in enumerate(request.resource_metrics):
            resource_key = _attributes_id(rm.resource.attributes)
            resource_key_value = self._key_from(rm.resource.attributes)
            for si, sm in enumerate(rm.scope_metrics):
                for mi, metric in enumerate(sm.metrics):
                    feature = self.features.get(metric.name)
                    if feature is None:
                        continue  # not a feature: apps export many metrics, only the listed ones count
                    where = (
                        f"metric {metric.name!r} (resource_metrics[{ri}].scope_metrics[{si}].metrics[{mi}])"
                    )
                    for n in self._metric(metric, feature, where, resource_key, resource_key_value, out, acc):
                        budget -= n
                        if budget <= 0:
                            budget = POINTS_PER_STEP
                            yield
        for (feature, key), a in acc.items():
            values = [a.rate] if a.rate is not None else []
            if a.levels:  # at most max_samples, evenly strided
                values += a.levels[:: -(-len(a.levels) // self.max_samples)]
            if a.counts:
                values += buckets.spread(a.points, a.counts, self.max_samples)
            for v in values:
                out.samples.append(
                    {"feature": feature, "value": v, "key": key} if key else {"feature": feature, "value": v}
                )
                out.origins.append((a.where, a.n))
        return out

    def commit(self, mapped: Mapped) -> None:
        """The export was admitted: its cumulative readings become the series' references."""
        series = self.series
        for sid, state in mapped.pending.items():
            series[sid] = state
            series.move_to_end(sid)
        while len(series) > MAX_SERIES:
            series.popitem(last=False)

    # --- one metric -----------------------------------------------------------------------------------

    def _metric(
        self,
        metric: Any,
        feature: str,
        where: str,
        resource_key: bytes,
        resource_key_value: str | Problem | None,
        out: Mapped,
        acc: dict[tuple[str, str], _Acc],
    ) -> Iterator[int]:
        kind = metric.WhichOneof("data")
        if kind is None:
            return
        if kind == "summary":
            n = len(metric.summary.data_points)
            out.points += n
            for i in range(n):
                out.problems.append(
                    Problem(
                        f"{where} summary.data_points[{i}]: a Summary cannot be mapped to samples "
                        "(export a histogram instead)",
                        "wrong_type",
                    )
                )
            yield n
            return
        data = getattr(metric, kind)
        temporality = getattr(data, "aggregation_temporality", 0)
        monotonic = kind == "sum" and data.is_monotonic
        if kind != "gauge" and temporality not in (DELTA, CUMULATIVE):
            n = len(data.data_points)
            out.points += n
            error = f"{where} {kind}.aggregation_temporality: must be DELTA or CUMULATIVE (its data points)"
            out.problems += [Problem(error, "invalid_shape") for _ in range(n)]
            yield n
            return
        # whether a point's meaning depends on its series' previous one (else no series id is needed)
        if kind == "gauge":
            stateful = False
        elif kind == "sum":  # rates; a delta UpDownCounter's running level
            stateful = monotonic or temporality == DELTA
        else:  # histograms: the difference from the previous reading
            stateful = temporality == CUMULATIVE
        for i, p in enumerate(data.data_points):
            out.points += 1
            if p.flags & NO_RECORDED_VALUE:
                continue
            at = f"{where} {kind}.data_points[{i}]"
            key = self._key_from(p.attributes)
            if key is None:
                key = resource_key_value
            if isinstance(key, Problem):
                out.problems.append(Problem(f"{at}.{key.error}", key.reason))
                continue
            key = key or ""
            sid = (metric.name, resource_key, _attributes_id(p.attributes)) if stateful else _NO_SERIES
            a = acc.get((feature, key))
            if a is None:
                a = acc[(feature, key)] = _Acc(at)
            if kind in ("gauge", "sum"):
                problem = self._number(p, at, sid, kind, temporality, monotonic, a, out)
            elif kind == "histogram":
                problem = self._histogram(p, at, sid, temporality, a, out)
            else:
                problem = self._exponential(p, at, sid, temporality, a, out)
            if problem is not None:
                out.problems.append(problem)
            else:
                a.n += 1
            yield 1

    def _new(self, start: int, t: int) -> bool:
        """A cumulative series that started after the sidecar did (and before this reading)."""
        return self.since_ns is not None and self.since_ns <= start < t

    def _prev(self, sid: SeriesId, out: Mapped) -> Any:
        return out.pending[sid] if sid in out.pending else self.series.get(sid)

    def _number(
        self,
        p: Any,
        at: str,
        sid: SeriesId,
        kind: str,
        temporality: int,
        monotonic: bool,
        a: _Acc,
        out: Mapped,
    ) -> Problem | None:
        which = p.WhichOneof("value")
        if which is None:
            return Problem(f"{at}: has no value (as_double or as_int)", "missing_field")
        v = float(getattr(p, which))
        if not -MAX_ABS <= v <= MAX_ABS:
            return Problem(f"{at}.{which}: must be finite and within ±1e150, got {v}", "not_finite")
        t, start = p.time_unix_nano, p.start_time_unix_nano
        if kind == "gauge" or (not monotonic and temporality == CUMULATIVE):
            a.levels.append(v)  # a level: one sample per point
            return None
        if not monotonic:  # a delta UpDownCounter: its level is the sum of its deltas
            level = (self._prev(sid, out) or 0.0) + v
            out.pending[sid] = level
            a.levels.append(level)
            return None
        if v < 0:
            return Problem(f"{at}.{which}: a monotonic sum cannot be negative, got {v}", "invalid_shape")
        prev = self._prev(sid, out)
        rate: float | None = None
        if temporality == DELTA:
            t0 = start if 0 < start < t else (prev if prev is not None and prev < t else None)
            out.pending[sid] = t
            if t0 is not None:
                rate = v / ((t - t0) * NS)
        else:
            out.pending[sid] = (start, t, v)
            if prev is None and self._new(start, t):
                rate = v / ((t - start) * NS)
            elif prev is not None:
                pstart, pt, pv = prev
                if t <= pt:
                    out.pending[sid] = prev  # the same reading again (a retried export): nothing new
                    return None
                if start != pstart or v < pv:  # restarted: count the new value from zero
                    rate = v / ((t - (start if pt < start < t else pt)) * NS)
                else:
                    rate = (v - pv) / ((t - pt) * NS)
        if rate is not None:
            a.rate = (a.rate or 0.0) + rate
        return None

    def _histogram(
        self, p: Any, at: str, sid: SeriesId, temporality: int, a: _Acc, out: Mapped
    ) -> Problem | None:
        bounds = list(p.explicit_bounds)
        counts = list(p.bucket_counts)
        if not counts:
            return None  # only count and sum: no distribution to rebuild
        if len(counts) != len(bounds) + 1:
            return Problem(
                f"{at}.bucket_counts: must have len(explicit_bounds) + 1 = {len(bounds) + 1} entries, "
                f"got {len(counts)}",
                "invalid_shape",
            )
        if not all(-MAX_ABS <= b <= MAX_ABS for b in bounds) or any(b >= c for b, c in pairwise(bounds)):
            return Problem(f"{at}.explicit_bounds: must be finite and strictly increasing", "invalid_shape")
        reading = (tuple(bounds), [float(c) for c in counts])
        interval = reading if temporality == DELTA else self._cumulative(p, sid, reading, out)
        if interval is None:
            return None
        layout, now = interval
        a.points += buckets.upper_bound_points([*layout, math.inf])
        a.counts += now
        return None

    def _cumulative(self, p: Any, sid: SeriesId, reading: Any, out: Mapped) -> Any:
        """A cumulative explicit histogram's counts for this interval: the difference from the series'
        previous reading; None for the first, a repeated one, or when the bucket layout changed (then
        this reading is the reference). A restart (new start time, or a count that went down) counts
        the reading from zero."""
        layout, counts = reading
        prev = self._prev(sid, out)
        out.pending[sid] = (p.start_time_unix_nano, p.time_unix_nano, layout, counts)
        if prev is None:
            return reading if self._new(p.start_time_unix_nano, p.time_unix_nano) else None
        pstart, pt, playout, pcounts = prev
        if p.time_unix_nano <= pt:
            out.pending[sid] = prev
            return None
        if playout != layout:
            return None
        restarted = p.start_time_unix_nano != pstart
        return layout, buckets.interval(None if restarted else pcounts, counts)

    def _exponential(
        self, p: Any, at: str, sid: SeriesId, temporality: int, a: _Acc, out: Mapped
    ) -> Problem | None:
        if not MIN_SCALE <= p.scale <= MAX_SCALE:
            return Problem(
                f"{at}.scale: must be between {MIN_SCALE} and {MAX_SCALE}, got {p.scale}", "invalid_shape"
            )
        sides = []
        for name in ("positive", "negative"):
            b = getattr(p, name)
            n = len(b.bucket_counts)
            if n > MAX_EXP_SPAN or abs(b.offset) > 2**31:
                return Problem(f"{at}.{name}.bucket_counts: at most {MAX_EXP_SPAN} buckets", "invalid_shape")
            sides.append(_Exp(int(b.offset), np.array(b.bucket_counts, dtype=np.float64)))
        pos, neg = sides
        zero = float(p.zero_count)
        scale = int(p.scale)
        if temporality == CUMULATIVE:
            prev = self._prev(sid, out)
            out.pending[sid] = (p.start_time_unix_nano, p.time_unix_nano, scale, zero, pos, neg)
            if prev is None and not self._new(p.start_time_unix_nano, p.time_unix_nano):
                return None  # the reference (a series that began after the sidecar: all interval)
            if prev is not None:
                pstart, pt, pscale, pzero, ppos, pneg = prev
                if p.time_unix_nano <= pt:
                    out.pending[sid] = prev
                    return None
                if p.start_time_unix_nano == pstart and pscale >= scale:
                    d_pos = _exp_minus(pos, _exp_rescale(ppos, pscale - scale))
                    d_neg = _exp_minus(neg, _exp_rescale(pneg, pscale - scale))
                    if d_pos is None or d_neg is None or zero < pzero:
                        pass  # a reset, or a span too wide to align: the reading counts from zero
                    else:
                        pos, neg, zero = d_pos, d_neg, zero - pzero
                elif p.start_time_unix_nano == pstart:
                    return None  # finer than before: only a restart does that; this is the new reference
        points: list[float] = []
        counts: list[float] = []
        for side, sign in ((pos, 1.0), (neg, -1.0)):
            nz = np.flatnonzero(side.counts)
            if len(nz):
                mids = buckets.exponential_points(scale, side.offset, len(side.counts))[nz]
                if not (np.abs(mids) <= MAX_ABS).all():
                    return Problem(f"{at}.scale/offset: buckets beyond ±1e150", "not_finite")
                points += (sign * mids).tolist()
                counts += side.counts[nz].tolist()
        if zero > 0:
            points.append(0.0)
            counts.append(zero)
        a.points += points
        a.counts += counts
        return None

    # --- keys -----------------------------------------------------------------------------------------

    def _key_from(self, attributes: Any) -> str | Problem | None:
        """The key attribute's value among ``attributes`` (None when absent), or why it is no key."""
        name = self.key_attribute
        if name is None:
            return ""
        for kv in attributes:
            if kv.key != name:
                continue
            v = kv.value
            which = v.WhichOneof("value")
            s: str
            if which == "string_value":
                s = str(v.string_value)
            elif which in ("int_value", "double_value"):
                s = str(getattr(v, which))
            elif which == "bool_value":
                s = "true" if v.bool_value else "false"
            else:
                return Problem(
                    f"attributes[{name!r}]: the key must be a string, number or boolean", "bad_key"
                )
            if len(s) > MAX_KEY_LEN or not s.isprintable():
                return Problem(
                    f"attributes[{name!r}]: the key must be at most {MAX_KEY_LEN} printable characters",
                    "bad_key",
                )
            return s
        return None


def _attributes_id(attributes: Any) -> bytes:
    """A series' identity from its attributes, whatever their order."""
    return b"\0".join(sorted(kv.SerializeToString(deterministic=True) for kv in attributes))


def _exp_rescale(side: _Exp, shift: int) -> _Exp:
    """Buckets at a scale ``shift`` finer, merged into the coarser scale (index >> shift)."""
    if shift == 0 or not len(side.counts):
        return side
    idx = np.arange(side.offset, side.offset + len(side.counts), dtype=np.int64) >> shift
    out = np.zeros(int(idx[-1] - idx[0]) + 1)
    np.add.at(out, idx - idx[0], side.counts)
    return _Exp(int(idx[0]), out)


def _exp_minus(now: _Exp, prev: _Exp) -> _Exp | None:
    """``now - prev`` bucket by bucket; None when a bucket went down (a reset) or the two spans
    together are wider than ``MAX_EXP_SPAN``."""
    if not len(prev.counts):
        return now
    if not len(now.counts):
        return None if prev.counts.any() else now
    lo = min(now.offset, prev.offset)
    hi = max(now.offset + len(now.counts), prev.offset + len(prev.counts))
    if hi - lo > MAX_EXP_SPAN:
        return None
    out = np.zeros(hi - lo)
    out[now.offset - lo : now.offset - lo + len(now.counts)] += now.counts
    out[prev.offset - lo : prev.offset - lo + len(prev.counts)] -= prev.counts
    if (out < 0).any():
        return None
    return _Exp(lo, out)
