"""Pods that run: kube-scheduler places them on a fake Node whose kubelet is kwok.

Why: without a scheduler and a kubelet every Pod stays ``Pending``, so a Deployment never becomes
available and no rollout controller (Argo Rollouts, Flagger) ever takes a step. A real kubelet needs a
container runtime, which this machine does not have; kwok (``sigs.k8s.io/kwok``) plays the kubelet of
fake Nodes instead: it keeps their heartbeat (a Lease) and moves each Pod bound to them through the
stages a kubelet would report: Running and Ready, a Job's Pods Succeeded, a deleted Pod gone. No
container ever starts; where a test needs the process behind a Pod, it runs it on the host (as the
sidecar helpers do).

kwok's own default is to do nothing: the stages come from the kwok module the build copied them
from (``stages.yaml`` in kwok's cache directory, the set kwokctl uses). It manages only Nodes carrying
:data:`MANAGED_ANNOTATION`, and it leaves alone any Pod annotated :data:`CUSTOM_STATUS_ANNOTATION`
(``kwok.x-k8s.io/status: custom``), so a test can write such a Pod's status itself.

Addresses are loopback on purpose: Pod IPs come from :data:`POD_CIDR` (127.244.0.0/16) and the
Node's address is 127.0.0.1, so nothing that connects to a Pod or a Node can send a packet off this
machine. The price: EndpointSlice validation rejects loopback addresses, so a Service still gets no
endpoints (as before, when Pods had no IP at all); nothing routes Service traffic here anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NODE_NAME = "kwok-node-0"
#: kwok manages the Nodes carrying this annotation (``--manage-nodes-with-annotation-selector``)
MANAGED_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
#: kwok leaves the status of Pods (and Nodes) carrying this annotation to someone else
CUSTOM_STATUS_ANNOTATION = ("kwok.x-k8s.io/status", "custom")
POD_CIDR = "127.244.0.0/16"
NODE_IP = "127.0.0.1"
#: how long the Node's Lease is valid; kwok renews it well before (the node-lifecycle controller
#: would otherwise mark the Node NotReady after its grace period and evict the Pods)
LEASE_SECONDS = 40


def node_manifest(name: str = NODE_NAME) -> dict[str, Any]:
    """The fake Node: no taint (every Pod may land on it), the labels a scheduler predicate reads.

    Capacity is left to kwok's node-initialize stage (1k CPUs, 1 TiB, a million Pods), which is as
    good as unlimited for tests.
    """
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": dict([MANAGED_ANNOTATION]),
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
    }


def kwok_argv(binary: Path, *, kubeconfig: Path, stages: Path, port: int) -> list[str]:
    """Command line of the kwok controller; ``port`` serves its /healthz (and metrics) on loopback."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--config={stages}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={MANAGED_ANNOTATION[0]}={MANAGED_ANNOTATION[1]}",
        f"--disregard-status-with-annotation-selector={CUSTOM_STATUS_ANNOTATION[0]}={CUSTOM_STATUS_ANNOTATION[1]}",
        f"--cidr={POD_CIDR}",
        f"--node-ip={NODE_IP}",
        f"--node-lease-duration-seconds={LEASE_SECONDS}",
        f"--server-address=127.0.0.1:{port}",
    ]


def scheduler_argv(binary: Path, *, kubeconfig: Path, port: int, cert_dir: Path) -> list[str]:
    """Command line of kube-scheduler (its defaults otherwise: the default profile and plugins)."""
    return [
        str(binary),
        # no --authentication/authorization-kubeconfig: only /healthz (always allowed) is probed
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        "--leader-elect=false",
    ]


def node_ready(node: dict[str, Any]) -> bool:
    """Has kwok reported the Node ``Ready``?"""
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
