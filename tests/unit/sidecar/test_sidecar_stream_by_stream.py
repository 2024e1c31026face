"""Whole-engine documents are built stream by stream, so every stream's dict is never held at once
(docs/decisions.md section 23): a view (``views._build`` over ``Engine.iter_streams``), the checkpoint
(``state.encode`` over ``Engine.iter_stream_dicts``) and the published summary (``Engine.iter_summaries``)
are exactly what the whole lists give."""

from __future__ import annotations

import numpy as np
import orjson

from driftwatch.detect import Engine
from driftwatch.sidecar import state
from driftwatch.sidecar.encode import dumps, dumps_array, fragment_array, with_member
from driftwatch.sidecar.redis_sync import _summary
from driftwatch.sidecar.views import _build, _row
from driftwatch.vocab.spec import MonitorSpec


def _text(fragment: orjson.Fragment) -> bytes:
    return orjson.dumps(fragment)


def _engine() -> Engine:
    eng = Engine(MonitorSpec.parse({"baseline": {"minSamples": 100}}), name="m")
    rng = np.random.default_rng(3)
    for key in ("a", "b", "c"):
        eng.update("lat", rng.normal(10, 2, 300), key=key)
        eng.update("plan", rng.choice(["x", "y"], 300), key=key)
    eng.update("lat", rng.normal(30, 2, 100), key="b")  # one stream Drifting
    return eng


def test_rows_and_status_json_equal_the_whole_list() -> None:
    eng = _engine()
    whole = eng.streams()
    view = _build(eng, 7, json=True)
    assert view.version == 7
    assert view.rows == [_row(s) for s in whole]
    assert view.json is not None
    assert _text(view.json) == orjson.dumps([s.to_dict() for s in whole], option=orjson.OPT_SERIALIZE_NUMPY)
    assert _build(eng, 8, json=False).json is None


def test_arrays_and_members_are_json() -> None:
    for items in ([], [1], [{"a": [1, 2]}, "x", None]):
        assert orjson.loads(bytes(dumps_array(iter(items)))) == items
        assert orjson.loads(_text(fragment_array(items))) == items
        assert orjson.loads(with_member(b'{"v":1}', "items", dumps_array(items))) == {"v": 1, "items": items}


def test_checkpoint_and_summary_equal_the_whole_documents() -> None:
    eng = _engine()
    side = state.SidecarState(
        types={}, features=[], keys=[], watermarks={}, ingested={}, rejected={}, events={}, stream=[]
    )
    doc = orjson.loads(state.encode(eng, side, "pod-0"))
    assert doc["engine"] == orjson.loads(dumps(eng.to_dict()))
    assert len(doc["engine"]["streams"]) == 6
    published = orjson.loads(_summary(eng, "pod-0"))
    assert {k: v for k, v in published.items() if k not in ("pod", "time")} == orjson.loads(
        dumps(eng.summary())
    )
