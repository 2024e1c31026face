"""The scan reservoirs (driftwatch.sidecar.reservoirs): uniform, bounded, time-indexed, and what a flush
writes -- pure logic, no Redis (tests/integration/sidecar/test_sidecar_reservoirs_redis.py has that)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats

from driftwatch.sidecar.reservoirs import MAX_BUCKETS, Pinned, Policy, Reservoirs, Sample
from driftwatch.vocab import reservoir_format as fmt
from driftwatch.vocab.spec import MonitorSpec

NOW = 1_700_000_000.0


def policy(pinned: Pinned | None = None, size: int = 64, bucket: int = 300) -> Policy:
    return Policy(size, bucket, 256, retention=3600, lateness=300.0, pinned=pinned)


def test_a_sample_is_uniform_over_everything_it_saw() -> None:
    """Each of 1,000 positions is kept with probability size/n (chi-square over 2,000 runs), whatever
    the batch sizes the values arrived in."""
    n, k, runs = 1000, 50, 2000
    counts = np.zeros(n)
    rng = random.Random(7)
    for r in range(runs):
        s = Sample(k, False, rng)
        values = np.arange(n, dtype=np.float64)
        cuts = sorted(rng.sample(range(1, n), 5 + r % 7))
        for part in np.split(values, cuts):
            s.add(part)
        assert s.seen == n
        kept = s.values[: min(s.seen, k)]
        assert len(set(kept.tolist())) == k
        counts[kept.astype(int)] += 1
    expected = runs * k / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, n - 1) > 0.001


def test_a_sample_stays_bounded_and_saturates_float32() -> None:
    s = Sample(8, False, random.Random(1))
    s.add(np.array([1e300, -1e300, 1.5]))
    s.add(np.full(10_000, 2.0))
    assert len(s.values) == 8
    assert s.seen == 10_003
    parsed = fmt.parse_header(s.encode())
    assert parsed is not None
    kind, seen, payload = parsed
    assert (kind, seen) == (fmt.NUMERIC, 10_003)
    values = np.frombuffer(payload, dtype=fmt.FLOAT_DTYPE)
    assert len(values) == 8
    assert np.isfinite(values).all()


def test_categorical_samples_round_trip() -> None:
    rng = random.Random(3)
    s = Sample(16, True, rng)
    s.add(["a", "b"] * 100)
    back = Sample.decode(s.encode(), 16, rng)
    assert back is not None
    assert back.categorical
    assert back.seen == 200
    assert sorted(back.values) == sorted(s.values)


def test_values_go_to_the_bucket_of_their_timestamp() -> None:
    res = Reservoirs(policy(), random.Random(0))
    t0 = fmt.bucket_start(NOW, 300) - 600
    res.add("x", "", np.arange(600.0), t0 + np.arange(600.0), now=NOW)  # two whole buckets, value = ts - t0
    assert sorted(res.buckets) == [t0, t0 + 300]
    for start in (t0, t0 + 300):
        sample = res.buckets[start][("x", "")]
        kept = sample.values[:64]
        assert sample.seen == 300
        assert ((kept >= start - t0) & (kept < start - t0 + 300)).all()


def test_too_old_values_are_dropped_and_counted() -> None:
    res = Reservoirs(policy(), random.Random(0))
    res.add("x", "", np.ones(5), np.full(5, NOW - 7200), now=NOW)
    assert not res.buckets
    assert res.dropped == 5


def test_drain_then_written_forgets_closed_buckets_only() -> None:
    res = Reservoirs(policy(), random.Random(0))
    old, cur = NOW - 1200, NOW
    res.add("x", "", np.ones(3), np.full(3, old), now=NOW)
    res.add("x", "k", np.ones(3), np.full(3, cur), now=NOW)
    drained = res.drain()
    assert set(drained.buckets) == {fmt.bucket_start(old, 300), fmt.bucket_start(cur, 300)}
    assert drained.buckets[fmt.bucket_start(cur, 300)] == {fmt.stream_field("x", "k"): mock_blob(res, cur)}
    res.add("x", "k", np.ones(2), np.full(2, cur), now=NOW)  # changed after the drain: still dirty
    res.written(drained, now=NOW)
    assert list(res.buckets) == [fmt.bucket_start(cur, 300)]
    again = res.drain()
    assert list(again.buckets) == [fmt.bucket_start(cur, 300)]
    assert not again.pinned
    res.written(again, now=NOW)
    assert res.drain().empty


def test_merged_samples_are_uniform_over_both() -> None:
    """Two samples of disjoint values (seen 300 and 700) merged: each value kept with probability
    size / 1000 (chi-square over 2,000 runs), and sampling goes on uniformly afterwards."""
    n_a, n_b, k, runs = 300, 700, 50, 2000
    counts = np.zeros(n_a + n_b + 500)
    rng = random.Random(3)
    for _ in range(runs):
        a, b = Sample(k, False, rng), Sample(k, False, rng)
        a.add(np.arange(n_a, dtype=np.float64))
        b.add(np.arange(n_a, n_a + n_b, dtype=np.float64))
        m = Sample.merged(a, b, rng)
        m.add(np.arange(n_a + n_b, n_a + n_b + 500, dtype=np.float64))
        assert m.seen == n_a + n_b + 500
        kept = m.values[:k]
        assert len(set(kept.tolist())) == k
        counts[kept.astype(int)] += 1
    expected = runs * k / counts.size
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, counts.size - 1) > 0.001


def test_late_values_for_a_written_bucket_are_merged_with_the_stored_one() -> None:
    """A bucket written and forgotten takes values again (late or backfilled): the next flush merges
    the stored reservoir in, never overwrites it with the late values alone (a scan of that window
    counted only the late ones)."""
    res = Reservoirs(policy(), random.Random(0))
    old = NOW - 1200
    start = fmt.bucket_start(old, 300)
    res.add("x", "", np.arange(100.0), np.full(100, old), now=NOW)
    first = res.drain()
    stored = {start: dict((k.encode(), v) for k, v in first.buckets[start].items())}
    res.written(first, now=NOW)
    assert not res.buckets  # closed and written: forgotten
    res.add("x", "", np.arange(100.0, 130.0), np.full(30, old), now=NOW)
    late = res.drain()
    assert late.reopened == {start}
    merged = res.merge_stored(late, stored)
    assert not merged.reopened
    _kind, seen, _ = fmt.parse_header(merged.buckets[start][fmt.stream_field("x", "")])  # type: ignore[misc]
    assert seen == 130
    res.written(merged, now=NOW)
    res.add("x", "", np.arange(5.0), np.full(5, NOW), now=NOW)  # a bucket never written: not reopened
    assert not res.drain().reopened


def mock_blob(res: Reservoirs, ts: float) -> bytes:
    return res.buckets[fmt.bucket_start(ts, 300)][("x", "k")].encode()


def test_buckets_held_while_redis_is_away_are_bounded() -> None:
    res = Reservoirs(Policy(8, 60, 64, retention=86400, lateness=0.0, pinned=None), random.Random(0))
    for i in range(MAX_BUCKETS + 5):
        res.add("x", "", np.ones(4), np.full(4, NOW - 3600 + 60 * i), now=NOW)
    assert len(res.buckets) == MAX_BUCKETS
    assert res.dropped == 5 * 4


def test_pinned_first_values_refill_after_adoption() -> None:
    res = Reservoirs(policy(Pinned(first=100, refill=True)), random.Random(0))
    res.add("x", "", np.arange(80.0), np.full(80, NOW), now=NOW)
    res.add("x", "", np.arange(80.0, 160.0), np.full(80, NOW), now=NOW)
    pinned = res.pinned[("x", "")]
    assert pinned.seen == 100
    assert pinned.values[:100].max() < 100
    res.adopted("x", "")
    res.add("x", "", np.full(10, 500.0), np.full(10, NOW), now=NOW)
    assert res.pinned[("x", "")].seen == 10
    assert set(res.drain().pinned) == {fmt.stream_field("x", "")}


def test_pinned_window_keeps_only_values_inside_it() -> None:
    res = Reservoirs(policy(Pinned(start=NOW - 100, end=NOW - 50)), random.Random(0))
    ts = NOW - 200 + np.arange(200.0)
    res.add("x", "", np.arange(200.0), ts, now=NOW)  # value i at NOW - 200 + i
    kept = res.pinned[("x", "")]
    assert kept.seen == 50
    assert ((kept.values[:50] >= 100) & (kept.values[:50] < 150)).all()


def test_seeded_values_are_the_pinned_baseline() -> None:
    res = Reservoirs(policy(Pinned()), random.Random(0))
    res.seed("x", "", [1.0, 2.0, float("nan")])
    res.seed("plan", "", ["a", "b"])
    res.add("x", "", np.ones(10), np.full(10, NOW), now=NOW)  # live values never enter a seeded reference
    assert res.pinned[("x", "")].seen == 2
    assert res.pinned[("plan", "")].categorical


def test_restore_pinned_keeps_sampling_from_where_it_was() -> None:
    rng = random.Random(0)
    res = Reservoirs(policy(Pinned(first=10_000, refill=True)), rng)
    res.add("x", "", np.arange(5000.0), np.full(5000, NOW), now=NOW)
    fields = {k.encode(): v for k, v in res.drain().pinned.items()}
    restarted = Reservoirs(policy(Pinned(first=10_000, refill=True)), rng)
    assert restarted.restore_pinned(fields) == 1
    again = restarted.pinned[("x", "")]
    assert again.seen == 5000
    restarted.add("x", "", np.arange(5000.0, 10_000.0), np.full(5000, NOW), now=NOW)
    assert restarted.pinned[("x", "")].seen == 10_000


@pytest.mark.parametrize(
    ("scan", "baseline", "expected"),
    [
        ({"reference": "7d"}, {}, None),
        ({"reference": "baseline"}, {}, Pinned(first=1000, refill=True)),
        ({"reference": "baseline"}, {"mode": "fromConfigMap", "configMap": "b"}, Pinned()),
        ({"reference": "1700000000/1700003600"}, {}, Pinned(start=1_700_000_000.0, end=1_700_003_600.0)),
    ],
)
def test_policy_follows_the_spec(
    scan: dict[str, str], baseline: dict[str, str], expected: Pinned | None
) -> None:
    p = Policy.of(MonitorSpec.parse({"scan": scan, "baseline": baseline}), 300.0)
    assert p is not None
    assert p.pinned == expected
    assert Policy.of(MonitorSpec.parse({}), 300.0) is None
