"""Per-stream engine state is slotted (docs/decisions.md section 23): no object a stream keeps carries an
instance ``__dict__`` (~0.5-1 kB each, the largest single allocation per stream before), and every
monitor class still round-trips through its checkpoint -- mid-learning, Stable and Drifting -- into
a monitor that goes on exactly as the original does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from driftwatch.detect import Engine
from driftwatch.detect.base import StreamMonitor
from driftwatch.detect.categorical import CategoricalMonitor
from driftwatch.detect.numeric import NumericMonitor
from driftwatch.detect.presets.sustained_zscore import SustainedZScore
from driftwatch.detect.presets.zscore_consecutive import ZScoreConsecutive
from driftwatch.vocab.spec import MonitorSpec


def _slots(obj: object) -> Iterator[str]:
    for cls in type(obj).__mro__:
        yield from cls.__dict__.get("__slots__", ())


def _ours(obj: object) -> Iterator[object]:
    """``obj`` and every object of driftwatch.detect reachable through slots, lists and dicts."""
    seen: set[int] = set()
    todo = [obj]
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, (list, tuple)):
            todo += list(o)
        elif isinstance(o, dict):
            todo += list(o.values())
        elif type(o).__module__.startswith("driftwatch.detect"):
            yield o
            todo += [getattr(o, name) for name in _slots(o) if hasattr(o, name)]


def _numeric(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    return rng.normal(mean, 2.0, n)


# (monitor, a batch maker: (rng, phase) -> values); phase 0 normal, 1 shifted
CASES: list[tuple[str, Any, Any]] = [
    ("numeric", lambda: NumericMonitor(min_samples=100, window=400, budget=10_000), _numeric),
    (
        "categorical",
        lambda: CategoricalMonitor(min_samples=100, window=400, budget=10_000),
        lambda rng, n, shift: rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5] if shift else [0.6, 0.3, 0.1]),
    ),
    ("sustained-zscore", lambda: SustainedZScore(baseline_size=100, window=50), _numeric),
    ("zscore-consecutive", lambda: ZScoreConsecutive(min_samples=100, window=200), _numeric),
]


def _batches(make_values: Any, seed: int) -> list[np.ndarray]:
    """Learning (two batches), Stable, then a shift long enough to be Drifting, then more of it."""
    rng = np.random.default_rng(seed)
    sizes_and_shift = [(60, 0.0), (90, 0.0), (500, 0.0), (300, 12.0), (200, 12.0)]
    if make_values is _numeric:
        return [_numeric(rng, n, 10.0 + shift) for n, shift in sizes_and_shift]
    return [make_values(rng, n, shift) for n, shift in sizes_and_shift]


@pytest.mark.parametrize(("name", "make", "values"), CASES, ids=[c[0] for c in CASES])
def test_no_instance_dict_and_the_checkpoint_round_trips(name: str, make: Any, values: Any) -> None:
    m: StreamMonitor = make()
    batches = _batches(values, seed=5)
    states = []
    for i, batch in enumerate(batches[:-1]):
        m.update(batch)
        states.append(m.state.value)
        objs = list(_ours(m))
        with_dict = sorted({type(o).__qualname__ for o in objs if hasattr(o, "__dict__")})
        assert with_dict == [], f"{name} after batch {i}: {with_dict} keep an instance __dict__"
        # the checkpoint, as Redis stores it (JSON), rebuilds a monitor that continues identically
        d = m.to_dict()
        back = type(m).from_dict(json.loads(json.dumps(d)))
        assert back.to_dict() == d
        twin, nxt = type(m).from_dict(json.loads(json.dumps(d))), batches[i + 1]
        ref = type(m).from_dict(json.loads(json.dumps(d)))
        assert [t.__dict__ for t in twin.update(nxt)] == [t.__dict__ for t in ref.update(nxt)]
        assert twin.to_dict() == ref.to_dict()
    assert "Drifting" in states, f"{name} never drifted: {states}"  # every state was checkpointed


def test_engine_checkpoint_continues_like_the_engine() -> None:
    """An engine with numeric and categorical streams, checkpointed mid-drift and restored, produces
    the same events and the same next checkpoint as the one that never stopped."""
    spec = MonitorSpec.parse({"baseline": {"minSamples": 100, "window": 400}})
    rng = np.random.default_rng(11)
    eng = Engine(spec, name="m")
    for k in ("a", "b"):
        eng.update("lat", rng.normal(10, 2, 700), key=k)
        eng.update("plan", rng.choice(["x", "y"], 700, p=[0.7, 0.3]), key=k)
        eng.update("lat", rng.normal(20, 2, 100), key=k)
    restored = Engine.from_dict(json.loads(json.dumps(eng.to_dict())), spec, name="m")
    more = rng.normal(20, 2, 300)
    assert [e.to_dict() for e in restored.update("lat", more, key="a")] == [
        e.to_dict() for e in eng.update("lat", more, key="a")
    ]
    assert restored.to_dict() == eng.to_dict()
