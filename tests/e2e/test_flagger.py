"""The real Flagger controller gates a ``provider: kubernetes`` Canary on DriftWatch's verdict.

On the local control plane (kube-scheduler + kwok run the Pods) Flagger runs out of cluster with
``-mesh-provider=kubernetes`` (``driftwatch.devcluster.flagger``), next to the operator (as its
ServiceAccount, with a real Redis). The Canary and its DriftMonitor are
``deploy/rollouts/flagger-canary.yaml`` as shipped -- both webhooks (``rollout`` with ``?failOnly=true``,
``confirm-promotion``), ``threshold`` -- with what a test must change: names, the gate's URL (the
operator on loopback), an analysis interval of 10 s (Flagger's floor) and one iteration, and a smaller
``minSamples``.

Flagger copies the Deployment ``web`` to ``web-primary`` (Pods ``app=web-primary``) and scales ``web``
to zero; a new revision of ``web`` scales it up again beside the primary, and the operator compares the
two groups (``compare: stable-pods``). kwok starts no container, so each Pod's sidecar is a process here
(``driftwatch.devcluster.sidecars``) fed by ``driftwatch simulate`` with its revision's traffic, the
revision read from the Pod's own ``VERSION``: v1 and v2 normal, v3 shifted by +1 sd.

* v2, same distribution: the rollout checks pass, ``confirm-promotion`` waits for Pass, Flagger copies
  v2 to the primary and the Canary ends ``Succeeded``;
* v3, shifted: the verdict is Fail, the rollout check answers 409 ``threshold`` times, Flagger rolls
  back (``Failed``) and the primary keeps running v2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwatch.devcluster import Cluster, LocalCluster
from driftwatch.devcluster.flagger import canary_messages
from driftwatch.devcluster.sidecars import SidecarFleet, rendered_config
from driftwatch.devcluster.stack import (
    OperatorProcess,
    app_template,
    operator_stack,
    wait_for,
)

CANARY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "rollouts" / "flagger-canary.yaml"
SHIPPED_GATE = "http://driftwatch-operator.driftwatch:8080"
APP = "web"
PRIMARY = f"{APP}-primary"
#: a revision's traffic: shift in sd of each version's Pods
SHIFT = {"v1": 0.0, "v2": 0.0, "v3": 1.0}
RATE = 100  # samples a second per Pod
TIMEOUT = 150.0


@pytest.fixture(scope="module")
def op(flagger: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    with operator_stack(flagger, tmp_path_factory.mktemp("flagger"), prometheus_stubs=True) as (operator, _):
        yield operator


def shipped(gate_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(DriftMonitor, Canary) of the shipped file, adapted to this test (see the module docstring)."""
    monitor, canary = yaml.safe_load_all(CANARY_FILE.read_text().replace("payments", APP))
    assert (monitor["kind"], canary["kind"]) == ("DriftMonitor", "Canary")
    assert monitor["spec"]["selector"]["matchExpressions"][0]["values"] == [APP, PRIMARY]
    spec = monitor["spec"]
    spec["baseline"].update(minSamples=100, window=1000)
    spec["gate"]["minSamples"] = 200
    # a rarer false alarm than the default: every status round re-tests (overlapping) samples
    spec["sensitivity"] = {"falseAlarmsPer": 1_000_000}
    analysis = canary["spec"]["analysis"]
    assert canary["spec"]["provider"] == "kubernetes"
    assert [(h["type"], h["url"].removeprefix(SHIPPED_GATE)) for h in analysis["webhooks"]] == [
        ("rollout", "/v1/gate?failOnly=true"),
        ("confirm-promotion", "/v1/gate"),
    ]
    for hook in analysis["webhooks"]:
        hook["url"] = hook["url"].replace(SHIPPED_GATE, gate_url)
    analysis.update(interval="10s", iterations=1)
    return monitor, canary


def deployment(version: str) -> dict[str, Any]:
    labels = {"app": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": app_template(APP, version),
        },
    }


def version_of(template: dict[str, Any]) -> str:
    """The ``VERSION`` of a Pod (template) spec's ``app`` container."""
    app = next(c for c in template["containers"] if c["name"] == "app")
    return str(next(e["value"] for e in app["env"] if e["name"] == "VERSION"))


@dataclass
class Flagged:
    """One namespace's Canary, its DriftMonitor and the sidecar processes standing in for its Pods."""

    cluster: Cluster
    namespace: str
    fleet: SidecarFleet
    seed: int = 0
    #: the last decisive status.gate per (canary, stable) template hash (after a rollback or a
    #: promotion the pair is gone, and the verdict Inconclusive again)
    decided: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        got = self.cluster.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        return dict(json.loads(got.stdout)) if got.returncode == 0 else {}

    def phase(self) -> str:
        return str(self.get("canaries.flagger.app", APP).get("status", {}).get("phase", ""))

    def feed_pods(self) -> None:
        """Every running Pod has a fed sidecar; the sidecars of Pods that are gone stop."""
        listed = self.cluster.kubectl_json(
            "get", "pods", "-n", self.namespace, "-l", f"app in ({APP},{PRIMARY})"
        )["items"]
        running = {
            p["metadata"]["name"]: version_of(p["spec"])
            for p in listed
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        }
        for name in [n for n in self.fleet.sidecars if n not in running]:
            self.fleet.sidecars.pop(name).stop()
        for name, version in running.items():
            if name not in self.fleet.sidecars:
                self.seed += 1
                sigmas = SHIFT[version]
                self.fleet.start(name).feed(
                    "spike" if sigmas else "normal", sigmas=sigmas, rate=RATE, seed=self.seed, seconds=900
                )

    def wait_phase(self, phase: str) -> None:
        """Feed the Pods and note decisive verdicts until the Canary's phase is ``phase``."""
        seen: dict[str, Any] = {}

        def polled() -> bool:
            self.feed_pods()
            gate = self.get("driftmonitor", APP).get("status", {}).get("gate") or {}
            if gate.get("verdict") in ("Pass", "Fail"):
                self.decided[(gate["canary"]["hash"], gate["stable"]["hash"])] = gate
            seen.update(canary=self.get("canaries.flagger.app", APP).get("status", {}), monitor=gate)
            return seen["canary"].get("phase") == phase

        try:
            self.cluster.wait_until(polled, timeout=TIMEOUT, what=f"Canary {APP} {phase}", interval=1.0)
        except TimeoutError as e:
            raise AssertionError(
                f"{e}; last seen: {json.dumps(seen, indent=1, default=str)[:6000]}"
            ) from None

    def template_hash(self, deployment: str, version: str) -> str:
        """pod-template-hash of the Deployment's ReplicaSet for ``version``."""
        listed = self.cluster.kubectl_json("get", "replicasets", "-n", self.namespace)["items"]
        [rs] = [
            r
            for r in listed
            if r["metadata"]["ownerReferences"][0]["name"] == deployment
            and version_of(r["spec"]["template"]["spec"]) == version
        ]
        return str(rs["metadata"]["labels"]["pod-template-hash"])

    def messages(self) -> list[str]:
        """What Flagger said about the Canary (its log: the Events get merged, see devcluster.flagger)."""
        assert isinstance(self.cluster, LocalCluster)
        return canary_messages(self.cluster.logs["flagger"], APP, self.namespace)


@pytest.fixture
def flagged(flagger: Cluster, op: OperatorProcess, namespace: str, tmp_path: Path) -> Iterator[Flagged]:
    """The test's namespace (opted in to injection) with the shipped DriftMonitor, and its sidecars."""
    if not isinstance(flagger, LocalCluster):
        pytest.skip("reads the Flagger controller's log, which only the local control plane keeps here")
    flagger.create_namespace(
        namespace, labels={"driftwatch.io/e2e": "true", "driftwatch.io/inject": "enabled"}
    )
    monitor, _ = shipped(op.gate_url)
    flagger.apply(monitor, namespace=namespace)
    wait_for(
        lambda: (
            flagger.kubectl("get", "configmap", f"driftwatch-{APP}", "-n", namespace, check=False).returncode
            == 0
        ),
        30,
        "the monitor's ConfigMap",
    )
    with SidecarFleet(rendered_config(flagger, namespace, APP), tmp_path / "sidecars") as fleet:
        yield Flagged(flagger, namespace, fleet)


def test_flagger_promotes_a_like_canary_and_rolls_back_a_shifted_one(
    flagged: Flagged, op: OperatorProcess
) -> None:
    cluster, ns = flagged.cluster, flagged.namespace
    _, canary = shipped(op.gate_url)
    cluster.apply(deployment("v1"), namespace=ns)
    cluster.apply(canary, namespace=ns)
    flagged.wait_phase("Initialized")  # web-primary runs v1, web is scaled to zero
    assert version_of(flagged.get("deployment", PRIMARY)["spec"]["template"]["spec"]) == "v1"

    # v2, like v1: analysed beside the primary, promoted once the gate says Pass
    cluster.apply(deployment("v2"), namespace=ns)
    flagged.wait_phase("Succeeded")
    assert version_of(flagged.get("deployment", PRIMARY)["spec"]["template"]["spec"]) == "v2"
    v2 = (flagged.template_hash(APP, "v2"), flagged.template_hash(PRIMARY, "v1"))
    assert flagged.decided[v2]["verdict"] == "Pass", flagged.decided
    said = flagged.messages()
    assert "Confirm-promotion check driftwatch-gate passed" in said, said
    assert any(m.startswith("Promotion completed!") for m in said), said

    # v3, shifted: the rollout check fails `threshold` times and Flagger rolls it back
    cluster.apply(deployment("v3"), namespace=ns)
    flagged.wait_phase("Failed")
    assert version_of(flagged.get("deployment", PRIMARY)["spec"]["template"]["spec"]) == "v2"
    assert flagged.get("deployment", APP)["spec"]["replicas"] == 0
    v3 = (flagged.template_hash(APP, "v3"), flagged.template_hash(PRIMARY, "v2"))
    gate = flagged.decided[v3]
    assert gate["verdict"] == "Fail", flagged.decided
    assert gate["message"].startswith("canary differs from stable: latency_ms mean"), gate
    said = flagged.messages()
    halted = f"Halt {APP}.{ns} advancement external check driftwatch-check failed"
    assert any(m.startswith(halted) for m in said), said
    assert any(m.startswith(f"Rolling back {APP}.{ns} failed checks threshold reached 2") for m in said)
    assert any(m.startswith("Canary failed!") for m in said), said
