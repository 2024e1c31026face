"""Faults of the control plane around a running operator (issue 12), on the local control plane:

* kube-apiserver killed and restarted while the operator runs: its watches resume (a DriftMonitor
  created after the restart is reconciled, a pod created after it is injected and counted) and it
  leads again, without being restarted itself;
* the webhook unreachable -- the operator stopped (connection refused), then its port black-holed (a
  listener that never answers): pods are still created, without the sidecar, within the webhook's
  timeout (``failurePolicy: Ignore``); the operator, back, names them in status as lacking the sidecar,
  and a ``rollout restart`` heals the Deployment's.

``REPORT`` lines carry the numbers docs/reliability.md quotes (``-s``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import INJECT_LABELS, gauge, get, monitor, pod, record, sidecars, wait_condition

from driftwatch.devcluster import Cluster, LocalCluster
from driftwatch.devcluster.stack import OperatorProcess, operator_stack, wait_for

#: past the operator's renew deadline (10 s of its 15 s lease): it steps down and must lead again
DOWN = 12.0
LEASE_SECONDS = 15.0


def report(what: str, **numbers: object) -> None:
    """``what`` names the case in this file; the numbers go to docs/reliability.md's table."""
    record(**numbers)


@dataclass
class Stack:
    cluster: LocalCluster
    op: OperatorProcess
    ns: str


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not isinstance(cluster, LocalCluster):
        pytest.skip("restarts and black-holes parts of the local control plane")
    tmp = tmp_path_factory.mktemp("control-plane-faults")
    ns = f"cp-faults-{os.urandom(3).hex()}"
    cluster.create_namespace(ns, labels=INJECT_LABELS)
    try:
        with operator_stack(cluster, tmp) as (op, _):
            # a replica of an earlier test may have left the Lease held: it expires within one lease
            wait_for(lambda: leads(op), 3 * LEASE_SECONDS, "the operator to lead")
            yield Stack(cluster, op, ns)
    finally:
        cluster.delete_namespace(ns, wait=False)


def leads(op: OperatorProcess) -> bool:
    try:
        return gauge(op, "driftwatch_operator_leader") == 1
    except OSError:
        return False


def status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return (get(cluster, "driftmonitor", ns, name) or {}).get("status") or {}


def deployment(name: str, app: str, replicas: int) -> dict[str, Any]:
    template = pod(name, app)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": template["spec"]},
        },
    }


def pods_of(cluster: Cluster, ns: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"app={app}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def log_count(op: OperatorProcess, text: str) -> int:
    return op.log_path.read_text(errors="replace").count(text)


def test_apiserver_restart_watches_resume(stack: Stack) -> None:
    cluster, op, ns = stack.cluster, stack.op, stack.ns
    assert op.proc is not None
    pid = op.proc.pid
    cluster.apply(monitor("before", "before"), namespace=ns)
    wait_condition(cluster, ns, "before", "True", timeout=60)
    cluster.apply(pod("before-0", "before"), namespace=ns)
    assert sidecars(get(cluster, "pod", ns, "before-0") or {"spec": {"containers": []}})
    steps_down, leads_log = log_count(op, "steps down"), log_count(op, " leads (Lease")

    took = cluster.restart_apiserver(down=DOWN)
    back = time.monotonic()
    assert op.proc.poll() is None, "the operator exited with the API server"
    assert op.proc.pid == pid

    # a monitor created after the restart is reconciled: the DriftMonitor watch resumed
    cluster.apply(monitor("after", "after"), namespace=ns)
    wait_condition(cluster, ns, "after", "True", timeout=90)
    ready = time.monotonic() - back
    wait_for(lambda: leads(op), 3 * LEASE_SECONDS, "the operator to lead again")
    led = time.monotonic() - back
    # ... and known to the webhook: a pod created now gets the sidecar
    cluster.apply(pod("after-0", "after"), namespace=ns)
    injected = get(cluster, "pod", ns, "after-0")
    assert injected is not None
    assert sidecars(injected), "a pod created after the restart was not injected"
    # the pods watch resumed too: status counts the new pod; the old monitor's status is written again
    wait_for(
        lambda: status(cluster, ns, "after").get("pods", {}).get("withSidecar") == 1,
        60,
        "status of the new monitor counting its pod",
    )
    cluster.apply(pod("before-1", "before"), namespace=ns)
    wait_for(
        lambda: status(cluster, ns, "before").get("pods", {}).get("withSidecar") == 2,
        60,
        "status of the old monitor counting a pod created after the restart",
    )
    counted = time.monotonic() - back
    report(
        "kube-apiserver restart",
        down_seconds=DOWN,
        stop_to_ready_seconds=round(took, 1),
        new_monitor_ready_seconds=round(ready, 1),
        leading_again_seconds=round(led, 1),
        old_monitor_counts_new_pod_seconds=round(counted, 1),
        stepped_down=log_count(op, "steps down") - steps_down,
        led_again=log_count(op, " leads (Lease") - leads_log,
        operator_restarts=0,
    )


class BlackHole:
    """A listener on ``port`` that accepts connections and never answers (a partitioned webhook)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        # shutdown first: a plain close() leaves the socket listening while accept() blocks on it
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)
        for c in self.held:
            c.close()


def timed_create(cluster: Cluster, ns: str, name: str, app: str) -> float:
    t0 = time.monotonic()
    cluster.apply(pod(name, app), namespace=ns)
    return time.monotonic() - t0


def test_webhook_unreachable_pods_start_without_sidecar_and_are_reported(
    stack: Stack, tmp_path: Path
) -> None:
    cluster, op, ns = stack.cluster, stack.op, stack.ns
    mwc = cluster.kubectl_json("get", "mutatingwebhookconfiguration", "driftwatch-sidecar-injector")
    hook = mwc["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore"
    timeout = float(hook["timeoutSeconds"])
    cluster.apply(monitor("web", "web"), namespace=ns)
    wait_condition(cluster, ns, "web", "True", timeout=60)
    cluster.apply(deployment("web", "web", 2), namespace=ns)
    wait_for(lambda: len(pods_of(cluster, ns, "web")) == 2, 60, "2 web pods")
    assert all(sidecars(p) for p in pods_of(cluster, ns, "web"))

    op.stop()
    try:
        refused = timed_create(cluster, ns, "down-0", "web")
        # the ReplicaSet controller's creates are admitted too
        cluster.kubectl("scale", "deployment/web", "-n", ns, "--replicas=4")
        wait_for(lambda: len(pods_of(cluster, ns, "web")) == 5, 60, "the scaled-up pods")
        hole = BlackHole(op.webhook_port)
        try:
            hung = timed_create(cluster, ns, "hung-0", "web")
        finally:
            hole.close()
    finally:
        op.start()
    bare = [get(cluster, "pod", ns, n) for n in ("down-0", "hung-0")]
    assert all(p is not None and not sidecars(p) for p in bare)
    lacking = sorted(p["metadata"]["name"] for p in pods_of(cluster, ns, "web") if not sidecars(p))
    assert len(lacking) == 4, lacking  # 2 scaled up, 2 created by hand
    assert hung < timeout + 10  # bounded by the webhook's timeout, then Ignore: never refused

    started = time.monotonic()

    def names_them() -> dict[str, Any] | None:
        st = status(cluster, ns, "web")
        return st if sorted(st.get("pods", {}).get("withoutSidecar") or []) == lacking else None

    st = wait_for(names_them, 60, "status naming the pods created while the webhook was unreachable")
    reported = time.monotonic() - started
    c = next(c for c in st["conditions"] if c["type"] == "SidecarsReporting")
    assert (c["status"], c["reason"]) == ("False", "PodsWithoutSidecar")
    assert "lack the sidecar" in c["message"]
    assert "rollout restart" in c["message"]
    assert all(name in c["message"] for name in lacking[:3])  # the first few are named

    # what the message says to do heals the Deployment's pods; the bare ones are deleted
    started = time.monotonic()
    cluster.kubectl("rollout", "restart", "deployment/web", "-n", ns)
    cluster.kubectl("delete", "pod", "down-0", "hung-0", "-n", ns, "--wait=false")

    def healed() -> dict[str, Any] | None:
        st = status(cluster, ns, "web")
        pods = st.get("pods", {})
        return st if pods.get("withoutSidecar") == [] and pods.get("withSidecar") == 4 else None

    wait_for(healed, 120, "every web pod with the sidecar after the rollout restart")
    report(
        "webhook unreachable",
        webhook_timeout_seconds=timeout,
        create_seconds_operator_stopped=round(refused, 2),
        create_seconds_webhook_black_holed=round(hung, 2),
        pods_created_without_sidecar=len(lacking),
        named_in_status_seconds_after_restart=round(reported, 1),
        healed_seconds_after_rollout_restart=round(time.monotonic() - started, 1),
    )
