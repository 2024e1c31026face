"""What a sidecar process loads: never scipy (~15 MB, chi2_critical is computed without it), the
Kubernetes client or kopf (operator and CLI only), nor redis-py unless Redis is configured, nor
prometheus-client unless it scrapes the app (the exposition is written by exposition.py), nor protobuf
and the OTLP classes unless ``spec.ingest.otlp`` is configured; nor the numpy
submodules that ``import numpy`` itself leaves unloaded (numpy.polynomial, numpy.linalg: the
calibration's Gauss-Hermite rule is written out, not computed with LAPACK at import), nor numpy.ma
(``np.median`` loads it: the engine uses ``detect.median``), nor importlib.metadata, not even after a
scrape (the version for driftwatch_build_info is read straight from the dist-info), nor the parts
that only Redis, a token, ``spec.scan`` or a ConfigMap baseline use, until they are configured; and
aiohttp is imported without the system's CA bundle (sidecar/tls.py: ~0.1 s and ~2 MB a pod)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from driftwatch import x509

PROBE = """
import asyncio, math, sys
import numpy as np
numpy_own = set(sys.modules)  # what this numpy loads by itself (1.x: linalg and polynomial too)
from driftwatch.cli import main  # the entry point the container runs: `driftwatch sidecar`
from driftwatch.sidecar.runtime import Runtime
from driftwatch.sidecar.settings import Settings

async def run():
    spec = {"features": [{"name": "a", "type": "numeric"}, {"name": "c", "type": "categorical"}]}
    rt = Runtime(Settings.parse({"monitor": {"name": "m"}, "spec": spec}, env={}))
    await rt.start()
    global at_start
    at_start = set(sys.modules)
    now = 1.8e9
    values = [math.sin(i * 0.7) + 0.1 * (i % 13) for i in range(3000)]  # not numpy.random: it is lazy too
    rt.ingest.submit({"feature": "a", "values": values}, now)
    rt.ingest.submit({"samples": [{"feature": "c", "value": v} for v in "xyz" * 300]}, now)
    await rt.worker.flush()
    await rt.metrics.render()
    await rt.stop()

asyncio.run(run())
heavy = {"scipy", "kubernetes", "kopf", "redis", "yaml", "prometheus_client", "google", "opentelemetry"}
lazy_numpy = ("numpy.polynomial", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.ma")
ours = {m.split(".")[0] for m in sys.modules} & heavy
ours |= {m for m in set(sys.modules) - numpy_own if m.startswith(lazy_numpy)}
ours |= {"importlib.metadata", "zipfile", "csv"} & set(sys.modules)  # even after the scrape
# the sidecar's own parts for what this sidecar has not configured (no Redis, token, scan, ConfigMap)
unconfigured = {
    "driftwatch.sidecar." + m
    for m in ("redis_sync", "redis_stream", "store", "commands", "state", "reservoirs", "scrape", "otlp")
} | {"driftwatch.vocab.reservoir_format", "driftwatch.detect.baseline_data"}
ours |= unconfigured & at_start
ours |= {"hmac"} & at_start  # only a token compares with it
print(sorted(ours))
"""

TLS_PROBE = """
import os, sys
os.environ["SSL_CERT_FILE"] = sys.argv[1]
from driftwatch.sidecar import tls
tls.import_aiohttp()
import aiohttp.connector
print(os.environ.get("SSL_CERT_FILE") == sys.argv[1])
print(aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"])
print(tls.client_context().cert_store_stats()["x509_ca"])
"""


def test_sidecar_imports_no_scipy_kubernetes_redis_otlp_nor_lazy_numpy_parts() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_aiohttp_loads_no_ca_bundle_and_the_scrape_context_does(tmp_path: Path) -> None:
    """The bundle (here one CA, named by SSL_CERT_FILE as the system's) is not in aiohttp's import-time
    context, the environment is restored, and ``tls.client_context`` loads it."""
    bundle = tmp_path / "cas.pem"
    bundle.write_bytes(x509.cert_pem(x509.self_signed_ca("test CA", dt.timedelta(days=1))[0]))
    out = subprocess.run(
        [sys.executable, "-c", TLS_PROBE, str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["True", "0", "1"], out.stdout + out.stderr
