"""Small pure pieces: metric helpers, the OpenAPI document's shape, simulate's traffic shapes."""

from __future__ import annotations

import os
import random

import pytest

from driftwatch.detect import StreamStatus
from driftwatch.sidecar.histogram import FastHistogram
from driftwatch.sidecar.openapi import document
from driftwatch.sidecar.settings import Settings
from driftwatch.simulate import check_loopback, make_sample, shift


def test_stream_rows_read_the_engines_baseline_summary() -> None:
    """The baseline metrics read NumericSummary.to_dict() (the only layout the engine produces; the
    guessing at other layouts was removed in issue 9)."""
    from driftwatch.sidecar.views import _row

    def row(kind: str, baseline: dict) -> tuple:
        r = _row(StreamStatus("f", "", kind, "Stable", 0.1, "none", "d", None, 3, 0, baseline))
        return r.baseline_mean, r.baseline_std

    assert row("numeric", {"kind": "numeric", "moments": {"n": 3, "mean": 2.0, "m2": 2.0}}) == (2.0, 1.0)
    assert row("numeric", {"kind": "numeric", "moments": {"n": 1, "mean": 2.0, "m2": 0.0}}) == (2.0, None)
    assert row("categorical", {"kind": "categorical", "counts": {}}) == (None, None)


def test_fast_histogram_is_cumulative() -> None:
    h = FastHistogram((0.1, 1.0))
    for v in (0.05, 0.5, 5.0, 0.1):
        h.observe(v)
    assert h.buckets() == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert abs(h.sum - 5.65) < 1e-9


def test_openapi_carries_declared_features() -> None:
    s = Settings.parse(
        {"monitor": {"name": "m"}, "spec": {"features": [{"name": "lat", "type": "numeric"}]}}, env={}
    )
    doc = document(s)
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["schemas"]["Sample"]["properties"]["feature"] == {"enum": ["lat"]}
    assert set(doc["paths"]) >= {
        "/v1/samples",
        "/v1/telemetry",
        "/v1/status",
        "/v1/events",
        "/metrics",
        "/readyz",
    }


def test_simulate_shapes_and_loopback_guard() -> None:
    assert shift("normal", 0.9, 0.5) == 0
    assert shift("spike", 0.4, 0.5) == 0
    assert shift("spike", 0.6, 0.5) == 6
    assert 2.9 < shift("creep", 0.75, 0.5) < 3.1
    assert {shift("flap", p / 100, 0.5) for p in range(50, 100)} == {0.0, 6.0}
    rng = random.Random(0)
    before = [make_sample(rng, "plan", "categorical", "category-shift", 0.1, 0.5) for _ in range(2000)]
    after = [make_sample(rng, "plan", "categorical", "category-shift", 0.9, 0.5) for _ in range(2000)]
    assert before.count("enterprise") < 200 < after.count("enterprise")
    assert check_loopback("http://127.0.0.1:8476") is None
    assert check_loopback("http://localhost:8476") is None
    assert "loopback" in (check_loopback("http://10.1.2.3:8476") or "")
    assert check_loopback("ftp://127.0.0.1") is not None


def test_exposition_parses_as_prometheus_text_with_escaped_labels() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from driftwatch.sidecar.exposition import Writer

    w = Writer(("monitor", "namespace"), ("m", "ns"))
    w.counter("driftwatch_x", "Things.", ("feature", "key"), [(("f", 'a"b\\c\nd'), 3), (("f", ""), 1.5)])
    w.gauge("driftwatch_g", "A gauge.", (), [((), float("inf"))])
    h = FastHistogram((0.1, 1.0))
    h.observe(0.05)
    h.observe(5.0)
    w.histogram("driftwatch_h", "A histogram.", h)
    w.process()
    fams = {f.name: f for f in text_string_to_metric_families(w.text().decode())}
    x = {s.labels["key"]: s.value for s in fams["driftwatch_x"].samples}
    assert x == {'a"b\\c\nd': 3.0, "": 1.5}
    assert fams["driftwatch_x"].type == "counter"
    assert fams["driftwatch_g"].samples[0].value == float("inf")
    hs = {(s.name, s.labels.get("le")): s.value for s in fams["driftwatch_h"].samples}
    assert hs[("driftwatch_h_bucket", "+Inf")] == 2.0
    assert hs[("driftwatch_h_count", None)] == 2.0
    assert fams["driftwatch_h"].samples[0].labels["monitor"] == "m"
    assert fams["process_resident_memory_bytes"].samples[0].value > 0
    assert fams["python_info"].samples[0].labels["implementation"] == "CPython"


def test_single_threaded_blas_sets_one_thread_unless_the_environment_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from driftwatch.sidecar.memory import BLAS_THREADS, single_threaded_blas

    for var in BLAS_THREADS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # an operator's choice stays
    single_threaded_blas()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "4"


def test_a_trim_collects_fully_at_most_once_per_interval() -> None:
    """The full collection before a trim clears the free lists that pin small-object arenas; it is
    spaced (at least ``interval``, ``GC_SPACING`` times its cost), the trims themselves are not."""
    import gc

    from driftwatch.sidecar.memory import Trimmer

    full: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    t = Trimmer(interval=3600.0)
    gc.callbacks.append(seen)
    try:
        t.now()
        t.now()
        t.maybe()
    finally:
        gc.callbacks.remove(seen)
    assert len(full) == 1


def test_the_per_stream_text_is_kept_for_scrapes_close_together_only() -> None:
    """Scrapes back to back reuse the per-stream families' text; once none came for ``keep`` seconds it
    is dropped (it held ~1.3 MB per 1,000 streams between Prometheus' scrapes), and the next scrape
    writes the same text again."""
    import asyncio

    from driftwatch.sidecar.runtime import Runtime

    async def run() -> None:
        spec = {"features": [{"name": "a", "type": "numeric"}]}
        rt = Runtime(Settings.parse({"monitor": {"name": "m"}, "spec": spec}, env={}))
        await rt.start()
        try:
            rt.ingest.submit({"feature": "a", "values": [float(i % 7) for i in range(300)]}, 1.8e9)
            await rt.worker.flush()
            first = await rt.metrics.render()
            text = rt.metrics._stream_text[1]
            assert 'driftwatch_drift_score{monitor="m"' in text
            await rt.metrics.render()
            assert rt.metrics._stream_text[1] is text  # reused: same rows, close together
            rt.metrics._keep = 0.0
            await rt.metrics.render()
            await asyncio.sleep(0.05)  # the drop is a call_later(0) after the scrape
            assert rt.metrics._stream_text == ([], "")
            again = await rt.metrics.render()
            assert text in again.decode()
            assert text in first.decode()
        finally:
            await rt.stop()

    asyncio.run(run())


def test_a_plain_batch_with_a_stray_comma_is_malformed_json_not_an_extra_sample() -> None:
    """``..."value":1,2}`` is not JSON: the general path's 400, never one sample too many (the byte-level
    reader of the plain batch once read it as two numbers)."""
    import asyncio

    from driftwatch.sidecar.decode import BodyError
    from driftwatch.sidecar.runtime import Runtime

    async def run() -> None:
        spec = {"features": [{"name": "lat", "type": "numeric"}]}
        rt = Runtime(Settings.parse({"monitor": {"name": "m"}, "spec": spec}, env={}))
        await rt.start()
        try:
            one = b'{"feature":"lat","value":1.5}'
            good = b'{"samples":[' + b",".join([one] * 100) + b"]}"
            assert (await rt.ingest.receive(good, 1.8e9)).accepted == 100
            bad = good[: -len(b"}]}")] + b",2}]}"
            with pytest.raises(BodyError, match="malformed JSON"):
                await rt.ingest.receive(bad, 1.8e9)
            assert rt.counters.rejected["invalid_json"] == 1
        finally:
            await rt.stop()

    asyncio.run(run())


def test_exposition_writes_lines_as_they_come_the_text_of_the_joined_lines() -> None:
    """The Writer formats each line into one buffer (§35: no list of every line until a join); the
    text is what the joined lines were, and a block written elsewhere (the per-stream families) goes in
    as it is."""
    from driftwatch.sidecar.exposition import Writer

    inner = Writer(("monitor",), ("m",))
    inner.gauge("g", "G.", ("feature",), ((("f",), 0.5), (("h",), 2.0)))
    block = inner.body()
    assert block == (
        '# HELP g G.\n# TYPE g gauge\ng{monitor="m",feature="f"} 0.5\ng{monitor="m",feature="h"} 2.0\n'
    )
    w = Writer(("monitor",), ("m",))
    w.counter("c", "C.", (), [((), 3)])
    w.raw(block)
    w.gauge("u", "U.", (), [((), float("nan"))])
    assert (
        w.text().decode()
        == "\n".join(
            [
                "# HELP c_total C.",
                "# TYPE c_total counter",
                'c_total{monitor="m"} 3.0',
                block[:-1],
                "# HELP u U.",
                "# TYPE u gauge",
                'u{monitor="m"} NaN',
            ]
        )
        + "\n"
    )
