"""The pure parts of a scan: windows, pooling across pods, what a scan writes, history filters."""

from __future__ import annotations

import numpy as np
import pytest

from driftwatch.history.entries import Entry, Filters
from driftwatch.scans.pooling import CATEGORICAL, NUMERIC, Part, pool
from driftwatch.scans.scan_job import options_of
from driftwatch.scans.scan_status import DRIFT, FAILED, NO_DRIFT, ScanResult, status_patch
from driftwatch.scans.windows import Window, resolve
from driftwatch.vocab.spec import ConfigError, MonitorSpec, ScanSpec

NOW = 1_700_000_000.0


def scan(**d: object) -> ScanSpec:
    s = MonitorSpec.parse({"scan": d}).scan
    assert s is not None
    return s


def test_windows_offset_fixed_and_baseline() -> None:
    w = resolve(scan(current="1h", reference="7d"), NOW)
    assert (w.current.start, w.current.end) == (NOW - 3600, NOW)
    assert w.reference == Window(NOW - 3600 - 7 * 86400, NOW - 7 * 86400)
    assert not w.pinned
    w = resolve(scan(reference="1699990000/1699993600"), NOW)
    assert w.reference == Window(1699990000.0, 1699993600.0)
    assert w.pinned
    w = resolve(scan(reference="baseline"), NOW)
    assert w.reference is None
    assert w.pinned
    assert w.to_dict()["reference"] == {"kind": "baseline"}
    # buckets count by their middle: a 5-minute bucket starting 2.5 min before the window is in
    assert Window(1000.0, 4600.0).buckets(300) == (850.0, 4450.0)


@pytest.mark.parametrize(
    ("reference", "field"),
    [("yesterday", "spec.scan.reference"), ("2024-01-02/2024-01-01", "spec.scan.reference")],
)
def test_bad_references_name_the_field(reference: str, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        scan(reference=reference)
    assert e.value.field == field


def test_retention_covers_both_windows() -> None:
    assert scan(current="1h", reference="7d").retention == 3600 + 7 * 86400 + 600
    assert scan(current="2h", reference="baseline").retention == 7200 + 600


def test_pool_takes_from_each_part_in_proportion_to_what_it_saw() -> None:
    busy = Part("a", "x", "", NUMERIC, 10_000, np.zeros(100))
    quiet = Part("b", "x", "", NUMERIC, 1_000, np.ones(100))
    small = Part("c", "x", "k", NUMERIC, 50, np.full(50, 2.0))
    p = pool([busy, quiet, small])
    values = p.values["x"]
    assert (values == 0).sum() == 100  # the most thinned part sets the rate: 1/100
    assert (values == 1).sum() == 10
    assert (values == 2).sum() == 1  # round(0.5) -> at least one
    assert p.seen["x"] == 11_050
    assert p.pods == {"a", "b", "c"}


def test_pool_keeps_the_type_that_saw_most() -> None:
    p = pool([Part("a", "x", "", CATEGORICAL, 10, ["u"] * 10), Part("b", "x", "", NUMERIC, 3, np.ones(3))])
    assert p.types == {"x": CATEGORICAL}
    assert p.values["x"] == ["u"] * 10


def test_scan_options_follow_compare_tests_syntax() -> None:
    o = options_of(
        scan(tests=["cvm", "g", "amount=ad"], threshold=0.1, thresholds={"amount": 0.2}, alpha=0.01)
    )
    assert o.tests == ("cvm", "g")
    assert o.feature_tests == {"amount": "ad"}
    assert (o.threshold, dict(o.feature_thresholds), o.alpha) == (0.1, {"amount": 0.2}, 0.01)


def test_status_keeps_a_bounded_history_newest_first() -> None:
    features = [{"feature": "x", "drifted": True, "severity": "critical"}, {"feature": "y", "drifted": False}]
    r = ScanResult(NOW, DRIFT, comparison={"drifted": True, "share": 0.5, "features": features})
    previous = [{"time": "t", "result": NO_DRIFT}] * 10
    patch = status_patch(r, previous, keep=3)
    assert patch["lastScan"]["result"] == DRIFT
    assert patch["lastScan"]["features"] == features
    assert [s["result"] for s in patch["scans"]] == [DRIFT, NO_DRIFT, NO_DRIFT]
    assert patch["scans"][0]["drifted"] == "x"
    entry = r.history_entry("shop", "pay")
    assert (entry.type, entry.severity) == ("SCAN", "critical")
    assert entry.details["features"] == features[:1]
    failed = ScanResult(NOW, FAILED, reason="Redis unavailable (ConnectionError)")
    assert failed.history_entry("shop", "pay").type == "SCAN_FAILED"
    assert failed.exit_code == 3


def test_history_filters_parse_and_match() -> None:
    f = Filters.parse(
        {"feature": "x", "severity": "warning", "type": "DRIFT_START,SCAN", "since": "1d"}, now=NOW
    )
    assert f.since == NOW - 86400
    hit = Entry("DRIFT_START", NOW - 10, "s", "x", severity="critical")
    assert f.matches(hit)
    assert not f.matches(Entry("DRIFT_START", NOW - 10, "s", "x", severity="none"))
    assert not f.matches(Entry("DRIFT_END", NOW - 10, "s", "x", severity="critical"))
    assert not f.matches(Entry("DRIFT_START", NOW - 2 * 86400, "s", "x", severity="critical"))
    assert Filters.parse(f.to_params(), now=NOW) == f


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"severity": "loud"}, "severity"),
        ({"type": "DRIFT"}, "type"),
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"since": "last tuesday"}, "since"),
        ({"since": "2024-01-02", "until": "2024-01-01"}, "until"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_history_parameters_are_named(params: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as e:
        Filters.parse(params, now=NOW)
    assert e.value.field == name
