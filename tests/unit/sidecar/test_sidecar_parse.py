"""Body decoding and per-sample validation (driftwatch.sidecar.parse): pure, no server."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from driftwatch.config import MonitorSpec
from driftwatch.sidecar.parse import BodyError, Validator, is_ndjson, loads, split_ndjson

NOW = 1_800_000_000.0


def declared() -> Validator:
    spec = MonitorSpec.parse(
        {"features": [{"name": "lat", "type": "numeric"}, {"name": "plan", "type": "categorical"}]}
    )
    return Validator(spec)


def test_loads_accepts_nan_for_per_sample_rejection_and_names_malformed_json() -> None:
    assert math.isnan(loads(b'{"v": NaN}')["v"])
    assert loads(b'{"v": 1e999}')["v"] == math.inf
    with pytest.raises(BodyError, match=r"malformed JSON: .*line 1 column"):
        loads(b'{"v": 1')
    with pytest.raises(BodyError, match="empty body"):
        loads(b"  ")


def test_envelope_rejections_name_fields_and_keep_good_samples() -> None:
    v = declared()
    acc, rej = v.body(
        {
            "samples": [
                {"feature": "lat", "value": 1.5},
                {"feature": "lat", "value": math.nan},
                {"feature": "lat", "value": "x"},
                {"feature": "nope", "value": 1},
                {"feature": "plan", "value": "gold", "key": "k", "ts": NOW - 1, "id": 9},
                {"feature": ["lat"], "value": 1},
                {"feature": "lat", "value": 1, "key": "\x00"},
                {"feature": "lat", "value": 1, "ts": NOW + 10_000},
                7,
            ]
        },
        NOW,
    )
    assert acc == [("lat", "", 1.5, None, None, 0), ("plan", "k", "gold", NOW - 1, "9", 4)]
    reasons = {r["index"]: r["reason"] for r in rej}
    assert reasons == {
        1: "not_finite",
        2: "wrong_type",
        3: "unknown_feature",
        5: "wrong_type",
        6: "bad_key",
        7: "bad_ts",
        8: "invalid_shape",
    }
    assert all(
        r["error"].split(":")[0] in {"value", "feature", "key", "ts", "sample must be an object, got int"}
        for r in rej
    )


def test_wide_and_mixed_lists() -> None:
    v = declared()
    acc, rej = v.body({"key": "a", "id": "w", "values": {"lat": 2, "plan": "basic", "zzz": 1}}, NOW)
    assert [(s[0], s[2], s[4]) for s in acc] == [("lat", 2.0, "w"), ("plan", "basic", "w")]
    assert rej[0]["error"].startswith("values.zzz:")
    acc, rej = v.body([{"values": {"lat": 1}}, {"feature": "lat", "value": 3}, "x"], NOW)
    assert [(s[2], s[5]) for s in acc] == [(1.0, 0), (3.0, 1)]
    assert rej == [
        {"index": 2, "error": "entry must be an object with 'feature' or 'values'", "reason": "invalid_shape"}
    ]
    with pytest.raises(BodyError):
        v.body({"samples": 3}, NOW)
    with pytest.raises(BodyError):
        v.body("s", NOW)


def test_auto_features_are_pinned_by_first_value_and_capped() -> None:
    v = Validator(MonitorSpec.parse({}), max_features=2)
    acc, rej = v.body({"samples": [{"feature": "a", "value": 1}, {"feature": "a", "value": "x"}]}, NOW)
    assert len(acc) == 1
    assert rej[0]["reason"] == "wrong_type"
    acc, rej = v.body({"samples": [{"feature": "b", "value": "x"}, {"feature": "c", "value": 1}]}, NOW)
    assert len(acc) == 1
    assert rej[0]["reason"] == "too_many_features"
    _, rej = v.body({"samples": [{"feature": "bad name!", "value": 1}]}, NOW)
    assert rej[0]["reason"] in {"unknown_feature", "too_many_features"}


def test_fast_numeric_path_matches_the_slow_path_or_declines() -> None:
    v = declared()
    items = [{"feature": "lat", "value": float(i)} for i in range(10)] + [{"feature": "lat", "value": 3}]
    cols = v.fast_numeric(items)
    assert cols is not None
    np.testing.assert_array_equal(cols["lat"], [*range(10), 3])
    # anything unusual declines (then the slow path explains each rejection)
    assert v.fast_numeric([{"feature": "lat", "value": True}]) is None
    assert v.fast_numeric([{"feature": "lat", "value": math.inf}]) is None
    assert v.fast_numeric([{"feature": "lat", "value": 1.0, "key": "k"}]) is None
    assert v.fast_numeric([{"feature": "plan", "value": 1.0}]) is None
    assert v.fast_numeric([{"feature": "lat", "value": 10**400}]) is None
    assert v.fast_numeric([{"feature": "lat", "value": 1e200}]) is None
    _, rej = v.body(
        {"samples": [{"feature": "lat", "value": 1e200}, {"feature": "lat", "value": -(10**160)}]}, NOW
    )
    assert [r["reason"] for r in rej] == ["not_finite", "not_finite"]
    assert v.fast_numeric([["lat", 1]]) is None
    assert v.fast_numeric([]) is None


def test_ndjson_and_telemetry() -> None:
    items, bad = split_ndjson(b'{"feature": "lat", "value": 1}\n\n{bad\n')
    assert len(items) == 2
    assert bad[0]["index"] == 1
    assert is_ndjson("application/x-ndjson; charset=utf-8")
    assert not is_ndjson("application/json")
    v = Validator(MonitorSpec.parse({}))
    acc, rej = v.telemetry(
        [
            {"service_id": "s1", "latency_ms": 5, "payload_kb": 1.5, "timestamp": "2026-11-23T10:00:00Z"},
            {"service_id": "", "latency_ms": 5, "payload_kb": 1},
            {"service_id": "s2", "latency_ms": None, "payload_kb": 1},
        ],
        NOW,
    )
    assert [(s[0], s[1], s[2]) for s in acc] == [
        ("latency_ms", "s1", 5.0),
        ("payload_kb", "s1", 1.5),
        ("payload_kb", "s2", 1.0),
    ]
    assert acc[0][3] == datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp()
    assert [r["reason"] for r in rej] == ["bad_key", "missing_field"]


def test_column_form_validates_as_arrays_and_names_positions() -> None:
    v = declared()
    rej: list = []
    col = v.column({"feature": "lat", "values": [1, 2.5, math.nan, "x", 4], "key": "k", "id": "b"}, NOW, rej)
    assert col is not None
    f, key, values, ts, sid, idx = col
    assert (f, key, sid, ts) == ("lat", "k", "b", None)
    np.testing.assert_array_equal(values, [1.0, 2.5, 4.0])
    assert idx.tolist() == [0, 1, 4]
    assert [(r["index"], r["reason"]) for r in rej] == [(2, "not_finite"), (3, "wrong_type")]
    assert rej[0]["error"].startswith("values[2]:")
    rej = []
    col = v.column({"feature": "lat", "values": [1.0, 2.0], "ts": [NOW, -1]}, NOW, rej)
    assert col is not None
    assert col[3].tolist() == [NOW]
    assert rej[0]["error"].startswith("ts[1]:")
    rej = []
    col = v.column({"feature": "plan", "values": ["a", 3]}, NOW, rej)
    assert col is not None
    assert col[2] == ["a", "3"]
    for bad in (
        {"feature": "lat", "values": []},
        {"feature": "zz", "values": [1]},
        {"feature": "lat", "values": [1], "ts": [1, 2]},
    ):
        rej = []
        assert v.column(bad, NOW, rej) is None
        assert rej
    # through body(): the same samples as tuples (the Redis stream path)
    acc, rej = v.body({"feature": "lat", "values": [1, 2], "ts": NOW - 5}, NOW)
    assert acc == [("lat", "", 1.0, NOW - 5, None, 0), ("lat", "", 2.0, NOW - 5, None, 1)]
    _, rej = v.body([{"feature": "lat", "values": [1]}], NOW)
    assert rej[0]["reason"] == "invalid_shape"


def test_fast_wide_path_or_declines() -> None:
    v = Validator(
        MonitorSpec.parse(
            {"features": [{"name": "a", "type": "numeric"}, "b", {"name": "c", "type": "categorical"}]}
        )
    )
    v.types["b"] = "numeric"
    cols = v.fast_wide([{"values": {"a": 1, "b": 2.5}}, {"values": {"a": 3.0}}])
    assert cols is not None
    assert cols["a"].tolist() == [1.0, 3.0]
    assert cols["b"].tolist() == [2.5]
    for bad in (
        [{"values": {"a": 1}, "key": "k"}],
        [{"values": {"c": 1.0}}],
        [{"values": {"a": math.nan}}],
        [{"values": {"a": "x"}}],
        [{"values": [1]}],
        [{"feature": "a"}],
        ["x"],
        [],
    ):
        assert v.fast_wide(bad) is None, bad
