"""Seasonality: a daily cycle is normal, a change relative to the same time of day is drift."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwatch.detect import Engine, NumericMonitor, SeasonalProfile
from driftwatch.detect.seasonal import DAY
from driftwatch.vocab.spec import MonitorSpec

MINUTE = 60.0


def _daily(
    days: int, seed: int = 0, amplitude: float = 3.0, step: float = MINUTE
) -> tuple[np.ndarray, np.ndarray]:
    """A busy-by-day service: level 100 + a daily cycle of `amplitude` sd, noise sd 1, every `step` s."""
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000.0 - 1_700_000_000.0 % DAY + np.arange(0, days * DAY, step)
    x = 100 + amplitude * np.sin(2 * np.pi * ts / DAY) + rng.normal(0, 1, ts.size)
    return x, ts


def test_fourteen_days_of_a_daily_cycle_raise_no_alarm() -> None:
    x, ts = _daily(14)
    m = NumericMonitor(seasonality="auto")
    events = [t for i in range(0, x.size, 1_000) for t in m.update(x[i : i + 1_000], ts[i : i + 1_000])]
    assert events == []
    assert m.info()["seasonality"] == "daily"
    assert "daily profile" in m.note


def test_the_same_cycle_without_seasonality_is_a_drift() -> None:
    """The control: with `seasonality: none` the cycle itself alarms (what the profile is for)."""
    x, ts = _daily(4)
    m = NumericMonitor(seasonality="none")
    assert any(t.type.value == "DRIFT_START" for t in m.update(x, ts))


def test_plus_one_sd_at_one_hour_of_the_day_alarms_at_that_hour() -> None:
    x, ts = _daily(10)
    hour = (ts % DAY >= 3 * 3600) & (ts % DAY < 4 * 3600)
    day8 = ts >= ts[0] + 8 * DAY
    x = x + np.where(hour & day8, 1.0, 0.0)  # +1 sd between 03:00 and 04:00, from day 8 on
    m = NumericMonitor(seasonality="auto")
    events = m.update(x, ts)
    starts = [t for t in events if t.type.value == "DRIFT_START"]
    assert starts, "a +1 sd change at one hour of the day went unnoticed"
    first = ts[starts[0].position]
    assert first >= ts[0] + 8 * DAY
    assert 3 * 3600 <= first % DAY < 4 * 3600 + 600  # at that hour (or within minutes after it)


def test_a_fast_stream_does_not_wait_two_days() -> None:
    """At 100 samples a second two days are 17 million samples: no seasonal learning (the slow update
    follows the cycle instead), the stream is Stable after minSamples as always, and the note says why."""
    rng = np.random.default_rng(3)
    ts = 1_700_000_000.0 + np.arange(5_000) / 100.0
    m = NumericMonitor(seasonality="auto")
    m.update(rng.normal(0, 1, 5_000), ts)
    assert m.state.value == "Stable"
    assert "not learned" in m.note


def test_seasonal_checkpoint_round_trip_gives_the_same_events() -> None:
    x, ts = _daily(6, seed=4)
    x[int(x.size * 0.8) :] += 2.0
    whole = NumericMonitor(seasonality="auto", adopt_after=None)
    expected = [(t.type.value, t.position) for t in whole.update(x, ts)]
    a = NumericMonitor(seasonality="auto", adopt_after=None)
    half = x.size // 2
    got = [(t.type.value, t.position) for t in a.update(x[:half], ts[:half])]
    b = NumericMonitor.from_dict(json.loads(json.dumps(a.to_dict())))
    got += [(t.type.value, half + t.position) for t in b.update(x[half:], ts[half:])]
    assert got == expected
    assert expected
    assert expected[0][0] == "DRIFT_START"


def test_engine_passes_timestamps_and_the_spec_chooses() -> None:
    x, ts = _daily(3)
    auto = Engine(MonitorSpec.parse({}), name="m")
    none = Engine(MonitorSpec.parse({"baseline": {"seasonality": "none"}}), name="m")
    assert auto.update("lat", x, ts=ts) == []
    assert none.update("lat", x, ts=ts) != []


def test_profile_fit_holds_out_each_day() -> None:
    """On a stream with no cycle, held-out residuals are noisier than the stream: not useful."""
    rng = np.random.default_rng(5)
    ts = np.arange(0, 3 * DAY, 300.0)
    prof, _ = SeasonalProfile.fit(rng.normal(size=ts.size), ts)
    assert not prof.useful
    assert prof.ratio > 1.0


@pytest.mark.parametrize("mode", ["daily", "weekly"])
def test_explicit_modes_need_two_cycles(mode: str) -> None:
    x, ts = _daily(3 if mode == "daily" else 15, step=1800.0)
    m = NumericMonitor(seasonality=mode)
    m.update(x, ts)
    assert m.state.value == "Stable"
    assert m.info()["seasonality"] == mode


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 1_000),
    five_minutes=st.booleans(),
    cuts=st.lists(st.integers(1, 5_759), min_size=1, max_size=6),
)
def test_events_do_not_depend_on_batching(seed: int, five_minutes: bool, cuts: list[int]) -> None:
    """A seasonal stream with level shifts, spikes and adoptions gives the same events however it is
    cut into batches (the baseline refines, drops post-onset samples, adopts, updates slowly)."""
    x, ts = _daily(20 if five_minutes else 4, seed=seed, step=300.0 if five_minutes else MINUTE)
    rng = np.random.default_rng(seed)
    learned = 576 if five_minutes else 2_880  # two days
    x[learned + 300 :] += 1.5  # during refinement (5-minute data: up to 1,000 samples)
    x[learned + 2_000 :] -= 3.0
    x[rng.random(x.size) < 0.003] *= 1.5

    def events(bounds: list[int]) -> list[tuple[str, int]]:
        m = NumericMonitor(seasonality="auto", adopt_after=600)
        out = []
        for a, b in itertools.pairwise(bounds):
            out += [(t.type.value, a + t.position) for t in m.update(x[a:b], ts[a:b])]
        return out

    whole = events([0, x.size])
    assert len(whole) >= 2
    assert events([0, *sorted(set(cuts)), x.size]) == whole
