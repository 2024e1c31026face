"""Packaging: the Helm chart, the kustomize tree, the alert rules, the dashboard and the rollout examples.

Real tools, no control plane: ``helm`` (lint, template, schema validation), ``kubectl kustomize``,
``promtool`` (rule unit tests, PromQL parsing). What these tests prove:

* single sources stay single: the chart's CRD, RBAC, rules and dashboard are byte-for-byte copies of
  ``crds/``, ``deploy/rbac/``, ``deploy/prometheus/`` and ``deploy/grafana/``, and the kustomize base is
  the chart's current ``helm template`` output (``scripts/gen-manifests.sh --check``);
* the chart and the operator agree: the operator's own argument parser accepts the rendered
  ``driftwatch operator`` arguments, and the MutatingWebhookConfiguration the chart renders is the one
  ``driftwatch.operator.webhook.webhook_configuration`` builds for those arguments;
* ``values.schema.json`` rejects bad values with a message naming the field;
* every alert fires on real series and stays silent when it should (``promtool test rules``), and every
  PromQL expression in the dashboard and the rollout examples parses and uses metrics the sidecar exports.

The end-to-end half (server-side dry-run, ``helm install``/``uninstall``, Pod Security ``restricted``)
is ``tests/e2e/test_chart.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwatch.devcluster import binaries
from driftwatch.vocab.names import LEADER_LEASE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "driftwatch"
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "rules.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "driftwatch-dashboard.json"
ROLLOUTS = ROOT / "deploy" / "rollouts"
KUSTOMIZE = ROOT / "deploy" / "kustomize"
CRD = ROOT / "crds" / "driftwatch.io_driftmonitors.yaml"
RBAC = ROOT / "deploy" / "rbac" / "operator-rbac.yaml"

#: chart copy -> single source (scripts/gen-manifests.sh keeps them equal)
COPIES = {
    CHART / "files" / "driftwatch.io_driftmonitors.yaml": CRD,
    CHART / "files" / "operator-rbac.yaml": RBAC,
    CHART / "files" / "rules.yaml": RULES,
    CHART / "files" / "driftwatch-dashboard.json": DASHBOARD,
}

NAMESPACE = "dw-system"


def kube_version() -> str:
    """helm built from source reports Kubernetes v1.20 to `helm template`; render for the tested version."""
    return binaries.read_versions()["K8S_VERSION"].removeprefix("v")


def _tool(path: Path, name: str) -> str:
    if not path.is_file():
        pytest.skip(f"{name} not built yet ({path}); run `make k8s-bins`")
    return str(path)


@pytest.fixture(scope="session")
def helm() -> str:
    return _tool(binaries.cache_dir() / f"helm-{binaries.read_versions()['HELM_VERSION']}" / "helm", "helm")


@pytest.fixture(scope="session")
def kubectl() -> str:
    return _tool(
        binaries.cache_dir() / f"kubernetes-{binaries.read_versions()['K8S_VERSION']}" / "kubectl", "kubectl"
    )


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.skip("promtool not installed (make system-deps)")
    return path


@pytest.fixture(scope="session")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Keep helm's cache/config/data out of the user's home."""
    return binaries.helm_env(tmp_path_factory.mktemp("helm-home"))


def run(
    *cmd: str, env: dict[str, str] | None = None, check: bool = True, cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def render(
    helm: str,
    env: dict[str, str],
    *values: str,
    crds: bool = False,
    release: str = "driftwatch",
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    args = [helm, "template", release, str(CHART), "--namespace", namespace, "--kube-version", kube_version()]
    if crds:
        args.append("--include-crds")
    for v in values:
        args += ["--set", v]
    return docs(run(*args, env=env).stdout)


def render_rejected(helm: str, env: dict[str, str], value: str) -> subprocess.CompletedProcess[str]:
    """``helm template`` with one ``--set`` that should fail: the result, whatever its exit code."""
    return run(
        helm,
        "template",
        "x",
        str(CHART),
        "--kube-version",
        kube_version(),
        "--set",
        value,
        env=env,
        check=False,
    )


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [o for o in by_kind(objs, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, (
        f"expected one {kind} *{name_suffix}, got {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def operator_container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    dep = one(objs, "Deployment", "-operator")
    (container,) = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "operator"]
    return container


def operator_options(container: dict[str, Any], namespace: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Parse the rendered `driftwatch operator` arguments with the operator's own parser."""
    from driftwatch.operator import command as operator_main

    assert container["command"] == ["driftwatch"]
    args = container["args"]
    assert args[0] == "operator"
    # the container's environment, as the kubelet would set it (and nothing from the test's own)
    for name in list(os.environ):
        if name.startswith("DRIFTWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("POD_NAMESPACE", namespace)  # the downward API's value
    for e in container["env"]:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"].replace("$(POD_NAMESPACE)", namespace))
    parsed = operator_main.parser().parse_args(args[1:])
    return operator_main.options_from(parsed)


# --- single sources -----------------------------------------------------------------------------------


def test_chart_copies_are_identical_to_their_single_sources() -> None:
    for copy, source in COPIES.items():
        assert source.is_file(), f"single source {source.relative_to(ROOT)} is missing"
        assert copy.is_file(), f"{copy.relative_to(ROOT)} is missing: run scripts/gen-manifests.sh"
        assert copy.read_bytes() == source.read_bytes(), (
            f"{copy.relative_to(ROOT)} differs from {source.relative_to(ROOT)}: run scripts/gen-manifests.sh"
        )


def test_generated_files_are_fresh(helm: str, helm_env: dict[str, str]) -> None:
    """Like `make manifests` in kubebuilder projects: the committed output equals a fresh generation."""
    env = {**helm_env, "HELM": helm}
    result = run("bash", str(ROOT / "scripts" / "gen-manifests.sh"), "--check", env=env, check=False)
    assert result.returncode == 0, result.stderr + result.stdout


def test_chart_crd_is_the_operator_crd(helm: str, helm_env: dict[str, str]) -> None:
    """The CRD is a template (upgraded with the release), not crds/: the operator's CRD with the chart's
    labels added and, by default, helm.sh/resource-policy: keep."""
    assert run(helm, "show", "crds", str(CHART), env=helm_env).stdout.strip() == ""
    (source,) = docs(CRD.read_text())
    rendered = one(render(helm, helm_env), "CustomResourceDefinition")
    assert {k: v for k, v in rendered.items() if k != "metadata"} == {
        k: v for k, v in source.items() if k != "metadata"
    }
    assert rendered["metadata"]["name"] == source["metadata"]["name"]
    assert source["metadata"]["labels"].items() <= rendered["metadata"]["labels"].items()
    assert rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    unkept = one(render(helm, helm_env, "crds.keep=false"), "CustomResourceDefinition")
    assert "annotations" not in unkept["metadata"]
    assert not by_kind(render(helm, helm_env, "crds.install=false"), "CustomResourceDefinition")


def test_rbac_rules_are_read_from_the_operator_file(helm: str, helm_env: dict[str, str]) -> None:
    source = [
        d
        for d in docs(RBAC.read_text())
        if d["kind"] in ("ClusterRole", "Role")
        # what the chart does itself (it renders the webhook configuration: no create needed)
        and (d["metadata"].get("annotations") or {}).get("driftwatch.io/chart") != "omit"
    ]
    assert source, "deploy/rbac/operator-rbac.yaml has no Role/ClusterRole"
    objs = render(helm, helm_env)
    # the operator's roles (not the ones aggregated into view/edit/admin for users)
    rendered = [
        o
        for o in objs
        if o["kind"] in ("ClusterRole", "Role")
        and not any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in o["metadata"]["labels"])
    ]
    assert sorted((o["kind"], json.dumps(o.get("rules") or [], sort_keys=True)) for o in rendered) == sorted(
        (d["kind"], json.dumps(d.get("rules") or [], sort_keys=True)) for d in source
    )
    sa = one(objs, "ServiceAccount")["metadata"]["name"]
    # roles a namespace binds for itself (driftwatch-alert-secrets) are installed unbound
    by_users = {
        d["metadata"]["name"].removeprefix("driftwatch-")
        for d in source
        if (d["metadata"].get("annotations") or {}).get("driftwatch.io/binding") == "by-users"
    }
    assert by_users == {"alert-secrets"}
    for role in rendered:
        if role["metadata"]["name"].removeprefix("driftwatch-") in by_users:
            assert not [
                o
                for o in objs
                if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
                and o["roleRef"]["name"] == role["metadata"]["name"]
            ]
            continue
        binding = one(objs, role["kind"] + "Binding", role["metadata"]["name"])
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role["kind"],
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
        if role["kind"] == "Role":
            assert role["metadata"]["namespace"] == NAMESPACE
    # the admission policy follows the release's ServiceAccount
    (policy,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicy"]
    assert f"system:serviceaccount:{NAMESPACE}:{sa}" in policy["spec"]["matchConditions"][0]["expression"]
    (vapb,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert vapb["spec"]["policyName"] == policy["metadata"]["name"]


def test_children_rbac_is_per_namespace_when_namespaces_are_listed(
    helm: str, helm_env: dict[str, str]
) -> None:
    """With operator.watchNamespaces the operator may write ConfigMaps, Services and Secrets in those
    namespaces only: RoleBindings there, no ClusterRoleBinding for the children's role."""
    objs = render(helm, helm_env, "operator.watchNamespaces={shop,pay}")
    children = [
        o
        for o in objs
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding") and o["roleRef"]["name"].endswith("-children")
    ]
    assert sorted((o["kind"], o["metadata"].get("namespace")) for o in children) == [
        ("RoleBinding", "pay"),
        ("RoleBinding", "shop"),
    ]


def test_version_has_one_source() -> None:
    """pyproject.toml's version is the package's, the chart's and the default sidecar image's tag."""
    import tomllib

    import driftwatch
    from driftwatch.operator.options import OperatorOptions

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert driftwatch.__version__ == version
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (version, version)
    assert OperatorOptions().sidecar_image.endswith(f":{version}")
    for path in (ROOT / "driftwatch").rglob("*.py"):
        assert f'"{version}"' not in path.read_text(), f"{path.relative_to(ROOT)} spells the version"


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def test_image_leaves_out_the_dev_cluster() -> None:
    """The image carries what runs in a pod: .dockerignore drops the dev-only code, nothing the image
    keeps imports it, and the official ``kubernetes`` client is no runtime dependency."""
    import tomllib

    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    dev_only = {"driftwatch/devcluster", "driftwatch/demo.py"}
    assert dev_only <= ignored
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.startswith("kubernetes")]
    for path in (ROOT / "driftwatch").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel == d or rel.startswith(d + "/") for d in dev_only):
            continue
        bad = {m for m in _imports(path) if m.split(".")[0] == "kubernetes"}
        bad |= {m for m in _imports(path) if m.startswith(("driftwatch.devcluster", "driftwatch.demo"))}
        assert not bad, f"{rel} (in the image) imports {sorted(bad)}"


# --- helm lint / template -------------------------------------------------------------------------------

NON_DEFAULT = (
    "fullnameOverride=dw",
    "image.repository=registry.example/driftwatch",
    "image.tag=1.2.3",
    "sidecar.resources.requests.cpu=100m",
    "operator.logLevel=debug",
    "operator.watchNamespaces={shop,ml}",
    "redis.enabled=false",
    "redis.url=redis://redis.example:6379/2",
    "webhook.failurePolicy=Fail",
    "webhook.injectionScope=pod",
    "webhook.certs.mode=cert-manager",
    "monitoring.additionalLabels.release=kube-prometheus-stack",
    "monitoring.perMonitor.enabled=false",
    "monitoring.podMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "grafana.dashboard.enabled=true",
    "grafana.dashboard.namespace=monitoring",
    "grafana.dashboard.annotations.grafana_folder=DriftWatch",
)


def test_helm_lint(helm: str, helm_env: dict[str, str]) -> None:
    run(helm, "lint", "--strict", str(CHART), env=helm_env)
    sets = [a for v in NON_DEFAULT for a in ("--set", v)]
    run(helm, "lint", "--strict", str(CHART), *sets, env=helm_env)


def test_default_render(helm: str, helm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    objs = render(helm, helm_env, crds=True)
    kinds = sorted({o["kind"] for o in objs})
    assert {
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "MutatingWebhookConfiguration",
    } <= set(kinds)
    assert not [o for o in objs if o["apiVersion"].startswith(("monitoring.coreos.com", "cert-manager.io"))]
    assert {o["metadata"]["name"] for o in by_kind(objs, "Deployment")} == {
        "driftwatch-operator",
        "driftwatch-redis",
    }
    # the names the contracts promise: the gate URL and the Redis URL of contracts.md
    svc = one(objs, "Service", "-operator")
    assert svc["metadata"]["name"] == "driftwatch-operator"
    assert {p["port"] for p in svc["spec"]["ports"]} == {8080}
    assert one(objs, "Service", "-redis")["metadata"]["name"] == "driftwatch-redis"

    dep = one(objs, "Deployment", "-operator")
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = operator_container(objs)
    assert c["image"] == "ghcr.io/driftwatch/driftwatch:0.1.0"
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]

    opts = operator_options(c, NAMESPACE, monkeypatch)
    assert opts.operator_namespace == NAMESPACE
    assert opts.redis_url == f"redis://driftwatch-redis.{NAMESPACE}.svc:6379/0"
    assert opts.webhook_mode == "service"
    assert opts.tls_mode == "self"
    assert opts.webhook_service == "driftwatch-webhook"
    assert opts.webhook_config_name == "driftwatch-sidecar-injector"
    assert opts.failure_policy == "Ignore"
    assert opts.gate_port == 8080
    assert opts.webhook_port == 9443
    assert opts.sidecar_image == "ghcr.io/driftwatch/driftwatch:0.1.0"
    assert opts.prometheus is True
    assert opts.monitoring_labels == {}
    assert opts.namespaces == ()
    # the chart's sidecar defaults are the operator's own
    from driftwatch.operator.options import OperatorOptions

    defaults = OperatorOptions()
    assert opts.sidecar_requests == defaults.sidecar_requests
    assert opts.sidecar_limits == defaults.sidecar_limits
    from driftwatch.operator.inject import default_security_context

    assert opts.sidecar_security_context == default_security_context(defaults)
    assert opts.sidecar_scrape == {**defaults.sidecar_scrape, "scrapeTimeout": "10s"}


def test_non_default_render(helm: str, helm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    objs = render(helm, helm_env, *NON_DEFAULT)
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert ("Deployment", "dw-redis") not in names
    assert ("Service", "dw-redis") not in names
    assert {
        ("Issuer", "dw-selfsigned"),
        ("Certificate", "dw-webhook-tls"),
        ("PodMonitor", "dw-sidecars"),
        ("PrometheusRule", "dw-alerts"),
        ("ConfigMap", "dw-dashboard"),
    } <= names

    c = operator_container(objs)
    assert c["image"] == "registry.example/driftwatch:1.2.3"
    opts = operator_options(c, NAMESPACE, monkeypatch)
    assert opts.redis_url == "redis://redis.example:6379/2"
    assert opts.webhook_mode == "none"
    assert opts.tls_mode == "cert-manager"
    assert opts.tls_secret == "dw-webhook-tls"
    assert opts.tls_dir == "/etc/driftwatch/tls"
    assert opts.failure_policy == "Fail"
    assert opts.injection_scope == "pod"
    assert opts.namespaces == ("shop", "ml")
    assert opts.prometheus is False
    assert opts.monitoring_labels == {"release": "kube-prometheus-stack"}
    assert opts.sidecar_image == "registry.example/driftwatch:1.2.3"
    assert "--debug" in c["args"]
    assert opts.sidecar_requests["cpu"] == "100m"  # through DRIFTWATCH_SIDECAR_RESOURCES
    # cert-manager's Secret is mounted where the operator reads it
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {
        v["name"]: v for v in one(objs, "Deployment", "-operator")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes[mounts["/etc/driftwatch/tls"]]["secret"]["secretName"] == "dw-webhook-tls"

    webhook = one(objs, "MutatingWebhookConfiguration")
    assert (
        webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/dw-webhook-tls"
    )
    assert webhook["webhooks"][0]["failurePolicy"] == "Fail"

    for kind in ("PodMonitor", "PrometheusRule"):
        assert one(objs, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rule = one(objs, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]

    dash = one(objs, "ConfigMap", "-dashboard")
    assert dash["metadata"]["namespace"] == "monitoring"
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dash["metadata"]["annotations"] == {"grafana_folder": "DriftWatch"}
    assert json.loads(dash["data"]["driftwatch-dashboard.json"]) == json.loads(DASHBOARD.read_text())


def test_existing_secret_redis_and_webhook_disabled(
    helm: str, helm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = render(
        helm,
        helm_env,
        "redis.enabled=false",
        "redis.url=rediss://redis.example:6380/0",
        "redis.auth.existingSecret=redis-auth",
        "webhook.enabled=false",
        "rbac.create=false",
        "serviceAccount.create=false",
        "serviceAccount.name=existing",
    )
    assert not by_kind(objs, "MutatingWebhookConfiguration")
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding", "ServiceAccount")]
    c = operator_container(objs)
    env = {e["name"]: e for e in c["env"]}
    assert env["DRIFTWATCH_REDIS_URL"]["value"] == "rediss://redis.example:6380/0"  # no credentials in it
    assert env["DRIFTWATCH_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-auth",
        "key": "password",
    }
    opts = operator_options(c, NAMESPACE, monkeypatch)
    assert opts.webhook_mode == "none"
    assert opts.webhook_port == 0
    dep = one(objs, "Deployment", "-operator")
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "existing"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("webhook.failurePolicy=Sometimes", "failurePolicy"),
        ("webhook.certs.mode=vault", "mode"),
        ("operator.replicas=-1", "replicas"),
        ("operator.leaseDuration=0", "leaseDuration"),
        ("webhook.injectionScope=everything", "injectionScope"),
        ("redis.url=http://not-redis", "url"),
        ("monitoring.podMonitor.interval=soon", "interval"),
        ("webhok.enabled=true", "webhok"),
        ("monitoring.prometheusRule.enabled=sometimes", "enabled"),
        ("monitoring.serviceMonitor.honorLabels=maybe", "honorLabels"),
        ("monitoring.perMonitor.scrapeTimeout=soon", "scrapeTimeout"),
        ("crds.keep=perhaps", "keep"),
        ("operator.podSecurityContext=none", "podSecurityContext"),
    ],
)
def test_values_schema_rejects_bad_values(
    helm: str, helm_env: dict[str, str], value: str, field: str
) -> None:
    result = render_rejected(helm, helm_env, value)
    assert result.returncode != 0, f"{value} was accepted"
    assert field in result.stderr, result.stderr


def test_two_replicas_one_leader_never_all_down(
    helm: str, helm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas by default (both inject, one leads on the Lease): upgrades surge a new pod before
    stopping an old one, drains evict one at a time (PodDisruptionBudget), replicas prefer other nodes,
    and a terminating pod keeps answering a few seconds (preStop)."""
    objs = render(helm, helm_env)
    dep = one(objs, "Deployment", "-operator")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = dep["spec"]["template"]["spec"]
    selector = dep["spec"]["selector"]["matchLabels"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": selector},
    }
    c = operator_container(objs)
    assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert pod["terminationGracePeriodSeconds"] == 35
    assert "POD_NAME" in {e["name"] for e in c["env"]}  # the replica's name in the Lease
    opts = operator_options(c, NAMESPACE, monkeypatch)
    assert opts.leader_election
    assert opts.lease_duration == 15
    assert opts.lease_name == LEADER_LEASE  # release "driftwatch": the names of deploy/rbac
    pdb = one(objs, "PodDisruptionBudget", "-operator")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    # the Role grants the Lease it elects on, by name -- under another release name too
    role = one(objs, "Role", "-operator")
    assert {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [LEADER_LEASE],
        "verbs": ["get", "update"],
    } in role["rules"]

    other = render(helm, helm_env, "operator.replicas=1", release="shop")
    assert not by_kind(other, "PodDisruptionBudget")  # minAvailable 1 of 1 would block every drain
    granted = [
        r["resourceNames"]
        for r in one(other, "Role", "-operator")["rules"]
        if "leases" in r["resources"] and "resourceNames" in r
    ]
    assert ["shop-driftwatch-operator-leader"] in granted
    assert operator_options(operator_container(other), NAMESPACE, monkeypatch).lease_name == granted[-1][0]
    custom = render(
        helm,
        helm_env,
        "operator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
        "operator.shutdownDelaySeconds=0",
    )
    cpod = one(custom, "Deployment", "-operator")["spec"]["template"]["spec"]
    assert set(cpod["affinity"]) == {"nodeAffinity"}
    assert "lifecycle" not in operator_container(custom)


def test_external_redis_needs_a_url(helm: str, helm_env: dict[str, str]) -> None:
    result = render_rejected(helm, helm_env, "redis.enabled=false")
    assert result.returncode != 0
    assert "redis.url is required" in result.stderr


def test_no_credentials_in_a_redis_url(helm: str, helm_env: dict[str, str]) -> None:
    result = render_rejected(helm, helm_env, "redis.url=redis://:hunter2@redis.example:6379/0")
    assert result.returncode != 0
    assert "/redis/url" in result.stderr


# --- the chart's webhook configuration is the operator's ----------------------------------------------


@pytest.mark.parametrize("mode", ["operator", "cert-manager"])
@pytest.mark.parametrize("scope", ["namespace", "pod"])
@pytest.mark.parametrize("policy", ["Ignore", "Fail"])
def test_webhook_configuration_matches_the_operator(
    helm: str, helm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, mode: str, scope: str, policy: str
) -> None:
    """In operator cert mode the operator force-applies its own configuration over the chart's at start-up
    (to set caBundle): the two must be identical, or an install would flip-flop between them."""
    from driftwatch.operator.webhook import webhook_configuration

    objs = render(
        helm,
        helm_env,
        f"webhook.certs.mode={mode}",
        f"webhook.injectionScope={scope}",
        f"webhook.failurePolicy={policy}",
    )
    chart = one(objs, "MutatingWebhookConfiguration")
    opts = operator_options(operator_container(objs), NAMESPACE, monkeypatch)
    # cert-manager mode runs the operator with --webhook-mode none (the chart owns the configuration);
    # compare with what it would apply behind the Service
    ours = webhook_configuration(dataclasses.replace(opts, webhook_mode="service"), None)
    assert chart["metadata"]["name"] == ours["metadata"]["name"]
    assert chart["metadata"].get("annotations") == ours["metadata"].get("annotations")
    assert chart["webhooks"] == ours["webhooks"]


# --- kustomize --------------------------------------------------------------------------------------------


def kustomize(kubectl: str, overlay: str) -> list[dict[str, Any]]:
    return docs(run(kubectl, "kustomize", str(KUSTOMIZE / "overlays" / overlay)).stdout)


def test_kustomize_dev_overlay(kubectl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from driftwatch.operator.webhook import webhook_configuration

    objs = kustomize(kubectl, "dev")
    ns = "driftwatch-dev"
    assert one(objs, "Namespace")["metadata"]["name"] == ns
    for o in objs:
        if o["kind"] not in (
            "Namespace",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
            "MutatingWebhookConfiguration",
        ):
            assert o["metadata"]["namespace"] == ns, o["metadata"]
    for crb in by_kind(objs, "ClusterRoleBinding"):
        assert {s["namespace"] for s in crb["subjects"]} == {ns}
    assert one(objs, "Deployment", "-operator")["spec"]["replicas"] == 1
    assert not by_kind(objs, "PodDisruptionBudget")  # minAvailable 1 of 1 would block node drains
    c = operator_container(objs)
    assert c["resources"]["requests"] == {"cpu": "20m", "memory": "96Mi"}
    opts = operator_options(c, ns, monkeypatch)
    assert opts.failure_policy == "Fail"
    assert opts.redis_url == f"redis://driftwatch-redis.{ns}.svc:6379/0"
    webhook = one(objs, "MutatingWebhookConfiguration")
    assert webhook["webhooks"] == webhook_configuration(opts, None)["webhooks"], (
        "the dev overlay's webhook configuration differs from what its operator applies"
    )


def test_kustomize_production_overlay(kubectl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objs = kustomize(kubectl, "production")
    rule = one(objs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert one(objs, "ConfigMap", "-dashboard")["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert one(objs, "Deployment", "-operator")["spec"]["replicas"] == 2
    assert one(objs, "PodDisruptionBudget", "-operator")["spec"]["minAvailable"] == 1
    c = operator_container(objs)
    assert c["resources"]["limits"]["memory"] == "1Gi"
    opts = operator_options(c, "driftwatch", monkeypatch)
    assert opts.failure_policy == "Ignore"
    assert opts.monitoring_labels == {"release": "kube-prometheus-stack"}
    assert one(objs, "MutatingWebhookConfiguration")["webhooks"][0]["failurePolicy"] == "Ignore"
    redis = one(objs, "Deployment", "-redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][redis["args"].index("--maxmemory") + 1] == "900mb"


# --- alert rules -------------------------------------------------------------------------------------------


def test_promtool_checks_and_unit_tests_the_rules(promtool: str) -> None:
    run(promtool, "check", "rules", str(RULES))
    out = run(promtool, "test", "rules", str(RULES_TEST), cwd=RULES_TEST.parent)
    assert "SUCCESS" in out.stdout


def test_every_alert_is_tested_firing_and_silent() -> None:
    alerts = {
        (r["alert"], r["labels"]["severity"])
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert {a for a, _ in alerts} >= {
        "DriftWatchFeatureDrifting",
        "DriftWatchSidecarNoSamples",
        "DriftWatchHighRejectRate",
        "DriftWatchRedisDown",
        "DriftWatchScoreHigh",
    }
    fired: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for test in yaml.safe_load(RULES_TEST.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            if case["exp_alerts"]:
                fired |= {(case["alertname"], a["exp_labels"]["severity"]) for a in case["exp_alerts"]}
            else:
                silent.add(case["alertname"])
    assert alerts - fired == set(), "alerts never shown firing"
    assert {a for a, _ in alerts} - silent == set(), "alerts never shown silent"


# --- PromQL everywhere parses and names real metrics ------------------------------------------------------


def _wire_names(kind: str, name: str) -> set[str]:
    """The sample names of one family as they appear in a scrape."""
    if kind.lower() == "counter":
        return {name + "_total"}
    if kind.lower() == "histogram":
        return {name + "_bucket", name + "_count", name + "_sum"}
    return {name}


def sidecar_metric_names() -> set[str]:
    """The metric names driftwatch.sidecar exports (counters get `_total` on the wire)."""
    src = (ROOT / "driftwatch" / "sidecar" / "metrics.py").read_text()
    names: set[str] = set()
    for kind, name in re.findall(r'\bw\.(counter|gauge|histogram)\(\s*"(driftwatch_\w+)"', src):
        names |= _wire_names(kind, name)
    assert "driftwatch_drift_score" in names, "could not read the sidecar's metric names"
    return names


def operator_metric_names() -> set[str]:
    """The metric names the operator exports (driftwatch/operator/telemetry.py, prometheus-client)."""
    src = (ROOT / "driftwatch" / "operator" / "telemetry.py").read_text()
    names: set[str] = set()
    for kind, name in re.findall(r'\b(Counter|Gauge|Histogram)\(\s*"(driftwatch_\w+)"', src):
        names |= _wire_names(kind, name)
    assert "driftwatch_gate_verdict" in names, "could not read the operator's metric names"
    return names


def promql_parses(promtool: str, exprs: dict[str, str], tmp_path: Path) -> None:
    """promtool has no `check expr`: put each expression in a recording rule and check the file."""
    rules = {
        "groups": [
            {
                "name": "check",
                "rules": [
                    {"record": f"check:{re.sub(r'[^a-zA-Z0-9_]', '_', name)}", "expr": e}
                    for name, e in exprs.items()
                ],
            }
        ]
    }
    path = tmp_path / "exprs.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = run(promtool, "check", "rules", str(path), check=False)
    assert result.returncode == 0, f"PromQL does not parse:\n{result.stdout}\n{result.stderr}"


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(driftwatch_[a-z_]+)", expr))


GRAFANA_VARS = re.compile(r"\$(__\w+|\{__\w+\})")
TEMPLATE_VARS = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")


def grafana_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    def panels(ps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard["panels"]):
        for t in p.get("targets", []):
            yield f"panel {p['id']} {p['title']} {t['refId']}", t["expr"]
    for a in dashboard["annotations"]["list"]:
        if a.get("expr"):
            yield f"annotation {a['name']}", a["expr"]
    for v in dashboard["templating"]["list"]:
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q or "")
        if m:
            yield f"variable {v['name']}", m.group(1)


def test_dashboard(promtool: str, tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "driftwatch-overview"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        *("drift score", "state", "severity", "events", "quantiles", "verdict", "gate", "ingested"),
        *("rejected", "latency", "queue", "keys", "redis", "operator"),
    ):
        assert topic in titles, f"no panel about {topic}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
    exprs = {}
    for name, expr in grafana_exprs(dashboard):
        # Grafana's interval macros become durations, template variables a match-all regex
        expr = GRAFANA_VARS.sub("5m", expr)
        exprs[name] = TEMPLATE_VARS.sub(".*", expr)
    assert len(exprs) >= 30
    promql_parses(promtool, exprs, tmp_path)
    known = sidecar_metric_names() | operator_metric_names()
    for name, expr in exprs.items():
        assert metrics_in(expr) <= known, (
            f"{name} uses metrics neither the sidecar nor the operator exports: {metrics_in(expr) - known}"
        )
    # every variable filters every query it applies to (tests/e2e/test_dashboard.py runs them for real)
    for name, expr in grafana_exprs(dashboard):
        if name.startswith("variable"):
            continue
        assert "$cluster" in expr, f"{name} ignores the cluster variable"
        if "driftwatch_operator_" not in expr:
            assert "$namespace" in expr, f"{name} ignores the namespace variable"
            assert "$monitor" in expr, f"{name} ignores the monitor variable"


def test_alert_rules_use_exported_metrics() -> None:
    known = sidecar_metric_names()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert metrics_in(rule["expr"]) <= known, (rule.get("alert"), metrics_in(rule["expr"]) - known)


# --- rollout examples ---------------------------------------------------------------------------------------

ARGO_METRIC_FIELDS = {
    "name",
    "interval",
    "initialDelay",
    "count",
    "successCondition",
    "failureCondition",
    "failureLimit",
    "inconclusiveLimit",
    "consecutiveErrorLimit",
    "consecutiveSuccessLimit",
    "provider",
}
ARGO_WEB_FIELDS = {"url", "method", "headers", "body", "timeoutSeconds", "jsonPath", "insecure", "jsonBody"}
ARGO_PROMETHEUS_FIELDS = {
    "address",
    "query",
    "timeout",
    "headers",
    "insecure",
    "authentication",
    "rangeQuery",
}


def rollout_docs() -> list[dict[str, Any]]:
    return [d for f in sorted(ROLLOUTS.glob("*.yaml")) for d in docs(f.read_text())]


def test_argo_analysis_templates() -> None:
    templates = [d for d in rollout_docs() if d["kind"] in ("AnalysisTemplate", "ClusterAnalysisTemplate")]
    providers = set()
    for t in templates:
        assert t["apiVersion"] == "argoproj.io/v1alpha1"
        args = {a["name"] for a in t["spec"].get("args", [])}
        text = json.dumps(t["spec"]["metrics"])
        assert set(re.findall(r"\{\{\s*args\.([\w-]+)\s*\}\}", text)) <= args, "undeclared args"
        for m in t["spec"]["metrics"]:
            assert set(m) <= ARGO_METRIC_FIELDS, set(m) - ARGO_METRIC_FIELDS
            (provider,) = m["provider"]
            providers.add(provider)
            if provider != "prometheus":  # the readers that can name the canary must (not a default)
                assert {"name": "canary-hash"} in t["spec"]["args"], t["metadata"]["name"]
            if provider == "job":  # a Job's success is the condition: driftwatch gate's exit code
                pod = m["provider"]["job"]["spec"]["template"]["spec"]
                command = pod["containers"][0]["command"]
                assert command[:2] == ["driftwatch", "gate"]
                assert command[command.index("--canary") + 1] == "{{args.canary-hash}}"
                assert m["failureLimit"] == 0
                continue
            assert "successCondition" in m
            assert "failureCondition" in m
            assert m["failureLimit"] == 0  # the verdict is a calibrated decision: one Fail aborts
            if provider == "web":
                web = m["provider"]["web"]
                assert set(web) <= ARGO_WEB_FIELDS
                # the operator's route, and 200 whatever the verdict (a non-2xx is an Error to Argo)
                assert "/v1/gate/{{args.namespace}}/{{args.monitor}}?always200=true" in web["url"]
                assert web["url"].endswith("&canary={{args.canary-hash}}")
                assert web["jsonPath"] == "{$.verdict}"
                assert m["successCondition"] == 'result == "Pass"'
                assert m["failureCondition"] == 'result == "Fail"'
            else:
                assert set(m["provider"]["prometheus"]) <= ARGO_PROMETHEUS_FIELDS
        for d in t["spec"].get("dryRun", []):
            assert d["metricName"] in {m["name"] for m in t["spec"]["metrics"]}
    assert providers == {"web", "prometheus", "job"}


def test_the_example_rollout_names_its_canary() -> None:
    """The Rollout passes the new ReplicaSet's pod template hash (Argo's podTemplateHashValue Latest) as
    ``canary-hash``: the web gate's ``?canary=``, so a verdict about the previous canary is Inconclusive."""
    [rollout] = [d for d in rollout_docs() if d["kind"] == "Rollout"]
    args = {a["name"]: a for a in rollout["spec"]["strategy"]["canary"]["analysis"]["args"]}
    assert args["canary-hash"] == {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}


def test_gate_route_matches_the_operator() -> None:
    src = (ROOT / "driftwatch" / "operator" / "endpoints.py").read_text()
    assert '"/v1/gate/{namespace}/{name}"' in src
    assert "always200" in src
    assert "failOnly" in src


def test_rollout_prometheus_queries_parse(promtool: str, tmp_path: Path) -> None:
    exprs = {}
    known = sidecar_metric_names() | operator_metric_names()
    for d in rollout_docs():
        if d["kind"] == "AnalysisTemplate":
            for m in d["spec"]["metrics"]:
                if "prometheus" in m["provider"]:
                    exprs[f"argo {m['name']}"] = m["provider"]["prometheus"]["query"]
        elif d["kind"] == "MetricTemplate":
            assert d["apiVersion"] == "flagger.app/v1beta1"
            assert d["spec"]["provider"]["type"] == "prometheus"
            exprs[f"flagger {d['metadata']['name']}"] = d["spec"]["query"]
    assert len(exprs) == 2
    # Argo `{{args.x}}` and Flagger `{{ target }}` placeholders become plain label values
    exprs = {k: re.sub(r"\{\{\s*[\w.-]+\s*\}\}", "x", v) for k, v in exprs.items()}
    promql_parses(promtool, exprs, tmp_path)
    for name, expr in exprs.items():
        assert metrics_in(expr) <= known, name
    canaries = [d for d in rollout_docs() if d["kind"] == "Canary"]
    assert canaries
    for c in canaries:
        for m in c["spec"]["analysis"].get("metrics", []):
            assert "thresholdRange" in m
            assert "templateRef" in m


def test_flagger_canary_asks_the_gate_as_each_webhook_type_needs() -> None:
    """A ``rollout`` webhook counts every non-2xx towards rollback: it asks with ``failOnly`` (non-2xx
    on Fail alone); ``confirm-promotion`` promotes on a 2xx: it asks plainly (2xx on Pass alone). Both
    name the monitor (tests/e2e/test_flagger.py runs this Canary through the real controller)."""
    [canary] = [d for d in rollout_docs() if d["kind"] == "Canary"]
    hooks = {h["type"]: h for h in canary["spec"]["analysis"]["webhooks"]}
    assert set(hooks) == {"rollout", "confirm-promotion"}
    assert hooks["rollout"]["url"].endswith("/v1/gate?failOnly=true")
    assert hooks["confirm-promotion"]["url"].endswith("/v1/gate")
    for hook in hooks.values():
        assert hook["metadata"]["monitor"] == canary["metadata"]["name"]


def test_cert_manager_mode_is_a_ca_chain(helm: str, helm_env: dict[str, str]) -> None:
    """Self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate: a renewal of the serving
    certificate keeps the CA the webhook's caBundle trusts (cert-manager cannot run here; the chain is
    checked link by link)."""
    objs = render(helm, helm_env, "webhook.certs.mode=cert-manager")
    issuers = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Issuer"}
    certificates = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Certificate"}
    (ca,) = [c for c in certificates.values() if c["spec"].get("isCA")]
    (serving,) = [c for c in certificates.values() if not c["spec"].get("isCA")]
    assert "selfSigned" in issuers[ca["spec"]["issuerRef"]["name"]]["spec"]
    ca_issuer = issuers[serving["spec"]["issuerRef"]["name"]]
    assert ca_issuer["spec"] == {"ca": {"secretName": ca["spec"]["secretName"]}}
    assert "selfSigned" not in ca_issuer["spec"]
    hook = one(objs, "MutatingWebhookConfiguration")
    assert hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{NAMESPACE}/{serving['metadata']['name']}"
    )
    dep = one(objs, "Deployment", "-operator")
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "webhook-certs"]
    assert vol["secret"]["secretName"] == serving["spec"]["secretName"]
    # with the platform's own issuer, the chart makes no CA of its own
    own = render(
        helm, helm_env, "webhook.certs.mode=cert-manager", "webhook.certs.certManager.issuerRef.name=corp-ca"
    )
    assert not [o for o in own if o["kind"] == "Issuer"]


# --- chart conventions (issue 13): CRD lifecycle, aggregated roles, securityContexts, scraping, runbooks --

RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/driftwatch/driftwatch/blob/main/docs/runbooks.md"
PROMETHEUS_RULE_API = "monitoring.coreos.com/v1/PrometheusRule"

CONVENTIONS = (
    "crds.keep=false",
    "operator.podSecurityContext.runAsUser=1000",
    "operator.containerSecurityContext.readOnlyRootFilesystem=true",
    "redis.podSecurityContext.fsGroup=2000",
    "redis.containerSecurityContext.runAsUser=999",
    "sidecar.containerSecurityContext.runAsUser=4321",
    "operator.gate.tokenSecret=gate-token",
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.serviceMonitor.interval=15s",
    "monitoring.serviceMonitor.scrapeTimeout=5s",
    "monitoring.serviceMonitor.honorLabels=true",
    "monitoring.serviceMonitor.relabelings[0].targetLabel=cluster",
    "monitoring.serviceMonitor.relabelings[0].replacement=prod",
    "monitoring.serviceMonitor.metricRelabelings[0].action=drop",
    "monitoring.serviceMonitor.metricRelabelings[0].sourceLabels[0]=__name__",
    "monitoring.serviceMonitor.metricRelabelings[0].regex=python_gc_.*",
    "monitoring.perMonitor.interval=20s",
    "monitoring.perMonitor.honorLabels=false",
    "monitoring.perMonitor.metricRelabelings[0].action=labeldrop",
    "monitoring.perMonitor.metricRelabelings[0].regex=key",
    "monitoring.podMonitor.enabled=true",
    "monitoring.podMonitor.interval=45s",
    "monitoring.podMonitor.relabelings[0].targetLabel=cluster",
    "monitoring.podMonitor.relabelings[0].replacement=prod",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.prometheusRule.runbookBaseUrl=https://wiki.example/driftwatch/",
)


def render_args(helm: str, env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    """``helm template`` with raw arguments (``--api-versions``, ``--set``)."""
    base = [
        helm,
        "template",
        "driftwatch",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version(),
    ]
    return docs(run(*base, *args, env=env).stdout)


def test_helm_lint_with_every_convention_option(helm: str, helm_env: dict[str, str]) -> None:
    sets = [a for v in CONVENTIONS for a in ("--set", v)]
    run(helm, "lint", "--strict", str(CHART), *sets, env=helm_env)
    run(
        helm,
        "lint",
        "--strict",
        str(CHART),
        "--set",
        "crds.install=false",
        "--set",
        "rbac.aggregateClusterRoles=false",
        env=helm_env,
    )


def test_prometheus_rule_is_auto_by_default(helm: str, helm_env: dict[str, str]) -> None:
    """auto: rendered exactly when the cluster serves monitoring.coreos.com/v1 PrometheusRule (what
    `helm install` sees in .Capabilities; `helm template` is told with --api-versions); true/false
    force it."""

    def rules(*args: str) -> list[dict[str, Any]]:
        return by_kind(render_args(helm, helm_env, *args), "PrometheusRule")

    api = ("--api-versions", PROMETHEUS_RULE_API)
    assert rules() == []
    (rule,) = rules(*api)
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert rules(*api, "--set", "monitoring.prometheusRule.enabled=false") == []
    assert len(rules("--set", "monitoring.prometheusRule.enabled=true")) == 1
    assert len(rules(*api, "--set", "monitoring.prometheusRule.enabled=auto")) == 1


def test_aggregated_cluster_roles(helm: str, helm_env: dict[str, str]) -> None:
    objs = render(helm, helm_env)
    view = one(objs, "ClusterRole", "-view")
    edit = one(objs, "ClusterRole", "-edit")
    agg = "rbac.authorization.k8s.io/aggregate-to-"
    assert {
        k.removeprefix(agg)
        for k, v in view["metadata"]["labels"].items()
        if k.startswith(agg) and v == "true"
    } == {
        "view",
        "edit",
        "admin",
    }
    assert {
        k.removeprefix(agg)
        for k, v in edit["metadata"]["labels"].items()
        if k.startswith(agg) and v == "true"
    } == {
        "edit",
        "admin",
    }
    assert view["rules"] == [
        {
            "apiGroups": ["driftwatch.io"],
            "resources": ["driftmonitors", "driftmonitors/status"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    # edit writes DriftMonitors (and so `driftwatch ack`'s annotation), never their status
    (rule,) = edit["rules"]
    assert rule["resources"] == ["driftmonitors"]
    assert set(rule["verbs"]) == {"create", "update", "patch", "delete", "deletecollection"}
    # nobody is bound to them: the built-in roles pick them up
    assert not [
        o
        for o in objs
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and o["roleRef"]["name"] in (view["metadata"]["name"], edit["metadata"]["name"])
    ]
    off = render(helm, helm_env, "rbac.aggregateClusterRoles=false")
    assert not [o for o in off if o["metadata"]["name"].endswith(("-view", "-edit"))]


def test_convention_options_render(
    helm: str, helm_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = render(helm, helm_env, *CONVENTIONS)
    assert "annotations" not in one(objs, "CustomResourceDefinition")["metadata"]
    # securityContexts: Helm merges the keys given into the restricted defaults
    op = one(objs, "Deployment", "-operator")["spec"]["template"]["spec"]
    assert op["securityContext"]["runAsUser"] == 1000
    assert op["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    redis = one(objs, "Deployment", "-redis")["spec"]["template"]["spec"]
    assert redis["securityContext"]["fsGroup"] == 2000
    assert redis["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # the sidecar's reaches the injected container through the operator
    from driftwatch.operator import inject

    c = operator_container(objs)
    opts = operator_options(c, NAMESPACE, monkeypatch)
    assert opts.sidecar_security_context["runAsUser"] == 4321
    assert opts.sidecar_security_context["allowPrivilegeEscalation"] is False
    body = {
        "metadata": {"name": "m", "namespace": "shop", "uid": "u", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "a"}}},
    }
    from driftwatch.operator.driftmonitor import Monitor

    sidecar = inject.sidecar_container(Monitor.from_body(body, opts), opts)
    assert sidecar["securityContext"] == opts.sidecar_security_context
    # the per-monitor ServiceMonitors' endpoint
    assert opts.sidecar_scrape == {
        "interval": "20s",
        "scrapeTimeout": "10s",
        "honorLabels": False,
        "metricRelabelings": [{"action": "labeldrop", "regex": "key"}],
    }
    # the operator's own ServiceMonitor: its Service, the token, every endpoint setting
    sm = one(objs, "ServiceMonitor", "-operator")
    svc = one(objs, "Service", "-operator")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == svc["spec"]["ports"][0]["name"]
    assert endpoint["interval"] == "15s"
    assert endpoint["scrapeTimeout"] == "5s"
    assert endpoint["honorLabels"] is True
    assert endpoint["relabelings"] == [{"targetLabel": "cluster", "replacement": "prod"}]
    assert endpoint["metricRelabelings"] == [
        {"action": "drop", "sourceLabels": ["__name__"], "regex": "python_gc_.*"}
    ]
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "gate-token", "key": "token"},
    }
    (pm,) = one(objs, "PodMonitor")["spec"]["podMetricsEndpoints"]
    assert pm["interval"] == "45s"
    assert pm["honorLabels"] is True
    assert pm["relabelings"] == [{"targetLabel": "cluster", "replacement": "prod"}]
    # runbook_url follows runbookBaseUrl
    urls = [
        r["annotations"]["runbook_url"]
        for g in one(objs, "PrometheusRule")["spec"]["groups"]
        for r in g["rules"]
    ]
    assert urls
    assert all(u.startswith("https://wiki.example/driftwatch#") for u in urls), urls


def test_every_alert_has_a_runbook() -> None:
    """runbook_url on every alert, pointing at its own section of docs/runbooks.md; one section per alert
    name and none for an alert that does not exist; and every firing case of rules.test.yaml checks it."""
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]
    sections = re.findall(r"^## (\S+)$", RUNBOOKS.read_text(), re.M)
    assert sorted(sections) == sorted({r["alert"] for r in rules}), "docs/runbooks.md: one section per alert"
    for r in rules:
        # GitHub's anchor for "## DriftWatchX" is #driftwatchx
        assert r["annotations"].get("runbook_url") == f"{RUNBOOK_BASE}#{r['alert'].lower()}", r["alert"]
    checked = 0
    for test in yaml.safe_load(RULES_TEST.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            for alert in case["exp_alerts"]:
                assert (
                    alert["exp_annotations"]["runbook_url"] == f"{RUNBOOK_BASE}#{case['alertname'].lower()}"
                )
                checked += 1
    assert checked >= len(rules)


def test_operator_writes_no_alert_rules() -> None:
    """One set of alert names: the chart's rules. The operator renders no PrometheusRule per monitor and
    its RBAC cannot write one."""
    from driftwatch.operator import render as operator_render
    from driftwatch.operator.driftmonitor import Monitor
    from driftwatch.operator.options import OperatorOptions

    opts = OperatorOptions(sidecar_image="driftwatch:test")
    body = {
        "metadata": {"name": "m", "namespace": "shop", "uid": "u", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "a"}}},
    }
    kinds = {
        o["kind"] for o in operator_render.children(Monitor.from_body(body, opts), opts, prometheus=True)
    }
    assert "PrometheusRule" not in kinds
    assert "ServiceMonitor" in kinds
    assert "prometheusrules" not in RBAC.read_text()
