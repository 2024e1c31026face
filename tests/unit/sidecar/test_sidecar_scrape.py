"""Prometheus exposition -> samples (driftwatch.sidecar.scrape.ScrapeConverter)."""

from __future__ import annotations

import pytest

from driftwatch.sidecar.buckets import representative
from driftwatch.sidecar.scrape import ScrapeConverter

HIST = """# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.1"} %d
lat_seconds_bucket{le="0.2"} %d
lat_seconds_bucket{le="+Inf"} %d
lat_seconds_sum 1
lat_seconds_count %d
"""


def test_counter_becomes_a_rate_per_key_and_survives_resets() -> None:
    c = ScrapeConverter(("http_requests_total",), key_label="endpoint")
    text = (
        "# TYPE http_requests_total counter\n"
        'http_requests_total{endpoint="/a"} %d\nhttp_requests_total{endpoint="/b"} 5\n'
    )
    assert c.convert(text % 100, 10.0) == []  # first scrape: reference only
    out = c.convert(text % 160, 20.0)
    assert {(s["key"], s["value"]) for s in out} == {("/a", 6.0), ("/b", 0.0)}
    out = c.convert(text % 30, 30.0)  # reset: the new value counts from zero
    assert ("/a", 3.0) in {(s["key"], s["value"]) for s in out}


def test_gauge_and_summary() -> None:
    c = ScrapeConverter(("inflight", "rpc_seconds"), key_label=None)
    text = "# TYPE inflight gauge\ninflight 7\n"
    text += "# TYPE rpc_seconds summary\nrpc_seconds_sum %g\nrpc_seconds_count %d\n"
    out = c.convert(text % (1.0, 10), 1.0)
    assert out == [{"feature": "inflight", "key": "", "value": 7.0}]
    out = c.convert(text % (3.0, 14), 2.0)
    assert {"feature": "rpc_seconds", "key": "", "value": 0.5} in out


def test_histogram_deltas_become_the_interval_distribution() -> None:
    c = ScrapeConverter(("lat_seconds",), key_label=None, max_samples=1000)
    assert c.convert(HIST % (10, 10, 10, 10), 1.0) == []
    out = [s["value"] for s in c.convert(HIST % (10, 40, 42, 42), 2.0)]  # +0 / +30 / +2
    assert out.count(pytest.approx(0.15)) == 30
    assert out.count(0.2) == 2  # +Inf bucket at the last finite bound
    assert len(out) == 32


def test_representative_scales_to_the_cap() -> None:
    vals = representative([1.0, 2.0, float("inf")], [1000.0, 3000.0, 0.0], cap=400)
    assert len(vals) == 400
    assert vals.count(0.5) == 100
    assert vals.count(1.5) == 300
    assert representative([1.0], [0.0], 10) == []
