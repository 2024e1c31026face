"""The children of a DriftMonitor, as plain manifests. Pure: no I/O, so every shape is unit-tested.

* ConfigMap ``driftwatch-<name>``: the sidecar's config file (contracts.md section 3), mounted into
  every injected pod. Its Redis URL never carries credentials.
* Secret ``driftwatch-<name>``: the sidecars' Redis login (``redis_users``), read into the container's
  environment; only when a login is configured.
* Service ``driftwatch-<name>``: headless, selecting injected pods by the ``driftwatch.io/monitor``
  label the webhook adds, port ``metrics``; headless so 500 monitors never exhaust the ClusterIP range.
* ServiceMonitor when the Prometheus Operator's CRDs exist (the caller decides); its endpoint takes
  ``options.sidecar_scrape`` (interval, scrapeTimeout, honorLabels, relabelings). No PrometheusRule:
  the chart's one rule set alerts for every monitor, at each monitor's own thresholds (the sidecar's
  ``driftwatch_drift_severity``), so there is one set of alert names (decisions.md §27).

Every child carries a controller owner reference to the monitor, so the garbage collector deletes it
with the monitor and the operator never has to.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import yaml

from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.redis_users import PASSWORD_KEY, USERNAME_KEY, Login
from driftwatch.redisconn import strip_credentials
from driftwatch.vocab.names import (
    ANNOTATION_SPEC_HASH,
    API_VERSION,
    BASELINE_MOUNT,
    CONFIG_KEY,
    INGEST_PORT,
    KIND,
    LABEL_MANAGED,
    LABEL_MONITOR,
    MANAGER,
    METRICS_PORT,
    REDIS_CA_KEY,
)


def owner_reference(monitor: Monitor) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": monitor.name,
        "uid": monitor.uid,
        "controller": True,
        # the GC's foreground deletion waits for children; needs update on driftmonitors/finalizers
        "blockOwnerDeletion": True,
    }


def labels(monitor: Monitor, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "driftwatch",
        "app.kubernetes.io/component": component,
        LABEL_MANAGED: MANAGER,
        LABEL_MONITOR: monitor.name,
    }


def _meta(monitor: Monitor, component: str, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": monitor.child_name,
        "namespace": monitor.namespace,
        "labels": {**labels(monitor, component), **(extra_labels or {})},
        "ownerReferences": [owner_reference(monitor)],
    }


def sidecar_config(monitor: Monitor, options: OperatorOptions) -> dict[str, Any]:
    """The sidecar's config file (contracts.md section 3) as a dict."""
    return {
        "monitor": {"name": monitor.name, "namespace": monitor.namespace},
        "spec": dict(monitor.raw_spec),
        # credentials come from the monitor's Secret (environment), never from this file
        "redis": {"url": strip_credentials(monitor.redis_url), "keyPrefix": monitor.key_prefix},
        "listen": {"host": "127.0.0.1", "port": INGEST_PORT, "metricsPort": METRICS_PORT},
        "state": {
            "publishInterval": options.sidecar_publish_interval,
            # fromConfigMap: where inject.py mounts spec.baseline.configMap (the sidecar seeds from it)
            **({"baselineDir": BASELINE_MOUNT} if monitor.spec.baseline.mode == "fromConfigMap" else {}),
        },
    }


def config_map(monitor: Monitor, options: OperatorOptions) -> dict[str, Any]:
    meta = _meta(monitor, "config")
    meta["annotations"] = {ANNOTATION_SPEC_HASH: monitor.spec_hash()}
    body = yaml.safe_dump(sidecar_config(monitor, options), sort_keys=False, default_flow_style=False)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {CONFIG_KEY: body}}


def redis_secret(monitor: Monitor, login: Login, options: OperatorOptions) -> dict[str, Any]:
    """The sidecars' Redis login (and the external Redis' CA when one is configured)."""
    data = {USERNAME_KEY: login.username, PASSWORD_KEY: login.password}
    if options.redis_ca:
        data[REDIS_CA_KEY] = options.redis_ca
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(monitor, "redis-login"),
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def metrics_service(monitor: Monitor) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(monitor, "metrics"),
        "spec": {
            "clusterIP": "None",
            "selector": {LABEL_MONITOR: monitor.name},
            "ports": [
                {"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT, "protocol": "TCP"}
            ],
            # scrape pods that are starting too: a sidecar's first minutes are when drift starts
            "publishNotReadyAddresses": True,
        },
    }


def service_monitor(monitor: Monitor, options: OperatorOptions) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(monitor, "metrics", options.monitoring_labels),
        "spec": {
            "selector": {
                "matchLabels": {LABEL_MONITOR: monitor.name, "app.kubernetes.io/component": "metrics"}
            },
            "endpoints": [{"port": "metrics", "path": "/metrics", **copy.deepcopy(options.sidecar_scrape)}],
        },
    }


def children(
    monitor: Monitor, options: OperatorOptions, *, prometheus: bool, login: Login | None = None
) -> list[dict[str, Any]]:
    """All children, ConfigMap (and Secret) first: pods mount them, so they should exist first."""
    out = [config_map(monitor, options)]
    if login is not None:
        out.append(redis_secret(monitor, login, options))
    out.append(metrics_service(monitor))
    if prometheus:
        out.append(service_monitor(monitor, options))
    return out
