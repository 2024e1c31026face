"""The OTLP mapping (``otlp_map``), the shared bucket reconstruction (``buckets``), decoding and the
partial-success answer (``otlp``), and ``spec.ingest.otlp``: pure, on messages built with the official
``opentelemetry-proto`` classes."""

from __future__ import annotations

import gzip
import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

from driftwatch.sidecar import buckets
from driftwatch.sidecar.decode import BodyError, Rejections
from driftwatch.sidecar.otlp import answer, decode
from driftwatch.sidecar.otlp_map import CUMULATIVE, DELTA, OtlpConverter
from driftwatch.sidecar.scrape import ScrapeConverter
from driftwatch.sidecar.settings import Settings
from driftwatch.vocab.spec import ConfigError, MonitorSpec, OtlpSpec

S = 1_000_000_000  # ns per second


def attrs(**kv: Any) -> list[KeyValue]:
    out = []
    for k, v in kv.items():
        if isinstance(v, bool):
            out.append(KeyValue(key=k, value=AnyValue(bool_value=v)))
        elif isinstance(v, int):
            out.append(KeyValue(key=k, value=AnyValue(int_value=v)))
        elif isinstance(v, float):
            out.append(KeyValue(key=k, value=AnyValue(double_value=v)))
        else:
            out.append(KeyValue(key=k, value=AnyValue(string_value=v)))
    return out


def request(*metrics: m.Metric, resource: dict[str, Any] | None = None) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(attrs(**(resource or {})))
    rm.scope_metrics.add().metrics.extend(metrics)
    return req


def gauge(name: str, *values: float, **kv: Any) -> m.Metric:
    metric = m.Metric(name=name)
    for v in values:
        metric.gauge.data_points.add(as_double=v, time_unix_nano=5 * S, attributes=attrs(**kv))
    return metric


def counter(name: str, value: float, t: int, start: int, temporality: int, monotonic: bool = True, **kv: Any):
    metric = m.Metric(name=name)
    metric.sum.aggregation_temporality = temporality
    metric.sum.is_monotonic = monotonic
    metric.sum.data_points.add(
        as_double=value, time_unix_nano=t, start_time_unix_nano=start, attributes=attrs(**kv)
    )
    return metric


def histogram(name: str, bounds: list[float], counts: list[int], t: int, start: int, temporality: int, **kv):
    metric = m.Metric(name=name)
    metric.histogram.aggregation_temporality = temporality
    metric.histogram.data_points.add(
        explicit_bounds=bounds,
        bucket_counts=counts,
        count=sum(counts),
        time_unix_nano=t,
        start_time_unix_nano=start,
        attributes=attrs(**kv),
    )
    return metric


def exponential(name: str, scale: int, offset: int, counts: list[int], t: int, start: int, temporality: int,
                zero: int = 0, neg: list[int] | None = None):  # fmt: skip
    metric = m.Metric(name=name)
    metric.exponential_histogram.aggregation_temporality = temporality
    p = metric.exponential_histogram.data_points.add(
        scale=scale, zero_count=zero, time_unix_nano=t, start_time_unix_nano=start
    )
    p.positive.offset = offset
    p.positive.bucket_counts.extend(counts)
    if neg:
        p.negative.offset = offset
        p.negative.bucket_counts.extend(neg)
    return p and metric


def conv(metrics: Any = ("lat",), key: str | None = None, max_samples: int = 1000) -> OtlpConverter:
    spec = {"metrics": list(metrics) if not isinstance(metrics, dict) else metrics, "maxSamples": max_samples}
    if key:
        spec["keyAttribute"] = key
    return OtlpConverter(OtlpSpec.parse(spec, "spec.ingest.otlp"))


def values(
    c: OtlpConverter, req: ExportMetricsServiceRequest, commit: bool = True
) -> list[tuple[str, str, float]]:
    out = c.convert(req)
    if commit:
        c.commit(out)
    assert not out.problems, out.problems
    return [(s["feature"], s.get("key", ""), s["value"]) for s in out.samples]


# --- the shared reconstruction ------------------------------------------------------------------------


def test_scrape_and_otlp_rebuild_the_same_distribution_from_the_same_buckets() -> None:
    """One reconstruction: Prometheus' cumulative ``le`` buckets and OTLP's per-bucket counts with the
    same bounds give the same samples."""
    bounds, per_bucket = [0.1, 0.5, 1.0], [3, 5, 2, 1]
    scrape = ScrapeConverter(("lat",), None)
    text = "# TYPE lat histogram\n" + "".join(
        f'lat_bucket{{le="{le}"}} {c}\n'
        for le, c in zip(["0.1", "0.5", "1.0", "+Inf"], [0, 0, 0, 0], strict=True)
    )
    scrape.convert(text, 1.0)
    cum = [3, 8, 10, 11]
    text = "# TYPE lat histogram\n" + "".join(
        f'lat_bucket{{le="{le}"}} {c}\n' for le, c in zip(["0.1", "0.5", "1.0", "+Inf"], cum, strict=True)
    )
    from_scrape = sorted(s["value"] for s in scrape.convert(text, 2.0))
    c = conv()
    from_otlp = sorted(
        v for _, _, v in values(c, request(histogram("lat", bounds, per_bucket, 2 * S, S, DELTA)))
    )
    assert from_scrape == from_otlp == [0.05] * 3 + [0.3] * 5 + [0.75] * 2 + [1.0]


def test_buckets_interval_and_spread() -> None:
    assert buckets.interval([1, 2], [3, 5]) == [2, 3]
    assert buckets.interval([5, 2], [3, 5]) == [3, 5]  # a count went down: a reset, counts from zero
    assert buckets.interval(None, [3, 5]) == [3, 5]
    assert buckets.decumulate([3, 8, 8]) == [3, 5, 0]
    got = buckets.spread([1.0, 2.0], [1000, 3000], cap=400)
    assert sorted(got) == [1.0] * 100 + [2.0] * 300
    # evenly interleaved, the same every time: no run of one bucket for a sequential detector to see
    assert got == buckets.spread([1.0, 2.0], [1000, 3000], cap=400)
    assert got[:8] == [2.0, 1.0, 2.0, 2.0, 2.0, 1.0, 2.0, 2.0]
    assert max(len(list(g)) for _, g in itertools.groupby(got)) == 3
    assert buckets.upper_bound_points([-1.0, 1.0, math.inf]) == [-1.0, 0.0, 1.0]
    mids = buckets.exponential_points(0, 0, 3)  # (1,2], (2,4], (4,8]
    assert mids.tolist() == [1.5, 3.0, 6.0]
    assert math.isinf(buckets.exponential_points(-10, 2**20, 1)[0])  # beyond a float: rejected later


# --- the mapping --------------------------------------------------------------------------------------


def test_gauge_values_keyed_by_the_data_point_then_the_resource_attribute() -> None:
    c = conv(("temp",), key="route")
    req = request(
        gauge("temp", 1.5, route="/a"), gauge("temp", 2.5), gauge("other", 9.0), resource={"route": "/r"}
    )
    assert values(c, req) == [("temp", "/a", 1.5), ("temp", "/r", 2.5)]


def test_mapping_form_names_the_feature_and_int_keys_are_text() -> None:
    c = conv({"http.server.request.duration": "latency"}, key="shard")
    assert values(c, request(gauge("http.server.request.duration", 3.0, shard=7))) == [("latency", "7", 3.0)]


def test_delta_counter_is_a_rate_over_its_interval() -> None:
    c = conv(("reqs",))
    assert values(c, request(counter("reqs", 30.0, 12 * S, 2 * S, DELTA))) == [("reqs", "", 3.0)]


def test_cumulative_counter_rate_with_reference_and_restart() -> None:
    c = conv(("reqs",))
    assert values(c, request(counter("reqs", 100.0, 10 * S, S, CUMULATIVE))) == []  # the reference
    assert values(c, request(counter("reqs", 150.0, 20 * S, S, CUMULATIVE))) == [("reqs", "", 5.0)]
    assert values(c, request(counter("reqs", 150.0, 20 * S, S, CUMULATIVE))) == []  # the same reading again
    # restarted at 25 s (new start time): 40 since then, over 25..30 s
    assert values(c, request(counter("reqs", 40.0, 30 * S, 25 * S, CUMULATIVE))) == [("reqs", "", 8.0)]
    # a value that went down without a new start time is a restart too: counted from zero over 30..40 s
    assert values(c, request(counter("reqs", 20.0, 40 * S, 25 * S, CUMULATIVE))) == [("reqs", "", 2.0)]


def test_counter_rates_of_a_keys_series_are_summed() -> None:
    c = conv(("reqs",), key="route")
    req = request(counter("reqs", 10.0, 11 * S, S, DELTA, route="/a", code=200))
    req.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points.add(
        as_double=20.0, time_unix_nano=11 * S, start_time_unix_nano=S, attributes=attrs(route="/a", code=500)
    )
    assert values(c, req) == [("reqs", "/a", 3.0)]


def test_updown_counter_is_a_level() -> None:
    c = conv(("queue",))
    assert values(c, request(counter("queue", 7.0, 10 * S, S, CUMULATIVE, monotonic=False))) == [
        ("queue", "", 7.0)
    ]
    d = conv(("queue",))
    assert values(d, request(counter("queue", 5.0, 10 * S, S, DELTA, monotonic=False))) == [
        ("queue", "", 5.0)
    ]
    assert values(d, request(counter("queue", -2.0, 20 * S, 10 * S, DELTA, monotonic=False))) == [
        ("queue", "", 3.0)
    ]


def test_cumulative_histogram_uses_the_interval_and_a_restart_counts_from_zero() -> None:
    c = conv(("lat",))
    assert values(c, request(histogram("lat", [10.0], [5, 0], 10 * S, S, CUMULATIVE))) == []
    got = values(c, request(histogram("lat", [10.0], [6, 2], 20 * S, S, CUMULATIVE)))
    assert sorted(v for _, _, v in got) == [5.0, 10.0, 10.0]
    got = values(c, request(histogram("lat", [10.0], [1, 0], 30 * S, 25 * S, CUMULATIVE)))  # restarted
    assert [v for _, _, v in got] == [5.0]
    assert values(c, request(histogram("lat", [10.0, 20.0], [1, 0, 0], 40 * S, 25 * S, CUMULATIVE))) == []


def test_a_refused_export_leaves_the_reference_where_it_was() -> None:
    """The state moves only on ``commit``: an export answered 429 and sent again still has its interval."""
    c = conv(("lat",))
    values(c, request(histogram("lat", [10.0], [5, 0], 10 * S, S, CUMULATIVE)))
    later = request(histogram("lat", [10.0], [6, 2], 20 * S, S, CUMULATIVE))
    assert len(values(c, later, commit=False)) == 3
    assert len(values(c, later)) == 3


def test_histogram_samples_are_capped_per_key() -> None:
    c = conv(("lat",), max_samples=100)
    got = values(c, request(histogram("lat", [1.0, 2.0], [1000, 3000, 0], 2 * S, S, DELTA)))
    assert len(got) == 100
    assert sum(1 for _, _, v in got if v == 1.5) == 75


def test_exponential_histogram_delta_and_cumulative_across_a_downscale() -> None:
    c = conv(("lat",))
    got = values(c, request(exponential("lat", 0, 0, [2, 1], 2 * S, S, DELTA, zero=1, neg=[1])))
    assert sorted(v for _, _, v in got) == [-1.5, 0.0, 1.5, 1.5, 3.0]
    c = conv(("lat",))
    assert values(c, request(exponential("lat", 1, 0, [1, 1, 0, 0], 10 * S, S, CUMULATIVE))) == []
    # the SDK halved the scale (buckets merge pairwise): the reference is merged the same way
    got = values(c, request(exponential("lat", 0, 0, [3, 4], 20 * S, S, CUMULATIVE)))
    assert sorted(v for _, _, v in got) == [1.5] + [3.0] * 4


def test_unusable_points_are_refused_naming_metric_and_field_and_the_rest_go_on() -> None:
    c = conv(("lat", "temp", "s"), key="route")
    req = request(
        gauge("temp", math.nan),
        gauge("temp", 4.0),
        histogram("lat", [2.0, 1.0], [1, 1, 1], 2 * S, S, DELTA),
        m.Metric(name="s", summary=m.Summary(data_points=[m.SummaryDataPoint(count=1)])),
        gauge("temp", 1.0, route=[1]) if False else gauge("temp", 1.0),
    )
    req.resource_metrics[0].scope_metrics[0].metrics[4].gauge.data_points[0].attributes.add(
        key="route", value=AnyValue(array_value={"values": [AnyValue(int_value=1)]})
    )
    out = c.convert(req)
    errors = [(p.error, p.reason) for p in out.problems]
    assert errors[0][0].startswith(
        "metric 'temp' (resource_metrics[0].scope_metrics[0].metrics[0]) "
        "gauge.data_points[0].as_double: must be finite"
    )
    assert errors[0][1] == "not_finite"
    assert "metric 'lat'" in errors[1][0]
    assert "explicit_bounds: must be finite and strictly increasing" in errors[1][0]
    assert "metric 's'" in errors[2][0]
    assert errors[2][1] == "wrong_type"
    assert "attributes['route']" in errors[3][0]
    assert errors[3][1] == "bad_key"
    assert [s["value"] for s in out.samples] == [4.0]
    rejected = Rejections(limit=10)
    for p in out.problems:
        rejected.append({"index": -1, "error": p.error, "reason": p.reason})
    resp = answer(out, rejected)
    assert resp.partial_success.rejected_data_points == 4
    assert "metric 'temp'" in resp.partial_success.error_message


def test_series_state_is_bounded() -> None:
    from driftwatch.sidecar import otlp_map

    c = conv(("reqs",), key="k")
    for i in range(otlp_map.MAX_SERIES + 50):
        c.commit(c.convert(request(counter("reqs", 1.0, 10 * S, S, CUMULATIVE, k=f"k{i}"))))
    assert len(c.series) == otlp_map.MAX_SERIES


# --- decoding -----------------------------------------------------------------------------------------


def test_decode_protobuf_and_json_alike_and_refuse_bad_bodies() -> None:
    req = request(gauge("temp", 1.5, route="/a"))
    from google.protobuf import json_format

    as_json = json_format.MessageToJson(req).encode()
    assert decode(req.SerializeToString(), proto=True) == req
    assert decode(as_json, proto=False) == req
    with pytest.raises(BodyError, match="protobuf"):
        decode(b"\xff\xff\xff", proto=True)
    with pytest.raises(BodyError, match="OTLP JSON"):
        decode(
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "gauge": '
            b'{"dataPoints": [{"asDouble": "lots"}]}}]}]}]}',
            proto=False,
        )
    with pytest.raises(BodyError, match="malformed JSON"):
        decode(gzip.compress(b"{}"), proto=False)


def test_json_exemplars_with_hex_ids_are_ignored() -> None:
    body = (
        b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"temp","gauge":{"dataPoints":'
        b'[{"asDouble":2.0,"exemplars":[{"asDouble":2.0,"traceId":"5b8efff798038103d269b633813fc60c",'
        b'"spanId":"eee19b7ec3c1b174"}]}]}}]}]}]}'
    )
    assert values(conv(("temp",)), decode(body, proto=False)) == [("temp", "", 2.0)]


# --- the spec -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("otlp", "field", "message"),
    [
        ({}, "spec.ingest.otlp.metrics", "non-empty list"),
        ({"metrics": []}, "spec.ingest.otlp.metrics", "non-empty list"),
        ({"metrics": [1]}, "spec.ingest.otlp.metrics", "non-empty list"),
        ({"metrics": ["a b"]}, "spec.ingest.otlp.metrics", "metric name must match"),
        ({"metrics": {"x": "bad feature"}}, "spec.ingest.otlp.metrics.x", "feature name must match"),
        ({"metrics": ["lat"], "maxSamples": 0}, "spec.ingest.otlp.maxSamples", "between 1 and"),
        ({"metrics": ["lat"], "keyAttribute": 3}, "spec.ingest.otlp.keyAttribute", "must be a string"),
        ({"metrics": ["lat"], "extra": 1}, "spec.ingest.otlp.extra", "unknown field"),
        ({"metrics": ["nope"]}, "spec.ingest.otlp.metrics", "does not declare"),
        ({"metrics": {"x": "plan"}}, "spec.ingest.otlp.metrics", "categorical"),
    ],
)
def test_spec_errors_name_the_field(otlp: dict[str, Any], field: str, message: str) -> None:
    spec = {
        "features": [{"name": "lat", "type": "numeric"}, {"name": "plan", "type": "categorical"}],
        "ingest": {"otlp": otlp},
    }
    with pytest.raises(ConfigError) as e:
        MonitorSpec.parse(spec)
    assert e.value.field == field
    assert message in e.value.message


def test_settings_default_the_key_attribute_to_the_key_label() -> None:
    spec = {"keys": {"label": "route"}, "ingest": {"otlp": {"metrics": {"http.server.duration": "lat"}}}}
    s = Settings.parse({"monitor": {"name": "m"}, "spec": spec}, env={})
    assert s.otlp is not None
    assert s.otlp.key_attribute == "route"
    assert s.otlp.metrics == (("http.server.duration", "lat"),)


def test_a_cumulative_series_that_began_after_the_sidecar_is_all_interval() -> None:
    """In a pod the sidecar starts first: the app's first cumulative export holds only new observations."""
    spec = OtlpSpec.parse({"metrics": ["lat", "reqs"]}, "spec.ingest.otlp")
    c = OtlpConverter(spec, since_ns=5 * S)
    req = request(
        histogram("lat", [10.0], [2, 1], 10 * S, 6 * S, CUMULATIVE),
        counter("reqs", 40.0, 10 * S, 6 * S, CUMULATIVE),
    )
    assert sorted(values(c, req)) == [
        ("lat", "", 5.0),
        ("lat", "", 5.0),
        ("lat", "", 10.0),
        ("reqs", "", 10.0),
    ]
    old = OtlpConverter(spec, since_ns=5 * S)  # began before the sidecar: the first reading is a reference
    assert values(old, request(histogram("lat", [10.0], [2, 1], 10 * S, 4 * S, CUMULATIVE))) == []
    ex = OtlpConverter(spec, since_ns=5 * S)
    assert len(values(ex, request(exponential("lat", 0, 0, [2, 1], 10 * S, 6 * S, CUMULATIVE)))) == 3


def _full_request() -> ExportMetricsServiceRequest:
    """One of every kind, keyed, as mutation material."""
    return request(
        gauge("temp", 1.5, route="/a"),
        counter("reqs", 10.0, 11 * S, S, CUMULATIVE, route="/a"),
        counter("queue", 3.0, 11 * S, S, DELTA, monotonic=False, route="/b"),
        histogram("lat", [1.0, 5.0, 10.0], [1, 2, 3, 4], 11 * S, S, CUMULATIVE, route="/a"),
        exponential("exp", 3, -4, [1, 0, 2, 5], 11 * S, S, CUMULATIVE, zero=2, neg=[1, 1]),
        resource={"route": "/r"},
    )


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_protobuf_is_decoded_or_refused_and_mapping_never_raises(
    edits: list[tuple[int, int]],
) -> None:
    """Random byte edits of a real request: ``decode`` raises only BodyError, and whatever decodes maps
    to samples and problems without an exception (twice: cumulative state from the first)."""
    body = bytearray(_full_request().SerializeToString())
    for pos, byte in edits:
        body[pos % len(body)] = byte
    try:
        req = decode(bytes(body), proto=True)
    except BodyError:
        return
    c = conv({"temp": "temp", "reqs": "reqs", "queue": "queue", "lat": "lat", "exp": "exp"}, key="route")
    for _ in range(2):
        out = c.convert(req)
        c.commit(out)
        assert len(out.samples) == len(out.origins)
        assert all(isinstance(s["value"], float) for s in out.samples)


def test_json_nested_past_the_message_depth_is_a_body_error() -> None:
    """200 arrays deep: within orjson's 1,024 but past the 100 levels protobuf's parser takes."""
    value = '{"intValue": 1}'
    for _ in range(200):
        value = '{"arrayValue": {"values": [' + value + "]}}"
    body = '{"resourceMetrics":[{"resource":{"attributes":[{"key":"k","value":' + value + "}]}}]}"
    with pytest.raises(BodyError, match="OTLP JSON: Failed to parse resourceMetrics field"):
        decode(body.encode(), proto=False)
