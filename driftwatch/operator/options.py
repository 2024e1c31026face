"""The operator's options: one frozen object built from ``driftwatch operator`` flags.

Every module that needs a knob takes it from here, so tests build an ``OperatorOptions`` directly and
the pure modules (``render``, ``inject``) stay free of globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: the API group of everything DriftWatch owns; label/annotation keys live under it
GROUP = "driftwatch.io"
VERSION = "v1alpha1"
PLURAL = "driftmonitors"

#: labels and annotations (the public surface users and the webhook configuration rely on)
LABEL_MONITOR = f"{GROUP}/monitor"  # set on injected pods; the metrics Service selects on it
LABEL_MANAGED = "app.kubernetes.io/managed-by"
LABEL_INJECT = f"{GROUP}/inject"  # namespace opt-in (=enabled), pod opt-in/out (=true / =false|disabled)
ANNOTATION_INJECT = f"{GROUP}/inject"  # pod annotation opt-out: driftwatch.io/inject: "false"
OPT_OUT_VALUES = ("false", "disabled")
ANNOTATION_INJECTED = f"{GROUP}/injected"  # set on injected pods: the monitor whose sidecar it got
ANNOTATION_SPEC_HASH = f"{GROUP}/spec-hash"  # on the ConfigMap: which spec it was rendered from

SIDECAR_CONTAINER = "driftwatch-sidecar"
CONFIG_VOLUME = "driftwatch-config"
CONFIG_MOUNT = "/etc/driftwatch"
CONFIG_KEY = "sidecar.yaml"
#: ``baseline.mode: fromConfigMap``: ConfigMap ``spec.baseline.configMap`` is mounted here (the sidecar's
#: ``state.baselineDir``; nested in the config volume, whose mount point the kubelet creates)
BASELINE_VOLUME = "driftwatch-baseline"
BASELINE_MOUNT = "/etc/driftwatch/baseline"
INGEST_PORT = 8476
METRICS_PORT = 9476
WEBHOOK_PORT = 9443
GATE_PORT = 8080
FIELD_MANAGER = "driftwatch-operator"

WebhookMode = Literal["url", "service", "none"]
TLSMode = Literal["self", "cert-manager"]
FailurePolicy = Literal["Ignore", "Fail"]
InjectionScope = Literal["namespace", "pod"]


@dataclass(frozen=True)
class OperatorOptions:
    """Everything ``driftwatch operator`` can be told. Defaults suit an in-cluster install."""

    #: namespaces to serve; empty means the whole cluster
    namespaces: tuple[str, ...] = ()
    #: where the operator itself runs (its Secret, Service, and the namespace the webhook never injects)
    operator_namespace: str = "driftwatch"
    redis_url: str = "redis://driftwatch-redis.driftwatch:6379/0"
    key_prefix: str = "driftwatch"

    # --- sidecar defaults (a monitor's spec.sidecar overrides them) ---
    sidecar_image: str = "ghcr.io/driftwatch/driftwatch:0.1.0"
    sidecar_pull_policy: str = "IfNotPresent"
    sidecar_requests: dict[str, str] = field(default_factory=lambda: {"cpu": "50m", "memory": "96Mi"})
    sidecar_limits: dict[str, str] = field(default_factory=lambda: {"memory": "256Mi"})
    #: non-root UID for the sidecar: ``restricted`` Pod Security needs runAsNonRoot, and a numeric UID
    #: lets the kubelet verify it even if the image's USER is a name
    sidecar_uid: int = 65532
    #: seconds between a sidecar's summaries to Redis (rendered into its config's ``state``)
    sidecar_publish_interval: float = 10.0

    # --- webhook ---
    webhook_mode: WebhookMode = "url"
    webhook_host: str = "0.0.0.0"
    webhook_port: int = WEBHOOK_PORT
    #: url mode: the base URL the API server calls (the local control plane has no kube-proxy)
    webhook_url: str = f"https://127.0.0.1:{WEBHOOK_PORT}"
    #: service mode: the Service in operator_namespace that fronts the webhook port
    webhook_service: str = "driftwatch-webhook"
    webhook_path: str = "/mutate-pods"
    #: namespace opt-in label (``--injection-scope namespace``), the Helm chart's default
    inject_label: tuple[str, str] = (LABEL_INJECT, "enabled")
    webhook_config_name: str = "driftwatch-sidecar-injector"
    failure_policy: FailurePolicy = "Ignore"
    injection_scope: InjectionScope = "namespace"
    webhook_timeout_seconds: int = 5
    tls_mode: TLSMode = "self"
    tls_secret: str = "driftwatch-webhook-tls"
    #: cert-manager mode: the directory where the Secret is mounted (tls.crt, tls.key, ca.crt)
    tls_dir: str = "/etc/driftwatch/tls"

    # --- aggregation / status ---
    aggregate_interval: float = 10.0
    #: a pod that has not published for this long is aged out of ``P:pods``
    stale_after: float = 90.0
    #: write ``status.lastUpdate`` at least this often even when nothing else changed
    heartbeat: float = 60.0
    #: listen for the sidecars' ``P:notify`` (PSUBSCRIBE) and aggregate at once; the timer stays
    notify: bool = True

    # --- gate / health ---
    gate_host: str = "0.0.0.0"
    gate_port: int = GATE_PORT

    #: create ServiceMonitor/PrometheusRule when the cluster has the Prometheus Operator's CRDs
    prometheus: bool = True
    #: extra labels for ServiceMonitor/PrometheusRule (kube-prometheus-stack selects on ``release``)
    monitoring_labels: dict[str, str] = field(default_factory=dict)
