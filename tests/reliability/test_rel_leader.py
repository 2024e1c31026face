"""Two operator replicas on one cluster and one Redis: both answer the admission webhook, one leads.

Before issue 12 the chart ran one replica with ``strategy: Recreate``: every upgrade, and every death of
that pod, left a window in which pods were created without their sidecar (failurePolicy Ignore). Now
the replicas elect a leader on the Lease ``driftwatch-operator-leader``; every replica keeps kopf's
watches (the monitor cache the webhook answers from) and serves the webhook, only the leader reconciles,
aggregates and posts Events. Here two ``driftwatch operator`` processes run as the ServiceAccount behind
one address (``devcluster.balancer``, standing in for the webhook Service), and the leader is SIGKILLed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from reliability_helpers import INJECT_LABELS, gauge, get, monitor, pod, record, sidecars, wait_condition

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.balancer import Balancer
from driftwatch.devcluster.stack import (
    OPERATOR_NAMESPACE,
    OperatorProcess,
    RedisServer,
    install_crd,
    install_rbac,
    service_account_kubeconfig,
    wait_for,
)
from driftwatch.vocab.names import LEADER_LEASE

NO_POD: dict[str, Any] = {"spec": {"containers": []}}
#: the chart's default (and the operator's): the longest a dead leader's work waits
LEASE_SECONDS = 15.0


@dataclass
class Pair:
    cluster: Cluster
    ops: list[OperatorProcess]
    redis: RedisServer
    balancer: Balancer
    ns: str
    ca: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)

    def leader(self) -> OperatorProcess | None:
        leading = [op for op in self.ops if alive(op) and gauge(op, "driftwatch_operator_leader") == 1]
        assert len(leading) <= 1, "two replicas lead at once"
        return leading[0] if leading else None

    def lease(self) -> dict[str, Any]:
        lease = get(self.cluster, "lease", OPERATOR_NAMESPACE, LEADER_LEASE)
        assert lease is not None
        spec: dict[str, Any] = lease["spec"]
        return spec


def alive(op: OperatorProcess) -> bool:
    return op.proc is not None and op.proc.poll() is None


def review(ns: str, app: str, i: int) -> dict[str, Any]:
    request = {
        "uid": f"review-{i}",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE",
        "namespace": ns,
        "object": {
            "metadata": {"generateName": f"{app}-", "labels": {"app": app}},
            "spec": pod("x", app)["spec"],
        },
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def admit(op: OperatorProcess, ca: str, body: dict[str, Any]) -> dict[str, Any]:
    """One AdmissionReview straight to this replica's webhook, as the API server sends it."""
    ctx = ssl.create_default_context(cadata=ca)
    req = urllib.request.Request(
        f"https://127.0.0.1:{op.webhook_port}/mutate-pods",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
        answer: dict[str, Any] = json.loads(r.read())
    return answer["response"]


def events(cluster: Cluster, ns: str, name: str) -> Counter[str]:
    out = cluster.kubectl(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    )
    return Counter(e["reason"] for e in json.loads(out.stdout)["items"])


@pytest.fixture(scope="module")
def pair(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("leader")
    install_crd(cluster)
    install_rbac(cluster)
    kubeconfig = service_account_kubeconfig(cluster, tmp / "operator.kubeconfig")
    with RedisServer(workdir=tmp / "redis") as redis:
        ops = [OperatorProcess(kubeconfig, redis.url, log_path=tmp / f"operator-{i}.log") for i in range(2)]
        with Balancer([op.webhook_port for op in ops]) as balancer:
            for op in ops:  # both configure the webhook at the balancer: the one address, as a Service
                op.args += ["--webhook-url", f"https://127.0.0.1:{balancer.port}"]
            ns = f"leader-{os.urandom(3).hex()}"
            cluster.create_namespace(ns, labels=INJECT_LABELS)
            p = Pair(cluster, ops, redis, balancer, ns)
            try:
                for op in ops:
                    op.start()
                wait_for(p.leader, 3 * LEASE_SECONDS, "one of the two replicas to lead")
                secret = get(cluster, "secret", OPERATOR_NAMESPACE, "driftwatch-webhook-tls")
                assert secret is not None
                p.ca = base64.b64decode(secret["data"]["ca.crt"]).decode()
                yield p
            finally:
                for op in ops:
                    op.stop()
                cluster.delete_namespace(ns, wait=False)
                if p.numbers:
                    print(f"\nleader election numbers: {json.dumps(p.numbers)}")


def test_both_replicas_answer_the_webhook_and_one_reconciles(pair: Pair) -> None:
    cluster, ns = pair.cluster, pair.ns
    cluster.apply(monitor("m1", "a"), namespace=ns)
    wait_condition(cluster, ns, "m1", "True")
    leader = pair.leader()
    assert leader is not None
    follower = next(op for op in pair.ops if op is not leader)
    assert pair.lease()["holderIdentity"]  # somebody holds it, and it is the process saying so
    # both answer: the follower's cache follows the watch like the leader's (kopf peering would have
    # paused it, and the follower would not know m1)
    for i, op in enumerate(pair.ops):
        answer = admit(op, pair.ca, review(ns, "a", i))
        assert answer["allowed"] is True
        patch = json.loads(base64.b64decode(answer["patch"]))
        assert any(op_["path"].startswith("/spec/initContainers") for op_ in patch), patch
    # pods created through the API server get the sidecar (it keeps one connection open: to one replica)
    for i in range(4):
        cluster.apply(pod(f"p{i}", "a"), namespace=ns)
        created = get(cluster, "pod", ns, f"p{i}")
        assert created is not None
        assert sidecars(created), f"p{i} was created without the sidecar"
    # only the leader reconciled and wrote status
    wait_for(lambda: gauge(leader, "driftwatch_operator_status_writes_total") > 0, 30, "a status write")
    assert gauge(leader, "driftwatch_operator_reconciles_total") >= 1
    assert gauge(follower, "driftwatch_operator_reconciles_total") == 0
    assert gauge(follower, "driftwatch_operator_status_writes_total") == 0
    assert gauge(follower, "driftwatch_operator_leader") == 0
    # ... and admissions were answered on both
    assert gauge(follower, "driftwatch_operator_admission_reviews_total") > 0
    assert gauge(leader, "driftwatch_operator_admission_reviews_total") > 0


def test_redis_transition_is_posted_once(pair: Pair) -> None:
    """An outage of Redis: ``RedisUnreachable`` and ``RedisReachable`` once each, by the leader only."""
    cluster, ns = pair.cluster, pair.ns
    pair.redis.kill()
    try:
        wait_condition(cluster, ns, "m1", "False", timeout=60, ctype="RedisAvailable")
    finally:
        pair.redis.start()
    wait_condition(cluster, ns, "m1", "True", timeout=60, ctype="RedisAvailable")
    seen = wait_for(lambda: (e := events(cluster, ns, "m1"))["RedisReachable"] and e, 30, "RedisReachable")
    assert seen["RedisUnreachable"] == 1, seen
    assert seen["RedisReachable"] == 1, seen


def test_leader_killed_the_other_takes_over(pair: Pair) -> None:
    cluster, ns = pair.cluster, pair.ns
    old = pair.leader()
    assert old is not None
    assert old.proc is not None
    survivor = next(op for op in pair.ops if op is not old)
    holder_before = pair.lease()
    transitions_before = int(holder_before.get("leaseTransitions") or 0)
    before = events(cluster, ns, "m1")

    created: list[str] = []
    stop = threading.Event()

    def create_pods() -> None:
        """What the cluster does meanwhile: pods keep being created (a rollout, a scale-up)."""
        i = 0
        while not stop.is_set():
            cluster.apply(pod(f"f{i}", "a"), namespace=ns)
            created.append(f"f{i}")
            i += 1
            time.sleep(0.2)

    os.killpg(old.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    old.proc.wait(10)
    worker = threading.Thread(target=create_pods, daemon=True)
    worker.start()
    try:
        # a monitor created while nobody leads: the new leader must reconcile it
        cluster.apply(monitor("m2", "b"), namespace=ns)
        wait_for(
            lambda: gauge(survivor, "driftwatch_operator_leader") == 1, 3 * LEASE_SECONDS, "a new leader"
        )
        failover = time.monotonic() - killed
        wait_condition(cluster, ns, "m2", "True", timeout=60)
        reconciled = time.monotonic() - killed
        time.sleep(3)  # a few more admissions and aggregation rounds under the new leader
    finally:
        stop.set()
        worker.join(30)

    lease = pair.lease()
    assert lease["holderIdentity"] != holder_before["holderIdentity"]
    assert int(lease["leaseTransitions"]) == transitions_before + 1
    # every pod created during the failover got its sidecar: the surviving replica answered
    missing = [
        name
        for name in created
        if not sidecars(get(cluster, "pod", ns, name) or {"spec": {"containers": []}})
    ]
    assert created
    assert not missing, f"{len(missing)}/{len(created)} pods created without the sidecar: {missing}"
    # the new leader writes status; no transition's Event was posted twice
    wait_for(lambda: gauge(survivor, "driftwatch_operator_status_writes_total") > 0, 30, "status writes")
    after = events(cluster, ns, "m1")
    assert after == before, (before, after)
    assert all(n == 1 for n in events(cluster, ns, "m2").values()), events(cluster, ns, "m2")
    pair.numbers.update(
        lease_seconds=LEASE_SECONDS,
        failover_seconds=round(failover, 1),
        new_monitor_ready_seconds=round(reconciled, 1),
        pods_created_during_failover=len(created),
        pods_injected=len(created) - len(missing),
        balancer_connections=pair.balancer.connections,
    )
    record(**pair.numbers)


def test_orderly_stop_hands_the_lease_over(pair: Pair) -> None:
    """A rolling update: the killed replica comes back (the new pod) and follows; the leader is stopped
    with SIGTERM (the old pod) and hands the Lease over instead of letting it expire."""
    cluster, ns = pair.cluster, pair.ns
    back = next(op for op in pair.ops if not alive(op))
    back.start()
    leader = pair.leader()
    assert leader is not None
    assert leader is not back  # a live lease is never taken over
    leader.stop()
    stopped = time.monotonic()
    wait_for(lambda: gauge(back, "driftwatch_operator_leader") == 1, 3 * LEASE_SECONDS, "the new pod to lead")
    handover = time.monotonic() - stopped
    cluster.apply(monitor("m3", "c"), namespace=ns)
    wait_condition(cluster, ns, "m3", "True", timeout=60)
    cluster.apply(pod("after-upgrade", "c"), namespace=ns)
    assert sidecars(get(cluster, "pod", ns, "after-upgrade") or NO_POD)
    pair.numbers["orderly_handover_seconds"] = round(handover, 1)
    record(orderly_handover_seconds=round(handover, 1))
