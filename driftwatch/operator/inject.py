"""The sidecar injection as a JSONPatch (RFC 6902). Pure: the webhook server only transports it.

Decisions, in order (``decide``):

1. opted out -- annotation or label ``driftwatch.io/inject: "false"`` (or ``"disabled"``) -> no patch;
2. already injected -- a container named ``driftwatch-sidecar`` or our volume exists -> no patch
   (the API server may call the webhook twice with ``reinvocationPolicy: IfNeeded``: never twice);
3. no DriftMonitor in the pod's namespace selects it, or the selecting one has injection disabled
   -> no patch;
4. otherwise the sidecar container, the config volume (and with ``baseline.mode: fromConfigMap`` the
   baseline ConfigMap's volume, at ``/etc/driftwatch/baseline``), and a ``driftwatch.io/monitor`` label (the
   metrics Service selects on it) and ``driftwatch.io/injected`` annotation.

The container passes the ``restricted`` Pod Security Standard on its own (non-root, no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp), so injecting into a restricted
namespace never makes a pod inadmissible. The app's containers are the app's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftwatch.operator.monitor import Monitor
from driftwatch.operator.options import (
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
    SIDECAR_CONTAINER,
    OperatorOptions,
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


def sidecar_container(monitor: Monitor, options: OperatorOptions) -> dict[str, Any]:
    """The detector container. Binds ingest to localhost (the app posts to it); metrics on all addresses."""
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
        ],
        "resources": {"requests": dict(monitor.requests), "limits": dict(monitor.limits)},
        "volumeMounts": [{"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT, "readOnly": True}]
        + (
            [{"name": BASELINE_VOLUME, "mountPath": BASELINE_MOUNT, "readOnly": True}]
            if baseline_config_map(monitor)
            else []
        ),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": options.sidecar_uid,
            "runAsGroup": options.sidecar_uid,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def config_volume(monitor: Monitor) -> dict[str, Any]:
    return {"name": CONFIG_VOLUME, "configMap": {"name": monitor.child_name, "defaultMode": 0o444}}


def baseline_config_map(monitor: Monitor) -> str | None:
    """The ConfigMap holding reference samples (``baseline.mode: fromConfigMap``), else None."""
    b = monitor.spec.baseline
    return b.config_map if b.mode == "fromConfigMap" and b.config_map else None


def baseline_volume(monitor: Monitor) -> dict[str, Any] | None:
    """``optional: false``: a missing ConfigMap keeps the pod in ContainerCreating with a
    FailedMount event naming it -- visible, where an empty directory would only fail the sidecar."""
    name = baseline_config_map(monitor)
    if name is None:
        return None
    return {"name": BASELINE_VOLUME, "configMap": {"name": name, "optional": False, "defaultMode": 0o444}}


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
    if spec.get("volumes") is None:
        ops.append({"op": "add", "path": "/spec/volumes", "value": volumes})
    else:
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in volumes]
    ops.append({"op": "add", "path": "/spec/containers/-", "value": sidecar_container(monitor, options)})
    return ops


def decide(pod: Mapping[str, Any], monitors: Iterable[Monitor], options: OperatorOptions) -> Decision:
    """Whether and how to inject into ``pod`` given the monitors of its namespace."""
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
    return Decision(
        pod_patch(pod, monitor, options), f"injected for DriftMonitor {monitor.name}", monitor.name
    )
