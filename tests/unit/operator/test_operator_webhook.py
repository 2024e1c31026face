"""The webhook's configuration, its AdmissionReview answers, and the TLS it serves."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import jsonpatch
from cryptography import x509

from driftwatch.operator import certs
from driftwatch.operator.cache import MonitorCache
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.webhook import review_response, tls_names, webhook_configuration


def test_configuration_url_mode() -> None:
    opts = OperatorOptions(webhook_url="https://127.0.0.1:9999")
    cfg = webhook_configuration(opts, b"CA")
    (w,) = cfg["webhooks"]
    assert w["clientConfig"] == {
        "url": "https://127.0.0.1:9999/mutate-pods",
        "caBundle": base64.b64encode(b"CA").decode(),
    }
    assert w["failurePolicy"] == "Ignore"
    assert w["sideEffects"] == "None"
    assert w["reinvocationPolicy"] == "IfNeeded"
    assert w["rules"][0]["resources"] == ["pods"]
    assert w["rules"][0]["operations"] == ["CREATE"]
    ns = w["namespaceSelector"]["matchExpressions"]
    assert {"key": "driftwatch.io/inject", "operator": "In", "values": ["enabled"]} in ns
    excluded = next(e for e in ns if e["key"] == "kubernetes.io/metadata.name")
    assert {"kube-system", "driftwatch"} <= set(excluded["values"])
    assert w["objectSelector"]["matchExpressions"][0]["operator"] == "NotIn"
    assert "driftwatch.io/inject" in w["matchConditions"][0]["expression"]


def test_configuration_service_mode_fail_policy_cert_manager() -> None:
    opts = OperatorOptions(
        webhook_mode="service", failure_policy="Fail", tls_mode="cert-manager", injection_scope="pod"
    )
    cfg = webhook_configuration(opts, b"CA")
    (w,) = cfg["webhooks"]
    assert w["clientConfig"] == {
        "service": {
            "namespace": "driftwatch",
            "name": "driftwatch-webhook",
            "port": 443,
            "path": "/mutate-pods",
        }
    }  # no caBundle: cert-manager injects it
    assert (
        cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        == "driftwatch/driftwatch-webhook-tls"
    )
    assert w["failurePolicy"] == "Fail"
    assert w["objectSelector"] == {"matchLabels": {"driftwatch.io/inject": "true"}}


def _review(pod: dict[str, Any], namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": namespace,
            "object": pod,
        },
    }


def test_review_injects_for_replicaset_pod_without_namespace() -> None:
    opts = OperatorOptions()
    reg = MonitorCache()
    monitor = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "x", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
    }
    reg.upsert(monitor, opts)
    # as the ReplicaSet controller sends it: generateName, no name, no namespace in the object
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-5d4-", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
    }
    # never reconciled: its ConfigMap may not exist yet, so the pod starts without the sidecar
    out = review_response(_review(pod), reg, opts)["response"]
    assert "patch" not in out
    assert "not reconciled yet" in out["auditAnnotations"]["driftwatch.io/decision"]
    ready = {"type": "Ready", "status": "True", "reason": "ChildrenApplied", "observedGeneration": 1}
    reg.upsert({**monitor, "status": {"conditions": [ready]}}, opts)
    out = review_response(_review(pod), reg, opts)["response"]
    assert out["uid"] == "u1"
    assert out["allowed"] is True
    assert out["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(out["patch"])))
    assert [c["name"] for c in patched["spec"]["initContainers"]] == ["driftwatch-sidecar"]
    # a refused monitor (its baseline ConfigMap is missing): no sidecar, and the reason says why
    missing = {
        **ready,
        "status": "False",
        "reason": "BaselineConfigMapMissing",
        "message": "spec.baseline.configMap: gone",
    }
    reg.upsert({**monitor, "status": {"conditions": [missing]}}, opts)
    out = review_response(_review(pod), reg, opts)["response"]
    assert "patch" not in out
    assert "spec.baseline.configMap" in out["auditAnnotations"]["driftwatch.io/decision"]
    # other namespace, same labels: no monitor there
    other = review_response(_review(pod, "elsewhere"), reg, opts)["response"]
    assert "patch" not in other
    assert other["allowed"] is True


def test_registry_drops_deleted_and_invalid() -> None:
    opts = OperatorOptions()
    reg = MonitorCache()
    body = {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}},
    }
    reg.upsert(body, opts)
    assert len(reg.in_namespace("shop")) == 1
    reg.upsert({**body, "metadata": {**body["metadata"], "deletionTimestamp": "now"}}, opts)
    assert reg.in_namespace("shop") == []
    reg.upsert({**body, "spec": {"selector": {}}}, opts)
    assert reg.in_namespace("shop") == []


def test_tls_names_cover_url_and_service() -> None:
    names = tls_names(OperatorOptions(webhook_url="https://127.0.0.1:9443"))
    assert names[0] == "127.0.0.1"
    assert "driftwatch-webhook.driftwatch.svc" in names


def test_certificates_chain_and_renewal() -> None:
    names = ["127.0.0.1", "driftwatch-webhook.driftwatch.svc"]
    bundle = certs.make_bundle(names)
    cert = x509.load_pem_x509_certificate(bundle.cert)
    ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    cert.verify_directly_issued_by(ca)
    assert certs.covered_names(bundle.cert) == set(names)
    assert certs.needs_renewal(bundle, names) is None
    assert "does not cover" in (certs.needs_renewal(bundle, [*names, "new.example"]) or "")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=340)
    assert "expires" in (certs.needs_renewal(bundle, names, now=later) or "")
    renewed = certs.renew(bundle, [*names, "new.example"])
    assert renewed.ca_cert == bundle.ca_cert  # caBundle stays valid across renewals
    x509.load_pem_x509_certificate(renewed.cert).verify_directly_issued_by(ca)
    assert certs.Bundle.from_secret_data(renewed.to_secret_data()) == renewed
