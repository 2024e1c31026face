"""The compatibility presets, pinned sample by sample.

Hand-built sequences check each edge of the rules (5 vs 4 consecutive, 10 of 20 sliding, recovery at
exactly 50, refresh cadence, strict/inclusive comparisons); a deliberately naive per-sample reference
implementation, written straight from the docstrings, checks random streams under every batching.
"""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest

from driftwatch.detect.base import EventType, State
from driftwatch.detect.presets import SustainedZScore, ZScoreConsecutive

# --- reference implementations: one sample at a time, no vectorisation ------------------------------------


class RefZScoreConsecutive:
    def __init__(self, min_samples=100, window=1000, refresh=50, recovery=50):
        self.min_samples, self.refresh, self.recovery = min_samples, refresh, recovery
        self.buf: deque[float] = deque(maxlen=window)
        self.n = 0
        self.state = "init"
        self.mu = self.sd = 0.0
        self.run = 0
        self.win: deque[bool] = deque(maxlen=20)
        self.normal = 0

    def feed(self, x: float) -> str | None:
        """Returns 'start'/'end' when this sample is a transition."""
        if not np.isfinite(x):
            return None
        self.n += 1
        ev = None
        if self.state == "init":
            self.buf.append(x)
            if self.n >= self.min_samples:
                self._refresh()
                self.state = "stable"
            return None
        az = (0.0 if x == self.mu else np.inf) if self.sd == 0 else abs((x - self.mu) / self.sd)
        if self.state == "stable":
            self.run = self.run + 1 if az > 3 else 0
            self.win.append(az > 2.5)
            if self.run >= 5 or sum(self.win) >= 10:
                ev, self.state = "start", "drifting"
                self.run, self.normal = 0, 0
                self.win.clear()
        else:
            self.normal = self.normal + 1 if az <= 2 else 0
            if self.normal >= self.recovery:
                ev, self.state = "end", "stable"
                self.run, self.normal = 0, 0
                self.win.clear()
        self.buf.append(x)
        if self.state == "stable" and self.n % self.refresh == 0:
            self._refresh()
        return ev

    def _refresh(self) -> None:
        a = np.array(self.buf)
        self.mu, self.sd = float(np.mean(a)), float(np.std(a))


class RefSustained:
    def __init__(self, baseline_size=1000, window=50, z=3.0, basis="se", ratio=2.0, n=3, m=5, step=1):
        self.b, self.w, self.z, self.basis, self.r, self.nv, self.mr, self.step = (
            baseline_size,
            window,
            z,
            basis,
            ratio,
            n,
            m,
            step,
        )
        self.all: list[float] = []
        self.state = "init"
        self.viol = self.normal = 0

    def feed(self, x: float) -> str | None:
        if not np.isfinite(x):
            return None
        self.all.append(x)
        n = len(self.all)
        if n == self.b:
            a = np.array(self.all)
            self.mu, self.sd = float(np.mean(a)), float(np.std(a))
            self.state = "stable"
            return None
        if n < self.b or (n - self.b) % self.step:
            return None
        w = np.array(self.all[-self.w :])
        scale = self.sd / np.sqrt(self.w) if self.basis == "se" else self.sd
        mean_w, std_w = float(np.mean(w)), float(np.std(w))
        dz = abs(mean_w - self.mu) / scale if scale > 0 else (0.0 if mean_w == self.mu else np.inf)
        ratio = std_w / self.sd if self.sd > 0 else (1.0 if std_w == 0 else np.inf)
        v = dz > self.z or ratio > self.r or ratio < 1 / self.r
        if self.state == "stable":
            self.viol = self.viol + 1 if v else 0
            if self.viol >= self.nv:
                self.state, self.viol, self.normal = "drifting", 0, 0
                return "start"
        else:
            self.normal = 0 if v else self.normal + 1
            if self.normal >= self.mr:
                self.state, self.viol, self.normal = "stable", 0, 0
                return "end"
        return None


def ref_events(ref, xs) -> list[tuple[str, int]]:
    out = []
    for i, x in enumerate(xs):
        ev = ref.feed(float(x))
        if ev:
            out.append((ev, i))
    return out


def run_monitor(mon, xs, batches=None) -> list[tuple[str, int]]:
    """Feed xs in the given batch sizes; events as (start|end, 0-based position in xs)."""
    out = []
    start = 0
    sizes = batches or [len(xs)]
    for size in sizes:
        chunk = xs[start : start + size]
        for t in mon.update(np.asarray(chunk, dtype=float)):
            out.append(("start" if t.type is EventType.DRIFT_START else "end", start + t.position))
        start += size
    assert start >= len(xs)
    return out


def alternating(n: int, lo: float = -1.0, hi: float = 1.0) -> list[float]:
    """+1, -1, +1, ... : mean exactly 0 and population std exactly 1 for an even count."""
    return [hi if i % 2 == 0 else lo for i in range(n)]


# --- zscore-consecutive: hand-built ------------------------------------------------------------------------


def test_zc_initializing_until_min_samples():
    m = ZScoreConsecutive()
    m.update(np.array(alternating(99)))
    assert m.state is State.INITIALIZING
    # even wild values before the 100th sample are baseline, not decisions
    assert m.update(np.array([1000.0])) == []
    assert m.state is State.STABLE
    assert m.baseline_n == 100
    assert m.baseline_at == 100


@pytest.mark.parametrize(("spikes", "fires"), [(5, True), (4, False)])
def test_zc_exactly_five_consecutive(spikes, fires):
    xs = alternating(110) + [3.5] * spikes + [0.0] * 5
    m = ZScoreConsecutive()
    ev = run_monitor(m, xs)
    if fires:
        assert ev == [("start", 114)]  # the 5th spike: sample 115, 0-based 114
        assert m.state is State.DRIFTING
    else:
        assert ev == []
        assert m.state is State.STABLE


def test_zc_five_consecutive_split_across_batches():
    xs = alternating(110) + [3.5] * 5
    m = ZScoreConsecutive()
    assert run_monitor(m, xs, [112, 1, 1, 1]) == [("start", 114)]


def test_zc_threshold_is_strict():
    # |z| == 3 exactly is not a hit for the run rule (5 of them: only 5 window hits, < 10)
    m = ZScoreConsecutive()
    assert run_monitor(m, alternating(110) + [3.0] * 5 + [-3.0] * 4) == []


def test_zc_run_broken_by_one_sample():
    xs = [*alternating(110), 3.5, -3.5, 3.5, 3.5, 0.0, 3.5, 3.5, 3.5, 3.5, 0.0]
    # run of 4, broken, run of 4: no run alarm; 8 window hits of 20 < 10
    assert run_monitor(ZScoreConsecutive(), xs) == []


@pytest.mark.parametrize(("last_offset", "fires"), [(19, True), (20, False)])
def test_zc_ten_of_twenty_sliding(last_offset, fires):
    # nine hits (|z| = 2.7: > 2.5, not > 3) at offsets 0..8, then the tenth at offset 19 (window 0..19
    # holds all ten) or at offset 20 (window 1..20: offset 0 has slid out, nine hits)
    seg = [0.0] * 25
    for k in range(9):
        seg[k] = 2.7
    seg[last_offset] = 2.7
    xs = alternating(100) + seg
    ev = run_monitor(ZScoreConsecutive(), xs)
    assert ev == ([("start", 100 + last_offset)] if fires else [])


def test_zc_ten_of_twenty_counts_the_triggering_sample_and_onset():
    xs = alternating(100) + [2.7, 0.0] * 9 + [2.7]
    m = ZScoreConsecutive()
    ts = m.update(np.array(xs))
    assert [(t.type, t.position) for t in ts] == [(EventType.DRIFT_START, 118)]
    assert ts[0].onset_position == 100  # the first hit in the window
    assert "10 of the last 20" in ts[0].evidence["rule"]
    assert ts[0].score == 1.0


def test_zc_window_shorter_than_twenty_after_start():
    # ten hits among the first ten scored samples fire at the tenth
    xs = alternating(100) + [2.7, -2.7] * 5
    assert run_monitor(ZScoreConsecutive(), xs) == [("start", 109)]


def _drifted() -> list[float]:
    """Drift starts at 0-based 114 (sample 115); baseline frozen at mean 0, std 1."""
    return alternating(110) + [3.5] * 5


@pytest.mark.parametrize(("normals", "fires"), [(50, True), (49, False)])
def test_zc_recovery_exactly_fifty(normals, fires):
    # |z| == 2 exactly is normal (inclusive); recovery counts from the sample after the trigger
    xs = _drifted() + [0.5] * (normals - 1) + [2.0] + [3.5]
    ev = run_monitor(ZScoreConsecutive(), xs)
    assert ev[0] == ("start", 114)
    if fires:
        assert ev[1:] == [("end", 114 + 50)]
    else:
        assert ev[1:] == []


def test_zc_recovery_run_reset_by_abnormal_sample():
    xs = _drifted() + [0.0] * 49 + [2.1] + [0.0] * 50
    ev = run_monitor(ZScoreConsecutive(), xs)
    assert ev == [("start", 114), ("end", 114 + 50 + 50)]


def test_zc_refresh_cadence_and_current_sample():
    xs = alternating(146) + [3.2] * 4 + [3.2]
    m = ZScoreConsecutive()
    m.update(np.array(xs[:149]))
    assert m.baseline_at == 100
    assert (m.mu, m.sd) == (0.0, 1.0)
    # sample 150 is scored against the old baseline, then joins the refreshed one
    assert m.update(np.array(xs[149:150])) == []
    assert m.baseline_at == 150
    assert m.mu == float(np.mean(xs[:150]))
    assert m.sd == float(np.std(xs[:150]))
    # the 5th 3.2 (sample 151) scores |z| = 2.80 against the refreshed baseline: no run alarm
    assert m.update(np.array(xs[150:])) == []
    assert m.state is State.STABLE


def test_zc_trigger_on_refresh_boundary_does_not_refresh():
    xs = alternating(145) + [3.5] * 5  # the 5th spike is sample 150
    m = ZScoreConsecutive()
    assert run_monitor(m, xs) == [("start", 149)]
    assert m.baseline_at == 100
    assert (m.mu, m.sd) == (0.0, 1.0)


def test_zc_no_refresh_while_drifting_and_refresh_at_recovery_boundary():
    xs = alternating(145) + [3.5] * 5  # DRIFT_START at sample 150
    m = ZScoreConsecutive()
    m.update(np.array(xs))
    m.update(np.zeros(49))  # samples 151..199: drifting, sample 200 not yet seen
    assert m.baseline_at == 100
    ts = m.update(np.zeros(1))  # sample 200: 50th normal -> DRIFT_END on the cadence -> refresh
    assert [t.type for t in ts] == [EventType.DRIFT_END]
    assert m.baseline_at == 200
    all_x = np.array(xs + [0.0] * 50)
    assert m.mu == float(np.mean(all_x[-1000:]))


def test_zc_recovery_off_cadence_waits_for_next_multiple():
    xs = alternating(110) + [3.5] * 5 + [0.0] * 50  # start 115, end 165
    m = ZScoreConsecutive()
    ev = run_monitor(m, xs)
    assert ev == [("start", 114), ("end", 164)]
    assert m.baseline_at == 100
    m.update(np.zeros(34))  # sample 199
    assert m.baseline_at == 100
    m.update(np.zeros(1))  # sample 200
    assert m.baseline_at == 200


def test_zc_counters_restart_after_recovery():
    # a short recovery (3) so hits seen while drifting could otherwise still be in the 20-window
    m = ZScoreConsecutive(recovery_length=3)
    xs = alternating(110) + [3.5] * 5 + [2.7, 2.7, 0.0, 0.0, 0.0] + [2.7, 0.0] * 4 + [2.7]
    ev = run_monitor(m, xs)
    # after the end (at 0-based 119) only 5 hits are seen: no new start
    assert ev == [("start", 114), ("end", 119)]


def test_zc_nonfinite_dropped_positions_refer_to_batch():
    xs = [*alternating(110), 3.5, np.nan, 3.5, np.inf, 3.5, 3.5, -np.inf, 3.5]
    m = ZScoreConsecutive()
    ts = m.update(np.array(xs))
    assert [t.position for t in ts] == [117]
    assert ts[0].onset_position == 110
    assert m.rejected == 3
    assert m.samples == 115


def test_zc_constant_baseline():
    m = ZScoreConsecutive()
    assert run_monitor(m, [5.0] * 100 + [5.0] * 10) == []
    assert run_monitor(m, [5.0001] * 5) == [("start", 4)]


def test_zc_score_progress():
    m = ZScoreConsecutive()
    m.update(np.array(alternating(100) + [3.5] * 2))
    assert m.score == pytest.approx(0.5 * 2 / 5)
    m.update(np.array([3.5] * 3))
    assert m.state is State.DRIFTING
    assert m.score == 1.0
    m.update(np.zeros(25))
    assert m.score == pytest.approx(0.75)


# --- zscore-consecutive: against the reference --------------------------------------------------------------


def _stream(seed: int, n: int = 6000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n)
    # a few drifts of different kinds, and outliers
    for _ in range(4):
        a = int(rng.integers(1100, n - 500))
        b = a + int(rng.integers(20, 400))
        kind = rng.integers(3)
        if kind == 0:
            x[a:b] += rng.choice([-1, 1]) * rng.uniform(6, 14)
        elif kind == 1:
            x[a:b] = 10 + (x[a:b] - 10) * rng.uniform(2, 4)
        else:
            x[a:b] += rng.uniform(4, 6) * rng.choice([-1, 1], size=b - a)
    x[rng.integers(0, n, 10)] *= 3
    return x


def _random_batches(rng, n: int) -> list[int]:
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(rng.choice([1, 2, 7, 49, 50, 51, 333, 1000, 5000])))
    return sizes


@pytest.mark.parametrize("seed", range(8))
def test_zc_matches_reference_under_any_batching(seed):
    x = _stream(seed)
    if seed % 2:
        x[np.random.default_rng(seed).integers(0, x.size, 30)] = np.nan
    expected = ref_events(RefZScoreConsecutive(), x)
    assert len(expected) >= 2  # the stream exercises both transitions
    assert run_monitor(ZScoreConsecutive(), x) == expected
    rng = np.random.default_rng(100 + seed)
    assert run_monitor(ZScoreConsecutive(), x, _random_batches(rng, x.size)) == expected


def test_zc_checkpoint_round_trip_mid_stream():
    x = _stream(3)
    expected = ref_events(RefZScoreConsecutive(), x)
    m = ZScoreConsecutive()
    got = run_monitor(m, x[:2345])
    d = json.loads(json.dumps(m.to_dict()))
    m2 = ZScoreConsecutive.from_dict(d)
    assert m2.to_dict() == m.to_dict()
    got += [(e, p + 2345) for e, p in run_monitor(m2, x[2345:])]
    assert got == expected


# --- sustained-zscore: hand-built --------------------------------------------------------------------------

SMALL = {
    "baseline_size": 8,
    "window": 4,
    "z_threshold": 1.0,
    "z_basis": "sigma",
    "violations": 3,
    "recoveries": 2,
}


def test_sz_initializing_then_baseline():
    m = SustainedZScore(**SMALL)
    m.update(np.array(alternating(7)))
    assert m.state is State.INITIALIZING
    m.update(np.array([-1.0]))
    assert m.state is State.STABLE
    assert (m.mu, m.sd) == (0.0, 1.0)


def test_sz_start_and_end_by_hand():
    # samples 9..11 = 5: windows (-1,1,-1,5) std 2.45 > 2, (1,-1,5,5) mean 2.5, (-1,5,5,5) mean 3.5:
    # three violations -> DRIFT_START at sample 11 (0-based 10). Then +1,-1,...: windows ending at
    # 12,13,14 still hold a 5; 15 (1,-1,1,-1) and 16 are normal -> DRIFT_END at sample 16 (0-based 15).
    xs = alternating(8) + [5.0] * 3 + alternating(6)
    m = SustainedZScore(**SMALL)
    ts = m.update(np.array(xs))
    assert [(t.type, t.position) for t in ts] == [(EventType.DRIFT_START, 10), (EventType.DRIFT_END, 15)]
    assert ts[0].onset_position == 8
    assert ts[0].evidence["std_ratio"] == pytest.approx(np.std([-1, 5, 5, 5]))


@pytest.mark.parametrize(("needed", "expected"), [(4, [("start", 11), ("end", 13)]), (5, [])])
def test_sz_exactly_n_consecutive_violations(needed, expected):
    # one spike (9 at sample 9) sits in exactly four windows (ending at samples 9..12), each with
    # mean 2 > 1 sigma: four consecutive violations. N = 4 fires at sample 12 (and two normal windows,
    # 13 and 14, end it), N = 5 never does.
    xs = [*alternating(8), 9.0, *alternating(11, lo=1.0, hi=-1.0)]
    m = SustainedZScore(**{**SMALL, "violations": needed})
    assert run_monitor(m, xs) == expected


def test_sz_mean_threshold_strict_and_basis():
    # window mean exactly z_threshold * scale is not a violation
    base = alternating(8)
    m = SustainedZScore(**{**SMALL, "std_ratio": 100.0})
    # windows of [1, 1, 1, 1] -> mean 1 == 1 sigma: not a violation; std 0 -> ratio 0 < 1/100: violation!
    # so use (2, 0, 2, 0): mean 1, std 1, ratio 1
    assert run_monitor(m, base + [2.0, 0.0] * 6) == []
    m = SustainedZScore(**{**SMALL, "std_ratio": 100.0})
    # windows ending at samples 12, 13, 14 are the first with mean 1.1: DRIFT_START at 0-based 13
    assert run_monitor(m, base + [2.1, 0.1] * 6) == [("start", 13)]
    # on the standard-error basis the same windows are 2 SE away (sigma/sqrt(4) = 0.5)
    m = SustainedZScore(**{**SMALL, "z_basis": "se", "z_threshold": 2.0, "std_ratio": 100.0})
    assert run_monitor(m, base + [2.0, 0.0] * 6) == []
    m = SustainedZScore(**{**SMALL, "z_basis": "se", "z_threshold": 1.9, "std_ratio": 100.0})
    assert run_monitor(m, base + [2.0, 0.0] * 6) == [("start", 13)]


def test_sz_std_ratio_bounds_strict():
    base = alternating(8)
    # (2, -2, 2, -2): mean 0, std exactly 2: ratio 2 is not a violation; 2.01 is
    assert run_monitor(SustainedZScore(**SMALL), base + [2.0, -2.0] * 6) == []
    # the first all-2.01 window ends at sample 12; its third violation is sample 14 (0-based 13)
    assert run_monitor(SustainedZScore(**SMALL), base + [2.01, -2.01] * 6)[0] == ("start", 13)
    # shrinking: (0.5, -0.5, ...) ratio 0.5 == 1/2 not a violation, 0.49 is
    assert run_monitor(SustainedZScore(**SMALL), base + [0.5, -0.5] * 6) == []
    assert run_monitor(SustainedZScore(**SMALL), base + [0.49, -0.49] * 6)[0] == ("start", 13)


def test_sz_step():
    # step 2: evaluations at samples 10, 12, 14, ... only
    xs = alternating(8) + [5.0] * 8
    m = SustainedZScore(**SMALL, step=2)
    assert run_monitor(m, xs) == [("start", 13)]  # evaluations 10, 12, 14 -> sample 14
    assert ref_events(RefSustained(8, 4, 1.0, "sigma", 2.0, 3, 2, step=2), xs) == [("start", 13)]


# --- sustained-zscore: against the reference --------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"window": 20, "violations": 5, "recoveries": 10},
        {"step": 7},
        {"z_basis": "sigma", "z_threshold": 0.8, "std_ratio": 1.5},
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_sz_matches_reference_under_any_batching(params, seed):
    x = _stream(seed)
    if seed == 1:
        x[np.random.default_rng(seed).integers(0, x.size, 30)] = np.inf
    p = {**{"baseline_size": 1000, "window": 50, "z_threshold": 3.0, "z_basis": "se"}, **params}
    ref = RefSustained(
        p["baseline_size"],
        p["window"],
        p["z_threshold"],
        p["z_basis"],
        p.get("std_ratio", 2.0),
        p.get("violations", 3),
        p.get("recoveries", 5),
        p.get("step", 1),
    )
    expected = ref_events(ref, x)
    assert len(expected) >= 2
    assert run_monitor(SustainedZScore(**params), x) == expected
    rng = np.random.default_rng(seed)
    m = SustainedZScore(**params)
    assert run_monitor(m, x, _random_batches(rng, x.size)) == expected
    m2 = SustainedZScore.from_dict(json.loads(json.dumps(m.to_dict())))
    assert m2.to_dict() == m.to_dict()


def test_sz_constant_baseline():
    m = SustainedZScore(**SMALL)
    assert run_monitor(m, [3.0] * 8 + [3.0] * 5) == []
    # any deviation from a constant baseline is infinitely far: three windows holding a 4 -> start
    assert run_monitor(m, [4.0, 4.0, 4.0]) == [("start", 2)]


@pytest.mark.parametrize("seed", range(4))
def test_zc_baseline_window_is_the_one_in_effect(seed):
    # the summary the engine publishes is built from exactly the samples behind mu and sd
    x = _stream(seed)
    m = ZScoreConsecutive()
    rng = np.random.default_rng(seed)
    start = 0
    for size in _random_batches(rng, x.size):
        m.update(x[start : start + size])
        start += size
        if m.state is not State.INITIALIZING:
            w = m.baseline_window()
            assert w.size == m.baseline_n
            assert (float(np.mean(w)), float(np.std(w))) == (m.mu, m.sd)
    assert m.baseline_summary()["kind"] == "numeric"
    assert m.current_summary()["moments"]["n"] == 50


def test_onset_in_an_earlier_batch_counts_raw_values():
    m = ZScoreConsecutive()
    assert m.update(np.array([*alternating(110), 3.5, np.nan, 3.5])) == []
    ts = m.update(np.array([3.5, np.nan, 3.5, 3.5]))
    assert [t.position for t in ts] == [3]
    # the run began at raw position 110 of the first batch (113 values): 3 values before this batch
    assert ts[0].onset_position == -3


# --- through the Engine ----------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["zscore-consecutive", "sustained-zscore"])
def test_engine_uses_the_registered_preset(preset):
    from driftwatch.detect.engine import Engine
    from driftwatch.vocab.spec import MonitorSpec

    spec = MonitorSpec.parse({"preset": preset})
    eng = Engine(spec, name="legacy")
    x = _stream(0)
    expected = ref_events(RefZScoreConsecutive() if preset == "zscore-consecutive" else RefSustained(), x)
    evs = []
    for a in range(0, x.size, 1000):
        evs += eng.update("latency", x[a : a + 1000], index=np.arange(a, a + 1000) + 10_000)
    assert [(e.type, e.index - 10_000) for e in evs] == [
        ("DRIFT_START" if t == "start" else "DRIFT_END", i) for t, i in expected
    ]
    assert {e.detector for e in evs} == {preset}
    (st,) = eng.streams()
    assert st.detector == preset
    assert st.baseline["kind"] == "numeric"
    # a checkpoint restores the preset monitor, which then carries on identically
    eng2 = Engine.from_dict(json.loads(json.dumps(eng.to_dict())), spec, name="legacy")
    tail = np.r_[np.full(30, 60.0), np.full(300, 10.0)]
    assert [e.to_dict() for e in eng2.update("latency", tail)] == [
        e.to_dict() for e in eng.update("latency", tail)
    ]


def test_engine_categorical_stream_under_a_preset_gets_the_default_monitor():
    from driftwatch.detect.engine import Engine
    from driftwatch.vocab.spec import MonitorSpec

    eng = Engine(MonitorSpec.parse({"preset": "zscore-consecutive"}), name="legacy")
    eng.update("plan", ["free", "pro"] * 100)
    (st,) = eng.streams()
    assert st.type == "categorical"
    assert st.detector != "zscore-consecutive"


@pytest.mark.parametrize(
    ("min_samples", "window", "refresh"), [(120, 300, 50), (100, 100, 7), (10, 2000, 64)]
)
def test_zc_other_sizes_match_reference(min_samples, window, refresh):
    x = _stream(5)
    ref = RefZScoreConsecutive(min_samples=min_samples, window=window, refresh=refresh)
    expected = ref_events(ref, x)
    m = ZScoreConsecutive(min_samples=min_samples, window=window, refresh_every=refresh)
    assert run_monitor(m, x, _random_batches(np.random.default_rng(9), x.size)) == expected
