"""Small helpers of the reliability suite: DriftMonitors, pods and their status on the local control
plane (the e2e suite has its own; these stay here so the two suites evolve apart)."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import OperatorProcess, wait_for

INJECT_LABELS = {"driftwatch.io/e2e": "true", "driftwatch.io/inject": "enabled"}


def monitor(name: str, app: str = "a", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


def pod(name: str, app: str, **spec: Any) -> dict[str, Any]:
    """A pod that passes ``restricted`` Pod Security on its own."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "app",
                    "image": "registry.k8s.io/pause:3.10",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            **spec,
        },
    }


def get(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    r = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False)
    return json.loads(r.stdout) if r.stdout.strip() else None


def condition(cluster: Cluster, namespace: str, name: str, ctype: str = "Ready") -> dict[str, Any]:
    st = (get(cluster, "driftmonitor", namespace, name) or {}).get("status") or {}
    return next((c for c in st.get("conditions") or [] if c["type"] == ctype), {})


def wait_condition(
    cluster: Cluster, namespace: str, name: str, status: str, timeout: float = 30, ctype: str = "Ready"
) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        c = condition(cluster, namespace, name, ctype)
        return c if c.get("status") == status else None

    found: dict[str, Any] = wait_for(seen, timeout, f"{ctype}={status} on DriftMonitor {namespace}/{name}")
    return found


def sidecars(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The injected detector containers of a pod (native sidecars: init containers)."""
    spec = p["spec"]
    return [
        c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == "driftwatch-sidecar"
    ]


def metrics(op: OperatorProcess) -> dict[str, float]:
    """The operator's ``/metrics`` (gate port) as {sample with its labels: value}."""
    with urllib.request.urlopen(f"{op.gate_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def gauge(op: OperatorProcess, name: str) -> float:
    """The sum of an operator metric's samples (any labels)."""
    return sum(v for k, v in metrics(op).items() if k == name or k.startswith(name + "{"))


#: test id (``test_file.py::test_name[params]``) -> the numbers it recorded this session; conftest's
#: terminal summary turns them into the table (``reliability_table``)
RECORDS: dict[str, dict[str, Any]] = {}


def current_test() -> str:
    """``test_file.py::test_name[params]`` of the running test (pytest's ``PYTEST_CURRENT_TEST``)."""
    nodeid = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    if not nodeid:
        raise RuntimeError("reliability numbers are recorded from inside a test")
    return nodeid.rsplit("/", 1)[-1]


def record(**numbers: Any) -> None:
    """Record the numbers of the running test for docs/reliability.md's table (and print them: ``-s``).
    The ``reliability_record`` fixture is this function."""
    key = current_test()
    RECORDS.setdefault(key, {}).update(numbers)
    print(f"\nRELIABILITY {key}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
