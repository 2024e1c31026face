"""A stream's state in few objects (docs/decisions.md §32): the loop's parameters and state in one block,
the ring of a young stream as a view of its learning buffer, no empty summaries of its own -- and
nothing of it changes what is detected or checkpointed (``test_replay_reference.py`` holds that bit for
bit; here the mechanisms themselves)."""

from __future__ import annotations

import copy
import tracemalloc

import numpy as np

from driftwatch.detect import Engine
from driftwatch.detect.kernel import N_PARAMS, N_STATE, Arrays, P, S
from driftwatch.detect.numeric import NumericMonitor
from driftwatch.vocab.spec import MonitorSpec


def _arrays() -> Arrays:
    return Arrays(
        np.arange(N_PARAMS, dtype=np.float64),
        np.zeros(N_STATE),
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.zeros(4),
        np.array([-1.0, 0.0, 1.0]),
        np.array([5, 6, 7, 8], np.int64),
        np.zeros(8, np.int64),
    )


def test_parts_are_views_of_one_block_and_stay_live_across_assignments() -> None:
    a = _arrays()
    parts = a.parts()
    assert [p.size for p in parts] == [N_PARAMS, N_STATE, 4, 4, 3, 4, 8]
    assert [p.dtype for p in parts] == [np.float64] * 5 + [np.int64] * 2
    assert all(np.shares_memory(p, parts[0].base) for p in parts)
    p, s = a.params, a.state
    a.edges = np.array([-2.0, 0.5, 2.0])  # same size: written in place
    p[P.KUP], s[S.M] = 42.0, 7.0  # views taken before the assignment still write the record
    assert a.params[P.KUP] == 42.0
    assert a.state[S.M] == 7.0
    assert a.edges.tolist() == [-2.0, 0.5, 2.0]
    assert a.base.tolist() == [5, 6, 7, 8]
    a.counts[2] += 3  # the loop's in-place writes reach the block
    assert a.counts.tolist() == [0, 0, 3, 0, 0, 0, 0, 0]
    a.profile = np.array([0.0, 1.0])  # another size: a new block, every other part kept
    assert a.counts.tolist() == [0, 0, 3, 0, 0, 0, 0, 0]
    assert a.profile.tolist() == [0.0, 1.0]
    assert a.params[P.KUP] == 42.0
    assert a.edges.tolist() == [-2.0, 0.5, 2.0]
    b = copy.deepcopy(a)
    b.state[S.M] = 1.0
    assert a.state[S.M] == 7.0


def test_a_young_streams_ring_is_its_buffers_tail_until_the_baseline_freezes() -> None:
    rng = np.random.default_rng(5)
    m = NumericMonitor(min_samples=100, window=1000)
    m.update(rng.normal(10, 2, 300))
    assert m.ring.size == 256
    assert np.shares_memory(m.ring, m.buffer)
    assert np.array_equal(m.ring, m.buffer[-256:])
    restored = NumericMonitor.from_dict(m.to_dict())  # the checkpoint holds both, as before
    assert np.array_equal(restored.ring, m.ring)
    assert np.array_equal(restored.buffer, m.buffer)
    m.update(rng.normal(10, 2, 2000))  # refits up to 1,000 values: frozen, the buffer dropped
    assert m.frozen
    assert m.buffer.size == 0
    assert m.ring.size == 256
    # the ring does not keep the dropped buffer (up to 4 kB) alive
    assert m.ring.base is None or m.ring.base.size < 512


def test_a_stable_stream_holds_no_empty_summaries_of_its_own() -> None:
    a, b = NumericMonitor(), NumericMonitor()
    assert a.onset is b.onset  # the shared empty one, never updated
    assert a.current.prev is None
    assert a.current.cur is None
    assert a.current.to_dict() == NumericMonitor.from_dict(a.to_dict()).current.to_dict()
    a.update(np.arange(50.0))  # fewer than the ring: pending, no summary yet
    assert a.current.cur is None
    a.update(np.arange(300.0))
    assert a.current.cur is not None
    assert a.current.prev is None


def test_engine_state_per_stream_stays_small() -> None:
    """The bench's fill (bench/stream_footprint.py): 10 features x 20 keys, 200 samples each, receive
    timestamps. ~4.5 kB a stream at this commit (7.2 before §32); the bound leaves room for numpy's own
    allocations to vary between versions, and fails if the per-stream objects come back."""
    eng = Engine(MonitorSpec.parse({}), name="t")
    eng.update("w", np.ones(300), key="w")  # lazy imports and caches before measuring
    v, ts = np.array([10.0 + (i % 7) for i in range(200)]), np.full(200, 1.7e9)
    tracemalloc.start()
    t0 = tracemalloc.get_traced_memory()[0]
    for k in range(20):
        for f in range(10):
            eng.update(f"f{f}", v, key=f"k{k}", ts=ts)
    per_stream = (tracemalloc.get_traced_memory()[0] - t0) / 200
    tracemalloc.stop()
    assert per_stream < 6_000, per_stream


def test_the_fitted_baselines_numbers_live_in_the_block_and_read_back_exactly() -> None:
    """§35: ``Baseline`` keeps its floats, the standardizer's fields and the two tables in the block's fit
    section; the loop's seven parts are what they were, and a checkpoint restores the same numbers."""
    rng = np.random.default_rng(11)
    m = NumericMonitor(min_samples=100, window=1000)
    m.update(rng.lognormal(3, 0.4, 400))
    bl = m.bl
    assert bl is not None
    assert bl.arrays is m.arr
    assert not hasattr(bl, "__dict__")
    fit = m.arr.fit
    assert np.shares_memory(fit, m.arr.params.base)
    assert [p.size for p in m.arr.parts()][:2] == [N_PARAMS, N_STATE]
    std, th, disp = bl.std, bl.thresholds, bl.dispersion
    assert isinstance(std.log, bool)
    assert isinstance(bl.n, int)
    assert fit.size == 14 + len(th) + len(disp)
    assert all(type(v) is float for v in (*th.values(), *disp.values(), bl.z_center, bl.w_mean))
    p = m.arr.params  # a view held across the writes below stays live
    th["cusum-scale-up"] *= 2.0
    bl.thresholds = th  # same names: written in place
    bl.w_mean = 0.25
    assert bl.thresholds == th
    assert bl.dispersion == disp
    assert bl.w_mean == 0.25
    assert bl.std == std
    assert np.shares_memory(p, m.arr.params)
    bl.dispersion = {**disp, "extra": 3.0}  # other names: the fit section is rebuilt around them
    assert bl.dispersion == {**disp, "extra": 3.0}
    assert bl.thresholds == th
    assert bl.w_mean == 0.25
    restored = NumericMonitor.from_dict(m.to_dict())
    rb = restored.bl
    assert rb is not None
    assert rb.arrays.fit.tobytes() == m.arr.fit.tobytes()
    assert (rb.thresholds, rb.dispersion, rb.std, rb.n) == (bl.thresholds, bl.dispersion, bl.std, bl.n)
