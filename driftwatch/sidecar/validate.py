"""Per-sample validation against the spec: pure, no I/O, no clock (``now`` is passed in).

This is the hot path, so it is written as plain loops over dicts with ``type(x) is`` checks, and the
common shapes are validated as numpy arrays; every rejection names the field. The output is one of
three batch records (``Batch``), which admission (``admission.py``) turns into queued groups:

* ``SampleBatch`` -- the general form: one ``Sample`` per accepted value (any shape, any field);
* ``ArrayBatch`` -- plain numeric ``{"feature", "value"}`` samples or wide objects with no key, ts or
  id: one float64 array per feature (arrival time, key ``""``);
* ``ColumnBatch`` -- the column form, validated as arrays end to end.

Shapes (all but the column form may also arrive as NDJSON, one object per line):

* envelope: ``{"samples": [{"feature", "value", "key"?, "ts"?, "id"?}, ...]}`` -- index = position;
* wide: ``{"key"?, "ts"?, "id"?, "values": {"latency_ms": 156.7, "plan": "premium"}}``, one object or a
  list of them -- index = object position, errors name ``values.<feature>``;
* column: ``{"feature", "values": [1.0, 2.5, ...], "key"?, "ts"?, "id"?}`` -- one feature, many values;
  as the whole body only; index = position in ``values``;
* a bare list may mix single-sample objects and wide objects;
* telemetry (``POST /v1/telemetry``): ``{"service_id", "latency_ms", "payload_kb", "timestamp"?}``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar, final

import numpy as np

from driftwatch.sidecar.decode import BAD_LINE, BodyError, Rejection, Rejections
from driftwatch.vocab.limits import MAX_ABS
from driftwatch.vocab.spec import FEATURE_NAME, MonitorSpec

COLUMN_ALONE = 'a column object {"feature", "values": [...]} must be the whole body'
MAX_KEY_LEN = 128
MAX_ID_LEN = 128
_ID_INT_BOUND = 10 ** (MAX_ID_LEN - 1)  # an integer id's digits (and sign) fit MAX_ID_LEN
MAX_CATEGORY_LEN = 256
_NUMBER_TYPES = frozenset({float, int})
#: below this many samples numpy's fixed cost exceeds the per-sample loop's
FAST_PATH_MIN = 32
#: a lone UTF-16 surrogate: JSON's ``"\ud800"`` decodes to one, and no UTF-8 encoder (orjson, Redis
#: documents, the metrics text) can write it. Accepted once, it made every later checkpoint fail.
_SURROGATE = re.compile("[\ud800-\udfff]")

#: reasons for ``driftwatch_samples_rejected_total{reason}`` (also in the 202 body); ``engine_error``
#: and ``wrong_type`` are also counted when the engine itself refuses a batch
REASONS = (
    "invalid_json",
    "invalid_shape",
    "missing_field",
    "not_finite",
    "wrong_type",
    "unknown_feature",
    "too_many_features",
    "bad_key",
    "bad_ts",
    "bad_id",
    "duplicate",
    "late",
    "body_too_large",
    "queue_full",
    "engine_error",
)


@dataclass(slots=True)
class Sample:
    """One accepted value: float (numeric) or str (categorical); ``ts`` None means arrival time;
    ``index`` is its position in the body (what a rejection would have named)."""

    feature: str
    key: str
    value: float | str
    ts: float | None
    id: str | None
    index: int


@dataclass(slots=True)
class SampleBatch:
    """The general form: one record per accepted sample, in body order."""

    samples: list[Sample] = field(default_factory=list)
    rejected: Rejections = field(default_factory=Rejections)

    @property
    def count(self) -> int:
        return len(self.samples)


@dataclass(slots=True)
class ArrayBatch:
    """Plain numeric samples without key, ts or id: ``{feature: float64 array}``."""

    columns: dict[str, np.ndarray]
    rejected: Rejections = field(default_factory=Rejections)

    @property
    def count(self) -> int:
        return sum(len(a) for a in self.columns.values())


@dataclass(slots=True)
class ColumnBatch:
    """The column form after validation: the kept ``values`` (float64 array, or a list of str for a
    categorical feature), their ``ts`` (None: arrival time) and their positions in the body's list."""

    feature: str
    key: str
    values: Any
    ts: np.ndarray | None
    id: str | None
    index: np.ndarray
    rejected: Rejections = field(default_factory=Rejections)

    @property
    def count(self) -> int:
        return len(self.index)


Batch = SampleBatch | ArrayBatch | ColumnBatch


@final
@dataclass(slots=True, frozen=True)
class Invalid:
    """Why a value or field was refused: the message names the field; ``reason`` is the metric label."""

    error: str
    reason: str

    def at(self, index: int) -> Rejection:
        return {"index": index, "error": self.error, "reason": self.reason}


@final
@dataclass(slots=True, frozen=True)
class Meta:
    """An object's key, ts (None: arrival time) and id."""

    key: str
    ts: float | None
    id: str | None


_NO_META = Meta("", None, None)


class Validator:
    """Per-sample checks against the spec. Holds the only state validation needs: which type each
    feature was pinned to (declared, or decided by its first value) and how many features exist."""

    def __init__(self, spec: MonitorSpec, max_features: int = 100, max_future: float = 300.0) -> None:
        self.declared = {f.name for f in spec.features}
        self.closed = bool(spec.features)
        #: feature -> "numeric" | "categorical"; auto features are pinned by their first accepted value
        self.types: dict[str, str] = {f.name: f.type for f in spec.features if f.type != "auto"}
        self.seen: set[str] = set(self.declared)
        self.max_features = max(max_features, len(self.declared))
        self.max_future = max_future

    # --- whole bodies ---------------------------------------------------------------------------------

    def body(self, doc: Any, now: float) -> Batch:
        """Any of the ``POST /v1/samples`` JSON shapes, by the fastest form that fits. Raises BodyError
        for a shape that is not one."""
        return run_steps(self.body_steps(doc, now))

    def body_steps(self, doc: Any, now: float) -> Steps[Batch]:
        """``body`` in steps: yields after every ``SLICE`` objects of the general path (a caller on the
        event loop lets other requests in there), returns the batch."""
        if type(doc) is dict:
            if type(doc.get("values")) is list:
                return self.column(doc, now)
            if "samples" in doc:
                items = doc["samples"]
                if type(items) is not list:
                    raise BodyError("samples: must be a list", "invalid_shape")
                if len(doc) == 1 and len(items) >= FAST_PATH_MIN:
                    columns = self.fast_numeric(items)
                    if columns is not None:
                        return ArrayBatch(columns)
                batch = SampleBatch()
                for start in range(0, len(items), SLICE):
                    self.samples(items, now, batch, start, start + SLICE)
                    yield
                return batch
            if "values" in doc or "feature" in doc:
                batch = SampleBatch()
                self.items([doc], now, batch)
                return batch
            raise BodyError(
                'body must be {"samples": [...]}, a wide object with "values", or a list', "invalid_shape"
            )
        if type(doc) is list:
            if len(doc) >= FAST_PATH_MIN:
                columns = self.fast_wide(doc)
                if columns is not None:
                    return ArrayBatch(columns)
            batch = SampleBatch()
            yield from self.items_steps(doc, now, batch)
            return batch
        raise BodyError(f"body must be an object or a list, got {_tname(doc)}", "invalid_shape")

    def plain(self, feature: str, numbers: list[int | float]) -> ArrayBatch | None:
        """``decode.plain_envelope``'s numbers for ``feature`` (already only JSON numbers): the batch,
        or None when the feature is not an already-numeric one or a value is out of range (then the
        general path explains it)."""
        if self.types.get(feature) != "numeric":
            return None
        try:  # fromiter: no dtype discovery over the list (~25 % less than np.array, same values)
            arr = np.fromiter(numbers, np.float64, len(numbers))
        except OverflowError:
            return None
        if not (np.abs(arr) <= MAX_ABS).all():
            return None
        return ArrayBatch({feature: arr})

    def one(self, doc: Any) -> tuple[str, float] | None:
        """``{"samples": [{"feature": f, "value": <finite float>}]}`` for an already-numeric feature:
        (f, value); None for anything else. The single-sample request is the most frequent one and
        this check is all it needs."""
        if type(doc) is not dict or len(doc) != 1:
            return None
        items = doc.get("samples")
        if type(items) is not list or len(items) != 1:
            return None
        s = items[0]
        if type(s) is not dict or len(s) != 2:
            return None
        f, v = s.get("feature"), s.get("value")
        if (
            type(v) is float
            and -MAX_ABS <= v <= MAX_ABS
            and type(f) is str
            and self.types.get(f) == "numeric"
        ):
            return f, v  # finite (NaN fails the comparison), as the engine accepts
        return None

    def ndjson_steps(
        self, lines: list[Any], rejected: Rejections, now: float, telemetry: bool
    ) -> Steps[SampleBatch]:
        """Decoded NDJSON lines (``decode.split_ndjson``): each line a sample or wide object (a telemetry
        object for ``/v1/telemetry``); index = line number. In steps, like ``body_steps``."""
        batch = SampleBatch(rejected=rejected)
        if not telemetry:
            yield from self.items_steps(lines, now, batch)
            return batch
        for i, item in enumerate(lines):
            if i % SLICE == SLICE - 1:
                yield
            if item is BAD_LINE:
                continue
            one = self.telemetry(item, now)
            for s in one.samples:
                s.index = i
            batch.samples += one.samples
            batch.rejected.extend(
                {"index": i, "error": r["error"], "reason": r["reason"]} for r in one.rejected
            )
        return batch

    def telemetry(self, doc: Any, now: float) -> SampleBatch:
        """``POST /v1/telemetry``: key = service_id, features latency_ms and payload_kb."""
        docs = doc if type(doc) is list else [doc]
        batch = SampleBatch()
        rejected = batch.rejected
        for i, o in enumerate(docs):
            if type(o) is not dict:
                rejected.append(_not_an_object(i, "entry", o))
                continue
            sid = o.get("service_id")
            if type(sid) is not str or not sid or len(sid) > MAX_KEY_LEN or not sid.isprintable():
                reason = "missing_field" if sid is None else "bad_key"
                err = _not_text("service_id", sid) or (
                    f"service_id: must be a non-empty string of at most {MAX_KEY_LEN} printable characters"
                )
                rejected.append({"index": i, "error": err, "reason": reason})
                continue
            ts = None
            if o.get("timestamp") is not None:
                got = _ts(o["timestamp"], now, self.max_future, "timestamp")
                if type(got) is Invalid:
                    rejected.append(got.at(i))
                    continue
                ts = got
            n = len(batch.samples)
            wide = {"key": sid, "values": {k: o.get(k) for k in ("latency_ms", "payload_kb")}}
            self.wide(wide, i, now, batch)
            if ts is not None:
                for s in batch.samples[n:]:
                    s.ts = ts
        return batch

    # --- one value ------------------------------------------------------------------------------------

    def _feature_error(self, f: Any, field: str) -> Invalid | None:
        """Why a feature name not seen before is refused, or None (then it is registered)."""
        if type(f) is not str:
            return Invalid(
                f"{field}: must be a string, got {_tname(f)}", "missing_field" if f is None else "wrong_type"
            )
        if self.closed:
            declared = ", ".join(sorted(self.declared))
            return Invalid(f"{field}: unknown feature {f!r} (declared: {declared})", "unknown_feature")
        if not FEATURE_NAME.match(f):
            return Invalid(f"{field}: must match {FEATURE_NAME.pattern}, got {f!r}", "unknown_feature")
        if len(self.seen) >= self.max_features:
            return Invalid(
                f"{field}: too many distinct features (cap {self.max_features})", "too_many_features"
            )
        self.seen.add(f)
        return None

    def value(self, f: str, v: Any, field: str) -> float | str | Invalid:
        """The value as the engine takes it (float or str), or why it is refused."""
        tv = type(v)
        t = self.types.get(f)
        if tv is float or tv is int:
            if tv is int and t == "categorical":
                return str(v)  # an integer names a category
            if not -MAX_ABS <= v <= MAX_ABS:  # NaN fails every comparison; ±inf and huge values too
                what = (
                    f"finite and within ±1e150, got {v}"
                    if tv is float
                    else "within ±1e150, got a larger integer"
                )
                return Invalid(f"{field}: must be {what}", "not_finite")
            if t == "categorical":
                return Invalid(f"{field}: feature {f!r} is categorical, got a float", "wrong_type")
            if t is None:
                self.types[f] = "numeric"
            return float(v)
        if tv is str:
            if t == "numeric":
                return Invalid(f"{field}: feature {f!r} is numeric, got a string", "wrong_type")
            if len(v) > MAX_CATEGORY_LEN:
                return Invalid(f"{field}: category longer than {MAX_CATEGORY_LEN} characters", "wrong_type")
            if not v.isascii() and _SURROGATE.search(v):
                return Invalid(_not_text(field, v) or field, "wrong_type")
            if t is None:
                self.types[f] = "categorical"
            return str(v)
        if v is None:
            return Invalid(f"{field}: is required", "missing_field")
        return Invalid(f"{field}: must be a number or a string, got {_tname(v)}", "wrong_type")

    def _meta(self, o: dict[str, Any], now: float) -> Meta | Invalid:
        """key, ts and id of one object, or why one of them is refused."""
        key = o.get("key", "")
        if type(key) is not str:
            if key is not None:
                return Invalid(f"key: must be a string, got {_tname(key)}", "bad_key")
            key = ""
        elif len(key) > MAX_KEY_LEN or not key.isprintable():
            return Invalid(
                _not_text("key", key) or f"key: must be at most {MAX_KEY_LEN} printable characters", "bad_key"
            )
        ts = o.get("ts")
        if ts is not None:
            ts = _ts(ts, now, self.max_future, "ts")
            if type(ts) is Invalid:
                return ts
        sid = o.get("id")
        if sid is not None:
            tid = type(sid)
            if tid is int:
                sid = str(sid) if -_ID_INT_BOUND < sid < _ID_INT_BOUND else ""  # str() of 10**4300 raises
            elif tid is str and not sid.isascii() and _SURROGATE.search(sid):
                return Invalid(_not_text("id", sid) or "id", "bad_id")
            if type(sid) is not str or not sid or len(sid) > MAX_ID_LEN:
                return Invalid(f"id: must be a non-empty string (<= {MAX_ID_LEN}) or an integer", "bad_id")
        return Meta(key, ts, sid)

    # --- shapes ---------------------------------------------------------------------------------------

    def samples(
        self, items: list[Any], now: float, batch: SampleBatch, start: int = 0, end: int | None = None
    ) -> None:
        """The envelope's ``samples`` list (single-sample objects), ``items[start:end]``; index =
        position in the list."""
        seen = self.seen
        types = self.types
        accepted = batch.samples
        rejected = batch.rejected
        for i in range(start, len(items) if end is None else min(end, len(items))):
            s = items[i]
            if type(s) is not dict:
                rejected.append(_not_an_object(i, "sample", s))
                continue
            f: Any = s.get("feature")
            if type(f) is not str or f not in seen:
                bad = self._feature_error(f, "feature")
                if bad is not None:
                    rejected.append(bad.at(i))
                    continue
            v: Any = s.get("value")
            if type(v) is not float or not -MAX_ABS <= v <= MAX_ABS or types.get(f) != "numeric":
                # not the common case (a finite float for a numeric feature): the full check
                v = self.value(f, v, "value")
                if type(v) is Invalid:
                    rejected.append(v.at(i))
                    continue
            meta = self._meta(s, now) if len(s) > 2 else _NO_META  # just feature and value: the common case
            if type(meta) is Invalid:
                rejected.append(meta.at(i))
                continue
            accepted.append(Sample(f, meta.key, v, meta.ts, meta.id, i))

    def fast_numeric(self, items: list[Any]) -> dict[str, np.ndarray] | None:
        """The batched hot path: ``{feature: float64 array}`` when every item is exactly
        ``{"feature", "value"}`` with a finite number for an already-numeric feature; else None (then
        ``samples`` goes item by item and explains each rejection). C-level passes (map, set, one
        numpy conversion) instead of a Python-level check per sample."""
        if not items:
            return None
        try:
            if set(map(len, items)) != {2}:
                return None
            feats = list(map(_FEATURE, items))
            vals = list(map(_VALUE, items))
        except (KeyError, TypeError):
            return None
        if not set(map(type, vals)) <= _NUMBER_TYPES:
            return None
        fset = set(feats)
        types = self.types
        if any(types.get(f) != "numeric" for f in fset):
            return None
        try:
            arr = np.array(vals, dtype=np.float64)
        except OverflowError:
            return None
        if not (np.abs(arr) <= MAX_ABS).all():  # also NaN and ±inf
            return None
        if len(fset) == 1:
            return {feats[0]: arr}
        fa = np.array(feats)
        return {f: arr[fa == f] for f in fset}

    def fast_wide(self, items: list[Any]) -> dict[str, np.ndarray] | None:
        """The batched hot path for lists of wide objects: ``{feature: float64 array}`` when every item
        is exactly ``{"values": {...}}`` (no key, ts or id) with finite numbers for already-numeric
        features; else None (the item-by-item path then explains each rejection)."""
        if not items:
            return None
        try:
            if set(map(len, items)) != {1}:
                return None
            dicts = list(map(_VALUES, items))
            if set(map(type, dicts)) != {dict}:
                return None
            if set(map(len, dicts)) == {len(dicts[0])}:
                # the usual case, every object with the same features: as many, and all of the first's
                with contextlib.suppress(KeyError):
                    return self._numeric_columns({f: list(map(itemgetter(f), dicts)) for f in dicts[0]})
            cols: dict[str, list[Any]] = {}
            for d in dicts:
                for f, x in d.items():
                    c = cols.get(f)
                    if c is None:
                        cols[f] = c = []
                    c.append(x)
            out = {}
            for f, c in cols.items():
                if self.types.get(f) != "numeric" or not set(map(type, c)) <= _NUMBER_TYPES:
                    return None
                arr = np.array(c, dtype=np.float64)
                if not (np.abs(arr) <= MAX_ABS).all():  # also NaN and ±inf
                    return None
                out[f] = arr
        except (KeyError, TypeError, OverflowError):
            return None
        return out

    def _numeric_columns(self, cols: dict[str, list[Any]]) -> dict[str, np.ndarray] | None:
        """Equal-length columns of already-numeric features as arrays, checked in one pass over all of
        them (one numpy call per check, not one per feature); None when any value is not a finite
        number in range."""
        if any(self.types.get(f) != "numeric" for f in cols):
            return None
        if not set(map(type, chain.from_iterable(cols.values()))) <= _NUMBER_TYPES:
            return None
        table = np.array(list(cols.values()), dtype=np.float64)
        if not (np.abs(table) <= MAX_ABS).all():  # also NaN and ±inf
            return None
        return dict(zip(cols, table, strict=True))

    def column(self, o: dict[str, Any], now: float) -> ColumnBatch:
        """The column form ``{"feature", "values": [...], "key"?, "ts"?, "id"?}``: one feature, many
        values, validated as arrays. ``ts`` is one time for all or a list as long as ``values``; ``id``
        names the whole batch. Rejections are per value (index = position in ``values``); the batch
        keeps the rest (none, when the feature, key, id or ts shape is bad)."""
        f_any = o.get("feature")
        vals = o["values"]
        n = len(vals)
        nothing = ColumnBatch("", "", [], None, None, np.zeros(0, dtype=np.int64))
        rejected = nothing.rejected
        if not n:
            rejected.append({"index": 0, "error": "values: must not be empty", "reason": "invalid_shape"})
            return nothing
        refused = (
            self._feature_error(f_any, "feature")
            if type(f_any) is not str or f_any not in self.seen
            else None
        )
        if refused is not None:
            rejected.append(refused.at(0))
            return nothing
        f = str(f_any)
        meta = self._meta({k: o[k] for k in ("key", "id") if k in o}, now)  # ts: checked below, per value
        if type(meta) is Invalid:
            rejected.append(meta.at(0))
            return nothing
        keep = np.ones(n, dtype=bool)
        values: Any
        t = self.types.get(f)
        arr = None
        if t != "categorical" and set(map(type, vals)) <= _NUMBER_TYPES:
            try:
                arr = np.array(vals, dtype=np.float64)
            except OverflowError:
                arr = None
        if arr is not None:
            if t is None:
                self.types[f] = "numeric"
            bad = ~(np.abs(arr) <= MAX_ABS)  # NaN, ±inf and beyond the engine's range
            if bad.any():
                for i in np.flatnonzero(bad).tolist():
                    err = f"values[{i}]: must be finite and within ±1e150"
                    rejected.append({"index": i, "error": err, "reason": "not_finite"})
                keep &= ~bad
            values = arr
        else:  # strings, mixed or odd values: one by one, each rejection named
            out: list[Any] = []
            for i, x in enumerate(vals):
                v = self.value(f, x, f"values[{i}]")
                if type(v) is Invalid:
                    rejected.append(v.at(i))
                    keep[i] = False
                    out.append(None)
                else:
                    out.append(v)
            values = np.array(out, dtype=np.float64) if self.types.get(f) == "numeric" else out
        ts_arr = None
        ts = o.get("ts")
        if type(ts) is list:
            if len(ts) != n:
                err = f"ts: must have {n} entries like values, got {len(ts)}"
                rejected.append({"index": 0, "error": err, "reason": "bad_ts"})
                return nothing
            if set(map(type, ts)) <= _NUMBER_TYPES and (ts_arr := _floats(ts)) is not None:
                bad = ~np.isfinite(ts_arr) | (ts_arr <= 0) | (ts_arr > now + self.max_future)
                for i in np.flatnonzero(bad & keep).tolist():
                    err = f"ts[{i}]: must be a positive epoch time, at most {self.max_future:g}s ahead"
                    rejected.append({"index": i, "error": err, "reason": "bad_ts"})
                keep &= ~bad
            else:  # strings, or integers too large for a float: one by one, each rejection named
                ts_arr = np.zeros(n)
                for i, x in enumerate(ts):
                    tv = _ts(x, now, self.max_future, f"ts[{i}]")
                    if type(tv) is Invalid:
                        if keep[i]:
                            rejected.append(tv.at(i))
                        keep[i] = False
                    else:
                        ts_arr[i] = tv
        elif ts is not None:
            tv = _ts(ts, now, self.max_future, "ts")
            if type(tv) is Invalid:
                rejected.append(tv.at(0))
                return nothing
            ts_arr = np.full(n, tv)
        idx = np.flatnonzero(keep)
        if len(idx) < n:
            values = values[keep] if isinstance(values, np.ndarray) else [values[i] for i in idx.tolist()]
            ts_arr = ts_arr[keep] if ts_arr is not None else None
        return ColumnBatch(f, meta.key, values, ts_arr, meta.id, idx, rejected)

    def wide(self, o: dict[str, Any], index: int, now: float, batch: SampleBatch) -> None:
        """One wide object: every entry of ``values`` is a sample sharing key, ts and id (the id then
        names the object; dedup drops the whole object)."""
        rejected = batch.rejected
        values = o.get("values")
        if type(values) is not dict or not values:
            err = "values: must be a non-empty object"
            rejected.append({"index": index, "error": err, "reason": "invalid_shape"})
            return
        meta = self._meta(o, now)
        if type(meta) is Invalid:
            rejected.append(meta.at(index))
            return
        for f, x in values.items():
            field = f"values.{f}"
            if f not in self.seen:
                bad = self._feature_error(f, field)
                if bad is not None:
                    rejected.append(bad.at(index))
                    continue
            v = self.value(f, x, field)
            if type(v) is Invalid:
                rejected.append(v.at(index))
                continue
            batch.samples.append(Sample(f, meta.key, v, meta.ts, meta.id, index))

    def items(self, items: list[Any], now: float, batch: SampleBatch) -> None:
        """A list (or NDJSON lines) whose entries are single-sample or wide objects."""
        run_steps(self.items_steps(items, now, batch))

    def items_steps(self, items: list[Any], now: float, batch: SampleBatch) -> Steps[None]:
        rejected = batch.rejected
        for i, o in enumerate(items):
            if i % SLICE == SLICE - 1:
                yield
            if o is BAD_LINE:
                continue  # already rejected by split_ndjson
            if type(o) is dict and type(o.get("values")) is list:
                rejected.append({"index": i, "error": COLUMN_ALONE, "reason": "invalid_shape"})
            elif type(o) is dict and "values" in o:
                self.wide(o, i, now, batch)
            elif type(o) is dict and "feature" in o:
                self.samples(items, now, batch, i, i + 1)
            else:
                err = "entry must be an object with 'feature' or 'values'"
                rejected.append({"index": i, "error": err, "reason": "invalid_shape"})


#: objects validated between two yields of a ``*_steps`` generator (~1-2 ms of the event loop)
SLICE = 1000
T = TypeVar("T")
#: a computation in steps: each ``yield`` is a point where the event loop may run something else
Steps = Generator[None, None, T]


def run_steps(steps: Steps[T]) -> T:
    """All steps at once: the result (for callers that need not yield, e.g. small bodies)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


_FEATURE = itemgetter("feature")
_VALUE = itemgetter("value")
_VALUES = itemgetter("values")


def _ts(v: Any, now: float, max_future: float, field: str) -> float | Invalid:
    """Epoch seconds from a number or an ISO 8601 string, or why not (bad, or too far ahead)."""
    tv = type(v)
    if tv is str:
        try:
            dt = datetime.fromisoformat(v)
            v = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()  # no zone: UTC, never local time
        except ValueError:
            return Invalid(f"{field}: must be epoch seconds or an ISO 8601 time, got {v!r}", "bad_ts")
    elif tv is int:
        if not 0 < v <= now + max_future:  # before float(): a 400-digit integer does not fit one
            return Invalid(f"{field}: must be a positive epoch time at most {max_future:g}s ahead", "bad_ts")
        v = float(v)
    elif tv is not float:
        return Invalid(f"{field}: must be epoch seconds or an ISO 8601 time, got {_tname(v)}", "bad_ts")
    if v - v != 0.0 or v <= 0.0:
        return Invalid(f"{field}: must be a finite positive epoch time, got {v}", "bad_ts")
    if v > now + max_future:
        return Invalid(f"{field}: {v - now:.0f}s in the future (max {max_future:g}s)", "bad_ts")
    return float(v)


def _floats(values: list[Any]) -> np.ndarray | None:
    """float64 array of JSON numbers, or None when one does not fit a float (a 400-digit integer)."""
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:
        return None


def _not_text(field: str, v: Any) -> str | None:
    """The message for a string holding a lone surrogate (``"\ud800"`` in JSON), else None."""
    if type(v) is str and not v.isascii() and _SURROGATE.search(v):
        return f"{field}: not valid text (a lone UTF-16 surrogate such as \\ud800 cannot be stored)"
    return None


def _not_an_object(index: int, what: str, v: Any) -> Rejection:
    return {"index": index, "error": f"{what} must be an object, got {_tname(v)}", "reason": "invalid_shape"}


def _tname(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, str):
        return "a string"
    return type(v).__name__
