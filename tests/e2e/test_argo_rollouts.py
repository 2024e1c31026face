"""The real Argo Rollouts controller steps canaries whose Pods run, and obeys a ``web`` analysis.

This is the plumbing the rollout gate depends on, proven with nothing of DriftWatch in between:

* a canary Rollout's Pods are scheduled and become Ready (kube-scheduler + kwok), so the controller
  walks its ``setWeight``/``pause`` steps to the end and promotes the new revision;
* an AnalysisTemplate with the ``web`` provider, shaped like ``deploy/rollouts/``' web template
  (``jsonPath: {$.verdict}``, ``Pass`` succeeds, ``Fail`` fails, ``failureLimit: 0``), asks an HTTP
  server this test runs on loopback: answered ``Pass`` the AnalysisRun is ``Successful`` and the
  Rollout completes; answered ``Fail`` it is ``Failed`` and the controller aborts the Rollout, scaling
  the canary away and keeping the stable Pods.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import app_template

ROLLOUT_TIMEOUT = 180.0


class VerdictServer:
    """A stand-in for the operator's gate on 127.0.0.1: answers ``{"verdict": ...}`` and records
    every request's path and query, so the test sees what Argo asked."""

    def __init__(self) -> None:
        self.verdict = "Inconclusive"
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                server.requests.append((url.path, urllib.parse.parse_qs(url.query)))
                body = json.dumps({"verdict": server.verdict, "score": 0.0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> VerdictServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def verdicts() -> Iterator[VerdictServer]:
    with VerdictServer() as server:
        yield server


def rollout(name: str, version: str, steps: list[dict[str, Any]], replicas: int = 2) -> dict[str, Any]:
    """A basic canary Rollout (no traffic routing: ``setWeight`` scales ReplicaSets); ``version``
    goes into the Pod template, so changing it starts a new revision."""
    labels = {"app": name}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": labels},
            "template": app_template(name, version),
            "strategy": {"canary": {"steps": steps}},
        },
    }


def get(cluster: Cluster, kind: str, name: str, namespace: str) -> Any:
    return cluster.kubectl_json("get", kind, name, "-n", namespace)


def wait_healthy_at(
    cluster: Cluster, name: str, namespace: str, *, previous_hash: str = ""
) -> dict[str, Any]:
    """Wait until the Rollout is Healthy on a revision other than ``previous_hash``; return its status."""
    seen: dict[str, Any] = {}

    def done() -> bool:
        status = get(cluster, "rollout", name, namespace).get("status", {})
        seen.update(status)
        current = status.get("currentPodHash", "")
        return (
            status.get("phase") == "Healthy"
            and current != previous_hash
            and status.get("stableRS") == current
            and status.get("availableReplicas") == status.get("replicas")
        )

    try:
        cluster.wait_until(done, timeout=ROLLOUT_TIMEOUT, what=f"Rollout {name} Healthy on a new revision")
    except TimeoutError as e:
        raise AssertionError(f"{e}; last status: {json.dumps(seen, indent=1)}") from None
    return seen


def running_ready_pods(cluster: Cluster, namespace: str, pod_hash: str) -> int:
    pods = cluster.kubectl_json(
        "get", "pods", "-n", namespace, "-l", f"rollouts-pod-template-hash={pod_hash}"
    )
    return sum(
        1
        for p in pods["items"]
        if p["status"].get("phase") == "Running"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    )


def events(cluster: Cluster, namespace: str, name: str, reason: str) -> list[str]:
    listed = cluster.kubectl_json(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name},reason={reason}"
    )
    return [e["message"] for e in sorted(listed["items"], key=lambda e: e["metadata"]["creationTimestamp"])]


def test_canary_steps_through_to_promotion(argo_rollouts: Cluster, namespace: str) -> None:
    cluster = argo_rollouts
    steps = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]
    cluster.apply(rollout("shop", "v1", steps), namespace=namespace)
    first = wait_healthy_at(cluster, "shop", namespace)  # the first revision skips the steps
    assert running_ready_pods(cluster, namespace, first["currentPodHash"]) == 2

    cluster.apply(rollout("shop", "v2", steps), namespace=namespace)
    second = wait_healthy_at(cluster, "shop", namespace, previous_hash=first["currentPodHash"])

    assert second["currentStepIndex"] == len(steps)
    assert running_ready_pods(cluster, namespace, second["currentPodHash"]) == 2
    completed = events(cluster, namespace, "shop", "RolloutStepCompleted")
    assert [m for m in completed if "setWeight: 50" in m], completed
    assert [m for m in completed if "pause: 2s" in m], completed
    # the old revision is scaled away once the new one is stable
    cluster.wait_until(
        lambda: running_ready_pods(cluster, namespace, first["currentPodHash"]) == 0,
        timeout=60,
        what="the first revision's Pods to go",
    )


def analysis_template(name: str) -> dict[str, Any]:
    """The web template's shape (deploy/rollouts/argo-analysistemplate-web.yaml), measured once."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "args": [
                {"name": "gate-url"},
                {"name": "namespace"},
                {"name": "monitor"},
                {"name": "canary-hash"},
            ],
            "metrics": [
                {
                    "name": "driftwatch-verdict",
                    "successCondition": 'result == "Pass"',
                    "failureCondition": 'result == "Fail"',
                    "failureLimit": 0,
                    "provider": {
                        "web": {
                            "url": (
                                "{{args.gate-url}}/v1/gate/{{args.namespace}}/{{args.monitor}}"
                                "?always200=true&canary={{args.canary-hash}}"
                            ),
                            "timeoutSeconds": 10,
                            "jsonPath": "{$.verdict}",
                        }
                    },
                }
            ],
        },
    }


def analysis_run_phase(cluster: Cluster, namespace: str, pod_hash: str) -> str:
    runs = cluster.kubectl_json(
        "get", "analysisruns", "-n", namespace, "-l", f"rollouts-pod-template-hash={pod_hash}"
    )["items"]
    return str(runs[0].get("status", {}).get("phase", "")) if runs else ""


def test_web_analysis_passes_then_fails_and_aborts(
    argo_rollouts: Cluster, namespace: str, verdicts: VerdictServer
) -> None:
    cluster = argo_rollouts
    cluster.apply(analysis_template("drift-gate"), namespace=namespace)
    steps = [
        {"setWeight": 50},
        {
            "analysis": {
                "templates": [{"templateName": "drift-gate"}],
                "args": [
                    {"name": "gate-url", "value": verdicts.url},
                    {"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "monitor", "value": "shop"},
                    {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                ],
            }
        },
    ]
    cluster.apply(rollout("shop", "v1", steps), namespace=namespace)
    v1 = wait_healthy_at(cluster, "shop", namespace)
    assert not verdicts.requests  # the first revision has nothing to compare: no analysis

    # Pass: the AnalysisRun succeeds and v2 becomes stable
    verdicts.verdict = "Pass"
    cluster.apply(rollout("shop", "v2", steps), namespace=namespace)
    v2 = wait_healthy_at(cluster, "shop", namespace, previous_hash=v1["currentPodHash"])
    v2_hash = v2["currentPodHash"]
    assert analysis_run_phase(cluster, namespace, v2_hash) == "Successful"
    assert (f"/v1/gate/{namespace}/shop", {"always200": ["true"], "canary": [v2_hash]}) in verdicts.requests

    # Fail: the AnalysisRun fails, the controller aborts v3 and v2 stays stable with all its Pods
    verdicts.verdict = "Fail"
    cluster.apply(rollout("shop", "v3", steps), namespace=namespace)
    status: dict[str, Any] = {}

    def aborted() -> bool:
        status.update(get(cluster, "rollout", "shop", namespace).get("status", {}))
        return bool(status.get("abort")) and status.get("phase") == "Degraded"

    try:
        cluster.wait_until(aborted, timeout=ROLLOUT_TIMEOUT, what="the Rollout to abort v3")
    except TimeoutError as e:
        raise AssertionError(f"{e}; last status: {json.dumps(status, indent=1)}") from None
    v3_hash = status["currentPodHash"]
    assert v3_hash not in {v1["currentPodHash"], v2_hash}
    assert analysis_run_phase(cluster, namespace, v3_hash) == "Failed"
    assert status["stableRS"] == v2_hash
    assert "RolloutAborted" in status.get("message", "")
    assert any(query.get("canary") == [v3_hash] for _, query in verdicts.requests)
    cluster.wait_until(
        lambda: (
            running_ready_pods(cluster, namespace, v3_hash) == 0
            and running_ready_pods(cluster, namespace, v2_hash) == 2
        ),
        timeout=60,
        what="the canary scaled away and the stable Pods all Ready",
    )
