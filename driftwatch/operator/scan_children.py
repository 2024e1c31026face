"""``spec.scan`` as children: the scan CronJob and the least-privileged identity its Jobs run as. Pure
rendering, plus ``prune`` (the one I/O: deleting them when ``spec.scan`` goes away).

* ServiceAccount ``driftwatch-<name>-scan``, no other use;
* Role of the same name: ``get`` this DriftMonitor and ``patch`` its status -- nothing else (no Secrets,
  no Events, no other monitor); RoleBinding to the ServiceAccount;
* CronJob of the same name: ``spec.scan.schedule``, ``concurrencyPolicy: Forbid`` (a slow scan is never
  run twice at once), a starting deadline (a missed run is skipped, not piled up), the history limits,
  and Jobs with ``activeDeadlineSeconds: spec.scan.timeout`` and one retry, running
  ``driftwatch scan NAMESPACE/NAME --job`` in the operator's image under the restricted Pod Security
  profile, with the Redis URL the sidecars get.

Every object carries the monitor's controller owner reference (the garbage collector removes them
with the monitor).
"""

from __future__ import annotations

from typing import Any

from driftwatch.kube.client import Kube
from driftwatch.operator import inject
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.render import labels, owner_reference
from driftwatch.vocab.names import GROUP, PLURAL, REDIS_TLS_MOUNT, REDIS_TLS_VOLUME

COMPONENT = "scan"
CONTAINER = "scan"
#: a run that could not start within this many seconds of its time is skipped
STARTING_DEADLINE = 300
SUCCESSFUL_JOBS_KEPT = 3
FAILED_JOBS_KEPT = 3
#: Redis, as the Job's environment (``driftwatch scan`` reads them; the URL is never printed)
ENV_REDIS_URL = "DRIFTWATCH_REDIS_URL"
ENV_KEY_PREFIX = "DRIFTWATCH_KEY_PREFIX"
#: deletion order: the CronJob last, so a prune that stopped half-way is found (and finished) next time
KINDS = ("RoleBinding", "Role", "ServiceAccount", "CronJob")


def scan_name(monitor: Monitor) -> str:
    return f"{monitor.child_name}-scan"


def _meta(monitor: Monitor) -> dict[str, Any]:
    return {
        "name": scan_name(monitor),
        "namespace": monitor.namespace,
        "labels": labels(monitor, COMPONENT),
        "ownerReferences": [owner_reference(monitor)],
    }


def service_account(monitor: Monitor) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(monitor)}


def role(monitor: Monitor) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(monitor),
        "rules": [
            {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": [monitor.name], "verbs": ["get"]},
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": [monitor.name],
                "verbs": ["patch"],
            },
        ],
    }


def role_binding(monitor: Monitor) -> dict[str, Any]:
    name = scan_name(monitor)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(monitor),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": monitor.namespace}],
    }


def cron_job(monitor: Monitor, options: OperatorOptions) -> dict[str, Any]:
    scan = monitor.spec.scan
    assert scan is not None
    container = {
        "name": CONTAINER,
        "image": options.sidecar_image,
        "imagePullPolicy": options.sidecar_pull_policy,
        "command": ["driftwatch", "scan", f"{monitor.namespace}/{monitor.name}", "--job"],
        "env": [
            {"name": ENV_REDIS_URL, "value": monitor.redis_url},
            {"name": ENV_KEY_PREFIX, "value": monitor.key_prefix},
            *inject.redis_env(monitor, options),  # the sidecars' login (the monitor's Secret) and CA
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        **(
            {"volumeMounts": [{"name": REDIS_TLS_VOLUME, "mountPath": REDIS_TLS_MOUNT, "readOnly": True}]}
            if options.redis_ca
            else {}
        ),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod = {
        "metadata": {"labels": labels(monitor, COMPONENT)},
        "spec": {
            "serviceAccountName": scan_name(monitor),
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": options.sidecar_uid,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            **({"volumes": [inject.redis_tls_volume(monitor)]} if options.redis_ca else {}),
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(monitor),
        "spec": {
            "schedule": scan.schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE,
            "successfulJobsHistoryLimit": SUCCESSFUL_JOBS_KEPT,
            "failedJobsHistoryLimit": FAILED_JOBS_KEPT,
            "jobTemplate": {
                "metadata": {"labels": labels(monitor, COMPONENT)},
                "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": scan.timeout_seconds,
                    "template": pod,
                },
            },
        },
    }


def children(monitor: Monitor, options: OperatorOptions) -> list[dict[str, Any]]:
    """The scan's children when ``spec.scan`` is set, identity first (the CronJob's Jobs need it)."""
    if monitor.spec.scan is None:
        return []
    return [service_account(monitor), role(monitor), role_binding(monitor), cron_job(monitor, options)]


async def prune(kube: Kube, monitor: Monitor) -> list[str]:
    """``spec.scan`` went away: delete the scan's children (absent ones are fine). Returns what was
    deleted. One GET when there is nothing to do (no CronJob)."""
    name = scan_name(monitor)
    if monitor.spec.scan is not None or await kube.get("CronJob", monitor.namespace, name) is None:
        return []
    deleted = []
    for kind in KINDS:
        if await kube.delete(kind, monitor.namespace, scan_name(monitor)):
            deleted.append(f"{kind} {scan_name(monitor)}")
    return deleted
