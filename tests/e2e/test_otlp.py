"""OpenTelemetry end to end: an app instrumented with the OpenTelemetry SDK, unmodified and pointed at
its sidecar only by ``OTEL_*`` environment variables, drifts in its request-duration histogram, and the
drift reaches the DriftMonitor's status (Drifting, verdict Fail).

Real parts: the local control plane's API server, the operator as its ServiceAccount (it renders
``spec.ingest.otlp`` into the sidecar's ConfigMap and injects the sidecar into the Deployment's Pod),
a real Redis, the sidecar as a process with that ConfigMap and the Pod's name (kwok starts no
container), and the app (``tests/integration/sidecar/otel_app.py``) exporting OTLP/HTTP protobuf with
the SDK's default cumulative temporality and explicit buckets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.sidecars import PodSidecar, rendered_config
from driftwatch.devcluster.stack import OperatorProcess, RedisServer, operator_stack, wait_for

APP = Path(__file__).resolve().parents[1] / "integration" / "sidecar" / "otel_app.py"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # never pulled: there is no kubelet
SIDECAR = "driftwatch-sidecar"


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, RedisServer]]:
    with operator_stack(cluster, tmp_path_factory.mktemp("otlp-operator")) as (op, redis_server):
        yield op, redis_server


def status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "driftmonitor", name, "-n", ns, "-o", "json", check=False)
    return (json.loads(out.stdout).get("status") or {}) if out.returncode == 0 else {}


def phase(cluster: Cluster, ns: str, name: str, expected: str) -> dict[str, Any] | None:
    st = status(cluster, ns, name)
    return st if st.get("phase") == expected else None


def deployment(app: str) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": PAUSE_IMAGE,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }


def run_app(sidecar: PodSidecar, *phases: str, seed: int) -> dict[str, int]:
    """The app's traffic (``--phase MEAN:SECONDS``), exported to the sidecar; configured by OTEL_* only."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{sidecar.ingest}/v1/metrics",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_SERVICE_NAME": "shop",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e",
    }
    args = [a for p in phases for a in ("--phase", p)]
    out = subprocess.run(
        [sys.executable, str(APP), *args, "--seed", str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    recorded: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return recorded


def test_histogram_drift_from_an_otel_app_reaches_the_monitor_status(
    cluster: Cluster, stack: tuple[OperatorProcess, RedisServer], namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    cluster.create_namespace(ns, labels={"driftwatch.io/e2e": "true", "driftwatch.io/inject": "enabled"})
    cluster.apply(
        {
            "apiVersion": "driftwatch.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "shop"}},
                "features": [{"name": "latency_ms", "type": "numeric"}],
                "baseline": {"minSamples": 300, "window": 1000, "adopt": {"after": "never"}},
                "ingest": {"otlp": {"metrics": {"http.server.request.duration": "latency_ms"}}},
            },
        },
        namespace=ns,
    )
    config = wait_for(
        lambda: rendered_config(cluster, ns, "shop") if _has_configmap(cluster, ns) else None,
        30,
        "the sidecar's ConfigMap",
    )
    assert config["spec"]["ingest"]["otlp"]["metrics"] == {"http.server.request.duration": "latency_ms"}
    cluster.apply(deployment("shop"), namespace=ns)

    def pod() -> str | None:
        items = cluster.kubectl_json("get", "pods", "-n", ns, "-l", "app=shop")["items"]
        if not items:
            return None
        spec = items[0]["spec"]
        names = [c["name"] for c in [*spec["containers"], *(spec.get("initContainers") or [])]]
        assert SIDECAR in names
        name: str = items[0]["metadata"]["name"]
        return name

    pod_name = wait_for(pod, 60, "the shop pod")
    config["state"]["publishInterval"] = 0.5
    sidecar = PodSidecar(pod_name, config, tmp_path).wait_ready()
    try:
        # normal(100, 10) ms: the SDK's default buckets put it in (75, 100] and (100, 250]
        recorded = run_app(sidecar, "100:5", seed=1)
        assert sum(recorded.values()) >= 300
        st = wait_for(lambda: phase(cluster, ns, "shop", "Stable"), 60, "phase Stable")
        assert st["verdict"] == "Pass"
        # the same app, slower: normal(160, 16) ms, all of it in (100, 250]
        run_app(sidecar, "160:5", seed=2)
        st = wait_for(lambda: phase(cluster, ns, "shop", "Drifting"), 60, "phase Drifting")
        assert st["verdict"] == "Fail"
        assert "latency_ms" in st["driftingFeatures"]
        feature = next(f for f in st["features"] if f["name"] == "latency_ms")
        assert feature["state"] == "Drifting"
    finally:
        sidecar.stop()
    log = sidecar.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]


def _has_configmap(cluster: Cluster, ns: str) -> bool:
    out = cluster.kubectl("get", "configmap", "driftwatch-shop", "-n", ns, "--ignore-not-found", check=False)
    return bool(out.stdout.strip())
