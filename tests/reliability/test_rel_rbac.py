"""``kubectl auth can-i`` for every ServiceAccount the chart installs, in both RBAC shapes, and the
admission policy that fences what RBAC cannot: the matrix below is what the operator (and the Redis
pod, which runs as the namespace's ``default`` account with no token) may do -- and nothing else.

Before issue 12 the operator could create and patch ConfigMaps and Services in every namespace,
kube-system included, and server-side apply with force took over a same-named ConfigMap.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.binaries import cache_dir, helm_env, read_versions
from driftwatch.devcluster.stack import install_crd, install_prometheus_crd_stubs

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "driftwatch"


def helm(cluster: Cluster, tmp: Path, *args: str) -> str:
    path = cache_dir() / f"helm-{read_versions()['HELM_VERSION']}" / "helm"
    if not path.is_file():
        pytest.skip(f"helm not built ({path}); run `make k8s-bins`")
    r = subprocess.run(
        [str(path), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        env=helm_env(tmp),
        timeout=180,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


class Release:
    def __init__(self, shape: str) -> None:
        self.name = f"rb{shape[0]}{uuid.uuid4().hex[:4]}"
        self.ns = f"{self.name}-system"
        self.tenant = f"{self.name}-tenant"
        self.other = f"{self.name}-other"
        self.sa = f"system:serviceaccount:{self.ns}:{self.name}-driftwatch-operator"
        self.default_sa = f"system:serviceaccount:{self.ns}:default"


@pytest.fixture(scope="module", params=["namespaced", "clusterwide"])
def release(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    install_crd(cluster)
    install_prometheus_crd_stubs(cluster)
    rel = Release(request.param)
    for ns in (rel.ns, rel.tenant, rel.other):
        cluster.create_namespace(ns, labels={"driftwatch.io/e2e": "true"})
    tmp = tmp_path_factory.mktemp("rbac")
    # crds.install=false: the session's CRD (install_crd) stays unowned by this release
    args = ["install", rel.name, str(CHART), "-n", rel.ns, "--set", "webhook.injectionScope=pod"]
    args += ["--set", "crds.install=false"]
    if request.param == "namespaced":
        args += ["--set", f"operator.watchNamespaces={{{rel.tenant}}}"]
    helm(cluster, tmp, *args)
    yield rel
    helm(cluster, tmp, "uninstall", rel.name, "-n", rel.ns, "--wait")
    for ns in (rel.ns, rel.tenant, rel.other):
        cluster.delete_namespace(ns, wait=False)


def can_i(cluster: Cluster, who: str, verb: str, resource: str, namespace: str | None) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={who}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    return cluster.kubectl(*args, check=False).stdout.strip() == "yes"


# (verb, resource, namespace ("tenant", "other", "own", "kube-system" or None: all), namespaced, cluster-wide)
OPERATOR = [
    ("watch", "driftmonitors.driftwatch.io", None, True, True),
    ("patch", "driftmonitors.driftwatch.io", "tenant", True, True),
    ("list", "pods", None, True, True),
    ("create", "events", "tenant", True, True),
    ("create", "configmaps", "tenant", True, True),
    ("patch", "services", "tenant", True, True),
    ("create", "secrets", "tenant", True, True),
    ("create", "configmaps", "other", False, True),  # cluster-wide: fenced by the admission policy
    ("create", "configmaps", "kube-system", False, True),  # idem (see the write test below)
    ("patch", "services", "kube-system", False, True),
    ("get", "secrets", "tenant", False, False),  # Secrets it writes are never read back
    ("list", "secrets", None, False, False),
    ("get", "secrets", "kube-system", False, False),
    ("delete", "configmaps", "tenant", False, False),
    ("create", "pods", "tenant", False, False),
    ("create", "mutatingwebhookconfigurations", None, False, False),  # the chart renders it
    ("patch", "mutatingwebhookconfigurations", None, False, False),  # only its own, by name
    ("delete", "mutatingwebhookconfigurations", None, False, False),
    ("create", "validatingadmissionpolicies", None, False, False),
    ("create", "clusterrolebindings", None, False, False),
    ("create", "deployments.apps", "tenant", False, False),
    ("update", "driftmonitors.driftwatch.io", "tenant", False, False),
    ("update", "leases.coordination.k8s.io", "kube-system", False, False),
]
DEFAULT_SA = [  # the Redis pod's account (automountServiceAccountToken: false, and no rights anyway)
    ("get", "secrets", "own"),
    ("list", "pods", None),
    ("create", "configmaps", "own"),
    ("watch", "driftmonitors.driftwatch.io", None),
]


def where(rel: Release, ns: str | None) -> str | None:
    return {"tenant": rel.tenant, "other": rel.other, "own": rel.ns}.get(ns or "", ns)


def test_operator_service_account_matrix(cluster: Cluster, release: Release) -> None:
    namespaced = release.name.startswith("rbn")
    wrong = []
    for verb, resource, ns, in_namespaced, in_clusterwide in OPERATOR:
        expected = in_namespaced if namespaced else in_clusterwide
        if can_i(cluster, release.sa, verb, resource, where(release, ns)) != expected:
            wrong.append(f"{verb} {resource} in {ns or 'all namespaces'}: expected {expected}")
    assert not wrong, "\n".join(wrong)
    specific = [
        ("patch", f"mutatingwebhookconfigurations/{release.name}-driftwatch-sidecar-injector", None, True),
        ("get", f"secrets/{release.name}-driftwatch-webhook-tls", release.ns, True),
        ("update", f"leases.coordination.k8s.io/{release.name}-driftwatch-operator-leader", release.ns, True),
        ("get", "secrets/driftwatch-redis", release.ns, False),
    ]
    for verb, resource, ns, expected in specific:
        assert can_i(cluster, release.sa, verb, resource, ns) is expected, (verb, resource)


def test_other_service_accounts_can_do_nothing(cluster: Cluster, release: Release) -> None:
    for verb, resource, ns in DEFAULT_SA:
        assert not can_i(cluster, release.default_sa, verb, resource, where(release, ns)), (verb, resource)


def test_admission_policy_fences_what_rbac_allows(cluster: Cluster, release: Release) -> None:
    """Cluster-wide RBAC would let the operator write in kube-system and over a team's ConfigMap; the
    policy refuses both, whatever the RBAC shape."""
    labelled = {"app.kubernetes.io/managed-by": "driftwatch-operator"}

    def write(ns: str, name: str, labels: dict[str, str]) -> subprocess.CompletedProcess[str]:
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
        }
        return cluster.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=driftwatch-operator",
            f"--as={release.sa}",
            "-f",
            "-",
            input=yaml.safe_dump(cm),
            check=False,
        )

    if not release.name.startswith("rbn"):
        denied = write("kube-system", f"{release.name}-x", labelled)
        assert denied.returncode != 0
        assert "kube-system" in denied.stderr
    theirs = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "driftwatch-app", "namespace": release.tenant},
        "data": {"a": "b"},
    }
    cluster.apply(theirs)
    adopted = write(release.tenant, "driftwatch-app", labelled)
    assert adopted.returncode != 0
    assert "does not adopt" in adopted.stderr
    unlabelled = write(release.tenant, "driftwatch-new", {})
    assert unlabelled.returncode != 0
    assert write(release.tenant, "driftwatch-ok", labelled).returncode == 0
