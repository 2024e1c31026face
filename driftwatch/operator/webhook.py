"""The mutating admission webhook: server, TLS, and the MutatingWebhookConfiguration.

Scope, following Istio/Linkerd/Vault practice, so a dead injector can only ever affect pods that asked
for it:

* ``namespaceSelector``: namespaces labelled ``driftwatch.io/inject=enabled`` (``--injection-scope
  namespace``, the default; the label is ``--inject-label``) -- or any namespace with pods labelled
  ``driftwatch.io/inject=true`` (``--injection-scope pod``); never kube-system, kube-public,
  kube-node-lease or the operator's own.
* ``objectSelector``: skips pods labelled ``driftwatch.io/inject=false|disabled``; ``matchConditions``
  (CEL) skips pods annotated ``driftwatch.io/inject: "false"`` before the API server even calls us.

When the configuration already exists and someone else manages it (the Helm chart renders its own),
the operator only fills in ``caBundle``; otherwise it owns the whole object (server-side apply).
* ``failurePolicy``: Ignore by default (a pod is created without the sidecar if the operator is down);
  ``sideEffects: None``; ``reinvocationPolicy: IfNeeded`` (injection is idempotent).

Reachability: in a cluster the API server calls a Service (``--webhook-mode service``); on the local
control plane there is no kube-proxy, so it calls ``https://127.0.0.1:<port>`` (``--webhook-mode url``).

TLS: ``--tls self`` (default) keeps a CA and serving certificate in a Secret in the operator's namespace,
renews them, and patches ``caBundle``; ``--tls cert-manager`` reads the mounted Secret cert-manager
issued and leaves ``caBundle`` to cert-manager's CA injector.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from driftwatch.kube.client import Kube, KubeError, path_for
from driftwatch.operator import certs, inject, telemetry
from driftwatch.operator.cache import MonitorCache
from driftwatch.operator.options import OperatorOptions
from driftwatch.vocab.names import (
    ANNOTATION_DECISION,
    ANNOTATION_INJECT,
    GROUP,
    LABEL_INJECT,
    LABEL_MANAGED,
    MANAGER,
    OPT_OUT_VALUES,
)

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
WEBHOOK_NAME = f"sidecar.{GROUP}"
RENEW_CHECK_SECONDS = 6 * 3600


# --- the configuration (pure) ------------------------------------------------------------------------


def tls_names(options: OperatorOptions) -> list[str]:
    """Every name the serving certificate must cover: the URL's host and the Service's DNS names."""
    svc, ns = options.webhook_service, options.operator_namespace
    names = [f"{svc}.{ns}.svc", svc, f"{svc}.{ns}", f"{svc}.{ns}.svc.cluster.local"]
    host = urlparse(options.webhook_url).hostname
    if host and host not in names:
        names.insert(0, host) if options.webhook_mode == "url" else names.append(host)
    return names


def client_config(options: OperatorOptions, ca_bundle: bytes | None) -> dict[str, Any]:
    cfg: dict[str, Any]
    if options.webhook_mode == "service":
        cfg = {
            "service": {
                "namespace": options.operator_namespace,
                "name": options.webhook_service,
                "port": 443,
                "path": options.webhook_path,
            }
        }
    else:
        cfg = {"url": options.webhook_url.rstrip("/") + options.webhook_path}
    if ca_bundle:
        cfg["caBundle"] = base64.b64encode(ca_bundle).decode()
    return cfg


def webhook_configuration(options: OperatorOptions, ca_bundle: bytes | None) -> dict[str, Any]:
    excluded = sorted({*SYSTEM_NAMESPACES, options.operator_namespace})
    ns_exprs: list[dict[str, Any]] = [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}
    ]
    if options.injection_scope == "namespace":
        key, value = options.inject_label
        ns_exprs.insert(0, {"key": key, "operator": "In", "values": [value]})
        object_selector: dict[str, Any] = {
            "matchExpressions": [{"key": LABEL_INJECT, "operator": "NotIn", "values": list(OPT_OUT_VALUES)}]
        }
    else:
        object_selector = {"matchLabels": {LABEL_INJECT: "true"}}
    meta: dict[str, Any] = {
        "name": options.webhook_config_name,
        "labels": {"app.kubernetes.io/name": "driftwatch", LABEL_MANAGED: MANAGER},
    }
    if options.tls_mode == "cert-manager":
        meta["annotations"] = {
            "cert-manager.io/inject-ca-from": f"{options.operator_namespace}/{options.tls_secret}"
        }
    annotation = ANNOTATION_INJECT
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": meta,
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "admissionReviewVersions": ["v1"],
                "clientConfig": client_config(options, ca_bundle if options.tls_mode == "self" else None),
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchExpressions": ns_exprs},
                "objectSelector": object_selector,
                "matchConditions": [
                    {
                        "name": "not-opted-out",
                        "expression": (
                            "!has(object.metadata.annotations) || "
                            f"!('{annotation}' in object.metadata.annotations) || "
                            f"!(object.metadata.annotations['{annotation}'] in {list(OPT_OUT_VALUES)})"
                        ),
                    }
                ],
                "failurePolicy": options.failure_policy,
                "sideEffects": "None",
                "reinvocationPolicy": "IfNeeded",
                "matchPolicy": "Equivalent",
                "timeoutSeconds": options.webhook_timeout_seconds,
            }
        ],
    }


# --- admission review (pure but for the cache lookup) ----------------------------------------------


def review_response(
    review: Mapping[str, Any], cache: MonitorCache, options: OperatorOptions
) -> dict[str, Any]:
    """The AdmissionReview answer. Always allowed: we add a sidecar, we never block a pod."""
    request = review.get("request") or {}
    uid = request.get("uid", "")
    pod = request.get("object") or {}
    # pods from a ReplicaSet have no name yet and may lack metadata.namespace: the request has it
    namespace = request.get("namespace") or (pod.get("metadata") or {}).get("namespace") or ""
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if request.get("kind", {}).get("kind") == "Pod" and request.get("operation") == "CREATE":
        decision = inject.decide(pod, cache.in_namespace(namespace), options, cache.refused_in(namespace))
        telemetry.ADMISSIONS.labels("injected" if decision.injects else "skipped").inc()
        if decision.injects:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(decision.patch).encode()).decode()
        name = (pod.get("metadata") or {}).get("name") or (pod.get("metadata") or {}).get("generateName", "")
        log.debug("admission %s/%s: %s", namespace, name, decision.reason)
        response["auditAnnotations"] = {ANNOTATION_DECISION: decision.reason[:250]}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


# --- TLS -------------------------------------------------------------------------------------------


def _b64_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


async def ensure_bundle(kube: Kube, options: OperatorOptions) -> certs.Bundle:
    """The CA + serving pair from our Secret, created or renewed as needed. Safe with two replicas:
    whoever loses the create race adopts the winner's Secret."""
    names = tls_names(options)
    for _ in range(3):
        secret = await kube.get("Secret", options.operator_namespace, options.tls_secret)
        bundle = certs.Bundle.from_secret_data(_b64_data(secret)) if secret else None
        reason = certs.needs_renewal(bundle, names) if bundle else "no certificate yet"
        if reason is None and bundle is not None:
            return bundle
        new = (
            certs.renew(bundle, names)
            if bundle and reason != "not issued by the stored CA"
            else certs.make_bundle(names)
        )
        log.info("webhook TLS: issuing a serving certificate (%s)", reason)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": options.tls_secret,
                "namespace": options.operator_namespace,
                "labels": {"app.kubernetes.io/name": "driftwatch", LABEL_MANAGED: MANAGER},
            },
            "data": {k: base64.b64encode(v).decode() for k, v in new.to_secret_data().items()},
        }
        try:
            if secret is None:
                await kube.create(body)
            else:
                body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
                await kube.replace(body)
            return new
        except KubeError as e:
            if e.status != 409:
                raise
            log.info("webhook TLS: another writer updated %s; re-reading", options.tls_secret)
    raise RuntimeError(f"could not settle the webhook TLS Secret {options.tls_secret}")


def bundle_from_dir(directory: str) -> certs.Bundle:
    d = Path(directory)
    ca = (d / "ca.crt").read_bytes() if (d / "ca.crt").exists() else b""
    return certs.Bundle(ca, b"", (d / "tls.crt").read_bytes(), (d / "tls.key").read_bytes())


# --- the server ------------------------------------------------------------------------------------


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


class WebhookServer:
    """aiohttp over TLS; ``reload`` swaps the certificate in place for new connections."""

    def __init__(self, cache: MonitorCache, options: OperatorOptions, kube: Kube) -> None:
        self.cache = cache
        self.options = options
        self.kube = kube
        self._runner: web.AppRunner | None = None
        self._ssl: ssl.SSLContext | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="driftwatch-webhook-")
        self._renewer: asyncio.Task[None] | None = None
        self.bundle: certs.Bundle | None = None

    def _load(self, bundle: certs.Bundle) -> None:
        cert, key = Path(self._dir.name) / "tls.crt", Path(self._dir.name) / "tls.key"
        key.touch(mode=0o600)
        key.write_bytes(bundle.key)
        cert.write_bytes(bundle.cert)
        if self._ssl is None:
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ssl.load_cert_chain(str(cert), str(key))
        self.bundle = bundle

    async def _bundle(self) -> certs.Bundle:
        if self.options.tls_mode == "cert-manager":
            return bundle_from_dir(self.options.tls_dir)
        return await ensure_bundle(self.kube, self.options)

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            review = await request.json()
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        return web.json_response(review_response(review, self.cache, self.options))

    async def start(self) -> None:
        self._load(await self._bundle())
        app = web.Application()
        app.router.add_post(self.options.webhook_path, self._handle)
        app.router.add_get("/healthz", _ok)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.options.webhook_host, self.options.webhook_port, ssl_context=self._ssl
        )
        await site.start()
        log.info("webhook serving on %s:%d", self.options.webhook_host, self.options.webhook_port)
        try:
            await self.apply_configuration()
        except BaseException:
            await self._runner.cleanup()  # let a retried start bind the port again
            raise
        self._renewer = asyncio.create_task(self._renew_loop())

    async def apply_configuration(self) -> None:
        if self.options.webhook_mode == "none":
            return
        ca = self.bundle.ca_cert if self.bundle else None
        name = self.options.webhook_config_name
        existing = await self.kube.get("MutatingWebhookConfiguration", None, name)
        managed_by = ((existing or {}).get("metadata", {}).get("labels") or {}).get(LABEL_MANAGED)
        if existing is None or managed_by == MANAGER:
            await self.kube.apply(webhook_configuration(self.options, ca))
            return
        if self.options.tls_mode != "self" or ca is None:
            return  # cert-manager's CA injector owns caBundle
        encoded = base64.b64encode(ca).decode()
        ops = [
            {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": encoded}
            for i, w in enumerate(existing.get("webhooks") or [])
            if (w.get("clientConfig") or {}).get("caBundle") != encoded
        ]
        if ops:
            log.info("patching caBundle of %s (managed by %s)", name, managed_by)
            await self.kube.request(
                "PATCH",
                path_for("MutatingWebhookConfiguration", None, name),
                body=ops,
                content_type="application/json-patch+json",
            )

    async def _renew_loop(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(60 if self.options.tls_mode == "cert-manager" else RENEW_CHECK_SECONDS)
            try:
                bundle = await self._bundle()
                if self.bundle is None or bundle.cert != self.bundle.cert:
                    log.info("webhook TLS: loading a renewed certificate")
                    self._load(bundle)
                    await self.apply_configuration()
                last = time.monotonic()
            except Exception:  # keep serving with the old certificate; retry next round
                log.exception("webhook TLS renewal failed (last success %.0fs ago)", time.monotonic() - last)

    async def stop(self) -> None:
        # the configuration stays: with failurePolicy Ignore, pods are admitted while we are away
        if self._renewer:
            self._renewer.cancel()
        if self._runner:
            await self._runner.cleanup()
        self._dir.cleanup()
