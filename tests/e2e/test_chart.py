"""The chart and the kustomize overlays against a real API server (the session's local control plane).

* ``kubectl apply --dry-run=server`` of the rendered chart (default and non-default values) and of
  ``kubectl kustomize deploy/kustomize/overlays/dev``: every object passes the API server's validation
  and admission. The CRD is applied for real first; objects of kinds this cluster has no CRD for
  (monitoring.coreos.com, cert-manager.io) are left out — their shape is checked in
  tests/integration/test_packaging.py.
* Pod Security ``restricted``: the operator's and Redis' pod templates are admitted as Pods in a
  namespace that enforces ``restricted`` (and a pod without a securityContext is not, to show the
  namespace really enforces it).
* ``helm install`` creates the objects — into a ``restricted`` namespace, where the ReplicaSet
  controller then creates the Pods (on the local control plane kwok reports them Running; no container
  starts) — and ``helm uninstall`` removes them again, the cluster-scoped ones included.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.binaries import cache_dir, helm_env, read_versions
from driftwatch.devcluster.stack import install_crd

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "driftwatch"
NO_CRD_HERE = ("monitoring.coreos.com/", "cert-manager.io/")
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    path = cache_dir() / f"helm-{read_versions()['HELM_VERSION']}" / "helm"
    if not path.is_file():
        pytest.skip(f"helm not built ({path}); run `make k8s-bins`")
    return str(path), helm_env(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    """The DriftMonitor CRD, applied for real (idempotent; other tests apply the same file)."""
    install_crd(cluster)


def helm_run(helm: tuple[str, dict[str, str]], cluster: Cluster, *args: str, check: bool = True) -> str:
    path, env = helm
    cmd = [path, "--kubeconfig", str(cluster.kubeconfig), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def template(
    helm: tuple[str, dict[str, str]], release: str, namespace: str, *values: str
) -> list[dict[str, Any]]:
    path, env = helm
    # helm built from source reports Kubernetes v1.20 to `helm template`: render for the tested version
    kube_version = read_versions()["K8S_VERSION"].removeprefix("v")
    cmd = [path, "template", release, str(CHART), "--namespace", namespace, "--kube-version", kube_version]
    for v in values:
        cmd += ["--set", v]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def server_dry_run(cluster: Cluster, objs: list[dict[str, Any]]) -> str:
    kept = [o for o in objs if not o["apiVersion"].startswith(NO_CRD_HERE)]
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(kept), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    return result.stdout


def test_rendered_chart_passes_server_side_dry_run(
    cluster: Cluster, crd: None, namespace: str, helm: tuple[str, dict[str, str]]
) -> None:
    release = f"dw{uuid.uuid4().hex[:5]}"
    # crds.install=false: the session's CRD was applied server-side; the CRD template's own dry run
    # (server-side apply) is in test_chart_conventions.py
    default = template(helm, release, namespace, "crds.install=false")
    out = server_dry_run(cluster, default)
    for kind in (
        "deployment.apps",
        "service",
        "serviceaccount",
        "clusterrole.rbac.authorization.k8s.io",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io",
    ):
        assert kind in out, out
    non_default = template(
        helm,
        release,
        namespace,
        "crds.install=false",
        "redis.enabled=false",
        "redis.url=redis://redis.example:6379/0",
        "webhook.certs.mode=cert-manager",
        "webhook.failurePolicy=Fail",
        "webhook.injectionScope=pod",
        "monitoring.prometheusRule.enabled=true",
        "monitoring.podMonitor.enabled=true",
        "monitoring.perMonitor.enabled=false",
        "monitoring.additionalLabels.release=kps",
        "grafana.dashboard.enabled=true",
    )
    assert any(o["apiVersion"].startswith(NO_CRD_HERE) for o in non_default)
    out = server_dry_run(cluster, non_default)
    assert "configmap/" in out  # the dashboard


def test_dev_overlay_passes_server_side_dry_run(cluster: Cluster, crd: None) -> None:
    objs = [
        d
        for d in yaml.safe_load_all(
            cluster.kubectl("kustomize", str(ROOT / "deploy/kustomize/overlays/dev")).stdout
        )
        if d
    ]
    (ns,) = [o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"]
    existed = cluster.kubectl("get", "namespace", ns, check=False).returncode == 0
    # objects in a namespace that does not exist yet fail even a dry run: create the namespace for real
    namespace_obj = next(o for o in objs if o["kind"] == "Namespace")
    cluster.apply(namespace_obj)
    try:
        kept = [o for o in objs if o["kind"] not in ("Namespace", "CustomResourceDefinition")]
        for o in kept:  # other tests' operators leave one of this name (by URL): validate ours beside it
            if o["kind"] == "MutatingWebhookConfiguration":
                o["metadata"]["name"] += f"-{uuid.uuid4().hex[:5]}"
        out = server_dry_run(cluster, kept)
        assert "deployment.apps/driftwatch-operator" in out
    finally:
        if not existed:
            cluster.delete_namespace(ns)


def pod_from(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }


def test_pods_satisfy_restricted_pod_security(
    cluster: Cluster, namespace: str, helm: tuple[str, dict[str, str]]
) -> None:
    cluster.create_namespace(namespace, labels={**RESTRICTED, "driftwatch.io/e2e": "true"})
    objs = template(helm, "driftwatch", namespace, "webhook.certs.mode=cert-manager")
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"driftwatch-operator", "driftwatch-redis"}
    # the pods reference a ServiceAccount, Secrets and ConfigMaps that need not exist for a dry run
    for d in deployments:
        pod = pod_from(d, d["metadata"]["name"] + "-probe")
        pod["spec"]["serviceAccountName"] = "default"
        result = cluster.kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False
        )
        assert result.returncode == 0, f"{d['metadata']['name']}: {result.stderr}"
    # and the namespace does enforce it
    bare = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(bare), check=False
    )
    assert result.returncode != 0, "a pod without a securityContext was admitted"
    assert "restricted" in result.stderr, result.stderr


def test_helm_install_and_uninstall(
    cluster: Cluster, crd: None, namespace: str, helm: tuple[str, dict[str, str]]
) -> None:
    cluster.create_namespace(namespace, labels={**RESTRICTED, "driftwatch.io/e2e": "true"})
    release = f"dwchart{uuid.uuid4().hex[:4]}"
    fullname = f"{release}-driftwatch"
    # pod-scoped injection: this short-lived webhook configuration is never called for other tests' pods
    # crds.install=false: the session's CRD (install_crd) stays unowned (test_chart_conventions.py
    # installs it with a release)
    out = helm_run(
        helm,
        cluster,
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        "webhook.injectionScope=pod",
        "--set",
        "crds.install=false",
    )
    assert "rollout restart" in out  # NOTES.txt rendered: existing pods need a restart
    try:
        status = json.loads(helm_run(helm, cluster, "status", release, "-n", namespace, "-o", "json"))
        assert status["info"]["status"] == "deployed"
        selector = f"app.kubernetes.io/instance={release}"
        names = {
            f"{o['kind']}/{o['metadata']['name']}"
            for o in cluster.kubectl_json(
                "get", "deployment,service,serviceaccount", "-n", namespace, "-l", selector
            )["items"]
        }
        assert {
            f"Deployment/{fullname}-operator",
            f"Deployment/{fullname}-redis",
            f"Service/{fullname}-operator",
            f"Service/{fullname}-webhook",
            f"Service/{fullname}-redis",
            f"ServiceAccount/{fullname}-operator",
        } <= names, names
        cluster_scoped = cluster.kubectl_json(
            "get", "clusterrole,clusterrolebinding,mutatingwebhookconfiguration", "-l", selector
        )["items"]
        kinds = {o["kind"] for o in cluster_scoped}
        assert {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"} <= kinds, kinds

        # the ReplicaSet controller creates the pods in a `restricted` namespace: Pod Security admits them
        def pods_created() -> bool:
            pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
            return {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods} == {
                "operator",
                "redis",
            }

        cluster.wait_until(pods_created, timeout=60, what="the operator and Redis pods to be created")
    finally:
        helm_run(
            helm, cluster, "uninstall", release, "-n", namespace, "--wait", "--timeout", "60s", check=False
        )

    assert helm_run(helm, cluster, "status", release, "-n", namespace, check=False) == ""

    def gone() -> bool:
        left = cluster.kubectl_json(
            "get",
            "deployment,service,serviceaccount,clusterrole,clusterrolebinding,mutatingwebhookconfiguration",
            "-A",
            "-l",
            f"app.kubernetes.io/instance={release}",
        )
        return not left["items"]

    cluster.wait_until(gone, timeout=60, what=f"the objects of release {release} to be deleted")
