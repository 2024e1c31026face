"""The pure parts of issue 12's hostile-input fixes: nesting, huge integers, invalid text, rejection
summaries, serialisation that cannot fail on text. The real-process versions are in
tests/reliability/test_sidecar_hostile.py."""

from __future__ import annotations

import orjson
import pytest

from driftwatch.sidecar.decode import MAX_EXAMPLES, BodyError, Rejections, loads, split_ndjson
from driftwatch.sidecar.encode import REPAIRS, dumps
from driftwatch.sidecar.validate import Validator, run_steps
from driftwatch.vocab.spec import MonitorSpec

NOW = 1_800_000_000.0
BIG = 10**400


def validator() -> Validator:
    return Validator(
        MonitorSpec.parse(
            {"features": [{"name": "lat", "type": "numeric"}, {"name": "plan", "type": "categorical"}]}
        )
    )


@pytest.mark.parametrize("depth", [1025, 2000, 100_000])
def test_deep_nesting_is_a_body_error_not_a_recursion(depth: int) -> None:
    with pytest.raises(BodyError, match="nested deeper than 1024 levels"):
        loads(b"[" * depth + b"]" * depth)
    items, bad = run_steps(split_ndjson(b"1\n" + b"{" * depth + b"\n"))
    assert len(items) == 2
    assert [r["index"] for r in bad] == [1]


def test_huge_integers_are_rejected_naming_the_field() -> None:
    v = validator()
    docs = [
        ({"samples": [{"feature": "lat", "value": 1, "ts": BIG}]}, "ts:", "bad_ts"),
        ({"samples": [{"feature": "lat", "value": 1, "id": BIG}]}, "id:", "bad_id"),
        ({"samples": [{"feature": "lat", "value": BIG}]}, "value:", "not_finite"),
        ({"feature": "lat", "values": [1, 2], "ts": [BIG, NOW]}, "ts[0]:", "bad_ts"),
        ({"feature": "lat", "values": [BIG, 2]}, "values[0]:", "not_finite"),
    ]
    for doc, field, reason in docs:
        batch = v.body(doc, NOW)
        assert [(r["error"].split()[0], r["reason"]) for r in batch.rejected] == [(field, reason)], doc
    tel = v.telemetry({"service_id": "s", "latency_ms": 1, "payload_kb": 1, "timestamp": BIG}, NOW)
    assert tel.rejected[0]["error"].startswith("timestamp:")
    # an integer id that fits is still an id
    assert v.body({"samples": [{"feature": "lat", "value": 1, "id": 10**20}]}, NOW).count == 1


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"samples": [{"feature": "plan", "value": "\ud800"}]}, "value:"),
        ({"samples": [{"feature": "plan", "value": "a", "key": "k\udfff"}]}, "key:"),
        ({"samples": [{"feature": "plan", "value": "a", "id": "\udc00"}]}, "id:"),
        ({"values": {"plan": "x\ud800y"}}, "values.plan:"),
        ({"feature": "plan", "values": ["ok", "\ud800"]}, "values[1]:"),
    ],
)
def test_lone_surrogates_are_not_text(doc: dict, field: str) -> None:
    batch = validator().body(doc, NOW)
    assert batch.rejected[0]["error"].startswith(f"{field} not valid text")


def test_rejections_count_everything_and_keep_the_first_examples() -> None:
    r = Rejections()
    for i in range(1000):
        r.append({"index": i, "error": "x", "reason": "late" if i % 2 else "bad_ts"})
    assert len(r) == 1000
    assert r.answer()["rejectedReasons"] == {"bad_ts": 500, "late": 500}
    assert [x["index"] for x in r] == list(range(MAX_EXAMPLES))
    batch = validator().body([0] * 5000, NOW)
    assert batch.rejected.by_reason == {"invalid_shape": 5000}
    assert len(batch.rejected.examples) == MAX_EXAMPLES


def test_serialisation_replaces_invalid_text_instead_of_failing() -> None:
    before = REPAIRS.count
    doc = orjson.loads(dumps({"streams": [{"key": "a\ud800", "\udfff": ["x"]}]}))
    assert doc == {"streams": [{"key": "a\ufffd", "\ufffd": ["x"]}]}
    assert REPAIRS.count == before + 1
    assert dumps({"ok": "plain"}) == b'{"ok":"plain"}'
    assert REPAIRS.count == before + 1
