"""Names of the Kubernetes objects, labels, annotations, containers and ports DriftWatch owns.

These are public surface: users label namespaces with them, the chart and the CRD spell them, and the
webhook configuration selects on them. Everything under the API group is ``driftwatch.io/...``.
"""

from __future__ import annotations

# --- the custom resource -------------------------------------------------------------------------
GROUP = "driftwatch.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "DriftMonitor"
PLURAL = "driftmonitors"
CRD_NAME = f"{PLURAL}.{GROUP}"
#: kopf's finalizer on every DriftMonitor: the operator removes the monitor's Redis keys first
FINALIZER = f"{GROUP}/cleanup"

# --- labels and annotations ----------------------------------------------------------------------
LABEL_MONITOR = f"{GROUP}/monitor"  # on injected pods and children; the metrics Service selects on it
LABEL_MANAGED = "app.kubernetes.io/managed-by"
LABEL_INJECT = f"{GROUP}/inject"  # namespace opt-in (=enabled), pod opt-in/out (=true / =false|disabled)
ANNOTATION_INJECT = f"{GROUP}/inject"  # pod annotation opt-out: driftwatch.io/inject: "false"
OPT_OUT_VALUES = ("false", "disabled")
ANNOTATION_INJECTED = f"{GROUP}/injected"  # on injected pods: the monitor whose sidecar it got
ANNOTATION_SPEC_HASH = f"{GROUP}/spec-hash"  # on the ConfigMap: which spec it was rendered from
#: on a DriftMonitor: `driftwatch ack`'s request (JSON: id, feature, adopt, by, time); the operator acts
ANNOTATION_ACK = f"{GROUP}/ack"
ANNOTATION_DECISION = f"{GROUP}/decision"  # audit annotation of an admission: why (not) injected
#: the operator's name as a manager: ``managed-by`` label value and server-side apply field manager
MANAGER = "driftwatch-operator"
#: the Lease (coordination.k8s.io, in the operator's namespace) its replicas elect a leader on; the RBAC
#: grants get/update on this name only
LEADER_LEASE = "driftwatch-operator-leader"
#: kopf's own "touch" annotation under our prefix: a new leader sets it on a monitor kopf must look at
#: again (kopf clears it on its next patch of the object and leaves it out of the diff)
ANNOTATION_TOUCH = f"{GROUP}/touch-dummy"

# --- the injected sidecar ------------------------------------------------------------------------
IMAGE_REPOSITORY = "ghcr.io/driftwatch/driftwatch"
SIDECAR_CONTAINER = "driftwatch-sidecar"
CONFIG_VOLUME = "driftwatch-config"
CONFIG_MOUNT = "/etc/driftwatch"
CONFIG_KEY = "sidecar.yaml"
#: ``baseline.mode: fromConfigMap``: ConfigMap ``spec.baseline.configMap`` is mounted here (the
#: sidecar's ``state.baselineDir``; nested in the config volume, whose mount point the kubelet creates)
BASELINE_VOLUME = "driftwatch-baseline"
BASELINE_MOUNT = "/etc/driftwatch/baseline"

#: the monitor's Secret (``driftwatch-<monitor>``): the sidecars' Redis login, read with secretKeyRef,
#: and with an external TLS Redis its CA, mounted here (``DRIFTWATCH_REDIS_CA_FILE``)
REDIS_CA_KEY = "ca.crt"
REDIS_TLS_VOLUME = "driftwatch-redis-tls"
REDIS_TLS_MOUNT = "/etc/driftwatch/redis-tls"

# --- ports ---------------------------------------------------------------------------------------
INGEST_PORT = 8476  # sidecar: POST /v1/samples (loopback in the pod)
METRICS_PORT = 9476  # sidecar: /metrics
WEBHOOK_PORT = 9443  # operator: admission webhook (TLS)
GATE_PORT = 8080  # operator: /v1/gate, /healthz, /readyz, /metrics

# --- labels of other controllers that DriftWatch reads -------------------------------------------------
#: what groups a workload's pods by template, in order of preference: Argo Rollouts' ReplicaSets, then
#: a Deployment's (spec.gate.compare: stable-pods tells the canary's pods from the stable ones by it)
TEMPLATE_HASH_LABELS = ("rollouts-pod-template-hash", "pod-template-hash")
