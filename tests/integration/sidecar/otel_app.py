"""A small app instrumented with OpenTelemetry the ordinary way: the SDK's MeterProvider with a
periodic reader and the OTLP/HTTP exporter, constructed without arguments. Where it exports to, how
often, with which temporality, histogram aggregation, headers and resource is configured only by the
standard ``OTEL_*`` environment variables -- as a deployed app is, pointed at its sidecar.

Its "traffic": ``--phase MEAN:SECONDS`` (repeatable) records ``--rate`` requests a second whose
latency is normal(MEAN, MEAN/10) (seeded), on routes /pay and /cart. It prints the number of
observations it recorded per route as JSON on exit, after the provider's final export.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", action="append", required=True, help="MEAN:SECONDS")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
    metrics.set_meter_provider(provider)
    meter = metrics.get_meter("shop.checkout")
    latency = meter.create_histogram("http.server.request.duration", unit="ms")
    requests = meter.create_counter("http.server.requests")
    active = meter.create_up_down_counter("http.server.active_requests")
    temperature = meter.create_gauge("cpu.temperature")

    rng = random.Random(args.seed)
    recorded = {"/pay": 0, "/cart": 0}
    tick = 0.05
    for phase in args.phase:
        mean, seconds = (float(x) for x in phase.split(":"))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(max(1, round(args.rate * tick))):
                route = rng.choice(("/pay", "/cart"))
                active.add(1, {"http.route": route})
                latency.record(max(0.0, rng.gauss(mean, mean / 10)), {"http.route": route})
                requests.add(1, {"http.route": route})
                active.add(-1, {"http.route": route})
                recorded[route] += 1
            temperature.set(40.0 + rng.random(), {"http.route": "/pay"})
            time.sleep(tick)
    provider.shutdown()  # the final export
    print(json.dumps(recorded), flush=True)


if __name__ == "__main__":
    main()
