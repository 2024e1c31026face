"""The operator's options: one frozen object built from ``driftwatch operator`` flags.

Every module that needs a knob takes it from here, so tests build an ``OperatorOptions`` directly and
the pure modules (``render``, ``inject``) stay free of globals.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from driftwatch import version
from driftwatch.vocab.names import GATE_PORT, IMAGE_REPOSITORY, LABEL_INJECT, LEADER_LEASE, WEBHOOK_PORT
from driftwatch.vocab.rediskeys import DEFAULT_KEY_PREFIX

WebhookMode = Literal["url", "service", "none"]
TLSMode = Literal["self", "cert-manager"]
FailurePolicy = Literal["Ignore", "Fail"]
InjectionScope = Literal["namespace", "pod"]
SidecarRedisAuth = Literal["acl", "shared", "none"]


def default_image() -> str:
    """``ghcr.io/driftwatch/driftwatch:<this package's version>``."""
    return f"{IMAGE_REPOSITORY}:{version()}"


def default_identity() -> str:
    """This replica's name in the leader Lease: the pod's name (``POD_NAME``, else the host's) and a
    random suffix, so a restarted process never mistakes its predecessor's lease for its own."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class OperatorOptions:
    """Everything ``driftwatch operator`` can be told. Defaults suit an in-cluster install."""

    #: namespaces to serve; empty means the whole cluster
    namespaces: tuple[str, ...] = ()
    #: where the operator itself runs (its Secret, Service, and the namespace the webhook never injects)
    operator_namespace: str = "driftwatch"
    redis_url: str = "redis://driftwatch-redis.driftwatch:6379/0"
    key_prefix: str = DEFAULT_KEY_PREFIX

    # --- sidecar defaults (a monitor's spec.sidecar overrides resources; the image only from a list) ---
    #: the image of this release (the package version is the image tag)
    sidecar_image: str = field(default_factory=default_image)
    #: images a DriftMonitor's ``spec.sidecar.image`` may name besides ``sidecar_image`` (the platform
    #: team's list); anything else is refused with a condition naming the field
    allowed_images: tuple[str, ...] = ()
    #: how sidecars log in to Redis (``redis_users``): per-monitor ACL users, one shared login, or none
    sidecar_redis_auth: SidecarRedisAuth = "none"
    #: ``acl``: the key the per-monitor passwords are derived from (a Secret of the operator's)
    sidecar_credential_key: str = field(default="", repr=False)
    #: ``shared``: the one login every monitor's Secret gets
    sidecar_redis_username: str = ""
    sidecar_redis_password: str = field(default="", repr=False)
    #: PEM of the CA that signs an external Redis' TLS certificate (``rediss``), copied into each
    #: monitor's Secret and mounted for its sidecars
    redis_ca: str = field(default="", repr=False)
    sidecar_pull_policy: str = "IfNotPresent"
    sidecar_requests: dict[str, str] = field(default_factory=lambda: {"cpu": "50m", "memory": "96Mi"})
    sidecar_limits: dict[str, str] = field(default_factory=lambda: {"memory": "256Mi"})
    #: non-root UID for the sidecar: ``restricted`` Pod Security needs runAsNonRoot, and a numeric UID
    #: lets the kubelet verify it even if the image's USER is a name
    sidecar_uid: int = 65532
    #: the injected container's whole securityContext (the chart's sidecar.containerSecurityContext);
    #: empty: the ``restricted`` default of ``inject.default_security_context``
    sidecar_security_context: dict[str, Any] = field(default_factory=dict)
    #: the per-monitor ServiceMonitor endpoint besides port and path (``SCRAPE_KEYS``). honorLabels:
    #: the sidecar's own ``namespace``/``monitor`` labels stay as they are (decisions.md §27)
    sidecar_scrape: dict[str, Any] = field(default_factory=lambda: {"interval": "30s", "honorLabels": True})
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
    #: bearer token /v1/gate and /metrics require (empty: none; the probes never need one)
    gate_token: str = field(default="", repr=False)

    # --- replicas (``election.py``, ``leadership.py``) ---
    #: elect one leader among the replicas (a Lease in operator_namespace) for reconciles, status rounds
    #: and Redis cleanup; every replica serves the webhook and the gate. Off: this process leads alone.
    leader_election: bool = True
    #: seconds a leader's Lease is valid: how long a dead leader's work waits for another replica
    lease_duration: float = 15.0
    #: the Lease in operator_namespace (the chart names it after the release, as its RBAC does)
    lease_name: str = LEADER_LEASE
    #: this replica's holder identity in the Lease
    identity: str = field(default_factory=default_identity)

    #: create a ServiceMonitor per monitor when the cluster has the Prometheus Operator's CRDs (alert
    #: rules are the chart's one PrometheusRule, never per monitor: decisions.md §27)
    prometheus: bool = True
    #: extra labels for the ServiceMonitors (kube-prometheus-stack selects on ``release``)
    monitoring_labels: dict[str, str] = field(default_factory=dict)


#: what ``sidecar_scrape`` may set (the Prometheus Operator's Endpoint fields the chart exposes)
SCRAPE_KEYS = ("interval", "scrapeTimeout", "honorLabels", "relabelings", "metricRelabelings")
