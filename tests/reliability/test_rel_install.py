"""The chart installed with real helm, the operator running as the chart's ServiceAccount against a Redis
that wants a password (ACL users, as the bundled one runs), on the local control plane:

* credentials travel only as Secret references: the Redis password is in no ConfigMap, status, Event,
  operator log line or metric -- not even when Redis is unreachable and the condition says so;
* each monitor's sidecars get a Redis ACL user that reaches that monitor's keys and nothing else;
* a ConfigMap of the child's name that DriftWatch did not create is refused, not adopted (condition
  naming it), and left as it was;
* ``helm uninstall`` leaves nothing stuck: with the operator gone, deleting a tenant namespace with a
  DriftMonitor in it, and the CRD itself, completes (before: the ``driftwatch.io/cleanup`` finalizer
  kept both waiting for an operator that was no longer there).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from reliability_helpers import get, monitor, record, wait_condition

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.binaries import cache_dir, helm_env, read_versions
from driftwatch.devcluster.stack import (
    OperatorProcess,
    RedisServer,
    install_crd,
    service_account_kubeconfig,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "driftwatch"
PASSWORD = f"pw-{uuid.uuid4().hex}"  # what must never show up outside a Secret
KEY = f"key-{uuid.uuid4().hex}"


def helm(cluster: Cluster, tmp: Path, *args: str, check: bool = True) -> str:
    path = cache_dir() / f"helm-{read_versions()['HELM_VERSION']}" / "helm"
    if not path.is_file():
        pytest.skip(f"helm not built ({path}); run `make k8s-bins`")
    cmd = [str(path), "--kubeconfig", str(cluster.kubeconfig), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=helm_env(tmp), timeout=180)
    if check and r.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}:\n{r.stdout}\n{r.stderr}")
    return r.stdout


class Install:
    """One release, its namespace, the operator process and the Redis it talks to."""

    def __init__(self, cluster: Cluster, tmp: Path) -> None:
        self.cluster, self.tmp = cluster, tmp
        self.release = f"rel{uuid.uuid4().hex[:5]}"
        self.ns = f"{self.release}-system"
        self.fullname = f"{self.release}-driftwatch"
        acl = (
            "user default off\n"
            f"user driftwatch-operator on >{PASSWORD} ~driftwatch:* &driftwatch:* "
            "+@all -@dangerous +acl|setuser +acl|deluser +info\n"
        )
        self.redis = RedisServer(workdir=tmp / "redis", acl=acl)
        self.op: OperatorProcess | None = None

    def operator(self) -> OperatorProcess:
        sa = f"{self.fullname}-operator"
        kubeconfig = service_account_kubeconfig(
            self.cluster, self.tmp / "sa.kubeconfig", account=sa, namespace=self.ns
        )
        env = {
            "DRIFTWATCH_REDIS_USERNAME": "driftwatch-operator",
            "DRIFTWATCH_REDIS_PASSWORD": PASSWORD,
            "DRIFTWATCH_SIDECAR_CREDENTIAL_KEY": KEY,
        }
        return OperatorProcess(
            kubeconfig,
            self.redis.url,
            env=env,
            operator_namespace=self.ns,
            log_path=self.tmp / "operator.log",
            # the Lease the chart's Role grants: named after the release, as the chart's --lease-name
            extra_args=[
                "--webhook-port",
                "0",
                "--sidecar-redis-auth",
                "acl",
                "--lease-name",
                f"{self.fullname}-operator-leader",
            ],
        )


@pytest.fixture(scope="module")
def install(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    install_crd(cluster)
    inst = Install(cluster, tmp_path_factory.mktemp("install"))
    inst.redis.start()
    cluster.create_namespace(inst.ns, labels={"driftwatch.io/e2e": "true"})
    auth = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "redis-login", "namespace": inst.ns},
        "stringData": {"username": "driftwatch-operator", "password": PASSWORD},
    }
    cluster.apply(auth)
    helm(
        cluster,
        inst.tmp,
        "install",
        inst.release,
        str(CHART),
        "-n",
        inst.ns,
        "--set",
        "webhook.injectionScope=pod",  # this release's injector is never called for other tests' pods
        "--set",
        "crds.install=false",  # the session's CRD (install_crd) stays unowned by this release
        "--set",
        "redis.enabled=false",
        "--set",
        f"redis.url={inst.redis.url}",
        "--set",
        "redis.auth.existingSecret=redis-login",
    )
    inst.op = inst.operator().start()
    try:
        yield inst
    finally:
        inst.op.stop()
        helm(cluster, inst.tmp, "uninstall", inst.release, "-n", inst.ns, "--wait", check=False)
        inst.redis.stop()
        cluster.delete_namespace(inst.ns, wait=False)
        install_crd(cluster)  # the last test deletes it: leave it as the session expects


def tenant(cluster: Cluster, install: Install, suffix: str) -> str:
    ns = f"{install.release}-{suffix}"
    cluster.create_namespace(ns, labels={"driftwatch.io/e2e": "true"})
    return ns


def test_sidecar_login_reaches_its_own_monitor_only(cluster: Cluster, install: Install) -> None:
    ns = tenant(cluster, install, "acl")
    for name in ("pay", "shop"):
        cluster.apply(monitor(name, app=name), namespace=ns)
    for name in ("pay", "shop"):
        wait_condition(cluster, ns, name, "True")
    secret = get(cluster, "secret", ns, "driftwatch-pay")
    assert secret is not None
    login = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert login["username"] == f"driftwatch.{ns}.pay"
    r = redis.Redis(port=install.redis.port, username=login["username"], password=login["password"])
    own = f"driftwatch:{{{ns}:pay}}"
    r.set(f"{own}:summary:pod-1", "{}")
    r.zadd(f"{own}:pods", {"pod-1": time.time()})
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.set(f"driftwatch:{{{ns}:shop}}:summary:pod-1", '{"forged": true}')  # another monitor's verdict
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.flushall()
    r.close()
    # the ConfigMap the sidecars read names Redis without the login
    cm = get(cluster, "configmap", ns, "driftwatch-pay")
    assert cm is not None
    assert "password" not in cm["data"]["sidecar.yaml"]
    cluster.delete_namespace(ns, wait=True)


def test_existing_configmap_is_not_adopted(cluster: Cluster, install: Install) -> None:
    ns = tenant(cluster, install, "adopt")
    theirs = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "driftwatch-web", "namespace": ns},
        "data": {"owner": "the web team"},
    }
    cluster.apply(theirs)
    cluster.apply(monitor("web", app="web"), namespace=ns)
    ready = wait_condition(cluster, ns, "web", "False")
    assert ready["reason"] == "ChildConflict"
    assert f"ConfigMap {ns}/driftwatch-web" in ready["message"]
    cm = get(cluster, "configmap", ns, "driftwatch-web")
    assert cm is not None
    assert cm["data"] == {"owner": "the web team"}
    assert not cm["metadata"].get("ownerReferences")  # not garbage-collected with the monitor
    cluster.delete_namespace(ns, wait=True)


def test_no_password_outside_a_secret(cluster: Cluster, install: Install) -> None:
    ns = tenant(cluster, install, "leak")
    cluster.apply(monitor("m", app="m"), namespace=ns)
    wait_condition(cluster, ns, "m", "True")
    # Redis unreachable: the condition says so, with the address -- and never the password
    install.redis.kill()
    try:
        unreachable = wait_condition(cluster, ns, "m", "False", ctype="RedisAvailable", timeout=60)
        assert "127.0.0.1" in unreachable["message"]
    finally:
        install.redis.start()
    wait_condition(cluster, ns, "m", "True", ctype="RedisAvailable", timeout=60)
    assert install.op is not None
    with urllib.request.urlopen(f"{install.op.gate_url}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    places: dict[str, str] = {
        "ConfigMaps": json.dumps(cluster.kubectl_json("get", "configmaps", "-A")),
        "DriftMonitors (status)": json.dumps(cluster.kubectl_json("get", "driftmonitors", "-A")),
        "Events": json.dumps(cluster.kubectl_json("get", "events", "-A")),
        "operator log": install.op.log_path.read_text(errors="replace"),
        "operator metrics": metrics,
        "Deployments (env, args)": json.dumps(cluster.kubectl_json("get", "deployments", "-n", install.ns)),
    }
    for where, text in places.items():
        assert PASSWORD not in text, f"the Redis password leaked into {where}"
        assert KEY not in text, f"the credential key leaked into {where}"
    cluster.delete_namespace(ns, wait=True)


def finalizers(cluster: Cluster, ns: str, name: str) -> list[str]:
    obj: dict[str, Any] = get(cluster, "driftmonitor", ns, name) or {}
    return list(obj.get("metadata", {}).get("finalizers") or [])


@pytest.mark.slow
def test_uninstall_leaves_nothing_stuck(cluster: Cluster, install: Install) -> None:
    ns = tenant(cluster, install, "gone")
    cluster.apply(monitor("m", app="m"), namespace=ns)
    wait_condition(cluster, ns, "m", "True")
    assert finalizers(cluster, ns, "m") == []  # nothing holds a deletion for the operator
    # an object an older operator left a finalizer on: the new one removes it when it sees it
    cluster.apply(monitor("old", app="old"), namespace=ns)
    wait_condition(cluster, ns, "old", "True")
    cluster.kubectl(
        "patch",
        "driftmonitor",
        "old",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":["driftwatch.io/cleanup"]}}',
    )
    cluster.kubectl("annotate", "driftmonitor", "old", "-n", ns, "touch=1")
    wait_for(lambda: finalizers(cluster, ns, "old") == [], 30, "the old finalizer removed")

    assert install.op is not None
    install.op.stop()
    helm(cluster, install.tmp, "uninstall", install.release, "-n", install.ns, "--wait", "--timeout", "60s")
    started = time.monotonic()
    cluster.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=90s", timeout=100)
    namespace_s = time.monotonic() - started
    # and the CRD (helm never deletes CRDs; an admin does, and that must not hang either)
    cluster.apply(monitor("last", app="x"), namespace=install.ns)
    started = time.monotonic()
    cluster.kubectl(
        "delete", "crd", "driftmonitors.driftwatch.io", "--wait=true", "--timeout=90s", timeout=100
    )
    crd_s = time.monotonic() - started
    record(namespace_seconds=round(namespace_s, 1), crd_seconds=round(crd_s, 1))
