"""``Engine``: every (key, feature) stream of one DriftMonitor, as ``docs/contracts.md`` section 2 says.

The engine validates and routes batches, caps the number of keys, infers feature types, picks the
monitor class from ``spec.preset`` (see ``registry``) and turns monitor Transitions into DriftEvents
with deterministic ids. It holds no clock and does no I/O: timestamps and indices come from the caller.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import DriftEvent, InputError, State, StreamMonitor, Transition, event_id, severity_of
from .registry import make_monitor, monitor_class

if TYPE_CHECKING:
    from driftwatch.vocab.spec import MonitorSpec

#: the key that streams beyond ``spec.keys.max_keys`` are folded into (data is never dropped)
OVERFLOW_KEY = "__overflow__"
_INDEX_MEMORY = 8192  # caller indices remembered per stream, to report onsets in earlier batches


@dataclass
class StreamStatus:
    feature: str
    key: str
    type: str
    state: str
    score: float
    severity: str
    detector: str
    since: int | None
    samples: int
    rejected: int
    baseline: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)
    #: where the baseline came from: learned | fromWindow | fromConfigMap | seeded (seed_baseline in
    #: another mode); ``note`` says what happened to it in words (fallbacks, waiting, rejections)
    baseline_source: str = "learned"
    note: str = ""
    #: rejections by reason (the engine's own; non-finite values are in ``rejected`` only)
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    #: index of the last DRIFT_END that adopted a drifted regime as the baseline (None: never)
    adopted_at: int | None = None
    #: while Drifting: a mergeable summary of every sample since the drift's onset (the evidence of
    #: what the stream is now, not diluted by the window's pre-change samples); None otherwise
    since_onset: dict[str, Any] | None = None
    #: True when a local level follows the stream (its baseline is no fixed reference); None otherwise
    follows_level: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: rejection reasons counted by the engine itself (StreamStatus.rejected_reasons)
NO_TS = "no timestamp (baseline.mode fromWindow needs ts until the window has ended)"
NONFINITE_TS = "non-finite timestamp (baseline.mode fromWindow)"
NONFINITE_VALUE = "NaN, inf or |x| > 1e150 in the baseline window"


#: the fromWindow values and rejection counts of every stream that has none of its own, shared (~200
#: bytes a stream): never written -- ``_Stream.reject`` and ``Engine._window`` give a stream its own
#: before writing (``_Stream.own_window``); the window's counts are a frozen record (``WindowCounts``)
_NO_VALUES: list[Any] = []


@dataclass(slots=True, frozen=True)
class WindowCounts:
    """A ``fromWindow`` stream's values so far: kept in the window (at most ``baseline.window``),
    before its start (ignored), in it beyond the cap (not used). Checkpointed as a list of the three.
    Frozen: a batch replaces the record, so every stream can start from one shared empty one."""

    inside: int = 0
    before: int = 0
    beyond: int = 0

    def to_list(self) -> list[int]:
        return [self.inside, self.before, self.beyond]


_NO_WIN_COUNTS = WindowCounts()
_NO_REASONS: dict[str, int] = {}


class _Stream:
    __slots__ = (
        "adopted_at",
        "collected",
        "feature",
        "key",
        "kind",
        "monitor",
        "note",
        "position",
        "reasons",
        "recent",
        "since",
        "source",
        "waiting",
        "win_counts",
    )

    def __init__(self, feature: str, key: str, kind: str, monitor: StreamMonitor) -> None:
        self.feature = feature
        self.key = key
        self.kind = kind
        self.monitor = monitor
        self.position = 0  # values passed in so far (accepted + rejected)
        self.since: int | None = None  # index of the last transition
        self.adopted_at: int | None = None  # index of the last adoption (DRIFT_END reason adopted)
        # (start position, caller index array); created on the first batch with indices (an empty
        # deque is ~760 bytes, and the sidecar never passes indices)
        self.recent: deque[tuple[int, np.ndarray]] | None = None
        self.source = "learned"
        self.note = ""
        self.reasons = _NO_REASONS  # shared until the first rejection (reject)
        self.waiting = False  # fromWindow: the window has not ended yet (nothing is scored)
        # fromWindow: the values in [start, end) so far (<= window), shared empty until the window is
        # collected (own_window); their counts (WindowCounts), a shared empty record until then
        self.collected = _NO_VALUES
        self.win_counts = _NO_WIN_COUNTS

    def own_window(self) -> None:
        if self.collected is _NO_VALUES:
            self.collected = []

    def reject(self, reason: str, n: int) -> None:
        if n:
            if self.reasons is _NO_REASONS:
                self.reasons = {}
            self.reasons[reason] = self.reasons.get(reason, 0) + int(n)


def _infer_kind(values: Any) -> str:
    arr = values if isinstance(values, np.ndarray) else None
    if arr is not None and arr.dtype.kind in "iuf":
        return "numeric"
    if arr is not None and arr.dtype.kind in "bUS":
        return "categorical"
    seq = values.tolist() if arr is not None else list(values)
    if all(v is None or (isinstance(v, Real) and not isinstance(v, bool)) for v in seq):
        return "numeric"
    return "categorical"


def _as_numeric(feature: str, values: Any) -> np.ndarray:
    """float64 array; str (or other non-numbers) raise InputError naming the feature, None -> NaN."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "iuf":
            return values.astype(np.float64, copy=False).ravel()
        if values.dtype.kind in "US":
            raise InputError(feature, f"numeric feature got strings (e.g. {values.flat[0]!r})")
        if values.dtype.kind == "b":
            raise InputError(feature, "numeric feature got booleans")
        values = values.tolist()
    seq = list(values)
    for i, v in enumerate(seq):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, Real):
            raise InputError(feature, f"numeric feature got {type(v).__name__} {v!r} at position {i}")
    return np.array([np.nan if v is None else float(v) for v in seq], dtype=np.float64)


def _as_categorical(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "US":
        return values.astype(str).ravel()
    seq = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return np.array(
        [("" if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for v in seq], dtype=object
    )


class Engine:
    """All streams of one monitor.

    >>> from driftwatch.vocab.spec import MonitorSpec
    >>> rng = np.random.default_rng(0)
    >>> spec = MonitorSpec.parse({"sensitivity": {"falseAlarmsPer": 1_000_000}})
    >>> eng = Engine(spec, name="payments")
    >>> eng.update("latency_ms", rng.lognormal(3, 0.5, 5000))
    []
    >>> [e.type for e in eng.update("latency_ms", rng.lognormal(4, 0.5, 500))]
    ['DRIFT_START']
    >>> eng.streams()[0].state
    'Drifting'
    """

    def __init__(self, spec: MonitorSpec, name: str = "") -> None:
        self.spec = spec
        self.name = name
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._keys: dict[str, None] = {}  # insertion-ordered set of keys admitted under the cap
        self._kinds: dict[str, str] = {}  # feature -> numeric | categorical, fixed on first sight
        self.overflowed = 0  # values folded into OVERFLOW_KEY
        #: streams a checkpoint held that could not be read (they learn again): feature/key
        self.unreadable: list[str] = []

    # -- ingest ---------------------------------------------------------------------------------------

    def _key(self, key: str, n: int) -> str:
        if key in self._keys:
            return key
        if len(self._keys) < self.spec.keys.max_keys:
            self._keys[key] = None
            return key
        self.overflowed += n
        return OVERFLOW_KEY

    def _stream(self, feature: str, key: str, kind: str) -> _Stream:
        st = self._streams.get((key, feature))
        if st is None:
            # one copy of each name, not one per stream (every request decodes its own strings)
            feature, key = sys.intern(feature), sys.intern(key)
            st = _Stream(feature, key, kind, make_monitor(self.spec, self.spec.feature(feature), kind))
            b = self.spec.baseline
            if b.mode == "fromWindow":
                st.source, st.waiting = "fromWindow", True
                st.note = f"waiting for the baseline window [{b.start}, {b.end})"
            elif b.mode == "fromConfigMap":
                # seed_baseline (called by the sidecar at start) replaces this; a stream that gets
                # samples first had no entry in the ConfigMap
                data_key = repr(feature) if not key else f"{feature!r} or {feature + '.' + key!r}"
                st.note = (
                    f"no baseline for this stream in ConfigMap {b.config_map!r} (data key {data_key}): "
                    "learned from the stream"
                )
            self._streams[(key, feature)] = st
        return st

    def _kind_and_values(self, feature: str, values: Any) -> tuple[str, np.ndarray]:
        kind = self._kinds.get(feature)  # one type per feature, across keys
        if kind is None:
            fspec = self.spec.feature(feature)
            kind = fspec.type if fspec is not None and fspec.type != "auto" else _infer_kind(values)
        arr = _as_numeric(feature, values) if kind == "numeric" else _as_categorical(values)
        return kind, arr

    def seed_baseline(self, feature: str, values: Sequence[Any] | np.ndarray, key: str = "") -> None:
        """Fit the baseline of one (feature, key) stream from explicit reference samples (raw values,
        as ``update`` takes them), without scoring them: ``baseline.mode: fromConfigMap`` (the sidecar
        calls it at start with ``baseline_data.parse_baseline_data`` of the mounted ConfigMap), or any
        mode. With >= ``minSamples`` usable values the stream is Stable at once and its baseline fixed;
        with fewer they start a learned baseline. Must come before the stream's first ``update``
        (InputError otherwise); non-finite values are counted in ``rejected``."""
        if not self.spec.accepts(feature):
            raise InputError(feature, "not declared in spec.features")
        if len(values) == 0:
            return
        kind, arr = self._kind_and_values(feature, values)
        self._kinds[feature] = kind
        st = self._stream(feature, self._key(key, 0), kind)
        if st.monitor.state != State.INITIALIZING:
            raise InputError(feature, "baseline already fitted: seed_baseline must come before update")
        st.waiting, st.collected = False, _NO_VALUES
        st.source = "fromConfigMap" if self.spec.baseline.mode == "fromConfigMap" else "seeded"
        self._seed(st, arr, f"{len(arr)} reference values supplied")

    def _seed(self, st: _Stream, arr: np.ndarray, what: str) -> None:
        m = st.monitor
        before = int(m.rejected)
        m.seed(arr)
        bad = int(m.rejected) - before
        usable = len(arr) - bad
        if m.state == State.INITIALIZING:
            st.note = (
                f"{what} ({usable} usable), fewer than minSamples "
                f"({self.spec.baseline.min_samples}): learning the rest of the baseline from the stream"
            )
        else:
            st.note = f"{what}: baseline fitted from {usable} values"

    def _window(self, st: _Stream, arr: np.ndarray, tss: np.ndarray | None) -> int:
        """fromWindow, before the window has ended: collect values in [start, end); return the batch
        position of the first sample at or after ``end`` (the first one scored), or the batch size."""
        n = len(arr)
        st.own_window()
        if tss is None:
            st.reject(NO_TS, n)
            return n
        b = self.spec.baseline
        start, end = b.start_ts, b.end_ts
        # fromWindow: the spec requires both (BaselineSpec.parse)
        assert start is not None
        assert end is not None
        after = tss >= end
        j = int(np.argmax(after)) if after.any() else n
        t = tss[:j]
        st.reject(NONFINITE_TS, int(np.count_nonzero(~np.isfinite(t))))
        inside = (t >= start) & (t < end)
        before = int(np.count_nonzero(t < start))
        vals = arr[:j][inside]
        if st.kind == "numeric":  # kept out of the (JSON) checkpoint; the monitor would reject them too
            ok = np.isfinite(vals) & (np.abs(vals) <= 1e150)
            if not ok.all():
                st.reject(NONFINITE_VALUE, int(vals.size - np.count_nonzero(ok)))
                vals = vals[ok]
        c = st.win_counts
        keep = vals[: max(0, b.window - c.inside)]
        if len(keep):
            st.collected.append(keep)
        used = len(keep)
        st.win_counts = WindowCounts(c.inside + used, c.before + before, c.beyond + len(vals) - used)
        if j < n:
            st.waiting = False
            got = np.concatenate(st.collected) if st.collected else arr[:0]
            st.collected = _NO_VALUES
            self._seed(st, got, f"fromWindow [{b.start}, {b.end}): {len(got)} values in the window")
            if st.win_counts.beyond:
                st.note += (
                    f" (the first {b.window}; {st.win_counts.beyond} later ones in the window not used)"
                )
        return j

    def update(
        self,
        feature: str,
        values: Sequence[Any] | np.ndarray,
        key: str = "",
        index: np.ndarray | Sequence[int] | None = None,
        ts: np.ndarray | Sequence[float] | None = None,
    ) -> list[DriftEvent]:
        """Feed one batch of one feature (of one key). Returns the DriftEvents it produced, in order."""
        if not self.spec.accepts(feature):
            raise InputError(feature, "not declared in spec.features")
        n = len(values)
        idx = None if index is None else np.asarray(index, dtype=np.int64).ravel()
        tss = None if ts is None else np.asarray(ts, dtype=np.float64).ravel()
        if idx is not None and idx.size != n:
            raise InputError(feature, f"index has {idx.size} entries for {n} values")
        if tss is not None and tss.size != n:
            raise InputError(feature, f"ts has {tss.size} entries for {n} values")
        if n == 0:
            return []
        # validate and convert before creating anything: a bad batch leaves no trace
        kind, arr = self._kind_and_values(feature, values)
        self._kinds[feature] = kind
        st = self._stream(feature, self._key(key, n), kind)
        j = self._window(st, arr, tss) if st.waiting else 0
        transitions = (
            st.monitor.update(arr[j:] if j else arr, None if tss is None else tss[j:]) if j < n else []
        )
        if j:
            for t in transitions:  # positions in the batch as passed in
                t.position += j
                if t.onset_position is not None:
                    t.onset_position += j
        events = [self._event(st, t, n, idx, tss) for t in transitions]
        if idx is not None:
            if st.recent is None:
                st.recent = deque()
            st.recent.append((st.position, idx))
            while sum(a.size for _, a in st.recent) > _INDEX_MEMORY and len(st.recent) > 1:
                st.recent.popleft()
        st.position += n
        return events

    def _index_at(self, st: _Stream, pos: int, idx: np.ndarray | None) -> int:
        """Caller index of batch position ``pos`` (negative: an earlier batch)."""
        if idx is None:
            return st.position + pos
        if pos >= 0:
            return int(idx[pos])
        absolute = st.position + pos
        for start, arr in reversed(st.recent or ()):
            if start <= absolute < start + arr.size:
                return int(arr[absolute - start])
        return int(idx[0]) + pos  # beyond memory: assume contiguous indices

    def _event(
        self, st: _Stream, t: Transition, n: int, idx: np.ndarray | None, tss: np.ndarray | None
    ) -> DriftEvent:
        pos = min(max(t.position, 0), n - 1)
        index = self._index_at(st, pos, idx)
        onset = None if t.onset_position is None else self._index_at(st, t.onset_position, idx)
        st.since = index
        if t.evidence.get("reason") == "adopted":
            st.adopted_at = index
        spec = self.spec.sensitivity
        return DriftEvent(
            id=event_id(self.name, st.feature, st.key, t.type.value, index),
            type=t.type.value,
            feature=st.feature,
            key=st.key,
            index=index,
            timestamp=None if tss is None else float(tss[pos]),
            detector=t.detector,
            score=float(t.score),
            severity=severity_of(t.score, spec.warning, spec.critical),
            onset=onset,
            evidence=t.evidence,
        )

    # -- views ----------------------------------------------------------------------------------------

    def streams(self) -> list[StreamStatus]:
        return list(self.iter_streams())

    def iter_streams(self) -> Iterator[StreamStatus]:
        """Every stream's status, built one at a time: a reader that keeps only what it needs of each
        (the sidecar's metric rows, its status JSON) never holds all of them at once -- with 1,000
        streams their summaries are ~10 MB, which the allocator keeps once it has held them."""
        spec = self.spec.sensitivity
        for st in self._streams.values():
            m = st.monitor
            score = float(m.score)
            yield (
                StreamStatus(
                    feature=st.feature,
                    key=st.key,
                    type=st.kind,
                    state=State(m.state).value,
                    score=score,
                    severity=severity_of(score, spec.warning, spec.critical),
                    detector=m.detector,
                    since=st.since,
                    samples=int(m.samples),
                    rejected=int(m.rejected) + sum(st.reasons.values()),
                    baseline=m.baseline_summary(),
                    current=m.current_summary(),
                    baseline_source=st.source,
                    note=self._note(st),
                    rejected_reasons=dict(st.reasons),
                    adopted_at=st.adopted_at,
                    since_onset=m.since_onset_summary(),
                    follows_level=True if m.follows_level else None,
                )
            )

    def band(
        self, feature: str, key: str, n: int, ts: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The raw range the stream's baseline calls normal for ``n`` samples (at ``ts``), or None (no
        such numeric stream, or its baseline is not fitted yet): for plots."""
        st = self._streams.get((key, feature))
        return None if st is None else st.monitor.band(n, ts)

    def score(self, feature: str, key: str = "") -> float:
        """The stream's current drift score (0 for a stream not seen yet), without building its status."""
        st = self._streams.get((key, feature))
        return 0.0 if st is None else float(st.monitor.score)

    def adopt(self, feature: str | None = None, key: str | None = None) -> list[tuple[str, str]]:
        """Make the current regime the baseline of every Drifting stream (of ``feature`` / ``key`` when
        given): the engine call behind ``driftwatch ack --adopt``. Returns the (feature, key) pairs
        adopted; streams whose monitor has no adoption (the compatibility presets) are left as they are.
        """
        done = []
        for st in self._streams.values():
            if (feature is not None and st.feature != feature) or (key is not None and st.key != key):
                continue
            if st.monitor.state != State.DRIFTING or not st.monitor.can_adopt:
                continue
            st.monitor.adopt()
            st.adopted_at = st.position
            done.append((st.feature, st.key))
        return done

    def forget(self, feature: str, key: str = "") -> bool:
        """Drop one stream's state (its key stays admitted): its next samples start it afresh. For a
        caller whose updates of that stream keep raising on its state (e.g. restored from a damaged
        checkpoint). False when there is no such stream."""
        return self._streams.pop((key, feature), None) is not None

    def _note(self, st: _Stream) -> str:
        if not st.waiting:
            return st.note
        c = st.win_counts
        return f"{st.note}: {c.inside} values in it so far, {c.before} earlier ones ignored"

    def summary(self, streams: bool = True) -> dict[str, Any]:
        """The mergeable per-pod summary (contracts.md section 2), JSON-safe. ``streams=False``: without
        its ``streams`` list, for a caller that writes them one by one from ``iter_summaries``."""
        doc: dict[str, Any] = {"version": 1}
        if streams:
            doc["streams"] = list(self.iter_summaries())
        return doc

    def iter_summaries(self) -> Iterator[dict[str, Any]]:
        """The summary's stream entries, built one at a time (see ``iter_streams``)."""
        for s in self.iter_streams():
            d = s.to_dict()
            for opt in ("adopted_at", "since_onset", "follows_level"):  # only where set (contracts.md)
                if d[opt] is None:
                    del d[opt]
            for k in ("rejected", "baseline_source", "note", "rejected_reasons"):
                del d[k]
            yield d

    # -- checkpoints ----------------------------------------------------------------------------------

    def to_dict(self, streams: bool = True) -> dict[str, Any]:
        """The checkpoint, JSON-safe. ``streams=False``: without its ``streams`` list, for a caller that
        serialises them one by one from ``iter_stream_dicts`` (never all of them at once in memory)."""
        doc: dict[str, Any] = {
            "version": 1,
            "name": self.name,
            "keys": list(self._keys),
            "overflowed": self.overflowed,
        }
        if streams:
            doc["streams"] = list(self.iter_stream_dicts())
        return doc

    def iter_stream_dicts(self) -> Iterator[dict[str, Any]]:
        """The checkpoint's stream entries, built one at a time."""
        for st in self._streams.values():
            yield {
                "feature": st.feature,
                "key": st.key,
                "kind": st.kind,
                "position": st.position,
                "since": st.since,
                "adopted_at": st.adopted_at,
                "monitor": type(st.monitor).__name__,
                "state": st.monitor.to_dict(),
                "baseline": {
                    "source": st.source,
                    "note": st.note,
                    "reasons": dict(st.reasons),
                    "waiting": st.waiting,
                    "counts": st.win_counts.to_list(),
                    "collected": [v for a in st.collected for v in a.tolist()],
                },
            }

    @classmethod
    def from_dict(cls, d: dict[str, Any], spec: MonitorSpec, name: str | None = None) -> Engine:
        eng = cls(spec, name=d.get("name", "") if name is None else name)
        eng._keys = dict.fromkeys(d.get("keys", []))
        eng.overflowed = int(d.get("overflowed", 0))
        for s in d.get("streams", []):
            try:
                mon = monitor_class(s["monitor"]).from_dict(s["state"])
            except (KeyError, ValueError, TypeError, IndexError):
                # a stream this version cannot read (an older checkpoint format, a damaged entry) starts
                # over and learns its baseline again; the others are restored
                eng.unreadable.append(f"{s.get('feature', '?')}/{s.get('key', '')}")
                continue
            st = _Stream(s["feature"], s["key"], s["kind"], mon)
            st.position = int(s["position"])
            st.since = s["since"]
            st.adopted_at = s.get("adopted_at")
            b = s.get("baseline")
            if b is not None:
                st.source, st.note, st.waiting = b["source"], b["note"], bool(b["waiting"])
                st.reasons = {str(k): int(v) for k, v in b["reasons"].items()}
                st.win_counts = WindowCounts(*(int(v) for v in b["counts"]))
                if b["collected"]:
                    vals = b["collected"]
                    st.collected = [
                        np.asarray(vals, np.float64) if st.kind == "numeric" else np.array(vals, dtype=object)
                    ]
            eng._streams[(st.key, st.feature)] = st
            eng._kinds[st.feature] = st.kind
        return eng
