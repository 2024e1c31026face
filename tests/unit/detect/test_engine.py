"""Engine and monitors: state machine, deterministic ids, checkpoints, bad input, key cap, aggregate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftwatch.detect import Engine, InputError, State, aggregate, event_id
from driftwatch.detect.engine import OVERFLOW_KEY
from driftwatch.detect.numeric import NumericMonitor
from driftwatch.detect.registry import presets, register_preset
from driftwatch.vocab.spec import MonitorSpec

SPEC = MonitorSpec.parse({})
#: null-data tests use a rarer false-alarm budget so "quiet" is a safe assertion, not luck
QUIET = MonitorSpec.parse({"sensitivity": {"falseAlarmsPer": 1_000_000}})


def _stream(seed: int = 0) -> np.ndarray:
    """Null, a 1.5 sigma shift, null again."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(50, 5, 3000), rng.normal(57.5, 5, 400), rng.normal(50, 5, 1600)])


def test_state_machine_and_deterministic_ids() -> None:
    x = _stream()
    eng = Engine(QUIET, name="payments")
    assert eng.update("lat", x[:50]) == []
    assert eng.streams()[0].state == State.INITIALIZING
    events = eng.update("lat", x[50:])
    types = [e.type for e in events]
    assert types[:2] == ["DRIFT_START", "DRIFT_END"], types
    start, end = events[0], events[1]
    assert 3000 <= start.index < 3060
    assert start.onset is not None
    assert 2980 <= start.onset <= start.index
    assert start.detector.startswith("cusum-mean-up")
    assert start.severity == "critical"
    assert end.index > 3400
    assert start.id == event_id("payments", "lat", "", "DRIFT_START", start.index)
    ev = start.evidence
    assert ev["current"]["mean"] > ev["baseline"]["mean"] + 3
    assert {"p50", "p95", "p99", "std"} <= set(ev["baseline"])
    # a replay, batched differently, yields the same ids
    again = Engine(QUIET, name="payments")
    ids = [e.id for i in range(0, x.size, 777) for e in again.update("lat", x[i : i + 777])]
    assert ids == [e.id for e in events]
    assert eng.streams()[0].state == State.STABLE


def test_round_trip_mid_stream_gives_identical_events() -> None:
    x = _stream(1)
    ref = Engine(SPEC, name="m")
    ref_events = [e.to_dict() for i in range(0, x.size, 500) for e in ref.update("lat", x[i : i + 500])]
    eng = Engine(SPEC, name="m")
    got = []
    for i in range(0, x.size, 500):
        d = json.loads(json.dumps(eng.to_dict()))  # through JSON, as the sidecar checkpoints
        eng = Engine.from_dict(d, SPEC, name="m")
        assert eng.to_dict() == d
        got += [e.to_dict() for e in eng.update("lat", x[i : i + 500])]
    assert got == ref_events
    assert ref_events


def test_nan_and_inf_are_rejected_not_used() -> None:
    eng = Engine(SPEC)
    x = np.random.default_rng(2).normal(size=500)
    x[[3, 10, 400]] = [np.nan, np.inf, -np.inf]
    assert eng.update("f", x) == []
    st = eng.streams()[0]
    assert st.rejected == 3
    assert st.samples == 497
    assert eng.update("f", [1.0, None, 2.0]) == []  # None in a list counts as NaN
    assert eng.streams()[0].rejected == 4


def test_strings_into_numeric_raise_and_apply_nothing() -> None:
    eng = Engine(SPEC)
    eng.update("f", np.arange(10.0))
    before = eng.to_dict()
    with pytest.raises(InputError) as err:
        eng.update("f", [1.0, "oops", 3.0])
    assert err.value.feature == "f"
    assert "oops" in str(err.value)
    with pytest.raises(InputError):
        eng.update("f", np.array(["a", "b"]))
    assert eng.to_dict() == before
    declared = Engine(MonitorSpec.parse({"features": [{"name": "x", "type": "numeric"}]}))
    with pytest.raises(InputError):
        declared.update("x", ["a"])
    with pytest.raises(InputError):
        declared.update("undeclared", [1.0])
    assert declared.streams() == []


def test_type_inference() -> None:
    eng = Engine(SPEC)
    eng.update("n", [1, 2.5, 3])
    eng.update("c", ["a", "b"])
    eng.update("codes", np.array([200, 500]))
    kinds = {s.feature: s.type for s in eng.streams()}
    assert kinds == {"n": "numeric", "c": "categorical", "codes": "numeric"}


def test_key_cap_folds_into_overflow() -> None:
    spec = MonitorSpec.parse({"keys": {"label": "endpoint", "maxKeys": 2}})
    eng = Engine(spec)
    for key in ["a", "b", "c", "d"]:
        eng.update("lat", np.ones(5), key=key)
    keys = sorted(s.key for s in eng.streams())
    assert keys == [OVERFLOW_KEY, "a", "b"]
    assert eng.overflowed == 10
    assert next(s for s in eng.streams() if s.key == OVERFLOW_KEY).samples == 10


def test_index_and_ts_are_reported() -> None:
    x = _stream(3)
    eng = Engine(QUIET, name="r")
    idx = np.arange(x.size) * 10 + 7
    ts = 1e9 + np.arange(x.size, dtype=float)
    events = []
    for i in range(0, x.size, 256):
        events += eng.update("lat", x[i : i + 256], index=idx[i : i + 256], ts=ts[i : i + 256])
    start = events[0]
    assert (start.index - 7) % 10 == 0
    assert start.timestamp == 1e9 + (start.index - 7) // 10
    assert start.onset is not None
    assert (start.onset - 7) % 10 == 0
    assert start.onset <= start.index
    with pytest.raises(InputError):
        eng.update("lat", [1.0, 2.0], index=[1])


def test_categorical_stream_names_emerged() -> None:
    rng = np.random.default_rng(4)
    eng = Engine(SPEC, name="m")
    assert eng.update("plan", list(rng.choice(["free", "pro", "team"], 3000, p=[0.6, 0.3, 0.1]))) == []
    events = eng.update("plan", list(rng.choice(["free", "pro", "enterprise"], 600, p=[0.5, 0.2, 0.3])))
    assert events
    assert events[0].type == "DRIFT_START"
    assert events[0].detector == "g-test"
    assert events[0].evidence["emerged"] == ["enterprise"]
    assert "team" in events[0].evidence["vanished"]
    d = json.loads(json.dumps(eng.to_dict()))
    assert Engine.from_dict(d, SPEC).to_dict() == d


def test_null_streams_stay_quiet() -> None:
    rng = np.random.default_rng(5)
    eng = Engine(QUIET)
    assert eng.update("g", rng.normal(size=20_000)) == []
    assert eng.update("ln", rng.lognormal(3, 1, 20_000)) == []
    assert eng.update("c", list(rng.choice(list("abcd"), 20_000))) == []


def test_summary_is_json_safe_and_aggregates() -> None:
    rng = np.random.default_rng(6)
    pods = []
    for p in range(4):
        eng = Engine(SPEC, name="m")
        eng.update("lat", rng.normal(10, 1, 3000))
        eng.update("plan", list(rng.choice(["a", "b"], 3000)))
        if p < 2:  # half the pods see a shift
            eng.update("lat", rng.normal(12, 1, 1500))
        s = json.loads(json.dumps(eng.summary()))
        s["pod"] = f"pod-{p}"
        pods.append(s)
    status = {f.name: f for f in aggregate(pods, SPEC)}
    assert status["lat"].state == "Drifting"
    assert status["lat"].pods == 4
    assert status["lat"].severity == "critical"
    assert status["plan"].state == "Stable"
    d = status["lat"].to_dict()
    assert {"name", "key", "state", "score", "severity", "detector", "pods", "evidence"} <= set(d)
    json.dumps(d)


def test_state_size_is_bounded() -> None:
    m = NumericMonitor()
    rng = np.random.default_rng(7)
    for _ in range(5):
        m.update(rng.lognormal(2, 1.5, 20_000))
        assert len(json.dumps(m.to_dict())) <= 16_384


def test_registry_falls_back_and_registers() -> None:
    assert "auto" in presets()

    class Custom(NumericMonitor):
        pass

    def factory(spec: MonitorSpec, feature: object, kind: str) -> Custom | None:
        return Custom() if kind == "numeric" else None

    register_preset("test-custom", factory, Custom)
    spec = MonitorSpec.parse({})
    object.__setattr__(spec, "preset", "test-custom")
    eng = Engine(spec)
    eng.update("x", [1.0, 2.0])
    eng.update("c", ["a"])
    kinds = {s.feature: type(s) for s in eng._streams.values()}
    assert type(eng._streams[("", "x")].monitor) is Custom
    assert type(eng._streams[("", "c")].monitor).__name__ == "CategoricalMonitor"
    assert Engine.from_dict(eng.to_dict(), spec).to_dict() == eng.to_dict()
    assert kinds


def test_slow_update_follows_a_small_level_change() -> None:
    """While Stable the frozen baseline still creeps towards the stream (time constant ~1e5)."""
    rng = np.random.default_rng(8)
    m = NumericMonitor(budget=100_000_000)
    m.update(rng.normal(0.0, 1.0, 2_000))
    z0 = float(m.standardised(np.array([0.15]))[0])
    m.update(rng.normal(0.15, 1.0, 400_000))  # too small to alarm at this budget
    assert m.state == State.STABLE
    # the new level has moved most of the way towards the baseline's centre (0 in detector units)
    assert z0 > 0.1
    assert abs(float(m.standardised(np.array([0.15]))[0])) < z0 / 2


def test_categorical_state_size_is_bounded() -> None:
    """Many long category names: names are truncated and capped, the window ring is name-coded."""
    from driftwatch.detect.categorical import CategoricalMonitor

    rng = np.random.default_rng(9)
    names = [f"{i:04d}-" + "x" * 200 for i in range(500)]
    m = CategoricalMonitor()
    for _ in range(4):
        m.update(list(rng.choice(names, 3000)))
    d = json.loads(json.dumps(m.to_dict()))
    assert len(json.dumps(d)) <= 16_384
    again = CategoricalMonitor.from_dict(d)
    assert json.loads(json.dumps(again.to_dict())) == d


def test_extreme_magnitudes() -> None:
    """Scale-invariant detection; |x| > 1e150 rejected like NaN; state stays valid JSON."""
    x = np.random.default_rng(10).normal(1.0, 0.1, 3000)
    a = [(t.type, t.position) for t in NumericMonitor().update(x * 1e140)]
    b = [(t.type, t.position) for t in NumericMonitor().update(x)]
    assert a == b
    eng = Engine(SPEC)
    eng.update("f", np.r_[x, 1e200, -1e300])
    st = eng.streams()[0]
    assert st.rejected == 2
    assert st.samples == 3000
    eng.update("tiny", x * 1e-300)
    text = json.dumps(eng.to_dict()) + json.dumps(eng.summary())
    assert "Infinity" not in text
    assert "NaN" not in text


def test_a_stream_the_checkpoint_cannot_restore_learns_again() -> None:
    """An older checkpoint format (or a damaged entry) costs that stream its state, not the engine."""
    eng = Engine(SPEC, name="m")
    eng.update("a", np.random.default_rng(1).normal(0, 1, 500))
    eng.update("b", np.random.default_rng(2).normal(0, 1, 500))
    d = json.loads(json.dumps(eng.to_dict()))
    d["streams"][0]["state"] = {"params": [100, 1000], "detectors": []}  # the pre-kernel layout, cut
    back = Engine.from_dict(d, SPEC, "m")
    assert back.unreadable == ["a/"]
    assert [s.feature for s in back.streams()] == ["b"]
    assert back.update("a", np.zeros(10)) == []  # starts over
