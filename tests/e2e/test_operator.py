"""The operator end to end, running as its ServiceAccount (so deploy/rbac/operator-rbac.yaml is what
lets it work) against the local control plane, with a real redis-server and a real sidecar process.

What each test proves:

* ``test_children_lifecycle``: a DriftMonitor gets its ConfigMap (the sidecar's config file), headless
  metrics Service and ServiceMonitor (no PrometheusRule: the chart's rules alert), all owned by it
  and Ready; a spec change updates them; deleting the monitor lets the garbage collector remove them
  and the operator remove its Redis keys.
* ``test_injection_under_restricted``: Pods the ReplicaSet controller creates from a Deployment arrive
  with the sidecar exactly once, in a namespace enforcing Pod Security ``restricted``; the opt-out
  annotation and unselected pods are respected; a pod that predates the monitor is named in status.
* ``test_status_stable_then_drifting``: a real ``driftwatch sidecar`` (standing in for the pod's: there
  is no kubelet) with the rendered ConfigMap and POD_NAME of a real Pod, fed by ``driftwatch simulate``,
  drives status Initializing -> Stable -> Drifting with Events, and the gate answers 200 then 409; the
  sidecar's drift event reaches the operator as a Redis notification (``P:notify``).
* ``test_operator_down_failure_policy_ignore`` (last): with the operator stopped, Pods are still created
  (without the sidecar); restarted, it resumes.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

import driftwatch
from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import (
    OperatorProcess,
    RedisServer,
    free_port,
    http_ok,
    operator_stack,
    wait_for,
)

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # never pulled: there is no kubelet
SIDECAR = "driftwatch-sidecar"


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, RedisServer]]:
    with operator_stack(cluster, tmp_path_factory.mktemp("operator"), prometheus_stubs=True) as stack:
        yield stack


@pytest.fixture
def op(stack: tuple[OperatorProcess, RedisServer]) -> OperatorProcess:
    return stack[0]


@pytest.fixture
def rds(stack: tuple[OperatorProcess, RedisServer]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack[1].url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def injected_ns(cluster: Cluster, namespace: str) -> str:
    """The test's namespace, opted in to injection and enforcing Pod Security ``restricted``."""
    cluster.create_namespace(
        namespace,
        labels={
            "driftwatch.io/e2e": "true",
            "driftwatch.io/inject": "enabled",
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        },
    )
    return namespace


def monitor(name: str, app: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


def restricted_pod_spec() -> dict[str, Any]:
    """An app container that passes ``restricted`` by itself (the sidecar must too)."""
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "app",
                "image": PAUSE_IMAGE,
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    }


def deployment(
    name: str, app: str, replicas: int = 2, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}, "annotations": annotations or {}},
                "spec": restricted_pod_spec(),
            },
        },
    }


def pod(name: str, app: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}, "annotations": annotations or {}},
        "spec": restricted_pod_spec(),
    }


def get(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    r = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False)
    return json.loads(r.stdout) if r.stdout.strip() else None


def status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return (get(cluster, "driftmonitor", namespace, name) or {}).get("status") or {}


def condition(st: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions") or [] if c["type"] == ctype), {})


def pods_of(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"app={app}")[
        "items"
    ]
    return items


def container_names(p: dict[str, Any]) -> list[str]:
    """The app's containers, then the init containers (where the native sidecar is)."""
    spec = p["spec"]
    return [c["name"] for c in [*spec["containers"], *(spec.get("initContainers") or [])]]


def wait_ready(cluster: Cluster, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        st = status(cluster, namespace, name)
        return st if condition(st, "Ready").get("status") == "True" else None

    result: dict[str, Any] = wait_for(ready, timeout, f"DriftMonitor {namespace}/{name} Ready")
    return result


def events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.kubectl_json(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name},involvedObject.kind=DriftMonitor",
    )["items"]
    return items


# --- children ---------------------------------------------------------------------------------------


def test_children_lifecycle(cluster: Cluster, op: OperatorProcess, rds: redis.Redis, namespace: str) -> None:
    cluster.apply(monitor("shop", "shop", sensitivity={"warning": 0.3, "critical": 0.6}), namespace=namespace)
    dm = get(cluster, "driftmonitor", namespace, "shop")
    assert dm is not None
    uid = dm["metadata"]["uid"]
    st = wait_ready(cluster, namespace, "shop")
    assert st["phase"] == "Initializing"
    # no PrometheusRule: the chart's one rule set alerts for every monitor (decisions.md §27)
    kinds = ["configmap", "service", "servicemonitor"]
    assert sorted(c["kind"].lower() for c in st["children"]) == sorted(kinds)
    for kind in kinds:
        child = get(cluster, kind, namespace, "driftwatch-shop")
        assert child is not None, kind
        ref = child["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("DriftMonitor", uid, True)
    cm = get(cluster, "configmap", namespace, "driftwatch-shop")
    assert cm is not None
    config = yaml.safe_load(cm["data"]["sidecar.yaml"])
    assert config["monitor"] == {"name": "shop", "namespace": namespace}
    assert config["spec"]["sensitivity"]["critical"] == 0.6
    svc = get(cluster, "service", namespace, "driftwatch-shop")
    assert svc is not None
    assert svc["spec"]["clusterIP"] == "None"
    assert get(cluster, "prometheusrule", namespace, "driftwatch-shop") is None
    sm = get(cluster, "servicemonitor", namespace, "driftwatch-shop")
    assert sm is not None
    assert sm["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "honorLabels": True}
    ]

    # spec change -> children updated (the rendered config and the alert thresholds)
    cluster.kubectl(
        "patch",
        "driftmonitor",
        "shop",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"sensitivity": {"critical": 0.8}}}),
    )

    def updated() -> bool:
        cm = get(cluster, "configmap", namespace, "driftwatch-shop") or {}
        return yaml.safe_load(cm["data"]["sidecar.yaml"])["spec"]["sensitivity"]["critical"] == 0.8

    wait_for(updated, 20, "ConfigMap updated after a spec change")

    # Redis keys a sidecar would have written, and one of another monitor that must survive
    prefix = f"driftwatch:{{{namespace}:shop}}"
    rds.set(f"{prefix}:checkpoint:pod-a", "{}")
    rds.set(f"{prefix}:summary:pod-a", "{}", ex=600)
    rds.zadd(f"{prefix}:pods", {"pod-a": time.time()})
    rds.xadd(f"{prefix}:events", {"event": "{}"})
    rds.set(f"driftwatch:{{{namespace}:shop2}}:checkpoint:pod-b", "{}")

    cluster.kubectl(
        "delete", "driftmonitor", "shop", "-n", namespace, "--wait=true", "--timeout=60s", timeout=70
    )
    wait_for(lambda: not rds.keys(f"{prefix}:*"), 20, "Redis keys removed")
    assert rds.exists(f"driftwatch:{{{namespace}:shop2}}:checkpoint:pod-b")
    # the garbage collector (controller-manager) follows the ownerReferences; it notices a new CRD's
    # objects on its discovery resync, so allow for one
    for kind in kinds:
        wait_for(
            lambda k=kind: get(cluster, k, namespace, "driftwatch-shop") is None, 90, f"{kind} collected"
        )


# --- injection --------------------------------------------------------------------------------------


def test_injection_under_restricted(cluster: Cluster, op: OperatorProcess, injected_ns: str) -> None:
    ns = injected_ns
    # a pod from before the monitor exists: not injected, and status must say it needs a restart
    cluster.apply(pod("early", "web"), namespace=ns)
    cluster.apply(monitor("web", "web"), namespace=ns)
    wait_ready(cluster, ns, "web")

    cluster.apply(deployment("web", "web", replicas=2), namespace=ns)
    cluster.apply(
        deployment("quiet", "web-quiet", replicas=1, annotations={"driftwatch.io/inject": "false"}),
        namespace=ns,
    )
    cluster.apply(monitor("quiet", "web-quiet"), namespace=ns)
    cluster.apply(deployment("other", "other", replicas=1), namespace=ns)

    def created(app: str, n: int) -> list[dict[str, Any]] | None:
        items = [p for p in pods_of(cluster, ns, app) if p["metadata"].get("ownerReferences")]
        return items if len(items) >= n else None

    web = wait_for(lambda: created("web", 2), 60, "2 web pods from the ReplicaSet controller")
    for p in web:
        names = container_names(p)
        assert names.count(SIDECAR) == 1, names  # exactly once (reinvocationPolicy IfNeeded)
        assert names[0] == "app"
        assert p["metadata"]["labels"]["driftwatch.io/monitor"] == "web"
        side = next(c for c in p["spec"]["initContainers"] if c["name"] == SIDECAR)
        assert side["restartPolicy"] == "Always"  # a native sidecar
        assert side["securityContext"]["runAsNonRoot"] is True
        assert side["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert {
            "name": "POD_NAME",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
        } in side["env"]
        vol = next(v for v in p["spec"]["volumes"] if v["name"] == "driftwatch-config")
        assert vol["configMap"]["name"] == "driftwatch-web"
    quiet = wait_for(lambda: created("web-quiet", 1), 60, "the opted-out pod")
    assert SIDECAR not in container_names(quiet[0])
    other = wait_for(lambda: created("other", 1), 60, "the unselected pod")
    assert SIDECAR not in container_names(other[0])

    # the namespace really enforces restricted: a privileged pod is refused, so the injected pods passed
    bad = pod("bad", "web")
    bad["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    r = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert r.returncode != 0
    assert "restricted" in r.stderr

    def reports_missing() -> dict[str, Any] | None:
        st = status(cluster, ns, "web")
        c = condition(st, "SidecarsReporting")
        return st if c.get("reason") == "PodsWithoutSidecar" and st["pods"]["selected"] == 3 else None

    st = wait_for(reports_missing, 20, "status naming the pod without the sidecar")
    assert st["pods"] == {"selected": 3, "withSidecar": 2, "reporting": 0, "withoutSidecar": ["early"]}
    msg = condition(st, "SidecarsReporting")["message"]
    assert "early" in msg
    assert "rollout restart" in msg


# --- status from a real sidecar ------------------------------------------------------------------------


def _get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@contextlib.contextmanager
def pod_sidecar(cluster: Cluster, ns: str, name: str, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """A Deployment's pod with the sidecar injected, its sidecar run here as a process (no kubelet): the
    rendered ConfigMap as is, but on free ports (tests run in parallel). Yields ``simulate(mode,
    seconds, change_at)`` feeding it with ``driftwatch simulate``."""
    cluster.apply(deployment(name, name, replicas=1), namespace=ns)
    pods = wait_for(lambda: pods_of(cluster, ns, name) or None, 60, f"the {name} pod")
    pod_name = pods[0]["metadata"]["name"]
    assert SIDECAR in container_names(pods[0])
    cm = get(cluster, "configmap", ns, f"driftwatch-{name}")
    assert cm is not None
    config = yaml.safe_load(cm["data"]["sidecar.yaml"])
    ingest, metrics = free_port(), free_port()
    config["listen"].update({"port": ingest, "metricsPort": metrics})
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config))
    log = (tmp_path / "sidecar.log").open("wb")
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "driftwatch", "sidecar", "--config", str(path)],
        env={"POD_NAME": pod_name, "PATH": "/usr/bin:/bin"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{metrics}/healthz"), 30, "sidecar health")
        target = f"http://127.0.0.1:{ingest}"

        def simulate(mode: str, seconds: float, change_at: float = 0.5) -> None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "driftwatch",
                    "simulate",
                    "--target",
                    target,
                    "--mode",
                    mode,
                    "--rate",
                    "400",
                    "--duration",
                    str(seconds),
                    "--change-at",
                    str(change_at),
                    "--seed",
                    "7",
                    "--quiet",
                ],
                check=True,
                timeout=seconds + 30,
            )

        yield simulate
    finally:
        sidecar.terminate()
        try:
            sidecar.wait(20)
        except subprocess.TimeoutExpired:  # a slow final checkpoint is not what these tests check
            sidecar.kill()
            sidecar.wait(10)
        log.close()


def test_status_stable_then_drifting(
    cluster: Cluster, op: OperatorProcess, injected_ns: str, tmp_path: Path
) -> None:
    ns = injected_ns
    cluster.apply(
        monitor(
            "api",
            "api",
            features=[{"name": "latency_ms", "type": "numeric"}],
            baseline={"minSamples": 200, "window": 1000, "adopt": {"after": "never"}},
        ),
        namespace=ns,
    )
    wait_ready(cluster, ns, "api")
    with pod_sidecar(cluster, ns, "api", tmp_path) as simulate:
        simulate("normal", 3)

        def phase(expected: str) -> dict[str, Any] | None:
            st = status(cluster, ns, "api")
            return st if st.get("phase") == expected else None

        st = wait_for(lambda: phase("Stable"), 30, "phase Stable")
        assert st["verdict"] == "Pass"
        assert st["pods"]["reporting"] == 1
        assert condition(st, "SidecarsReporting")["status"] == "True"
        assert condition(st, "RedisAvailable")["status"] == "True"
        code, body = _get_json(f"{op.gate_url}/v1/gate/{ns}/api")
        assert (code, body["verdict"]) == (200, "Pass")

        simulate("spike", 4, change_at=0.0)
        st = wait_for(lambda: phase("Drifting"), 30, "phase Drifting")
        assert st["verdict"] == "Fail"
        assert "latency_ms" in st["driftingFeatures"]
        feature = next(f for f in st["features"] if f["name"] == "latency_ms")
        assert feature["state"] == "Drifting"
        assert feature["severity"] in {"warning", "critical"}
        assert condition(st, "Drifting")["status"] == "True"
        code, body = _get_json(f"{op.gate_url}/v1/gate/{ns}/api")
        assert (code, body["verdict"]) == (409, "Fail")
        code, body = _get_json(f"{op.gate_url}/v1/gate/{ns}/api?always200=true")
        assert (code, body["verdict"]) == (200, "Fail")
        with urllib.request.urlopen(f"{op.gate_url}/metrics", timeout=5) as r:
            exposition = r.read().decode()
        assert 'driftwatch_operator_admission_reviews_total{decision="injected"}' in exposition
        assert "driftwatch_operator_status_writes_total" in exposition
        # which build runs (issue 13): driftwatch_build_info{version, python_version, git_commit} 1
        (build,) = [ln for ln in exposition.splitlines() if ln.startswith("driftwatch_build_info{")]
        assert f'version="{driftwatch.version()}"' in build
        assert build.endswith(" 1.0")

        def notified() -> bool:
            """The sidecar's DRIFT_START reached the operator as a P:notify (whichever path wrote the
            status first: with a 1 s timer here, the timer may have)."""
            with urllib.request.urlopen(f"{op.gate_url}/metrics", timeout=5) as r:
                lines = r.read().decode().splitlines()
            return any(
                ln.startswith("driftwatch_operator_notifications_total{") and float(ln.split()[-1]) >= 1
                for ln in lines
            )

        wait_for(notified, 20, "the operator hearing the sidecar's notification")

        def reasons() -> set[str] | None:
            got = {e["reason"] for e in events(cluster, ns, "api")}
            return got if {"PhaseStable", "PhaseDrifting", "DriftStarted"} <= got else None

        wait_for(reasons, 20, "transition Events")
        described = cluster.kubectl("describe", "driftmonitor", "api", "-n", ns).stdout
        assert "DriftStarted" in described


def test_a_lasting_drift_is_adopted_and_the_monitor_returns_to_stable(
    cluster: Cluster, op: OperatorProcess, injected_ns: str, tmp_path: Path
) -> None:
    """The drift lifecycle end to end: a spike that lasts past spec.baseline.adopt.after becomes the
    baseline; the DriftMonitor goes Drifting -> Stable and the DriftEnded Event says why."""
    ns = injected_ns
    cluster.apply(
        monitor(
            "adopt",
            "adopt",
            features=[{"name": "latency_ms", "type": "numeric"}],
            baseline={"minSamples": 200, "window": 1000, "adopt": {"after": 600}},
        ),
        namespace=ns,
    )
    wait_ready(cluster, ns, "adopt")
    with pod_sidecar(cluster, ns, "adopt", tmp_path) as simulate:

        def phase(expected: str) -> dict[str, Any] | None:
            st = status(cluster, ns, "adopt")
            return st if st.get("phase") == expected else None

        simulate("normal", 3)
        wait_for(lambda: phase("Stable"), 30, "phase Stable")
        simulate("spike", 6, change_at=0.0)  # 2,400 shifted samples: alarm, then adoption after 600
        st = wait_for(lambda: phase("Stable"), 30, "phase Stable again after adoption")
        feature = next(f for f in st["features"] if f["name"] == "latency_ms")
        assert feature.get("baselineAdoptedAt") is not None

        def ended() -> list[dict[str, Any]] | None:
            evs = [e for e in events(cluster, ns, "adopt") if e["reason"] in {"DriftStarted", "DriftEnded"}]
            done = [e for e in evs if e["reason"] == "DriftEnded" and "adopted" in e["message"]]
            return evs if done else None

        evs = wait_for(ended, 30, "a DriftEnded Event saying the regime was adopted")
        assert "DriftStarted" in {e["reason"] for e in evs}


# --- availability (last: it stops and restarts the operator) ---------------------------------------------


def test_operator_down_failure_policy_ignore(cluster: Cluster, op: OperatorProcess, injected_ns: str) -> None:
    ns = injected_ns
    cluster.apply(monitor("late", "late"), namespace=ns)
    wait_ready(cluster, ns, "late")
    mwc = cluster.kubectl_json("get", "mutatingwebhookconfiguration", "driftwatch-sidecar-injector")
    assert mwc["webhooks"][0]["failurePolicy"] == "Ignore"
    ca_bundle = mwc["webhooks"][0]["clientConfig"]["caBundle"]
    # the operator's own CA, kept in a Secret in its namespace, is what the API server trusts
    secret = cluster.kubectl_json("get", "secret", "driftwatch-webhook-tls", "-n", "driftwatch")
    assert secret["data"]["ca.crt"] == ca_bundle
    op.stop()
    try:
        t0 = time.monotonic()
        cluster.apply(pod("while-down", "late"), namespace=ns)  # admitted: the webhook call fails, ignored
        assert time.monotonic() - t0 < 15
        p = get(cluster, "pod", ns, "while-down")
        assert p is not None
        assert SIDECAR not in container_names(p)
    finally:
        op.start()
    # restarted, it reuses its CA: caBundle unchanged, nothing for the API server to re-learn
    mwc = cluster.kubectl_json("get", "mutatingwebhookconfiguration", "driftwatch-sidecar-injector")
    assert mwc["webhooks"][0]["clientConfig"]["caBundle"] == ca_bundle
    cluster.apply(pod("after", "late"), namespace=ns)
    p = get(cluster, "pod", ns, "after")
    assert p is not None
    assert SIDECAR in container_names(p)
    st = wait_for(
        lambda: (
            (s := status(cluster, ns, "late"))
            and "while-down" in s.get("pods", {}).get("withoutSidecar", [])
            and s.get("pods", {}).get("withSidecar") == 1  # a round that has seen "after" too
            and s
        ),
        20,
        "status naming the pod created while the operator was down",
    )
    assert st["pods"]["withSidecar"] == 1
