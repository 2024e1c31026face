"""What a sidecar process loads: never scipy (~15 MB, chi2_critical is computed without it), the
Kubernetes client or kopf (operator and CLI only), nor redis-py unless Redis is configured, nor
prometheus-client unless it scrapes the app (the exposition is written by exposition.py), nor protobuf
and the OTLP classes unless ``spec.ingest.otlp`` is configured; nor the numpy
submodules that ``import numpy`` itself leaves unloaded (numpy.polynomial, numpy.linalg: the
calibration's Gauss-Hermite rule is written out, not computed with LAPACK at import)."""

from __future__ import annotations

import subprocess
import sys

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
    now = 1.8e9
    values = [math.sin(i * 0.7) + 0.1 * (i % 13) for i in range(3000)]  # not numpy.random: it is lazy too
    rt.ingest.submit({"feature": "a", "values": values}, now)
    rt.ingest.submit({"samples": [{"feature": "c", "value": v} for v in "xyz" * 300]}, now)
    await rt.worker.flush()
    await rt.metrics.render()
    await rt.stop()

asyncio.run(run())
heavy = {"scipy", "kubernetes", "kopf", "redis", "yaml", "prometheus_client", "google", "opentelemetry"}
lazy_numpy = ("numpy.polynomial", "numpy.linalg", "numpy.random", "numpy.fft")  # (np.median loads numpy.ma)
ours = {m.split(".")[0] for m in sys.modules} & heavy
ours |= {m for m in set(sys.modules) - numpy_own if m.startswith(lazy_numpy)}
print(sorted(ours))
"""


def test_sidecar_imports_no_scipy_kubernetes_redis_otlp_nor_lazy_numpy_parts() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
