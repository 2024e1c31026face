"""Body decoding and per-sample validation (driftwatch.sidecar.decode, .validate): pure, no server."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwatch.sidecar.decode import BodyError, is_ndjson, loads, plain_envelope, split_ndjson
from driftwatch.sidecar.validate import ColumnBatch, SampleBatch, Validator, run_steps
from driftwatch.vocab.spec import MonitorSpec

NOW = 1_800_000_000.0


def rows(batch: SampleBatch) -> list[tuple]:
    """(feature, key, value, ts, id, index) per accepted sample, for compact assertions."""
    return [(s.feature, s.key, s.value, s.ts, s.id, s.index) for s in batch.samples]


def body(v: Validator, doc: object) -> tuple[list[tuple], list]:
    batch = v.body(doc, NOW)
    assert isinstance(batch, SampleBatch)
    return rows(batch), list(batch.rejected)


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
    acc, rej = body(
        v,
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
    acc, rej = body(v, {"key": "a", "id": "w", "values": {"lat": 2, "plan": "basic", "zzz": 1}})
    assert [(s[0], s[2], s[4]) for s in acc] == [("lat", 2.0, "w"), ("plan", "basic", "w")]
    assert rej[0]["error"].startswith("values.zzz:")
    acc, rej = body(v, [{"values": {"lat": 1}}, {"feature": "lat", "value": 3}, "x"])
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
    acc, rej = body(v, {"samples": [{"feature": "a", "value": 1}, {"feature": "a", "value": "x"}]})
    assert len(acc) == 1
    assert rej[0]["reason"] == "wrong_type"
    acc, rej = body(v, {"samples": [{"feature": "b", "value": "x"}, {"feature": "c", "value": 1}]})
    assert len(acc) == 1
    assert rej[0]["reason"] == "too_many_features"
    _, rej = body(v, {"samples": [{"feature": "bad name!", "value": 1}]})
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
    _, rej = body(
        v, {"samples": [{"feature": "lat", "value": 1e200}, {"feature": "lat", "value": -(10**160)}]}
    )
    assert [r["reason"] for r in rej] == ["not_finite", "not_finite"]
    assert v.fast_numeric([["lat", 1]]) is None
    assert v.fast_numeric([]) is None


def test_ndjson_and_telemetry() -> None:
    items, bad = run_steps(split_ndjson(b'{"feature": "lat", "value": 1}\n\n{bad\n'))
    assert len(items) == 2
    assert bad[0]["index"] == 1
    assert is_ndjson("application/x-ndjson; charset=utf-8")
    assert not is_ndjson("application/json")
    v = Validator(MonitorSpec.parse({}))
    tel = v.telemetry(
        [
            {"service_id": "s1", "latency_ms": 5, "payload_kb": 1.5, "timestamp": "2026-11-23T10:00:00Z"},
            {"service_id": "", "latency_ms": 5, "payload_kb": 1},
            {"service_id": "s2", "latency_ms": None, "payload_kb": 1},
        ],
        NOW,
    )
    acc, rej = rows(tel), tel.rejected
    assert [(s[0], s[1], s[2]) for s in acc] == [
        ("latency_ms", "s1", 5.0),
        ("payload_kb", "s1", 1.5),
        ("payload_kb", "s2", 1.0),
    ]
    assert acc[0][3] == datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp()
    assert [r["reason"] for r in rej] == ["bad_key", "missing_field"]


def test_column_form_validates_as_arrays_and_names_positions() -> None:
    v = declared()
    col = v.column({"feature": "lat", "values": [1, 2.5, math.nan, "x", 4], "key": "k", "id": "b"}, NOW)
    rej = col.rejected
    assert (col.feature, col.key, col.id, col.ts) == ("lat", "k", "b", None)
    np.testing.assert_array_equal(col.values, [1.0, 2.5, 4.0])
    assert col.index.tolist() == [0, 1, 4]
    assert [(r["index"], r["reason"]) for r in rej] == [(2, "not_finite"), (3, "wrong_type")]
    assert rej[0]["error"].startswith("values[2]:")
    col = v.column({"feature": "lat", "values": [1.0, 2.0], "ts": [NOW, -1]}, NOW)
    assert col.count
    assert col.ts is not None
    assert col.ts.tolist() == [NOW]
    assert col.rejected[0]["error"].startswith("ts[1]:")
    col = v.column({"feature": "plan", "values": ["a", 3]}, NOW)
    assert col.count
    assert col.values == ["a", "3"]
    for bad in (
        {"feature": "lat", "values": []},
        {"feature": "zz", "values": [1]},
        {"feature": "lat", "values": [1], "ts": [1, 2]},
    ):
        col = v.column(bad, NOW)
        assert not col.count
        assert col.rejected
    # through body() (every source): the column form stays columnar
    col = v.body({"feature": "lat", "values": [1, 2], "ts": NOW - 5}, NOW)
    assert isinstance(col, ColumnBatch)
    assert (col.feature, col.key, col.values.tolist(), col.index.tolist()) == ("lat", "", [1.0, 2.0], [0, 1])
    assert col.ts is not None
    assert col.ts.tolist() == [NOW - 5, NOW - 5]
    _, rej = body(v, [{"feature": "lat", "values": [1]}])
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
    cols = v.fast_wide([{"values": {"a": 1}}, {"values": {"b": 2.0}}])  # as many features, not the same
    assert cols is not None
    assert (cols["a"].tolist(), cols["b"].tolist()) == ([1.0], [2.0])
    cols = v.fast_wide([{"values": {"a": 1, "b": 2}}, {"values": {"a": 3.5, "b": -1}}])  # the usual case
    assert cols is not None
    assert (cols["a"].tolist(), cols["b"].tolist()) == ([1.0, 3.5], [2.0, -1.0])
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


PLAIN_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([True, None, "1.5", [1.0], {"value": 1.0}]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "feature": st.sampled_from(["lat", "lat", "f1", "plan", 'la"t', "lat\\"]),
                "value": PLAIN_VALUES,
            },
            optional={"key": st.just("k")},
        ),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
)
def test_plain_envelope_reads_exactly_what_the_json_says_or_declines(samples: list, compact: bool) -> None:
    """The byte-level reader of the common batch never disagrees with a JSON parser: whatever it
    returns is the one feature and the numbers of the body; anything else is left to the general path."""
    body = json.dumps({"samples": samples}, separators=(",", ":") if compact else None).encode()
    got = plain_envelope(body)
    plain = (
        all(list(s) == ["feature", "value"] for s in samples) and len({s["feature"] for s in samples}) == 1
    )
    plain = (
        plain and all(type(s["value"]) in (int, float) for s in samples) and samples[0]["feature"] == "lat"
    )
    if got is None:
        assert not plain
        return
    feature, numbers = got
    assert plain or feature != "lat"  # only ever a plain batch (an odd name is the validator's to refuse)
    assert feature == samples[0]["feature"]
    assert numbers == [s["value"] for s in samples]
    assert [type(x) for x in numbers] == [type(s["value"]) for s in samples]


def test_plain_envelope_declines_what_it_cannot_read_exactly() -> None:
    ok = b'{"samples":[{"feature":"lat","value":1},{"feature":"lat","value":2.5e3}]}'
    assert plain_envelope(ok) == ("lat", [1, 2500.0])
    for bad in (
        b'{"samples":[{"feature":"lat","value":1},{"feature":"lat","value":1e999}]}',
        b'{"samples":[{"feature":"lat","value":1},{"feature":"lat","value":NaN}]}',
        b'{"samples":[{"feature":"lat","value":1},{"feature":"lat","value":1,"key":"k"}]}',
        b'{"samples":[{"feature":"lat","value":1},{"feature":"lot","value":1}]}',
        b'{"samples":[{"value":1,"feature":"lat"}]}',
        b'{"samples":[{"feature":"lat","value":1,,2}]}',
        b'{"samples":[{"feature":"lat","value":1},{"feature":"lat","value":1,2}]}',  # not JSON
        b'{"samples":[{"feature":"f1","value":1},{"feature":"f1","value":1,2}]}',
        b'{"samples":[{"feature":"lat","value":1},{"feature":"lat","value":1"2}]}',
        b'{"samples":[{"feature":"lat","value":1},{"feature":"lat","value":1}2}]}',
        b'{"samples":[{"feature":"lat","value":1},{"featrue":"lat","value":1}]}',
        b'{"samples":[{"feature":"lat","value":}]}',
        b'{"samples": [{"feature": "lat", "value": 1}], "x": 1}',
    ):
        assert plain_envelope(bad) is None, bad
    v = declared()
    assert v.plain("lat", [1, 2.5]) is not None
    assert v.plain("plan", [1.0]) is None  # categorical
    assert v.plain("lat", [1e200]) is None  # the general path names the value


def test_plain_envelope_reads_numbers_with_an_exponent_and_names_with_digits() -> None:
    """The one-pass separator delete falls back to ``bytes.replace`` when a number holds an ``e`` (a
    byte of the separator too) or the feature name holds a digit: same numbers either way."""
    values = [1.5, 2e-05, -3, 4.25e21, 7.0] * 300
    for feature in ("lat", "f1", "e9"):
        for sep in ((",", ":"), None):
            doc = {"samples": [{"feature": feature, "value": v} for v in values]}
            assert plain_envelope(json.dumps(doc, separators=sep).encode()) == (feature, values)


def test_the_all_accepted_answer_is_what_the_encoder_writes() -> None:
    from driftwatch.sidecar.app import ALL_ACCEPTED
    from driftwatch.sidecar.decode import Rejections
    from driftwatch.sidecar.encode import dumps

    for n in (0, 2, 1000, 123456):
        assert ALL_ACCEPTED % n == dumps({"accepted": n, **Rejections().answer()})
