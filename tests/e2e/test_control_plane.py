"""Smoke tests: the control plane behaves like a real cluster where DriftWatch depends on it.

Each test checks one thing the operator, injector or demo relies on: controllers turn Deployments into
ReplicaSets and Pods that run and CronJobs into Jobs that complete, the garbage collector follows
ownerReferences, RBAC denies a ServiceAccount until a binding grants it (as seen by ``can-i`` and by a
real request with its token), and Pod Security admission enforces ``restricted``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from driftwatch.devcluster import Cluster, LocalCluster, fakenodes, stack

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # never pulled: kwok starts no container


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


@dataclass
class Apis:
    """The API groups the tests use, typed ``Any`` on purpose: the tests pass manifests as plain dicts
    (which the client serialises as they are) and read fields the typed models mark Optional."""

    core: Any
    apps: Any
    batch: Any
    rbac: Any


@pytest.fixture(scope="module")
def k8s(api: client.ApiClient) -> Apis:
    return Apis(
        client.CoreV1Api(api),
        client.AppsV1Api(api),
        client.BatchV1Api(api),
        client.RbacAuthorizationV1Api(api),
    )


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll until ``check`` returns something truthy and return it."""
    return stack.wait_for(check, timeout, what, interval)


def owned_by(items: list[Any], uid: str) -> list[Any]:
    return [o for o in items if any(ref.uid == uid for ref in (o.metadata.owner_references or []))]


def replica_set_of(apps: Any, namespace: str, dep: Any, what: str) -> Any:
    """Wait (up to 60 s) for the ReplicaSet the controller creates for Deployment ``dep``."""
    return wait_for(
        lambda: owned_by(apps.list_namespaced_replica_set(namespace).items, dep.metadata.uid),
        timeout=60,
        what=what,
    )[0]


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": PAUSE_IMAGE}]},
            },
        },
    }


def test_deployment_gets_replicaset_and_running_pods(cluster: Cluster, k8s: Apis, namespace: str) -> None:
    """Deployment -> ReplicaSet -> Pods, which the scheduler places and the node's kubelet (kwok on
    the local control plane) reports Running and Ready, so the Deployment becomes available."""
    apps, core = k8s.apps, k8s.core
    dep = apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))

    rs = replica_set_of(apps, namespace, dep, "the Deployment's ReplicaSet")
    assert rs.spec.replicas == 2

    def pods() -> list[Any]:
        return owned_by(core.list_namespaced_pod(namespace).items, rs.metadata.uid)

    def ready(pod: Any) -> bool:
        return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

    wait_for(
        lambda: len(pods()) == 2 and all(p.status.phase == "Running" and ready(p) for p in pods()),
        timeout=60,
        what="two Running and Ready Pods of the ReplicaSet",
    )
    wait_for(
        lambda: apps.read_namespaced_deployment("web", namespace).status.available_replicas == 2,
        timeout=60,
        what="the Deployment to report 2 available replicas",
    )
    if isinstance(cluster, LocalCluster):  # on kind: real nodes, real addresses
        assert {p.spec.node_name for p in pods()} == {fakenodes.NODE_NAME}
        pod_cidr = ipaddress.ip_network(fakenodes.POD_CIDR)
        assert all(ipaddress.ip_address(p.status.pod_ip) in pod_cidr for p in pods())  # loopback only


def test_deleting_deployment_garbage_collects(k8s: Apis, namespace: str) -> None:
    apps, core = k8s.apps, k8s.core
    dep = apps.create_namespaced_deployment(namespace, deployment("gc", replicas=1))
    rs = replica_set_of(apps, namespace, dep, "ReplicaSet")
    wait_for(
        lambda: owned_by(core.list_namespaced_pod(namespace).items, rs.metadata.uid), timeout=60, what="Pod"
    )

    apps.delete_namespaced_deployment("gc", namespace, propagation_policy="Background")

    wait_for(
        lambda: (
            not apps.list_namespaced_replica_set(namespace).items
            and not core.list_namespaced_pod(namespace).items
        ),
        timeout=60,
        what="the garbage collector to delete the ReplicaSet and its Pods",
    )


def test_cronjob_creates_job(k8s: Apis, namespace: str) -> None:
    batch, core = k8s.batch, k8s.core
    cron = batch.create_namespaced_cron_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "tick", "image": PAUSE_IMAGE}],
                            }
                        }
                    }
                },
            },
        },
    )
    # the schedule fires on the next minute boundary: up to 60 s, plus controller latency
    job = wait_for(
        lambda: owned_by(batch.list_namespaced_job(namespace).items, cron.metadata.uid),
        timeout=100,
        what="the CronJob's first Job",
        interval=1.0,
    )[0]
    assert job.metadata.name.startswith("tick-")
    # and the Job controller made its Pod, which ran (on the local control plane: kwok reports it
    # Succeeded at once), so the Job completes
    wait_for(
        lambda: owned_by(core.list_namespaced_pod(namespace).items, job.metadata.uid),
        timeout=60,
        what="the Job's Pod",
    )
    wait_for(
        lambda: batch.read_namespaced_job(job.metadata.name, namespace).status.succeeded == 1,
        timeout=60,
        what="the Job to succeed",
    )


def status_message(error: ApiException) -> str:
    """The ``message`` of the API server's Status body: the text a user would see from kubectl."""
    return str(json.loads(error.body or "{}").get("message", error.body))


def bearer_client(admin: client.ApiClient, token: str) -> client.ApiClient:
    """A client that talks to the same server as ``admin`` but authenticates with ``token`` only."""
    conf = client.Configuration()
    conf.host = admin.configuration.host
    conf.ssl_ca_cert = admin.configuration.ssl_ca_cert
    conf.verify_ssl = admin.configuration.verify_ssl
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(conf)


def can_i(cluster: Cluster, verb: str, resource: str, namespace: str, user: str) -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={user}", check=False)
    assert result.stdout.strip() in {"yes", "no"}, result.stderr
    return result.stdout.strip() == "yes"


def test_rbac_denies_until_bound(cluster: Cluster, api: client.ApiClient, k8s: Apis, namespace: str) -> None:
    core, rbac = k8s.core, k8s.rbac
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    user = f"system:serviceaccount:{namespace}:reader"

    # denied, as seen by impersonation ...
    assert not can_i(cluster, "list", "secrets", namespace, user)
    # ... and by a real request with a token from the TokenRequest API
    token = core.create_namespaced_service_account_token(
        "reader",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token
    with bearer_client(api, token) as as_reader:
        reader_core: Any = client.CoreV1Api(as_reader)
        with pytest.raises(ApiException) as denied:
            reader_core.list_namespaced_secret(namespace)
        assert denied.value.status == 403
        assert f'User "{user}" cannot list resource "secrets"' in status_message(denied.value)

        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "secret-reader"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "reader-reads-secrets"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        )
        # the authorizer reads RBAC objects from an informer cache: allow it a moment
        wait_for(lambda: can_i(cluster, "list", "secrets", namespace, user), timeout=30, what="can-i yes")
        assert reader_core.list_namespaced_secret(namespace).items is not None
        assert not can_i(cluster, "delete", "secrets", namespace, user)  # only what the Role grants


def test_pod_security_restricted(cluster: Cluster, k8s: Apis, namespace: str) -> None:
    cluster.create_namespace(
        namespace,
        labels={"driftwatch.io/e2e": "true", "pod-security.kubernetes.io/enforce": "restricted"},
    )
    core = k8s.core

    privileged = {
        "metadata": {"name": "root"},
        "spec": {
            "containers": [{"name": "c", "image": PAUSE_IMAGE, "securityContext": {"privileged": True}}]
        },
    }
    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_pod(namespace, privileged)
    assert rejected.value.status == 403
    message = status_message(rejected.value)
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "privileged" in message

    compliant = {
        "metadata": {"name": "ok"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "image": PAUSE_IMAGE,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 65532,
                    },
                }
            ],
        },
    }
    created = core.create_namespaced_pod(namespace, compliant)
    assert created.metadata.name == "ok"
