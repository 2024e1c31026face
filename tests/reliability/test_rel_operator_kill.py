"""The operator SIGKILLed mid-reconcile, at a named API write, and restarted (issue 12).

``write_hold.WriteHold`` (a test-only validating webhook on loopback, scoped to one namespace, one
resource and one object name) keeps one write of the operator open; the test SIGKILLs the operator
there and starts it again at once -- as a pod restarted after an OOM kill, while its old Lease is
still valid, so the new process starts as a follower and leads once the Lease expires:

* at the ConfigMap's apply (the Secret and the Service are applied beside it and land);
* at the scan's Role (its ServiceAccount applied before, RoleBinding and CronJob not yet);
* at the scan's CronJob (its identity applied);
* at the status write of a spec change's reconcile (kopf has already recorded the change as handled);
* mid-scan-removal: at the deletion of the scan's Role (the RoleBinding deleted, the CronJob not);
* mid-deletion: Redis SIGSTOPped, so the removal of the deleted monitor's keys and ACL user is in
  flight when the operator dies.

After the restart every child exists once, owned by the monitor (controller reference), the monitor
is ``Ready=True`` / ``ChildrenApplied`` for its current generation, nothing says ``ChildConflict``, no
DriftWatch Event was posted twice, a pod created while the write was held got its sidecar, one created
while the operator was dead is named in ``status.pods.withoutSidecar``, and one created after the
restart is injected. After the deletion: no key and no ACL user of the deleted monitor is left, and
the other monitor's are untouched.

The operator runs as its ServiceAccount with ``--sidecar-redis-auth acl`` against a Redis whose
operator login is the chart's (its ACL line is read from the chart's template).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from reliability_helpers import INJECT_LABELS, gauge, get, monitor, pod, sidecars
from write_hold import Target, WriteHold, dry_run, dry_run_apply

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import (
    OPERATOR_NAMESPACE,
    OperatorProcess,
    RedisServer,
    install_crd,
    install_rbac,
    service_account_kubeconfig,
    wait_for,
)
from driftwatch.vocab.names import LABEL_MONITOR, LEADER_LEASE

ROOT = Path(__file__).resolve().parents[2]
REDIS_TEMPLATE = ROOT / "charts" / "driftwatch" / "templates" / "redis.yaml"
PASSWORD = f"pw-{uuid.uuid4().hex}"
ADMIN_PASSWORD = f"admin-{uuid.uuid4().hex}"
KEY = f"key-{uuid.uuid4().hex}"
PREFIX = "driftwatch"
#: the operator's default Lease: the restarted process waits for its predecessor's to expire
LEASE_SECONDS = 15.0
#: kopf's own log lines posted as Events ("Handler ... succeeded"): one per handler run, by design
KOPF_LOGGING = "Logging"
NO_POD: dict[str, Any] = {"spec": {"containers": []}}
CHILD_KINDS = ("configmaps", "secrets", "services", "serviceaccounts", "roles", "rolebindings", "cronjobs")
SCAN_KINDS = {"ServiceAccount", "Role", "RoleBinding", "CronJob"}


def chart_operator_acl() -> str:
    """The Redis ACL file the chart writes, with this test's password (and an admin for the checks)."""
    m = re.search(r"user driftwatch-operator on (>%s [^\\']+)\\n", REDIS_TEMPLATE.read_text())
    assert m, f"the operator's ACL line not found in {REDIS_TEMPLATE}"
    rules = m.group(1).replace("%s", PASSWORD, 1).replace("%s", PREFIX)
    return (
        "user default off\n"
        f"user driftwatch-operator on {rules}\n"
        f"user test-admin on >{ADMIN_PASSWORD} ~* &* +@all\n"
    )


@dataclass
class Stack:
    cluster: Cluster
    op: OperatorProcess
    redis: RedisServer

    def admin(self) -> redis.Redis:
        return redis.Redis(
            port=self.redis.port, username="test-admin", password=ADMIN_PASSWORD, decode_responses=True
        )


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("operator-kill")
    install_crd(cluster)
    install_rbac(cluster)
    kubeconfig = service_account_kubeconfig(cluster, tmp / "operator.kubeconfig")
    with RedisServer(workdir=tmp / "redis", acl=chart_operator_acl()) as server:
        env = {
            "DRIFTWATCH_REDIS_USERNAME": "driftwatch-operator",
            "DRIFTWATCH_REDIS_PASSWORD": PASSWORD,
            "DRIFTWATCH_SIDECAR_CREDENTIAL_KEY": KEY,
        }
        op = OperatorProcess(
            kubeconfig,
            server.url,
            env=env,
            log_path=tmp / "operator.log",
            extra_args=["--sidecar-redis-auth", "acl"],
        )
        try:
            op.start()
            # a replica of an earlier test may have left the Lease held: it expires within one lease
            wait_for(lambda: leads(op), 3 * LEASE_SECONDS, "the operator to lead")
            yield Stack(cluster, op, server)
        finally:
            op.stop()


@pytest.fixture
def ns(stack: Stack, namespace: str) -> str:
    stack.cluster.create_namespace(namespace, labels=INJECT_LABELS)
    return namespace


def leads(op: OperatorProcess) -> bool:
    try:
        return gauge(op, "driftwatch_operator_leader") == 1
    except OSError:
        return False


def status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return (get(cluster, "driftmonitor", ns, name) or {}).get("status") or {}


def ready_now(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    """The Ready condition once it is True for the monitor's current generation."""
    body = get(cluster, "driftmonitor", ns, name) or {}
    generation = (body.get("metadata") or {}).get("generation")
    for c in (body.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready" and c["status"] == "True" and c.get("observedGeneration") == generation:
            return c
    return None


def wait_ready(cluster: Cluster, ns: str, name: str, timeout: float = 60) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: ready_now(cluster, ns, name), timeout, f"Ready=True for the current generation of {ns}/{name}"
    )
    return found


def scanned(name: str, app: str) -> dict[str, Any]:
    return monitor(name, app, scan={"schedule": "0 3 * * *"})


def kill(op: OperatorProcess) -> None:
    """SIGKILL, the whole process group: nothing runs after it (no shutdown handler, no Lease release)."""
    assert op.proc is not None
    os.killpg(op.proc.pid, signal.SIGKILL)
    op.proc.wait(10)


def events(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.kubectl_json("get", "events", "-n", ns)["items"]
    return items


def children_of(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    """Every object in the namespace labelled as this monitor's child."""
    found: list[dict[str, Any]] = []
    for kind in CHILD_KINDS:
        found += cluster.kubectl_json("get", kind, "-n", ns, "-l", f"{LABEL_MONITOR}={name}")["items"]
    return found


@dataclass
class Outcome:
    """What one kill leaves to check and to report."""

    held: str
    killed_at: float
    restarted_at: float
    led_at_start: bool


def restart(stack: Stack) -> tuple[float, bool]:
    """Start the operator again at once; returns when it was ready and whether it led from the start."""
    stack.op.start()
    started = time.monotonic()
    led_at_start = leads(stack.op)
    wait_for(lambda: leads(stack.op), 3 * LEASE_SECONDS, "the restarted operator to lead")
    return started, led_at_start


def kill_at(
    stack: Stack,
    ns: str,
    hold: WriteHold,
    trigger: Callable[[], None],
    app: str,
) -> Outcome:
    """Hold ``hold``'s write, trigger it, create a pod while it is held, SIGKILL the operator there,
    create a pod while it is dead, and start it again."""
    cluster = stack.cluster
    with hold:
        trigger()
        req = hold.wait_held(60)
        held = f"{req['operation']} {req['resource']['resource']}"
        held += f"/{req['subResource']}" if req.get("subResource") else ""
        held += f" {req['name']}"
        cluster.apply(pod("held-0", app), namespace=ns)  # the webhook answers while a reconcile waits
        kill(stack.op)
        killed = time.monotonic()
    cluster.apply(pod("dead-0", app), namespace=ns)  # failurePolicy Ignore: created, no sidecar
    restarted, led_at_start = restart(stack)
    return Outcome(held, killed, restarted, led_at_start)


def check_recovered(
    stack: Stack, ns: str, name: str, app: str, out: Outcome, *, scan: bool, was_ready: bool
) -> dict[str, Any]:
    """Everything the restarted operator must have put right; returns the numbers. ``was_ready``: the
    monitor was Ready before the held write (a pod created while held is injected); else it was not
    reconciled yet, and the webhook leaves pods alone until it is (its ConfigMap may not exist): the
    pod is named in status instead, like the one created while the operator was dead."""
    cluster = stack.cluster
    wait_ready(cluster, ns, name, timeout=60)
    ready_s = time.monotonic() - out.killed_at
    body = get(cluster, "driftmonitor", ns, name)
    assert body is not None
    uid = body["metadata"]["uid"]
    ready = ready_now(cluster, ns, name)
    assert ready is not None
    assert ready["reason"] == "ChildrenApplied", ready

    # every child once, ours: the set status names is the set that exists, each owned by the monitor
    st = body["status"]
    claimed = {(c["kind"], c["name"]) for c in st["children"]}
    assert len(claimed) == len(st["children"]), st["children"]
    found = children_of(cluster, ns, name)
    existing = [(o["kind"], o["metadata"]["name"]) for o in found]
    assert len(existing) == len(set(existing))
    kinds = {k for k, _ in existing}
    assert {"ConfigMap", "Secret", "Service"} <= kinds, existing
    assert (kinds >= SCAN_KINDS) if scan else not (SCAN_KINDS & kinds), existing
    assert claimed >= set(existing), (claimed, existing)  # stub CRDs' kinds may be claimed, not listed
    for o in found:
        refs = o["metadata"].get("ownerReferences") or []
        assert [(r["uid"], r.get("controller")) for r in refs] == [(uid, True)], (o["kind"], refs)

    # the Redis login of its sidecars exists
    assert f"driftwatch.{ns}.{name}" in stack.admin().acl_users()

    # pods: held -> injected if the monitor was Ready, else named; dead -> named; after -> injected
    assert bool(sidecars(get(cluster, "pod", ns, "held-0") or NO_POD)) == was_ready
    assert not sidecars(get(cluster, "pod", ns, "dead-0") or NO_POD)
    cluster.apply(pod("after-0", app), namespace=ns)
    assert sidecars(get(cluster, "pod", ns, "after-0") or NO_POD), "after-0 not injected"
    without = ["dead-0"] if was_ready else ["dead-0", "held-0"]
    with_sidecar = 2 if was_ready else 1

    def counted() -> dict[str, Any] | None:
        pods = status(cluster, ns, name).get("pods") or {}
        ok = sorted(pods.get("withoutSidecar") or []) == without and pods.get("withSidecar") == with_sidecar
        return pods if ok else None

    wait_for(counted, 60, f"status naming {without} as without the sidecar, {with_sidecar} with it")
    return {
        "held_write": out.held,
        "led_at_start": out.led_at_start,
        "ready_seconds_after_kill": round(ready_s, 1),
        "children": len(existing),
        "pods_injected": with_sidecar,
        "pods_named_without_sidecar": len(without),
        **event_numbers(cluster, ns),
    }


def event_numbers(cluster: Cluster, ns: str) -> dict[str, Any]:
    """No DriftWatch Event twice, no ChildConflict; kopf's own log Events counted apart."""
    evs = events(cluster, ns)
    ours: Counter[tuple[str, str]] = Counter()
    for e in evs:  # an Event the API server aggregated counts as many times as its ``count``
        if e["involvedObject"]["kind"] == "DriftMonitor" and e["reason"] != KOPF_LOGGING:
            ours[(e["involvedObject"]["name"], e["reason"])] += int(e.get("count") or 1)
    assert not [r for _, r in ours if r == "ChildConflict"], ours
    twice = {k: n for k, n in ours.items() if n > 1}
    assert not twice, f"Events posted more than once: {twice}"
    return {
        "events": sum(ours.values()),
        "events_twice": 0,
        "kopf_log_events": sum(1 for e in evs if e["reason"] == KOPF_LOGGING),
    }


# --- at an apply, on creation --------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyCase:
    scan: bool
    group: str
    resource: str
    suffix: str  # child name = driftwatch-<monitor><suffix>


APPLY_CASES = {
    "configmap": ApplyCase(False, "", "configmaps", ""),
    "scan-role": ApplyCase(True, "rbac.authorization.k8s.io", "roles", "-scan"),
    "scan-cronjob": ApplyCase(True, "batch", "cronjobs", "-scan"),
}


def probe_object(case: ApplyCase, name: str) -> dict[str, Any]:
    """A valid object of the held write's kind and name, for the dry-run probe."""
    meta = {"name": name, "labels": {"driftwatch.io/e2e": "true"}}
    if case.resource == "configmaps":
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if case.resource == "roles":
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": []}
    container = {"name": "c", "image": "registry.k8s.io/pause:3.10"}
    template = {"spec": {"restartPolicy": "Never", "containers": [container]}}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta,
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
    }


@pytest.mark.parametrize("where", list(APPLY_CASES))
def test_killed_at_a_child_apply(
    stack: Stack, ns: str, where: str, reliability_record: Callable[..., None]
) -> None:
    case = APPLY_CASES[where]
    name, app = "m", "a"
    child = f"driftwatch-{name}{case.suffix}"
    cluster = stack.cluster
    hold = WriteHold(
        cluster,
        ns,
        Target(case.group, case.resource, child),
        dry_run_apply(cluster, ns, probe_object(case, child)),
    )
    body = scanned(name, app) if case.scan else monitor(name, app)
    out = kill_at(stack, ns, hold, lambda: cluster.apply(body, namespace=ns), app)
    reliability_record(**check_recovered(stack, ns, name, app, out, scan=case.scan, was_ready=False))


def test_killed_at_the_status_write(stack: Stack, ns: str, reliability_record: Callable[..., None]) -> None:
    """A spec change's reconcile is done and kopf has recorded the change as handled (its annotation is
    written before the status); the status write saying so is held."""
    name, app = "m", "a"
    cluster = stack.cluster
    cluster.apply(scanned(name, app), namespace=ns)
    wait_ready(cluster, ns, name)

    def the_reconciles(req: dict[str, Any]) -> bool:  # not an aggregation round's write
        obj = req["object"]
        ready = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
        return bool(ready) and ready[0].get("observedGeneration") == obj["metadata"]["generation"]

    hold = WriteHold(
        cluster,
        ns,
        Target("driftwatch.io", "driftmonitors/status", name, ("UPDATE",)),
        dry_run(
            cluster,
            "patch",
            "driftmonitor",
            name,
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            "{}",
        ),
        wanted=the_reconciles,
    )
    change = json.dumps({"spec": {"baseline": {"minSamples": 150}}})

    def trigger() -> None:
        cluster.kubectl("patch", "driftmonitor", name, "-n", ns, "--type=merge", "-p", change)

    out = kill_at(stack, ns, hold, trigger, app)
    numbers = check_recovered(stack, ns, name, app, out, scan=True, was_ready=True)
    body = get(cluster, "driftmonitor", ns, name)
    assert body is not None
    assert body["metadata"]["generation"] == 2
    reliability_record(**numbers)


def test_killed_mid_scan_removal(stack: Stack, ns: str, reliability_record: Callable[..., None]) -> None:
    """``spec.scan`` removed; the operator deletes the scan's RoleBinding, then is killed at its Role's
    deletion (the CronJob, deleted last, still there)."""
    name, app = "m", "a"
    cluster = stack.cluster
    cluster.apply(scanned(name, app), namespace=ns)
    wait_ready(cluster, ns, name)
    role = f"driftwatch-{name}-scan"
    hold = WriteHold(
        cluster,
        ns,
        Target("rbac.authorization.k8s.io", "roles", role, ("DELETE",)),
        dry_run(cluster, "delete", "role", role, "-n", ns),
    )

    def trigger() -> None:
        patch = '[{"op": "remove", "path": "/spec/scan"}]'
        cluster.kubectl("patch", "driftmonitor", name, "-n", ns, "--type=json", "-p", patch)

    out = kill_at(stack, ns, hold, trigger, app)
    reliability_record(**check_recovered(stack, ns, name, app, out, scan=False, was_ready=True))


def gate_knows(op: OperatorProcess, ns: str, name: str) -> bool:
    try:
        with urllib.request.urlopen(f"{op.gate_url}/v1/gate/{ns}/{name}", timeout=5):
            return True
    except urllib.error.HTTPError as e:
        return e.code != 404


def test_killed_mid_deletion(stack: Stack, ns: str, reliability_record: Callable[..., None]) -> None:
    """The monitor deleted while Redis is SIGSTOPped: the operator's removal of its keys and ACL user
    hangs on Redis; the operator is SIGKILLed there, Redis continued, the operator restarted. Its start
    sweep must remove both (before: the keys only -- the user stayed for good)."""
    cluster, admin = stack.cluster, stack.admin()
    for name, app in (("gone", "g"), ("stays", "s")):
        cluster.apply(monitor(name, app), namespace=ns)
    for name in ("gone", "stays"):
        wait_ready(cluster, ns, name)
    for name in ("gone", "stays"):  # what a monitor's sidecars leave in Redis (a pod seen "now" for
        p = f"{PREFIX}:{{{ns}:{name}}}"  # an hour: the rounds do not age it out of P:pods meanwhile)
        admin.zadd(f"{p}:pods", {"pod-1": time.time() + 3600})
        admin.set(f"{p}:summary:pod-1", "{}")
        admin.set(f"{p}:checkpoint:pod-1", "{}")
    users = {f"driftwatch.{ns}.{n}" for n in ("gone", "stays")}
    assert users <= set(admin.acl_users())

    def keys(name: str) -> list[str]:
        return sorted(admin.scan_iter(match=f"{PREFIX}:{{{ns}:{name}}}:*"))

    assert len(keys("gone")) == 3
    assert stack.redis.proc is not None
    os.kill(stack.redis.proc.pid, signal.SIGSTOP)
    try:
        cluster.kubectl("delete", "driftmonitor", "gone", "-n", ns, "--wait=false")
        # the DELETED event reached the operator: it forgot the monitor and started its cleanup
        wait_for(lambda: not gate_knows(stack.op, ns, "gone"), 30, "the operator to see the deletion")
        cluster.apply(pod("held-0", "s"), namespace=ns)  # Redis hangs: the webhook still answers
        kill(stack.op)
        killed = time.monotonic()
    finally:
        os.kill(stack.redis.proc.pid, signal.SIGCONT)
    assert len(keys("gone")) == 3, "the cleanup finished before the kill: nothing was in flight"
    assert f"driftwatch.{ns}.gone" in admin.acl_users()
    cluster.apply(pod("dead-0", "s"), namespace=ns)
    restarted, led_at_start = restart(stack)
    wait_for(lambda: not keys("gone"), 60, "the sweep to remove the deleted monitor's keys")
    wait_for(
        lambda: f"driftwatch.{ns}.gone" not in admin.acl_users(),
        30,
        "the sweep to remove the deleted monitor's Redis ACL user",
    )
    swept = time.monotonic() - killed
    assert len(keys("stays")) == 3
    assert f"driftwatch.{ns}.stays" in admin.acl_users()
    out = Outcome(
        "Redis SCAN of the deleted monitor's keys (Redis SIGSTOPped)", killed, restarted, led_at_start
    )
    numbers = check_recovered(stack, ns, "stays", "s", out, scan=False, was_ready=True)
    numbers.update(swept_seconds_after_kill=round(swept, 1), keys_left=0, acl_users_left=0)
    reliability_record(**numbers)


def test_the_charts_operator_login_hears_the_sidecars_notifications(stack: Stack, ns: str) -> None:
    """With the chart's ACL line the operator's ``PSUBSCRIBE {prefix}:*:notify`` was refused (NOPERM:
    Redis matches a PSUBSCRIBE pattern literally against the user's channel patterns, and ``&P:*`` is
    not ``P:*:notify``); the listener retried every 0.5 s, logging twice each time, and sidecars'
    notifications were never heard (status only every aggregation interval)."""
    cluster, admin = stack.cluster, stack.admin()
    log_from = stack.op.log_path.stat().st_size
    cluster.apply(monitor("m", "a"), namespace=ns)
    wait_ready(cluster, ns, "m")
    before = gauge(stack.op, "driftwatch_operator_notifications_total")

    def heard() -> bool:
        admin.publish(f"{PREFIX}:{{{ns}:m}}:notify", "pod-1")  # as a sidecar does after a drift event
        return gauge(stack.op, "driftwatch_operator_notifications_total") > before

    wait_for(heard, 30, "the operator to hear a notification", interval=1.0)
    with stack.op.log_path.open(errors="replace") as f:
        f.seek(log_from)
        assert "notifications unavailable" not in f.read()


# --- restarted only after its Lease expired ------------------------------------------------------


def lease_now(cluster: Cluster) -> dict[str, Any]:
    """The leader Lease with its ``managedFields`` (the API server's record of when it was written)."""
    args = ("get", "lease", LEADER_LEASE, "-n", OPERATOR_NAMESPACE, "--show-managed-fields")
    lease: dict[str, Any] = cluster.kubectl_json(*args)
    return lease


def expired_at(lease: dict[str, Any]) -> float:
    """When (epoch seconds) ``lease`` has expired by every clock that judges it: its holder's
    ``renewTime`` and the API server's record of its last write (``managedFields`` times, whole
    seconds: one more second for the truncation of each), each plus ``leaseDurationSeconds``."""
    spec = lease["spec"]
    renewed = dt.datetime.fromisoformat(spec["renewTime"]).timestamp()
    fields = lease["metadata"]["managedFields"]
    written = max(dt.datetime.fromisoformat(m["time"]).timestamp() for m in fields)
    return max(renewed, written + 2) + float(spec["leaseDurationSeconds"])


def test_restarted_after_its_lease_expired_leads_at_once(
    stack: Stack, ns: str, reliability_record: Callable[..., None]
) -> None:
    """The only operator SIGKILLed and started again once its Lease has expired (a pod rescheduled
    onto another node, a crash loop's back-off): no replica holds the Lease, so the new process leads
    at its first election round. Before: it watched the dead holder's record for a whole lease on its
    own clock first (client-go's rule, which only knows when it *saw* the record) -- 15 s more with no
    reconcile, no aggregation and no cleanup. Its webhook injects from its start either way."""
    cluster = stack.cluster
    cluster.apply(monitor("m", "a"), namespace=ns)
    wait_ready(cluster, ns, "m")
    cluster.apply(pod("before-0", "a"), namespace=ns)
    kill(stack.op)
    lease = lease_now(cluster)  # after the kill: its last renewal
    holder = lease["spec"]["holderIdentity"]
    transitions = int(lease["spec"].get("leaseTransitions") or 0)
    cluster.apply(pod("dead-0", "a"), namespace=ns)  # failurePolicy Ignore: created, no sidecar
    cluster.apply(monitor("m2", "b"), namespace=ns)  # created while no operator runs
    time.sleep(max(0.0, expired_at(lease) - time.time()))
    assert lease_now(cluster)["spec"] == lease["spec"], "somebody wrote the Lease meanwhile"

    started = time.monotonic()
    stack.op.start()  # returns once /readyz answers: after the first election round (lifecycle.start)
    readied = time.monotonic() - started
    led_at_start = leads(stack.op)
    cluster.apply(pod("after-0", "a"), namespace=ns)
    assert sidecars(get(cluster, "pod", ns, "after-0") or NO_POD), "after-0 not injected"
    wait_for(lambda: leads(stack.op), 3 * LEASE_SECONDS, "the restarted operator to lead")
    led = time.monotonic() - started
    wait_ready(cluster, ns, "m2")
    m2_ready = time.monotonic() - started

    after = lease_now(cluster)["spec"]
    assert after["holderIdentity"] != holder
    assert int(after["leaseTransitions"]) == transitions + 1
    # the new leader's aggregation names the pod created while no operator ran
    wait_for(
        lambda: (status(cluster, ns, "m").get("pods") or {}).get("withoutSidecar") == ["dead-0"],
        60,
        "status naming dead-0 as without the sidecar",
    )
    numbers = event_numbers(cluster, ns)
    assert led_at_start, (
        f"the Lease had expired, yet the restarted operator did not lead at its first election round "
        f"(it led {led:.1f} s after its start, ready after {readied:.1f} s)"
    )
    reliability_record(
        lease_seconds=float(lease["spec"]["leaseDurationSeconds"]),
        ready_seconds_after_start=round(readied, 1),
        leading_seconds_after_start=round(led, 1),
        new_monitor_ready_seconds_after_start=round(m2_ready, 1),
        pods_injected_after_start=1,
        **numbers,
    )
