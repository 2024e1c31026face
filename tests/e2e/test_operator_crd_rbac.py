"""The DriftMonitor CRD and the operator's RBAC, against the real API server (no operator running).

* A bad spec is rejected by the API server itself -- OpenAPI ranges, enums, patterns and the CEL
  cross-field rules -- with a message that names the field.
* A minimal spec is accepted and defaulted to what config.py would fill in.
* deploy/rbac/operator-rbac.yaml grants the operator's ServiceAccount exactly what it needs: checked
  with ``kubectl auth can-i --as=system:serviceaccount:driftwatch:driftwatch-operator``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import (
    install_crd,
    install_prometheus_crd_stubs,
    install_rbac,
    remove_prometheus_crd_stubs,
)
from driftwatch.vocab.spec import MonitorSpec

SA = "system:serviceaccount:driftwatch:driftwatch-operator"


@pytest.fixture(scope="module", autouse=True)
def crd_and_rbac(cluster: Cluster) -> Iterator[None]:
    install_crd(cluster)
    install_rbac(cluster)
    install_prometheus_crd_stubs(cluster)  # so `can-i` can resolve servicemonitors
    yield
    remove_prometheus_crd_stubs(cluster)


def monitor(name: str = "m", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, **spec},
    }


BAD = [
    ("window-below-minSamples", {"baseline": {"minSamples": 500, "window": 100}}, "spec.baseline.window"),
    (
        "warning-above-critical",
        {"sensitivity": {"warning": 0.7, "critical": 0.6}},
        "spec.sensitivity.warning",
    ),
    (
        "fromWindow-without-end",
        {"baseline": {"mode": "fromWindow", "start": "2026-01-01T00:00:00Z"}},
        "spec.baseline.end",
    ),
    (
        "fromWindow-without-start",
        {"baseline": {"mode": "fromWindow", "end": 1767225600}},
        "spec.baseline.start",
    ),
    ("fromConfigMap-without-name", {"baseline": {"mode": "fromConfigMap"}}, "spec.baseline.configMap"),
    ("falseAlarmsPer-too-small", {"sensitivity": {"falseAlarmsPer": 5}}, "spec.sensitivity.falseAlarmsPer"),
    ("unknown-preset", {"preset": "magic"}, "spec.preset"),
    ("bad-feature-name", {"features": [{"name": "9 lives"}]}, "spec.features[0].name"),
    ("duplicate-feature", {"features": [{"name": "x"}, {"name": "x"}]}, "spec.features[1]"),
    (
        "transform-on-categorical",
        {"features": [{"name": "plan", "type": "categorical", "transform": "log"}]},
        "spec.features[0].transform",
    ),
    ("bad-duration", {"scan": {"current": "an hour"}}, "spec.scan.current"),
    ("unknown-scan-test", {"scan": {"tests": ["ks", "t-test"]}}, "spec.scan.tests[1]"),
    ("empty-selector", {"selector": {}}, "spec.selector"),
    (
        "In-without-values",
        {"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
        "spec.selector.matchExpressions[0].values",
    ),
    ("bad-redis-url", {"redis": {"url": "http://redis:6379"}}, "spec.redis.url"),
    ("adopt-after-word", {"baseline": {"adopt": {"after": "soon"}}}, "spec.baseline.adopt.after"),
    ("adopt-after-too-small", {"baseline": {"adopt": {"after": 5}}}, "spec.baseline.adopt.after"),
    ("adopt-after-bad-duration", {"baseline": {"adopt": {"after": "3 days"}}}, "spec.baseline.adopt.after"),
    ("unknown-seasonality", {"baseline": {"seasonality": "hourly"}}, "spec.baseline.seasonality"),
]


@pytest.mark.parametrize(("spec", "field"), [(s, f) for _, s, f in BAD], ids=[i for i, _, _ in BAD])
def test_bad_spec_rejected_naming_the_field(
    cluster: Cluster, namespace: str, spec: dict[str, Any], field: str
) -> None:
    code, _, err = cluster.dry_run(namespace=namespace, obj=monitor(**spec))
    assert code != 0, f"accepted: {spec}"
    assert field in err, err


def test_selector_is_required(cluster: Cluster, namespace: str) -> None:
    obj = monitor()
    del obj["spec"]["selector"]
    code, _, err = cluster.dry_run(namespace=namespace, obj=obj)
    assert code != 0
    assert "spec.selector" in err


def test_name_fits_child_names(cluster: Cluster, namespace: str) -> None:
    code, _, err = cluster.dry_run(namespace=namespace, obj=monitor("x" * 60))
    assert code != 0
    assert "metadata.name" in err


def test_minimal_spec_defaulted_like_config(cluster: Cluster, namespace: str) -> None:
    code, out, err = cluster.dry_run(namespace=namespace, obj=monitor(features=[{"name": "latency_ms"}]))
    assert code == 0, err
    spec = json.loads(out)["spec"]
    assert spec["sensitivity"] == {"falseAlarmsPer": 10000, "warning": 0.2, "critical": 0.5}
    assert spec["baseline"] == {"mode": "learned", "minSamples": 100, "seasonality": "auto"}
    assert spec["features"] == [{"name": "latency_ms", "type": "auto", "transform": "auto"}]
    # what the API server stored is what the sidecar's model parses, with the same values
    parsed = MonitorSpec.parse(spec)
    assert parsed == MonitorSpec.parse({"selector": spec["selector"], "features": ["latency_ms"]})


def test_fromwindow_takes_iso_or_epoch(cluster: Cluster, namespace: str) -> None:
    baseline = {"mode": "fromWindow", "start": 1767225600, "end": "2026-01-02T00:00:00Z"}
    code, out, err = cluster.dry_run(namespace=namespace, obj=monitor(baseline=baseline))
    assert code == 0, err
    assert MonitorSpec.parse(json.loads(out)["spec"]).baseline.mode == "fromWindow"


def test_printer_columns(cluster: Cluster, namespace: str) -> None:
    cluster.apply(monitor("columns"), namespace=namespace)
    header = cluster.kubectl("get", "dm", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "DRIFTING", "VERDICT", "AGE"]
    wide = (
        cluster.kubectl("get", "driftmonitors", "-n", namespace, "-o", "wide").stdout.splitlines()[0].split()
    )
    assert {"SCORE", "PODS"} <= set(wide)


def can_i(cluster: Cluster, verb: str, resource: str, namespace: str | None = None) -> bool:
    """``resource`` is ``kind``, ``kind/name`` or ``kind#subresource`` (kubectl reads a slash as a name)."""
    resource, _, sub = resource.partition("#")
    args = ["auth", "can-i", verb, resource, f"--as={SA}"]
    if sub:
        args.append(f"--subresource={sub}")
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    r = cluster.kubectl(*args, check=False)
    return r.stdout.strip() == "yes"


ALLOWED = [
    ("watch", "driftmonitors.driftwatch.io", None),
    ("patch", "driftmonitors.driftwatch.io", "shop"),
    ("patch", "driftmonitors.driftwatch.io#status", "shop"),
    ("update", "driftmonitors.driftwatch.io#finalizers", "shop"),
    ("create", "configmaps", "shop"),
    ("patch", "services", "shop"),
    ("list", "pods", None),
    ("create", "events", "shop"),
    ("create", "servicemonitors.monitoring.coreos.com", "shop"),
    ("create", "mutatingwebhookconfigurations", None),
    ("patch", "mutatingwebhookconfigurations/driftwatch-sidecar-injector", None),
    ("get", "secrets/driftwatch-webhook-tls", "driftwatch"),
    ("create", "secrets", "driftwatch"),
    ("create", "secrets", "shop"),  # the sidecars' Redis login, one Secret per monitor
    ("patch", "secrets", "shop"),
    ("update", "leases.coordination.k8s.io/driftwatch-operator-leader", "driftwatch"),
    ("create", "cronjobs.batch", "shop"),
    ("delete", "cronjobs.batch", "shop"),
    ("patch", "roles.rbac.authorization.k8s.io", "shop"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "shop"),
    ("delete", "serviceaccounts", "shop"),
]
DENIED = [
    ("get", "secrets", None),  # no Secrets cluster-wide
    ("get", "secrets", "shop"),  # the Secrets it writes are never read back
    ("list", "secrets", "shop"),
    ("patch", "mutatingwebhookconfigurations", None),  # only its own, by name
    ("update", "leases.coordination.k8s.io/kube-controller-manager", "kube-system"),
    ("update", "leases.coordination.k8s.io/other", "driftwatch"),
    ("create", "jobs.batch", "shop"),  # the CronJob controller creates the Jobs
    ("escalate", "roles.rbac.authorization.k8s.io", "shop"),
    ("bind", "roles.rbac.authorization.k8s.io", "shop"),
    ("list", "secrets", "driftwatch"),  # not even listing its own namespace's
    ("get", "secrets/other", "driftwatch"),
    ("get", "secrets/driftwatch-webhook-tls", "shop"),
    ("delete", "driftmonitors.driftwatch.io", "shop"),
    ("update", "driftmonitors.driftwatch.io", "shop"),  # spec belongs to users
    ("update", "driftmonitors.driftwatch.io#status", "shop"),  # status: patches only, never a PUT
    ("delete", "configmaps", "shop"),  # deletion is the garbage collector's job
    ("create", "pods", "shop"),
    ("patch", "pods", "shop"),
    ("patch", "mutatingwebhookconfigurations/someone-elses", None),
    ("delete", "mutatingwebhookconfigurations/driftwatch-sidecar-injector", None),
    ("create", "validatingwebhookconfigurations", None),
    ("list", "namespaces", None),
    ("create", "clusterrolebindings", None),
    ("create", "deployments.apps", "shop"),
    ("create", "customresourcedefinitions", None),
]


@pytest.mark.parametrize(("verb", "resource", "ns"), ALLOWED, ids=[f"{v} {r}" for v, r, _ in ALLOWED])
def test_rbac_allows_what_the_operator_does(
    cluster: Cluster, verb: str, resource: str, ns: str | None
) -> None:
    assert can_i(cluster, verb, resource, ns)


@pytest.mark.parametrize(
    ("verb", "resource", "ns"), DENIED, ids=[f"{v} {r} {n or '*'}" for v, r, n in DENIED]
)
def test_rbac_denies_everything_else(cluster: Cluster, verb: str, resource: str, ns: str | None) -> None:
    assert not can_i(cluster, verb, resource, ns)
