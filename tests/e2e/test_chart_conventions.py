"""The chart's conventions (issue 13) against the session's real API server and controller manager.

* ``test_aggregated_roles_let_view_read_and_edit_write_driftmonitors``: the chart's ClusterRoles, applied
  for real, are aggregated by the controller manager into the built-in ``view``, ``edit`` and ``admin``;
  users bound to them in one namespace are checked with ``kubectl auth can-i`` and then act for real
  (``edit`` creates a DriftMonitor, ``view`` reads it and may not delete it; nobody writes status).
* ``test_crd_is_adopted_upgraded_and_kept``: the CRD applied with kubectl (as the session does) is
  refused by ``helm install`` until it carries Helm's ownership metadata (docs/deploy.md's adoption
  steps), then the release owns it, ``helm upgrade`` upgrades it (a changed schema description reaches
  the cluster), and ``helm uninstall`` keeps it (``helm.sh/resource-policy: keep``) with the DriftMonitor
  that existed all along.
* ``test_convention_options_pass_server_side_dry_run``: the chart rendered with every new option, and
  its CRD template, pass the API server's validation and admission (server-side apply, dry run).
"""

from __future__ import annotations

import json
import shutil
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
CRD_NAME = "driftmonitors.driftwatch.io"
NO_CRD_HERE = ("monitoring.coreos.com/", "cert-manager.io/")


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    path = cache_dir() / f"helm-{read_versions()['HELM_VERSION']}" / "helm"
    if not path.is_file():
        pytest.skip(f"helm not built ({path}); run `make k8s-bins`")
    return str(path), helm_env(tmp_path_factory.mktemp("helm-home"))


def helm_run(
    helm: tuple[str, dict[str, str]], cluster: Cluster, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    path, env = helm
    cmd = [path, "--kubeconfig", str(cluster.kubeconfig), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def template(
    helm: tuple[str, dict[str, str]], release: str, namespace: str, *args: str
) -> list[dict[str, Any]]:
    path, env = helm
    kube_version = read_versions()["K8S_VERSION"].removeprefix("v")
    cmd = [
        path,
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        kube_version,
        *args,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def monitor(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "features": [{"name": "latency_ms"}]},
    }


# --- aggregated ClusterRoles ---------------------------------------------------------------------------


@pytest.fixture
def aggregated_roles(cluster: Cluster, helm: tuple[str, dict[str, str]]) -> Iterator[list[str]]:
    """The chart's two aggregated ClusterRoles of a release of its own, applied; deleted afterwards (the
    aggregation controller then takes their rules out of view/edit/admin again)."""
    install_crd(cluster)
    release = f"agg{uuid.uuid4().hex[:5]}"
    roles = template(helm, release, "default", "--show-only", "templates/aggregate-roles.yaml")
    assert [r["kind"] for r in roles] == ["ClusterRole", "ClusterRole"]
    cluster.apply(roles)
    names = [r["metadata"]["name"] for r in roles]
    yield names
    cluster.kubectl("delete", "clusterrole", *names, "--ignore-not-found")


def can_i(cluster: Cluster, user: str, verb: str, resource: str, namespace: str, *extra: str) -> bool:
    result = cluster.kubectl(
        "auth", "can-i", verb, resource, f"--as={user}", "-n", namespace, *extra, check=False
    )
    return result.stdout.strip() == "yes"


def test_aggregated_roles_let_view_read_and_edit_write_driftmonitors(
    cluster: Cluster, namespace: str, aggregated_roles: list[str]
) -> None:
    users = {role: f"{role}-{namespace}" for role in ("view", "edit", "admin")}
    outsider = f"nobody-{namespace}"
    for role, user in users.items():
        cluster.kubectl(
            "create",
            "rolebinding",
            f"{role}-user",
            f"--clusterrole={role}",
            f"--user={user}",
            "-n",
            namespace,
        )

    dm = "driftmonitors.driftwatch.io"
    # the controller manager's clusterrole-aggregation controller copies the rules in (asynchronously)
    took = cluster.wait_until(
        lambda: (
            can_i(cluster, users["view"], "list", dm, namespace)
            and can_i(cluster, users["edit"], "create", dm, namespace)
            and can_i(cluster, users["admin"], "create", dm, namespace)
        ),
        timeout=60,
        what="view/edit/admin to aggregate the chart's ClusterRoles",
    )
    print(f"\nview/edit/admin aggregated the chart's ClusterRoles {took:.1f}s after they were applied")
    view_rules = cluster.kubectl_json("get", "clusterrole", "view")["rules"]
    assert any("driftwatch.io" in r.get("apiGroups", []) for r in view_rules), view_rules

    reads = ("get", "list", "watch")
    writes = ("create", "update", "patch", "delete", "deletecollection")
    for verb in reads:
        for user in users.values():
            assert can_i(cluster, user, verb, dm, namespace), (user, verb)
        assert not can_i(cluster, outsider, verb, dm, namespace), (outsider, verb)
    for verb in writes:
        assert not can_i(cluster, users["view"], verb, dm, namespace), ("view", verb)
        assert can_i(cluster, users["edit"], verb, dm, namespace), ("edit", verb)
        assert can_i(cluster, users["admin"], verb, dm, namespace), ("admin", verb)
    # status is the operator's: readable by all three, writable by none
    for user in users.values():
        assert can_i(cluster, user, "get", dm, namespace, "--subresource=status"), user
        assert not can_i(cluster, user, "patch", dm, namespace, "--subresource=status"), user
    # only in the namespace they are bound in
    assert not can_i(cluster, users["edit"], "create", dm, "default")

    # and for real: edit creates and acknowledges (an annotation), view reads but cannot delete
    body = json.dumps({**monitor("agg"), "metadata": {"name": "agg", "namespace": namespace}})
    cluster.kubectl("apply", f"--as={users['edit']}", "-f", "-", input=body)
    cluster.kubectl(
        "annotate", "driftmonitor", "agg", "-n", namespace, "example.com/note=x", f"--as={users['edit']}"
    )
    got = cluster.kubectl_json("get", "driftmonitor", "agg", "-n", namespace, f"--as={users['view']}")
    assert got["metadata"]["annotations"]["example.com/note"] == "x"
    denied = cluster.kubectl(
        "delete", "driftmonitor", "agg", "-n", namespace, f"--as={users['view']}", check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower(), denied.stderr


# --- the CRD: adopt, upgrade, keep ------------------------------------------------------------------------


def test_crd_is_adopted_upgraded_and_kept(
    cluster: Cluster, namespace: str, helm: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    install_crd(cluster)  # the session's CRD, applied with kubectl: not Helm's
    cluster.apply(monitor("survivor"), namespace=namespace)
    uid = cluster.kubectl_json("get", "driftmonitor", "survivor", "-n", namespace)["metadata"]["uid"]
    release = f"crd{uuid.uuid4().hex[:5]}"
    # pod-scoped injection: this release's webhook is never called for other tests' pods
    args = ["-n", namespace, "--set", "webhook.injectionScope=pod", "--set", "operator.replicas=0"]
    try:
        # 1. a CRD Helm does not own is refused, naming the problem
        refused = helm_run(helm, cluster, "install", release, str(CHART), *args, check=False)
        assert refused.returncode != 0
        assert "invalid ownership metadata" in refused.stderr, refused.stderr

        # 2. adopted as docs/deploy.md says, the install takes it over
        cluster.kubectl("label", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        cluster.kubectl(
            "annotate",
            "crd",
            CRD_NAME,
            "--overwrite",
            f"meta.helm.sh/release-name={release}",
            f"meta.helm.sh/release-namespace={namespace}",
        )
        helm_run(helm, cluster, "install", release, str(CHART), *args)
        crd = cluster.kubectl_json("get", "crd", CRD_NAME)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == release
        manifest = helm_run(helm, cluster, "get", "manifest", release, "-n", namespace).stdout
        assert f"name: {CRD_NAME}" in manifest

        # 3. an upgrade upgrades it: a chart whose CRD changed (its schema's description)
        chart = tmp_path / "driftwatch"
        shutil.copytree(CHART, chart)
        crd_file = chart / "files" / "driftwatch.io_driftmonitors.yaml"
        marker = f"upgraded-{uuid.uuid4().hex[:6]}"
        changed = yaml.safe_load(crd_file.read_text())
        schema = changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        schema["description"] = f"{marker} {schema['description']}"
        crd_file.write_text(yaml.safe_dump(changed, sort_keys=False))
        helm_run(helm, cluster, "upgrade", release, str(chart), *args)
        live = cluster.kubectl_json("get", "crd", CRD_NAME)["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]
        assert live["description"].startswith(marker), live["description"][:80]

        # 4. uninstall keeps it, and the DriftMonitor that lived through all of this
        helm_run(helm, cluster, "uninstall", release, "-n", namespace, "--wait", "--timeout", "60s")
        assert cluster.kubectl("get", "crd", CRD_NAME, check=False).returncode == 0
        after = cluster.kubectl_json("get", "driftmonitor", "survivor", "-n", namespace)
        assert after["metadata"]["uid"] == uid
    finally:
        helm_run(helm, cluster, "uninstall", release, "-n", namespace, check=False)
        # hand the CRD back to the session as it found it: unowned, the source's schema
        cluster.kubectl(
            "annotate",
            "crd",
            CRD_NAME,
            "meta.helm.sh/release-name-",
            "meta.helm.sh/release-namespace-",
            "helm.sh/resource-policy-",
            check=False,
        )
        install_crd(cluster)


# --- server-side dry run -------------------------------------------------------------------------------


def test_convention_options_pass_server_side_dry_run(
    cluster: Cluster, namespace: str, helm: tuple[str, dict[str, str]]
) -> None:
    install_crd(cluster)
    release = f"dry{uuid.uuid4().hex[:5]}"
    sets = [
        "webhook.injectionScope=pod",
        "operator.podSecurityContext.runAsUser=1000",
        "operator.containerSecurityContext.runAsUser=1000",
        "redis.podSecurityContext.fsGroup=2000",
        "sidecar.containerSecurityContext.runAsUser=4321",
        "monitoring.serviceMonitor.enabled=true",
        "monitoring.serviceMonitor.relabelings[0].targetLabel=cluster",
        "monitoring.serviceMonitor.relabelings[0].replacement=prod",
        "monitoring.podMonitor.enabled=true",
        "monitoring.perMonitor.enabled=false",
        "monitoring.prometheusRule.enabled=true",
    ]
    objs = template(helm, release, namespace, *[a for s in sets for a in ("--set", s)])
    kinds = {o["kind"] for o in objs}
    assert {"CustomResourceDefinition", "ServiceMonitor", "PodMonitor", "PrometheusRule"} <= kinds
    kept = [o for o in objs if not o["apiVersion"].startswith(NO_CRD_HERE)]
    # server-side apply: the CRD is already there, applied server-side by the session
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=dry-run",
        "--dry-run=server",
        "-f",
        "-",
        input=yaml.safe_dump_all(kept),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    for kind in (
        "customresourcedefinition.apiextensions.k8s.io/driftmonitors.driftwatch.io",
        f"clusterrole.rbac.authorization.k8s.io/{release}-driftwatch-view",
        f"clusterrole.rbac.authorization.k8s.io/{release}-driftwatch-edit",
        f"deployment.apps/{release}-driftwatch-operator",
    ):
        assert kind in result.stdout, result.stdout
