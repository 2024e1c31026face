"""spec.baseline.mode: fromWindow (timestamps pick the baseline) and fromConfigMap (seed_baseline)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftwatch.detect import Engine, InputError
from driftwatch.detect.baseline_data import BaselineDataError, parse_baseline_data
from driftwatch.detect.engine import NO_TS
from driftwatch.detect.summaries import summary_from_dict
from driftwatch.vocab.spec import ConfigError, MonitorSpec

T0 = 1_700_000_000.0
END_ISO = "2023-11-14T22:46:40Z"  # T0 + 2000


def _base(s: object) -> dict[str, float]:
    return summary_from_dict(s.baseline).describe()  # type: ignore[attr-defined, no-any-return]


def _window_spec(**extra: object) -> MonitorSpec:
    return MonitorSpec.parse(
        {
            "baseline": {
                "mode": "fromWindow",
                "start": str(T0 + 1000),
                "end": "2023-11-14T22:46:40Z",
                **extra,
            },
            "sensitivity": {"falseAlarmsPer": 1_000_000},
        }
    )


def test_config_parses_and_validates_window() -> None:
    b = _window_spec().baseline
    assert (b.start_ts, b.end_ts) == (T0 + 1000, T0 + 2000)
    for bad, field in [
        ({"start": "yesterday", "end": "1"}, "spec.baseline.start"),
        ({"start": "1", "end": "not a time"}, "spec.baseline.end"),
        ({"start": "2", "end": "1"}, "spec.baseline.end"),
        ({"start": "1", "end": "1"}, "spec.baseline.end"),
        ({"start": "1"}, "spec.baseline.end"),
        ({"end": "1"}, "spec.baseline.start"),
    ]:
        with pytest.raises(ConfigError) as e:
            MonitorSpec.parse({"baseline": {"mode": "fromWindow", **bad}})
        assert e.value.field == field


def test_from_window_uses_exactly_the_window() -> None:
    rng = np.random.default_rng(1)
    eng = Engine(_window_spec(), name="w")
    # 500 samples before start: a wildly different level that must not be the baseline
    ts = T0 + np.arange(2500, dtype=float)  # 1 sample per second: [1000, 2000) is rows 1000..1999
    x = np.concatenate([rng.normal(500, 5, 1000), rng.normal(50, 5, 1000), rng.normal(50, 5, 500)])
    ev = eng.update("lat", x[:1999], ts=ts[:1999])
    assert ev == []
    (s,) = eng.streams()
    assert s.state == "Initializing"
    assert s.baseline_source == "fromWindow"
    assert "999 values in it so far, 1000 earlier ones ignored" in s.note
    # the sample at ts = end is the first scored: the baseline closes with rows 1000..1999 in it
    assert eng.update("lat", x[1999:2000], ts=ts[1999:2000]) == []
    (s,) = eng.streams()
    assert s.state == "Initializing"  # 999 + nothing yet: end not reached
    ev = eng.update("lat", x[2000:2500], ts=ts[2000:2500])
    assert ev == []
    (s,) = eng.streams()
    assert s.state == "Stable"
    assert _base(s)["n"] == 1000
    assert abs(_base(s)["mean"] - 50) < 1
    assert s.samples == 1500  # 1000 baseline + 500 scored; the 1000 before start are not samples
    assert "1000 values in the window: baseline fitted from 1000 values" in s.note
    # a shift after the window is detected against the window's baseline
    ev = eng.update("lat", rng.normal(60, 5, 300), ts=T0 + 2500 + np.arange(300.0))
    assert [e.type for e in ev] == ["DRIFT_START"]


def test_from_window_first_scored_sample_position_in_a_batch() -> None:
    """One batch spanning the window: events index the batch as passed in."""
    rng = np.random.default_rng(2)
    eng = Engine(_window_spec(), name="w")
    ts = T0 + 500 + np.arange(3000, dtype=float)  # rows 500..1499 are in the window
    x = np.concatenate([rng.normal(0, 1, 1500), rng.normal(0, 1, 500), rng.normal(4, 1, 1000)])
    ev = eng.update("v", x, ts=ts)
    assert [e.type for e in ev][:1] == ["DRIFT_START"]
    assert 2000 <= ev[0].index < 2030  # positions of the whole batch, not of its scored tail
    assert ev[0].timestamp == ts[ev[0].index]
    assert ev[0].onset is not None
    assert 1500 <= ev[0].onset <= ev[0].index
    (s,) = eng.streams()
    assert s.samples == 1000 + 1500


def test_from_window_too_few_falls_back_to_learning() -> None:
    rng = np.random.default_rng(3)
    eng = Engine(_window_spec(), name="w")
    eng.update("v", rng.normal(0, 1, 40), ts=T0 + 1000 + np.arange(40.0))  # 40 in the window
    eng.update("v", rng.normal(0, 1, 59), ts=T0 + 3000 + np.arange(59.0))  # after end: learning
    (s,) = eng.streams()
    assert s.state == "Initializing"
    assert "fewer than minSamples (100): learning the rest of the baseline from the stream" in s.note
    eng.update("v", rng.normal(0, 1, 1), ts=[T0 + 4000])  # the 100th baseline sample
    assert eng.streams()[0].state == "Stable"


def test_from_window_rejects_samples_without_ts() -> None:
    eng = Engine(_window_spec(), name="w")
    assert eng.update("v", np.ones(10)) == []
    eng.update("v", np.ones(3), ts=[T0 + 1000, np.nan, T0 + 1001])
    eng.update("v", [np.nan], ts=[T0 + 1002])  # a NaN value in the window: rejected, not checkpointed
    json.dumps(eng.to_dict(), allow_nan=False)
    (s,) = eng.streams()
    assert s.rejected == 12
    assert s.rejected_reasons[NO_TS] == 10
    assert "no timestamp" in NO_TS
    assert "fromWindow" in NO_TS
    assert sum(s.rejected_reasons.values()) == 12
    assert s.state == "Initializing"


def test_from_window_checkpoint_round_trip_is_exact() -> None:
    rng = np.random.default_rng(4)
    spec = _window_spec()
    x = np.concatenate([rng.normal(0, 1, 1500), rng.normal(0, 1, 1500), rng.normal(1.5, 1, 1000)])
    ts = T0 + np.arange(x.size, dtype=float)
    full = Engine(spec, name="w")
    ev_full = []
    for i in range(0, x.size, 300):
        ev_full += [e.to_dict() for e in full.update("v", x[i : i + 300], ts=ts[i : i + 300])]
    eng = Engine(spec, name="w")
    ev = []
    for i in range(0, x.size, 300):
        eng = Engine.from_dict(json.loads(json.dumps(eng.to_dict())), spec)  # mid-window too
        ev += [e.to_dict() for e in eng.update("v", x[i : i + 300], ts=ts[i : i + 300])]
    assert ev == ev_full
    assert ev_full
    assert [s.to_dict() for s in eng.streams()] == [s.to_dict() for s in full.streams()]


def test_seed_baseline_makes_stable_and_is_used() -> None:
    rng = np.random.default_rng(5)
    spec = MonitorSpec.parse(
        {
            "baseline": {"mode": "fromConfigMap", "configMap": "ref"},
            "sensitivity": {"falseAlarmsPer": 1_000_000},
        }
    )
    eng = Engine(spec, name="s")
    eng.seed_baseline("v", rng.normal(100, 10, 400))
    eng.seed_baseline("route", list(rng.choice(["a", "b"], 300)), key="eu")
    by = {(s.feature, s.key): s for s in eng.streams()}
    assert by[("v", "")].state == "Stable"
    assert by[("route", "eu")].state == "Stable"
    assert by[("v", "")].baseline_source == "fromConfigMap"
    assert _base(by[("v", "")])["n"] == 400
    assert by[("v", "")].samples == 400
    # the very first streamed samples are scored against the seed
    ev = eng.update("v", rng.normal(130, 10, 50))
    assert [e.type for e in ev] == ["DRIFT_START"]
    with pytest.raises(InputError, match="seed_baseline must come before update"):
        eng.seed_baseline("v", [1.0] * 200)
    # too few: the start of a learned baseline
    eng.seed_baseline("w", [1.0, 2.0, np.nan] * 20)
    s = next(s for s in eng.streams() if s.feature == "w")
    assert s.state == "Initializing"
    assert s.rejected == 20
    assert "fewer than minSamples" in s.note
    # a stream with no seed in fromConfigMap mode says where its baseline came from
    eng.update("x", rng.normal(0, 1, 10))
    s = next(s for s in eng.streams() if s.feature == "x")
    assert s.baseline_source == "learned"
    assert "no baseline for this stream in ConfigMap 'ref'" in s.note
    # round trip of a seeded engine stays exact
    back = Engine.from_dict(json.loads(json.dumps(eng.to_dict())), spec)
    y = rng.normal(100, 10, 2000)
    assert [e.to_dict() for e in back.update("v", y)] == [e.to_dict() for e in eng.update("v", y)]


def test_parse_baseline_data() -> None:
    got = parse_baseline_data(
        {"lat.ms": "[1, 2.5, null]", "lat.ms.eu": "# ref\n1\n2\n\n3\n", "route": '["a", "b"]'},
        features=["lat.ms", "route"],
    )
    assert got[("lat.ms", "eu")] == [1.0, 2.0, 3.0]
    assert got[("route", "")] == ["a", "b"]
    assert np.isnan(got[("lat.ms", "")][2])
    for bad, msg in [
        ("[1, true]", "booleans"),
        ("[1, ", "invalid JSON"),
        ("1\nx", "mixes"),
        ("  ", "no values"),
    ]:
        with pytest.raises(BaselineDataError, match=msg) as e:
            parse_baseline_data({"lat": bad})
        assert "'lat'" in str(e.value)
