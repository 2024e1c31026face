"""The sidecar injection as a JSONPatch (RFC 6902). Pure: the webhook server only transports it.

Decisions, in order (``decide``):

1. opted out -- annotation or label ``driftwatch.io/inject: "false"`` (or ``"disabled"``) -> no patch;
2. already injected -- a container named ``driftwatch-sidecar`` or our volume exists -> no patch
   (the API server may call the webhook twice with ``reinvocationPolicy: IfNeeded``: never twice);
3. no DriftMonitor in the pod's namespace selects it, or the selecting one has injection disabled
   -> no patch;
4. the selecting monitor is refused (its spec cannot be served, its baseline ConfigMap is missing, a
   child of its name is not ours: ``refused``) -> no patch, the reason says why;
5. otherwise the sidecar, the config volume (and with ``baseline.mode: fromConfigMap`` the baseline
   ConfigMap's volume, at ``/etc/driftwatch/baseline``), and a ``driftwatch.io/monitor`` label (the
   metrics Service selects on it) and ``driftwatch.io/injected`` annotation.

The sidecar is a native sidecar: an init container with ``restartPolicy: Always`` (Kubernetes >= 1.29;
GA in 1.33, the chart's minimum). It starts before the app's containers, is stopped after them, and
does not hold a Job's pod open; a crash restarts it without touching the app's containers. Its
startup probe makes the app wait until it listens (so the app's first samples are not refused); it has
no readiness probe on purpose: a sidecar's readiness counts toward the pod's, and a detector must
never take the app out of its Service. Everything it reads at start is optional (Secret keys,
the baseline ConfigMap), so nothing it references can keep the pod from starting.

The container passes the ``restricted`` Pod Security Standard on its own (non-root, no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp), so injecting into a restricted
namespace never makes a pod inadmissible. The app's containers are the app's business.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.redis_users import PASSWORD_KEY, USERNAME_KEY, login_for
from driftwatch.redisconn import ENV_CA_FILE, ENV_PASSWORD, ENV_USERNAME
from driftwatch.vocab.names import (
    ANNOTATION_INJECT,
    ANNOTATION_INJECTED,
    BASELINE_MOUNT,
    BASELINE_VOLUME,
    CONFIG_KEY,
    CONFIG_MOUNT,
    CONFIG_VOLUME,
    INGEST_PORT,
    LABEL_INJECT,
    LABEL_MONITOR,
    METRICS_PORT,
    OPT_OUT_VALUES,
    REDIS_CA_KEY,
    REDIS_TLS_MOUNT,
    REDIS_TLS_VOLUME,
    SIDECAR_CONTAINER,
)

JSONPatch = list[dict[str, Any]]


@dataclass(frozen=True)
class Decision:
    """What the webhook does with one pod and why (the reason goes into logs and the response)."""

    patch: JSONPatch
    reason: str
    monitor: str | None = None

    @property
    def injects(self) -> bool:
        return bool(self.patch)


def _pointer(key: str) -> str:
    """A map key as a JSON pointer token (RFC 6901): ``a.io/b`` -> ``a.io~1b``."""
    return key.replace("~", "~0").replace("/", "~1")


def opted_out(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    ann = (meta.get("annotations") or {}).get(ANNOTATION_INJECT, "")
    lab = (meta.get("labels") or {}).get(LABEL_INJECT, "")
    return str(ann).lower() in OPT_OUT_VALUES or str(lab).lower() in OPT_OUT_VALUES


def already_injected(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    if any(c.get("name") == SIDECAR_CONTAINER for c in containers):
        return True
    return any(v.get("name") == CONFIG_VOLUME for v in spec.get("volumes") or [])


def select_monitor(pod_labels: Mapping[str, str] | None, monitors: Iterable[Monitor]) -> Monitor | None:
    """The monitor whose sidecar this pod gets: the first by name among those selecting it.

    One detector per pod keeps resource use predictable; a pod selected by two monitors reports to
    the first (documented), deterministically so every replica of a Deployment agrees.
    """
    matching = sorted((m for m in monitors if m.selector.matches(pod_labels)), key=lambda m: m.name)
    return matching[0] if matching else None


#: the probes ask the metrics port (the ingest port listens on loopback only, the kubelet probes the
#: pod's IP); /healthz answers as soon as the sidecar serves, Redis or not
STARTUP_PROBE = {
    "httpGet": {"path": "/healthz", "port": "dw-metrics"},
    "periodSeconds": 1,
    "failureThreshold": 60,
    "timeoutSeconds": 1,
}
LIVENESS_PROBE = {
    "httpGet": {"path": "/healthz", "port": "dw-metrics"},
    "periodSeconds": 10,
    "failureThreshold": 3,
    "timeoutSeconds": 2,
}


def _secret_env(monitor: Monitor, name: str, key: str) -> dict[str, Any]:
    # optional: a Secret not (yet) there must never keep the pod from starting (CreateContainerConfigError)
    ref = {"name": monitor.child_name, "key": key, "optional": True}
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def redis_env(monitor: Monitor, options: OperatorOptions) -> list[dict[str, Any]]:
    """The Redis login from the monitor's Secret, when it has one (``redis_users.login_for``)."""
    if login_for(monitor, options) is None:
        return []
    env = [
        _secret_env(monitor, ENV_USERNAME, USERNAME_KEY),
        _secret_env(monitor, ENV_PASSWORD, PASSWORD_KEY),
    ]
    if options.redis_ca:
        env.append({"name": ENV_CA_FILE, "value": f"{REDIS_TLS_MOUNT}/{REDIS_CA_KEY}"})
    return env


def default_security_context(options: OperatorOptions) -> dict[str, Any]:
    """Pod Security ``restricted``: a numeric non-root UID (the kubelet can verify it whatever the
    image's USER says), no privilege escalation, no capabilities, read-only root, RuntimeDefault
    seccomp. The chart's ``sidecar.containerSecurityContext`` replaces it whole
    (``options.sidecar_security_context``)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": options.sidecar_uid,
        "runAsGroup": options.sidecar_uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def sidecar_container(monitor: Monitor, options: OperatorOptions) -> dict[str, Any]:
    """The detector, as a native sidecar. Binds ingest to localhost (the app posts to it); metrics on
    all addresses (the metrics Service and the probes reach it there)."""
    tls_ca = options.redis_ca and login_for(monitor, options) is not None
    return {
        "name": SIDECAR_CONTAINER,
        "image": monitor.image,
        "imagePullPolicy": monitor.pull_policy,
        "command": ["driftwatch"],
        "args": ["sidecar", "--config", f"{CONFIG_MOUNT}/{CONFIG_KEY}"],
        "ports": [
            # named dw-*: port names must be unique within a pod and apps often use "metrics"
            {"name": "dw-ingest", "containerPort": INGEST_PORT, "protocol": "TCP"},
            {"name": "dw-metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            *redis_env(monitor, options),
        ],
        "resources": {"requests": dict(monitor.requests), "limits": dict(monitor.limits)},
        "volumeMounts": [{"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT, "readOnly": True}]
        + (
            [{"name": BASELINE_VOLUME, "mountPath": BASELINE_MOUNT, "readOnly": True}]
            if baseline_config_map(monitor)
            else []
        )
        + ([{"name": REDIS_TLS_VOLUME, "mountPath": REDIS_TLS_MOUNT, "readOnly": True}] if tls_ca else []),
        "restartPolicy": "Always",
        "startupProbe": STARTUP_PROBE,
        "livenessProbe": LIVENESS_PROBE,
        "securityContext": copy.deepcopy(options.sidecar_security_context)
        or default_security_context(options),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def config_volume(monitor: Monitor) -> dict[str, Any]:
    return {"name": CONFIG_VOLUME, "configMap": {"name": monitor.child_name, "defaultMode": 0o444}}


def baseline_config_map(monitor: Monitor) -> str | None:
    """The ConfigMap holding reference samples (``baseline.mode: fromConfigMap``), else None."""
    b = monitor.spec.baseline
    return b.config_map if b.mode == "fromConfigMap" and b.config_map else None


def baseline_volume(monitor: Monitor) -> dict[str, Any] | None:
    """``optional: true``: a ConfigMap deleted after injection must not keep the app's pods in
    ContainerCreating. The operator checks it exists before injecting at all (a missing one is a
    ``Ready=False`` condition naming ``spec.baseline.configMap``, and pods start without the sidecar)."""
    name = baseline_config_map(monitor)
    if name is None:
        return None
    return {"name": BASELINE_VOLUME, "configMap": {"name": name, "optional": True, "defaultMode": 0o444}}


def redis_tls_volume(monitor: Monitor) -> dict[str, Any]:
    """The external Redis' CA from the monitor's Secret (optional, like everything the sidecar reads)."""
    items = [{"key": REDIS_CA_KEY, "path": REDIS_CA_KEY}]
    secret = {"secretName": monitor.child_name, "optional": True, "items": items, "defaultMode": 0o444}
    return {"name": REDIS_TLS_VOLUME, "secret": secret}


def pod_patch(pod: Mapping[str, Any], monitor: Monitor, options: OperatorOptions) -> JSONPatch:
    """The JSONPatch for a pod known to need the sidecar. Adds to lists, never replaces them, so it
    composes with other mutating webhooks (Istio, Vault) that ran before us."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    ops: JSONPatch = []
    if meta.get("labels") is None:
        ops.append({"op": "add", "path": "/metadata/labels", "value": {LABEL_MONITOR: monitor.name}})
    else:
        ops.append(
            {"op": "add", "path": f"/metadata/labels/{_pointer(LABEL_MONITOR)}", "value": monitor.name}
        )
    if meta.get("annotations") is None:
        ops.append(
            {"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_INJECTED: monitor.name}}
        )
    else:
        ops.append(
            {
                "op": "add",
                "path": f"/metadata/annotations/{_pointer(ANNOTATION_INJECTED)}",
                "value": monitor.name,
            }
        )
    volumes = [config_volume(monitor)]
    baseline = baseline_volume(monitor)
    if baseline is not None:
        volumes.append(baseline)
    if options.redis_ca and login_for(monitor, options) is not None:
        volumes.append(redis_tls_volume(monitor))
    if spec.get("volumes") is None:
        ops.append({"op": "add", "path": "/spec/volumes", "value": volumes})
    else:
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in volumes]
    sidecar = sidecar_container(monitor, options)
    if spec.get("initContainers") is None:
        ops.append({"op": "add", "path": "/spec/initContainers", "value": [sidecar]})
    else:  # after the app's own init containers: they run to completion first, as without us
        ops.append({"op": "add", "path": "/spec/initContainers/-", "value": sidecar})
    return ops


def decide(
    pod: Mapping[str, Any],
    monitors: Iterable[Monitor],
    options: OperatorOptions,
    refused: Mapping[str, str] | None = None,
) -> Decision:
    """Whether and how to inject into ``pod`` given the monitors of its namespace; ``refused`` maps a
    monitor's name to why the operator will not inject for it (``MonitorCache.refusals``)."""
    if opted_out(pod):
        return Decision([], f"opted out by {ANNOTATION_INJECT}=false")
    if already_injected(pod):
        return Decision([], "already injected")
    labels = (pod.get("metadata") or {}).get("labels") or {}
    monitor = select_monitor(labels, monitors)
    if monitor is None:
        return Decision([], "no DriftMonitor selects this pod")
    if not monitor.injection_enabled:
        return Decision([], f"DriftMonitor {monitor.name} has injection.enabled=false", monitor.name)
    why = (refused or {}).get(monitor.name)
    if why is not None:
        return Decision([], f"DriftMonitor {monitor.name} is not injected: {why}", monitor.name)
    return Decision(
        pod_patch(pod, monitor, options), f"injected for DriftMonitor {monitor.name}", monitor.name
    )
