"""A view is built stream by stream (``views._build`` over ``Engine.iter_streams``, so every stream's
status is never held at once): its rows and its status JSON are exactly what the whole list gives."""

from __future__ import annotations

import numpy as np
import orjson

from driftwatch.detect import Engine
from driftwatch.sidecar.encode import dumps_list, join_list
from driftwatch.sidecar.views import _build, _row
from driftwatch.vocab.spec import MonitorSpec


def _text(fragment: orjson.Fragment) -> bytes:
    return orjson.dumps(fragment)


def test_rows_and_status_json_equal_the_whole_list() -> None:
    spec = MonitorSpec.parse({"baseline": {"minSamples": 100}})
    eng = Engine(spec, name="m")
    rng = np.random.default_rng(3)
    for key in ("a", "b", "c"):
        eng.update("lat", rng.normal(10, 2, 300), key=key)
        eng.update("plan", rng.choice(["x", "y"], 300), key=key)
    eng.update("lat", rng.normal(30, 2, 100), key="b")  # one stream Drifting
    whole = eng.streams()
    view = _build(eng, 7, json=True)
    assert view.version == 7
    assert view.rows == [_row(s) for s in whole]
    assert view.json is not None
    assert _text(view.json) == _text(dumps_list(s.to_dict() for s in whole))
    assert _build(eng, 8, json=False).json is None


def test_join_list_is_a_json_array() -> None:
    for items in ([], [1], [{"a": [1, 2]}, "x", None]):
        assert orjson.loads(_text(join_list([orjson.dumps(i) for i in items]))) == items
