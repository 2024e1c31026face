"""Body decoding and per-sample validation: pure, no I/O, no clock (``now`` is passed in).

This is the hot path, so it is written as plain loops over dicts with ``type(x) is`` checks; every
rejection names the field. Accepted samples come out as tuples
``(feature, key, value, ts, id, index)`` — value is a float (numeric) or str (categorical), ts is
epoch seconds or None (the caller fills in arrival time), id is a str or None.

Shapes (all may also arrive as NDJSON, one object per line):

* envelope: ``{"samples": [{"feature", "value", "key"?, "ts"?, "id"?}, ...]}`` — index = position;
* wide: ``{"key"?, "ts"?, "id"?, "values": {"latency_ms": 156.7, "plan": "premium"}}``, one object or a
  list of them — index = object position, errors name ``values.<feature>``;
* column: ``{"feature", "values": [1.0, 2.5, ...], "key"?, "ts"?, "id"?}`` — one feature, many values
  (the fastest shape: validated as arrays); as the whole body only; index = position in ``values``;
* a bare list may mix single-sample objects and wide objects;
* telemetry (``POST /v1/telemetry``): ``{"service_id", "latency_ms", "payload_kb", "timestamp"?}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import orjson

from driftwatch.config import FEATURE_NAME, MonitorSpec

Sample = tuple[str, str, float | str, float | None, str | None, int]
#: column form after validation: (feature, key, values, ts or None, id, kept positions)
Column = tuple[str, str, Any, "np.ndarray | None", str | None, "np.ndarray"]
COLUMN_ALONE = 'a column object {"feature", "values": [...]} must be the whole body'

Rejection = dict[str, Any]  # {"index": int, "error": str, "reason": str}

MAX_KEY_LEN = 128
MAX_ID_LEN = 128
MAX_CATEGORY_LEN = 256
#: the engine refuses |x| above this (squares would overflow its variance sums): reject it here, named
MAX_ABS = 1e150
_NUMBER_TYPES = frozenset({float, int})

#: reasons for ``driftwatch_samples_rejected_total{reason}`` (also in the 202 body)
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
    "too_many_keys",
    "duplicate",
    "late",
    "body_too_large",
    "queue_full",
)


class BodyError(ValueError):
    """The whole body is unusable (HTTP 400); ``reason`` is a metric label, the message names the problem."""

    def __init__(self, message: str, reason: str = "invalid_json") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def loads(body: bytes) -> Any:
    """orjson for speed; the stdlib as a fallback only so that ``NaN``/``Infinity``/``1e999`` (which
    orjson refuses) become per-sample ``not_finite`` rejections instead of failing the whole body."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    if not body.strip():
        raise BodyError("malformed JSON: empty body")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BodyError(f"malformed JSON: {e}") from None


def split_ndjson(body: bytes) -> tuple[list[Any], list[Rejection]]:
    """Decode NDJSON line by line. A malformed line is rejected on its own (index = line number among
    non-blank lines) so one bad line never loses the others."""
    items: list[Any] = []
    bad: list[Rejection] = []
    for lineno, line in enumerate(x for x in body.split(b"\n") if x.strip()):
        try:
            items.append(loads(line))
        except BodyError as e:
            items.append(BAD_LINE)
            bad.append({"index": lineno, "error": e.message, "reason": "invalid_json"})
    return items, bad


BAD_LINE = object()  #: placeholder for an NDJSON line that did not decode (already rejected)


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

    # --- one value ------------------------------------------------------------------------------------

    def _feature_error(self, f: Any, field: str) -> tuple[str, str] | None:
        """Error for a feature name not seen before, or None (then it is registered)."""
        if type(f) is not str:
            return (
                f"{field}: must be a string, got {_tname(f)}",
                "missing_field" if f is None else "wrong_type",
            )
        if self.closed:
            return (
                f"{field}: unknown feature {f!r} (declared: {', '.join(sorted(self.declared))})",
                "unknown_feature",
            )
        if not FEATURE_NAME.match(f):
            return (f"{field}: must match {FEATURE_NAME.pattern}, got {f!r}", "unknown_feature")
        if len(self.seen) >= self.max_features:
            return (f"{field}: too many distinct features (cap {self.max_features})", "too_many_features")
        self.seen.add(f)
        return None

    def value(self, f: str, v: Any, field: str) -> tuple[float | str | None, str, str]:
        """(converted value, error, reason); error is "" when accepted."""
        tv = type(v)
        t = self.types.get(f)
        if tv is float:
            if not -MAX_ABS <= v <= MAX_ABS:  # NaN fails every comparison; ±inf and huge values too
                return None, f"{field}: must be finite and within ±1e150, got {v}", "not_finite"
            if t == "categorical":
                return None, f"{field}: feature {f!r} is categorical, got a float", "wrong_type"
            if t is None:
                self.types[f] = "numeric"
            return v, "", ""
        if tv is int:
            if t == "categorical":
                return str(v), "", ""
            if not -MAX_ABS <= v <= MAX_ABS:
                return None, f"{field}: must be within ±1e150, got a larger integer", "not_finite"
            if t is None:
                self.types[f] = "numeric"
            return float(v), "", ""
        if tv is str:
            if t == "numeric":
                return None, f"{field}: feature {f!r} is numeric, got a string", "wrong_type"
            if len(v) > MAX_CATEGORY_LEN:
                return None, f"{field}: category longer than {MAX_CATEGORY_LEN} characters", "wrong_type"
            if t is None:
                self.types[f] = "categorical"
            return v, "", ""
        if v is None:
            return None, f"{field}: is required", "missing_field"
        return None, f"{field}: must be a number or a string, got {_tname(v)}", "wrong_type"

    def _common(
        self, o: dict[str, Any], now: float, prefix: str = ""
    ) -> tuple[str, float | None, str | None, str, str]:
        """key, ts, id of one object; error/reason non-empty when one of them is bad."""
        key = o.get("key", "")
        if type(key) is not str:
            if key is None:
                key = ""
            else:
                return "", None, None, f"{prefix}key: must be a string, got {_tname(key)}", "bad_key"
        elif len(key) > MAX_KEY_LEN or not key.isprintable():
            return (
                "",
                None,
                None,
                f"{prefix}key: must be at most {MAX_KEY_LEN} printable characters",
                "bad_key",
            )
        ts = o.get("ts")
        if ts is not None:
            ts, err = _ts(ts, now, self.max_future, f"{prefix}ts")
            if err:
                return "", None, None, err, "bad_ts"
        sid = o.get("id")
        if sid is not None:
            tid = type(sid)
            if tid is int:
                sid = str(sid)
            elif tid is not str or not sid or len(sid) > MAX_ID_LEN:
                return (
                    "",
                    None,
                    None,
                    f"{prefix}id: must be a non-empty string (<= {MAX_ID_LEN}) or an integer",
                    "bad_id",
                )
        return key, ts, sid, "", ""

    # --- shapes ---------------------------------------------------------------------------------------

    def samples(
        self, items: list[Any], now: float, accepted: list[Sample], rejected: list[Rejection]
    ) -> None:
        """The envelope's ``samples`` list (single-sample objects); index = position."""
        seen = self.seen
        types = self.types
        for i, s in enumerate(items):
            if type(s) is not dict:
                rejected.append(_not_an_object(i, "sample", s))
                continue
            f = s.get("feature")
            if type(f) is not str or f not in seen:
                e = self._feature_error(f, "feature")
                if e:
                    rejected.append({"index": i, "error": e[0], "reason": e[1]})
                    continue
            v = s.get("value")
            if type(v) is not float or not -MAX_ABS <= v <= MAX_ABS or types.get(f) != "numeric":  # type: ignore[arg-type]
                # not the common case (a finite float for a numeric feature): the full check
                v, err, reason = self.value(f, v, "value")  # type: ignore[arg-type]
                if err:
                    rejected.append({"index": i, "error": err, "reason": reason})
                    continue
            if len(s) == 2:  # the common case: just feature and value
                accepted.append((f, "", v, None, None, i))  # type: ignore[arg-type]
                continue
            key, ts, sid, err, reason = self._common(s, now)
            if err:
                rejected.append({"index": i, "error": err, "reason": reason})
                continue
            accepted.append((f, key, v, ts, sid, i))  # type: ignore[arg-type]

    def fast_numeric(self, items: list[Any]) -> dict[str, np.ndarray] | None:
        """The batched hot path: ``{feature: float64 array}`` when every item is exactly
        ``{"feature", "value"}`` with a finite number for an already-numeric feature; else None (then
        ``samples`` goes item by item and explains each rejection). List comprehensions and one numpy
        conversion instead of a Python-level check per sample: several times faster."""
        if not items:
            return None
        try:
            if sum(map(len, items)) != 2 * len(items):
                return None
            feats = [s["feature"] for s in items]
            vals = [s["value"] for s in items]
            if not set(map(type, vals)) <= _NUMBER_TYPES:
                return None
            fset = set(feats)
            if any(self.types.get(f) != "numeric" for f in fset):
                return None
            arr = np.array(vals, dtype=np.float64)
        except (KeyError, TypeError, OverflowError):
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
            if sum(map(len, items)) != len(items):
                return None
            dicts = [o["values"] for o in items]
            if set(map(type, dicts)) != {dict}:
                return None
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

    def column(self, o: dict[str, Any], now: float, rejected: list[Rejection]) -> Column | None:
        """The column form ``{"feature", "values": [...], "key"?, "ts"?, "id"?}``: one feature, many
        values, validated as arrays. ``ts`` is one time for all or a list as long as ``values``; ``id``
        names the whole batch. Rejections are per value (index = position in ``values``); returns
        (feature, key, values, ts or None, id, kept positions) or None when nothing is usable."""
        f_any = o.get("feature")
        vals = o["values"]
        n = len(vals)
        if not n:
            rejected.append({"index": 0, "error": "values: must not be empty", "reason": "invalid_shape"})
            return None
        if type(f_any) is not str or f_any not in self.seen:
            e = self._feature_error(f_any, "feature")
            if e:
                rejected.append({"index": 0, "error": e[0], "reason": e[1]})
                return None
        f: str = cast(str, f_any)
        key, _, sid, err, reason = self._common({k: o[k] for k in ("key", "id") if k in o}, now)
        if err:
            rejected.append({"index": 0, "error": err, "reason": reason})
            return None
        keep = np.ones(n, dtype=bool)
        values: Any
        t = self.types.get(f)
        arr = None
        if n and t != "categorical" and set(map(type, vals)) <= _NUMBER_TYPES:
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
                v, err, reason = self.value(f, x, f"values[{i}]")
                if err:
                    rejected.append({"index": i, "error": err, "reason": reason})
                    keep[i] = False
                out.append(v)
            values = np.array(out, dtype=np.float64) if self.types.get(f) == "numeric" else out
        ts_arr = None
        ts = o.get("ts")
        if type(ts) is list:
            if len(ts) != n:
                rejected.append(
                    {
                        "index": 0,
                        "error": f"ts: must have {n} entries like values, got {len(ts)}",
                        "reason": "bad_ts",
                    }
                )
                return None
            if set(map(type, ts)) <= _NUMBER_TYPES:
                ts_arr = np.array(ts, dtype=np.float64)
                bad = ~np.isfinite(ts_arr) | (ts_arr <= 0) | (ts_arr > now + self.max_future)
                for i in np.flatnonzero(bad & keep).tolist():
                    rejected.append(
                        {
                            "index": i,
                            "error": f"ts[{i}]: must be a positive epoch time, "
                            f"at most {self.max_future:g}s ahead",
                            "reason": "bad_ts",
                        }
                    )
                keep &= ~bad
            else:
                ts_arr = np.zeros(n)
                for i, x in enumerate(ts):
                    tv, err = _ts(x, now, self.max_future, f"ts[{i}]")
                    if err:
                        if keep[i]:
                            rejected.append({"index": i, "error": err, "reason": "bad_ts"})
                        keep[i] = False
                    else:
                        ts_arr[i] = tv
        elif ts is not None:
            tv, err = _ts(ts, now, self.max_future, "ts")
            if err:
                rejected.append({"index": 0, "error": err, "reason": "bad_ts"})
                return None
            ts_arr = np.full(n, tv)
        idx = np.flatnonzero(keep)
        if len(idx) < n:
            values = values[keep] if isinstance(values, np.ndarray) else [values[i] for i in idx.tolist()]
            ts_arr = ts_arr[keep] if ts_arr is not None else None
        if not len(idx):
            return None
        return f, key, values, ts_arr, sid, idx

    def wide(
        self, o: dict[str, Any], index: int, now: float, accepted: list[Sample], rejected: list[Rejection]
    ) -> None:
        """One wide object: every entry of ``values`` is a sample sharing key, ts and id (the id then
        names the object; dedup drops the whole object)."""
        values = o.get("values")
        if type(values) is not dict or not values:
            rejected.append(
                {"index": index, "error": "values: must be a non-empty object", "reason": "invalid_shape"}
            )
            return
        key, ts, sid, err, reason = self._common(o, now)
        if err:
            rejected.append({"index": index, "error": err, "reason": reason})
            return
        for f, v in values.items():
            field = f"values.{f}"
            if f not in self.seen:
                e = self._feature_error(f, field)
                if e:
                    rejected.append({"index": index, "error": e[0], "reason": e[1]})
                    continue
            v, err, reason = self.value(f, v, field)
            if err:
                rejected.append({"index": index, "error": err, "reason": reason})
                continue
            accepted.append((f, key, v, ts, sid, index))  # type: ignore[arg-type]

    def items(
        self, items: Iterable[Any], now: float, accepted: list[Sample], rejected: list[Rejection]
    ) -> None:
        """A list (or NDJSON lines) whose entries are single-sample or wide objects."""
        one: list[Any] = [None]
        for i, o in enumerate(items):
            if o is BAD_LINE:
                continue  # already rejected by split_ndjson
            if type(o) is dict and type(o.get("values")) is list:
                rejected.append({"index": i, "error": COLUMN_ALONE, "reason": "invalid_shape"})
            elif type(o) is dict and "values" in o:
                self.wide(o, i, now, accepted, rejected)
            elif type(o) is dict and "feature" in o:
                one[0] = o
                n = len(rejected)
                self.samples(one, now, accepted, rejected)
                if len(rejected) > n:
                    rejected[-1]["index"] = i
                elif accepted:
                    s = accepted[-1]
                    accepted[-1] = (s[0], s[1], s[2], s[3], s[4], i)
            else:
                rejected.append(
                    {
                        "index": i,
                        "error": "entry must be an object with 'feature' or 'values'",
                        "reason": "invalid_shape",
                    }
                )

    def body(self, doc: Any, now: float) -> tuple[list[Sample], list[Rejection]]:
        """Any of the ``POST /v1/samples`` JSON shapes. Raises BodyError for a shape that is not one."""
        accepted: list[Sample] = []
        rejected: list[Rejection] = []
        if type(doc) is dict:
            if "samples" in doc:
                items = doc["samples"]
                if type(items) is not list:
                    raise BodyError("samples: must be a list", "invalid_shape")
                self.samples(items, now, accepted, rejected)
            elif type(doc.get("values")) is list:
                col = self.column(doc, now, rejected)
                if col is not None:
                    f, key, values, ts, sid, idx = col
                    tl = ts.tolist() if ts is not None else [None] * len(idx)
                    vl = values.tolist() if isinstance(values, np.ndarray) else values
                    accepted += [
                        (f, key, v, t, sid, int(i)) for v, t, i in zip(vl, tl, idx.tolist(), strict=True)
                    ]
            elif "values" in doc or "feature" in doc:
                self.items([doc], now, accepted, rejected)
            else:
                raise BodyError(
                    'body must be {"samples": [...]}, a wide object with "values", or a list', "invalid_shape"
                )
        elif type(doc) is list:
            self.items(doc, now, accepted, rejected)
        else:
            raise BodyError(f"body must be an object or a list, got {_tname(doc)}", "invalid_shape")
        return accepted, rejected

    def telemetry(self, doc: Any, now: float) -> tuple[list[Sample], list[Rejection]]:
        """``POST /v1/telemetry``: key = service_id, features latency_ms and payload_kb."""
        docs = doc if type(doc) is list else [doc]
        accepted: list[Sample] = []
        rejected: list[Rejection] = []
        for i, o in enumerate(docs):
            if type(o) is not dict:
                rejected.append(_not_an_object(i, "entry", o))
                continue
            sid = o.get("service_id")
            if type(sid) is not str or not sid or len(sid) > MAX_KEY_LEN or not sid.isprintable():
                reason = "missing_field" if sid is None else "bad_key"
                rejected.append(
                    {
                        "index": i,
                        "error": f"service_id: must be a non-empty string (<= {MAX_KEY_LEN})",
                        "reason": reason,
                    }
                )
                continue
            ts = None
            if o.get("timestamp") is not None:
                ts, err = _ts(o["timestamp"], now, self.max_future, "timestamp")
                if err:
                    rejected.append({"index": i, "error": err, "reason": "bad_ts"})
                    continue
            wide = {"key": sid, "values": {k: o.get(k) for k in ("latency_ms", "payload_kb")}}
            n = len(accepted)
            self.wide(wide, i, now, accepted, rejected)
            if ts is not None:
                accepted[n:] = [(s[0], s[1], s[2], ts, s[4], s[5]) for s in accepted[n:]]
        return accepted, rejected


def _ts(v: Any, now: float, max_future: float, field: str) -> tuple[float | None, str]:
    """Epoch seconds from a number or an ISO 8601 string; error text when bad or too far ahead."""
    tv = type(v)
    if tv is str:
        try:
            dt = datetime.fromisoformat(v)
            v = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()  # no zone: UTC, never local time
        except ValueError:
            return None, f"{field}: must be epoch seconds or an ISO 8601 time, got {v!r}"
    elif tv is int:
        v = float(v)
    elif tv is not float:
        return None, f"{field}: must be epoch seconds or an ISO 8601 time, got {_tname(v)}"
    if v - v != 0.0 or v <= 0.0:
        return None, f"{field}: must be a finite positive epoch time, got {v}"
    if v > now + max_future:
        return None, f"{field}: {v - now:.0f}s in the future (max {max_future:g}s)"
    return v, ""


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


_CT_NDJSON = re.compile(r"^\s*application/(x-ndjson|jsonl|x-jsonlines)", re.I)


def is_ndjson(content_type: str) -> bool:
    return bool(_CT_NDJSON.match(content_type))
