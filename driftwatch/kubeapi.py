"""Reading DriftMonitors for the command-line tools (``status``, ``gate``).

Kept apart from the operator so the CLI does not import kopf, and small: one client, two reads.
"""

from __future__ import annotations

from typing import Any

GROUP, VERSION, PLURAL = "driftwatch.io", "v1alpha1", "driftmonitors"


def custom_objects(kubeconfig: str | None = None) -> Any:
    """A CustomObjectsApi from ``--kubeconfig``, ``$KUBECONFIG``/``~/.kube/config`` or in-cluster."""
    from kubernetes import client, config

    try:
        config.load_kube_config(config_file=kubeconfig)
    except config.ConfigException:
        config.load_incluster_config()
    return client.CustomObjectsApi()


def get_monitor(api: Any, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return obj


def list_monitors(api: Any, namespace: str | None) -> list[dict[str, Any]]:
    if namespace:
        resp = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    else:
        resp = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    items: list[dict[str, Any]] = resp.get("items", [])
    return items
