"""`driftwatch status` and `driftwatch gate` read a real DriftMonitor from the real API server.

The status is written here through the status subresource (as the operator would), so these tests pin
the commands' reading of it: exit codes for Argo Rollouts' ``job`` provider and the per-feature table.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

import pytest

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import install_crd


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


def make_monitor(cluster: Cluster, namespace: str, name: str, status: dict[str, Any] | None) -> None:
    cluster.apply(
        {
            "apiVersion": "driftwatch.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}}, "features": [{"name": "latency_ms"}]},
        }
    )
    if status is not None:
        obj = cluster.kubectl_json("get", "driftmonitor", name, "-n", namespace)
        status = {**status, "observedGeneration": obj["metadata"]["generation"]}
        cluster.kubectl(
            "patch", "driftmonitor", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )  # fmt: skip


def run(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftwatch", *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


FEATURE = {
    "name": "latency_ms",
    "key": "",
    "state": "Drifting",
    "score": 0.83,
    "severity": "critical",
    "detector": "cusum-mean-up",
}


@pytest.mark.usefixtures("crd")
@pytest.mark.parametrize(("verdict", "code"), [("Pass", 0), ("Fail", 1), ("Inconclusive", 2)])
def test_gate_exit_code_follows_the_verdict(
    cluster: Cluster, namespace: str, verdict: str, code: int
) -> None:
    make_monitor(cluster, namespace, "payments", {"phase": "Stable", "verdict": verdict, "lastUpdate": now()})
    result = run(cluster, "gate", f"{namespace}/payments")
    assert result.returncode == code, result.stderr
    assert json.loads(result.stdout)["verdict"] == verdict


@pytest.mark.usefixtures("crd")
def test_gate_without_status_is_inconclusive_and_missing_monitor_is_an_error(
    cluster: Cluster, namespace: str
) -> None:
    make_monitor(cluster, namespace, "fresh", None)
    assert run(cluster, "gate", f"{namespace}/fresh").returncode == 2
    missing = run(cluster, "gate", f"{namespace}/nope")
    assert missing.returncode == 3
    assert "nope" in missing.stderr


@pytest.mark.usefixtures("crd")
def test_status_shows_every_feature(cluster: Cluster, namespace: str) -> None:
    status = {"phase": "Drifting", "verdict": "Fail", "lastUpdate": now(), "features": [FEATURE]}
    make_monitor(cluster, namespace, "payments", status)
    table = run(cluster, "status", "-n", namespace)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "PHASE", "FEATURE"]  # no NAMESPACE column without -A
    assert row.split()[:-1] == ["payments", "Drifting", "latency_ms", "-", "Drifting", "0.83", "critical",
                                "Fail"]  # fmt: skip
    wide = run(cluster, "status", "-n", namespace, "-o", "wide").stdout.splitlines()[1].split()
    assert "cusum-mean-up" in wide
    as_json = json.loads(run(cluster, "status", "-n", namespace, "-o", "json").stdout)
    assert as_json["items"][0]["status"]["features"][0]["score"] == pytest.approx(0.83)


@pytest.mark.usefixtures("crd")
def test_gate_names_the_canary_it_asks_about(cluster: Cluster, namespace: str) -> None:
    """``--canary HASH`` (the job provider's Job passes its revision's podTemplateHashValue Latest): a
    canary-vs-stable status still holding the previous canary's Pass is Inconclusive for the new one, so
    its Job cannot exit 0 on it; once the operator has judged the new canary, its verdict counts."""

    def gated(about: str, verdict: str) -> dict[str, Any]:
        gate = {
            "compare": "stable-pods",
            "mode": "enforce",
            "verdict": verdict,
            "message": "m",
            "canaryHash": about,
        }
        return {"phase": "Stable", "verdict": verdict, "lastUpdate": now(), "gate": gate}

    make_monitor(cluster, namespace, "payments", gated("v2hash", "Pass"))
    assert run(cluster, "gate", f"{namespace}/payments", "--canary", "v2hash").returncode == 0
    stale = run(
        cluster, "gate", f"{namespace}/payments", "--canary", "v3hash", "--wait", "1s", "--interval", "0.2"
    )
    assert stale.returncode == 2, stale.stderr
    out = json.loads(stale.stdout)
    assert out["verdict"] == "Inconclusive"
    assert out["canary"] == "v3hash"
    assert out["message"] == "the verdict is about canary pods v2hash, not v3hash (not judged yet)"
    assert run(cluster, "gate", f"{namespace}/payments").returncode == 0  # unnamed: as before

    make_monitor(cluster, namespace, "payments", gated("v3hash", "Fail"))
    assert run(cluster, "gate", f"{namespace}/payments", "--canary", "v3hash").returncode == 1
    bad = run(cluster, "gate", f"{namespace}/payments", "--canary", "")
    assert bad.returncode == 2
    assert "--canary: must be a pod template hash" in bad.stderr
