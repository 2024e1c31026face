"""``driftwatch demo``: DriftWatch on a real control plane, start to finish, in one command.

Stage 1 shows the stage itself: it brings up the local control plane (:mod:`driftwatch.devcluster`;
no Docker needed), applies a Deployment and a CronJob, and prints what the controller-manager made of
them, the ReplicaSet, the Pods (Running on kwok's fake Node) and the Job once the CronJob fires.

Stage 2 is DriftWatch itself: the CRD, RBAC, Redis and the operator (running as its ServiceAccount) are
installed; a DriftMonitor for the Deployment gets its children and says which Pods predate it; recreated
Pods arrive with the sidecar injected; one ``driftwatch sidecar`` process per Pod (standing in for the
Pod's container: kwok starts no container) is fed by ``driftwatch simulate``, normal traffic then a
spike, while ``kubectl get driftmonitors`` goes Initializing -> Stable -> Drifting; the run is plotted
to a PNG. Then everything is torn down.

The demo is a list of steps (:data:`STEPS`), each a function taking the shared :class:`Demo` state, so
later stages (install the CRD, run the operator, inject sidecars, push drift) are added as functions
in the list without touching the runner.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from driftwatch.devcluster import BinariesMissing, Cluster, ComponentError, ExistingCluster, LocalCluster
from driftwatch.devcluster.sidecars import PodSidecar, SidecarFleet, rendered_config

NAMESPACE = "driftwatch-demo"
IMAGE = "registry.k8s.io/pause:3.10"  # never pulled on the local control plane: kwok starts no container
OWNER_COLUMNS = (
    "custom-columns=KIND:.kind,NAME:.metadata.name,"
    "OWNER:.metadata.ownerReferences[0].kind,OWNER NAME:.metadata.ownerReferences[0].name,"
    "PHASE:.status.phase"
)


@dataclass
class Demo:
    """State shared by the steps: the cluster, the namespace, the options and where to print."""

    cluster: Cluster
    args: argparse.Namespace
    namespace: str = NAMESPACE
    out: TextIO = field(default_factory=lambda: sys.stdout)
    #: steps may leave results here for later steps (e.g. the operator's pid)
    notes: dict[str, Any] = field(default_factory=dict)
    #: what steps started (operator, Redis, sidecars), stopped in reverse when the demo ends
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def show(self, *kubectl_args: str) -> None:
        """Print ``kubectl get ...`` in the demo namespace, indented under the current step."""
        text = self.cluster.kubectl("get", "-n", self.namespace, *kubectl_args).stdout.rstrip()
        for line in text.splitlines():
            self.say(f"    {line}".rstrip())

    def items(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.cluster.kubectl_json("get", kind, "-n", self.namespace)["items"]
        return items

    def wait(self, check: Callable[[], bool], *, timeout: float, what: str) -> float:
        return self.cluster.wait_until(check, timeout=timeout, what=what)


# -- steps ---------------------------------------------------------------------------------------------


def step_namespace(demo: Demo) -> None:
    """Create the demo namespace (and wait for its default ServiceAccount), opted in to injection."""
    labels = {"app.kubernetes.io/part-of": "driftwatch-demo", "driftwatch.io/inject": "enabled"}
    demo.cluster.create_namespace(demo.namespace, labels=labels)
    demo.say(
        f"    namespace/{demo.namespace} created, labelled driftwatch.io/inject=enabled (injection opt-in)"
    )


def step_apply_workloads(demo: Demo) -> None:
    """Apply the workloads later stages will monitor: a Deployment and a CronJob."""
    labels = {"app": "payments"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "payments", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": IMAGE}]},
            },
        },
    }
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly-scan"},
        "spec": {
            "schedule": "* * * * *",  # every minute, so the demo sees it fire
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "scan", "image": IMAGE}]}
                    }
                }
            },
        },
    }
    for line in demo.cluster.apply([deployment, cronjob], namespace=demo.namespace).splitlines():
        demo.say(f"    {line}")


def step_show_deployment(demo: Demo) -> None:
    """Wait for the controller-manager to turn the Deployment into a ReplicaSet and Pods, and for the
    Pods to run; show them."""

    def running() -> bool:
        pods = demo.items("pods")
        return len(pods) >= 2 and all(p.get("status", {}).get("phase") == "Running" for p in pods)

    took = demo.wait(
        lambda: len(demo.items("replicasets")) >= 1 and running(),
        timeout=120,
        what="the ReplicaSet and its Pods Running",
    )
    demo.say(f"    the controller-manager created them, the scheduler placed them, they run ({took:.1f}s):")
    demo.show("deployments,replicasets,pods")
    demo.say("    who owns what (the garbage collector follows these references):")
    demo.show("replicasets,pods", "-o", OWNER_COLUMNS)
    if isinstance(demo.cluster, LocalCluster):
        demo.say("    (Running on kwok's fake Node: it reports Pods Running and Ready; no container starts)")


def step_wait_for_cronjob(demo: Demo) -> None:
    """Wait, with a countdown, for the CronJob's first Job (it fires on the next minute boundary)."""
    if demo.args.skip_cronjob:
        demo.say("    skipped (--skip-cronjob)")
        return
    deadline = time.monotonic() + demo.args.cron_timeout
    last_print = 0.0
    tty = demo.out.isatty()
    while not demo.items("jobs"):
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"the CronJob made no Job within {demo.args.cron_timeout:.0f}s")
        boundary = 60 - time.time() % 60
        if tty:
            demo.out.write(f"\r    waiting for the schedule `* * * * *`: next minute in {boundary:4.0f}s ")
            demo.out.flush()
        elif now - last_print >= 15:
            demo.say(f"    waiting for the schedule `* * * * *`: next minute in {boundary:.0f}s")
            last_print = now
        time.sleep(1)
    if tty:
        demo.out.write("\r" + " " * 70 + "\r")
    demo.wait(lambda: len(demo.items("pods")) >= 3, timeout=60, what="the Job's Pod")
    demo.say("    the CronJob fired:")
    demo.show("cronjobs,jobs")
    demo.show("jobs,pods", "-o", OWNER_COLUMNS)


# -- stage 2: DriftWatch -----------------------------------------------------------------------------

MONITOR = "payments"


def step_install_driftwatch(demo: Demo) -> None:
    """CRD, RBAC, Redis and the operator, which runs with its ServiceAccount's token (RBAC is real)."""
    from driftwatch.devcluster import stack

    work = Path(tempfile.mkdtemp(prefix="driftwatch-demo-"))
    demo.cleanup.callback(shutil.rmtree, work, ignore_errors=True)
    stack.install_crd(demo.cluster)
    stack.install_rbac(demo.cluster)
    demo.say("    customresourcedefinition/driftmonitors.driftwatch.io established")
    demo.say("    serviceaccount/driftwatch-operator + least-privilege RBAC (deploy/rbac/operator-rbac.yaml)")
    kubeconfig = stack.service_account_kubeconfig(demo.cluster, work / "operator.kubeconfig")
    redis = demo.cleanup.enter_context(stack.RedisServer())
    demo.say(f"    redis-server on {redis.url}")
    op = stack.OperatorProcess(
        kubeconfig, redis.url, log_path=work / "operator.log", aggregate_interval=1.0, publish_interval=1.0
    )
    t0 = time.monotonic()
    demo.cleanup.enter_context(op)
    demo.say(
        f"    driftwatch operator ready in {time.monotonic() - t0:.1f}s "
        f"(as system:serviceaccount:driftwatch:driftwatch-operator; log {op.log_path})"
    )
    mwc = demo.cluster.kubectl_json("get", "mutatingwebhookconfiguration", "driftwatch-sidecar-injector")
    w = mwc["webhooks"][0]
    demo.say(
        f"    mutatingwebhookconfiguration/driftwatch-sidecar-injector -> {w['clientConfig']['url']} "
        f"(failurePolicy {w['failurePolicy']}, its own CA)"
    )
    demo.cleanup.callback(
        demo.cluster.kubectl,
        "delete",
        "mutatingwebhookconfiguration",
        "driftwatch-sidecar-injector",
        "--ignore-not-found",
        check=False,
    )
    demo.notes.update(operator=op, redis=redis, work=work)


def step_create_monitor(demo: Demo) -> None:
    """A DriftMonitor selecting the Deployment's Pods; its children; status names the uninjected Pods."""
    manifest = {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": MONITOR},
        "spec": {
            "selector": {"matchLabels": {"app": "payments"}},
            "features": [{"name": "latency_ms", "type": "numeric"}],
            # never adopt: the demo's spike should end as a failed verdict (what a rollout gate wants),
            # not become the new normal after 2 x window samples (docs/detection.md)
            "baseline": {"minSamples": 200, "window": 1000, "adopt": {"after": "never"}},
        },
    }
    demo.say("    " + demo.cluster.apply(manifest, namespace=demo.namespace).strip())

    def reported() -> bool:
        st = _status(demo)
        return any(c["type"] == "SidecarsReporting" for c in st.get("conditions") or [])

    demo.wait(reported, timeout=30, what="the DriftMonitor's first status")
    demo.show("driftmonitors")
    demo.say("    its children (owned by it; the garbage collector removes them with it):")
    demo.show("configmaps,services", "-l", f"driftwatch.io/monitor={MONITOR}")
    cond = next(c for c in _status(demo)["conditions"] if c["type"] == "SidecarsReporting")
    demo.say(f"    condition SidecarsReporting={cond['status']}: {cond['message']}")


def step_recreate_pods(demo: Demo) -> None:
    """Recreate the Pods (in a real cluster: `kubectl rollout restart`); the new ones carry the sidecar."""
    old = {
        p["metadata"]["name"] for p in demo.items("pods") if p["metadata"]["labels"].get("app") == "payments"
    }
    # deleting the Pods shows the injection at once (a rollout restart would replace them one by one)
    demo.cluster.kubectl("delete", "pods", "-n", demo.namespace, "-l", "app=payments", "--wait=false")

    def fresh() -> list[dict[str, Any]]:
        return [
            p
            for p in demo.items("pods")
            if p["metadata"]["labels"].get("app") == "payments" and p["metadata"]["name"] not in old
        ]

    demo.wait(lambda: len(fresh()) >= 2, timeout=60, what="the recreated Pods")
    demo.show(
        "pods",
        "-l",
        "app=payments",
        "-o",
        "custom-columns=POD:.metadata.name,CONTAINERS:.spec.containers[*].name,"
        # the detector is a native sidecar: an init container that keeps running
        r"SIDECARS:.spec.initContainers[*].name,MONITOR:.metadata.labels.driftwatch\.io/monitor",
    )
    spec = fresh()[0]["spec"]
    side = next(
        (
            c
            for c in [*spec["containers"], *(spec.get("initContainers") or [])]
            if c["name"] == "driftwatch-sidecar"
        ),
        None,
    )
    if side is None:  # e.g. --kind: its API server cannot call a webhook on this host's 127.0.0.1
        demo.say("    no sidecar injected: the API server could not reach the webhook (failurePolicy Ignore)")
        demo.notes["pods"] = sorted(p["metadata"]["name"] for p in fresh())[:2]
        return
    sc = side["securityContext"]
    demo.say(
        f"    sidecar: ports {[p['containerPort'] for p in side['ports']]}, config from ConfigMap "
        f"driftwatch-{MONITOR}, runAsNonRoot={sc['runAsNonRoot']}, capabilities drop "
        f"{sc['capabilities']['drop']}, seccomp {sc['seccompProfile']['type']} (passes `restricted`)"
    )
    demo.notes["pods"] = sorted(p["metadata"]["name"] for p in fresh())[:2]


def _status(demo: Demo) -> dict[str, Any]:
    out = demo.cluster.kubectl(
        "get", "driftmonitor", MONITOR, "-n", demo.namespace, "-o", "json", check=False
    )
    return (json.loads(out.stdout).get("status") or {}) if out.returncode == 0 else {}


def _get_row(demo: Demo) -> str:
    lines = demo.cluster.kubectl("get", "driftmonitors", MONITOR, "-n", demo.namespace).stdout.splitlines()
    return lines[-1] if lines else ""


def _start_sidecars(demo: Demo) -> list[PodSidecar]:
    """One sidecar process per Pod, with the rendered ConfigMap (on free ports) and the Pod's name."""
    config = rendered_config(demo.cluster, demo.namespace, MONITOR)
    fleet = demo.cleanup.enter_context(SidecarFleet(config, demo.notes["work"] / "sidecars"))
    out = []
    for pod in demo.notes["pods"]:
        side = fleet.start(pod)
        out.append(side)
        demo.say(
            f"    driftwatch sidecar for pod {pod}: ingest 127.0.0.1:{side.ingest}, metrics :{side.metrics}"
        )
    return out


def _simulate(
    sidecars: list[PodSidecar], mode: str, seconds: float, seed: int
) -> list[subprocess.Popen[bytes]]:
    return [side.feed(mode, seconds=seconds, rate=300, seed=seed + i) for i, side in enumerate(sidecars)]


def _watch(
    demo: Demo,
    until: str,
    timeout: float,
    timeline: list[tuple[float, str, float]],
    t0: float,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    """Print the `kubectl get driftmonitors` row whenever it changes, a live line on a terminal."""
    tty = demo.out.isatty()
    last = ""
    deadline = time.monotonic() + timeout
    while True:
        st = _status(demo)
        now = time.monotonic() - t0
        phase, score = st.get("phase", ""), float(st.get("score") or 0.0)
        timeline.append((now, phase, score))
        row = _get_row(demo)
        if row.rsplit(None, 1)[0] != last:  # a change in anything but the AGE column
            if tty:
                demo.out.write("\r" + " " * 78 + "\r")
            demo.say(f"    t={now:5.1f}s  {row}")
            last = row.rsplit(None, 1)[0]
        sending = sum(p.poll() is None for p in procs)
        if tty:
            bar = "#" * int(min(score, 1.0) * 20)
            demo.out.write(f"\r    t={now:5.1f}s  score [{bar:<20}] {score:.2f}  senders running: {sending} ")
            demo.out.flush()
        if phase == until and sending == 0:  # keep watching until the senders are done
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the DriftMonitor did not reach {until} within {timeout:.0f}s")
        time.sleep(0.5)
    if tty:
        demo.out.write("\r" + " " * 78 + "\r")


def step_drift(demo: Demo) -> None:
    """Sidecars fed normal traffic, then a spike: watch the DriftMonitor go Stable -> Drifting."""
    sidecars = _start_sidecars(demo)
    timeline: list[tuple[float, str, float]] = []
    t0 = time.monotonic()
    demo.say("    driftwatch simulate --mode normal (300 samples/s per pod, 6s): the baseline is learned")
    normal = _simulate(sidecars, "normal", 6, seed=1)
    _watch(demo, "Stable", 60, timeline, t0, normal)
    for p in normal:
        p.wait()
    spike_at = time.monotonic() - t0
    demo.say("    driftwatch simulate --mode spike (latency +6 sigma)")
    spike = _simulate(sidecars, "spike", 8, seed=3)
    _watch(demo, "Drifting", 60, timeline, t0, spike)
    detected = next(t for t, phase, _ in timeline if phase == "Drifting")
    demo.say(f"    drift detected {detected - spike_at:.1f}s after the spike began")
    demo.show("driftmonitors", "-o", "wide")
    st = _status(demo)
    for f in st.get("features") or []:
        demo.say(
            f"    feature {f['name']}: {f['state']}, score {f['score']:.2f} ({f['severity']}), "
            f"detector {f.get('detector')}, pods {f.get('pods')}"
        )
    demo.say("    events (kubectl describe driftmonitor payments):")
    demo.show(
        "events",
        "--field-selector",
        f"involvedObject.name={MONITOR},involvedObject.kind=DriftMonitor",
        "--sort-by=.lastTimestamp",
    )
    op = demo.notes["operator"]
    with (
        contextlib.suppress(OSError),
        urllib.request.urlopen(
            f"{op.gate_url}/v1/gate/{demo.namespace}/{MONITOR}?always200=true", timeout=2
        ) as r,
    ):
        demo.say(f"    rollout gate GET /v1/gate/{demo.namespace}/{MONITOR}: {r.read().decode()}")
    for p in spike:
        p.wait()
    demo.notes.update(timeline=timeline, spike_at=spike_at)


# -- stage 3: a rollout gated by DriftWatch -----------------------------------------------------------

ROLLOUT = "checkout"
ROLLOUTS_DIR = Path(__file__).resolve().parents[1] / "deploy" / "rollouts"
CANARY_SHIFT = 2.0  # sd: the canary's latency, against the stable Pods'


def step_argo_rollouts(demo: Demo) -> None:
    """Start the Argo Rollouts controller (built from its Go module) and install its CRDs."""
    if isinstance(demo.cluster, LocalCluster):
        t0 = time.monotonic()
        demo.cluster.enable_argo_rollouts()
        demo.say(
            f"    argo-rollouts controller and CRDs ready in {time.monotonic() - t0:.1f}s (out of cluster)"
        )
        return
    if demo.cluster.kubectl("get", "crd", "rollouts.argoproj.io", check=False).returncode != 0:
        demo.notes["no_argo"] = True
        demo.say("    Argo Rollouts is not installed in this cluster: the rollout stage is skipped")


def _rollout(version: str) -> dict[str, Any]:
    labels = {"app": ROLLOUT}
    gate_args = [
        {"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "monitor", "value": ROLLOUT},
        # the verdict must be about this revision's canary Pods (docs/rollout-gating.md)
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "gate-url", "value": "{gate-url}"},
        {"name": "interval", "value": "2s"},
        {"name": "count", "value": "30"},
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": ROLLOUT},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "app", "image": IMAGE, "env": [{"name": "V", "value": version}]}]
                },
            },
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 50},
                        {"analysis": {"templates": [{"templateName": "driftwatch-web"}], "args": gate_args}},
                    ]
                }
            },
        },
    }


def _rollout_status(demo: Demo) -> dict[str, Any]:
    out = demo.cluster.kubectl("get", "rollout", ROLLOUT, "-n", demo.namespace, "-o", "json", check=False)
    return (json.loads(out.stdout).get("status") or {}) if out.returncode == 0 else {}


class GateWatch:
    """The canary's verdict (``status.gate`` through the operator's gate) polled four times a second
    from a thread, every change kept with its time: a Fail lasts only until Argo Rollouts acts on it
    (the canary's Pods go, and with them the comparison), shorter than one round of the demo's loop of
    kubectl calls on a busy machine."""

    def __init__(self, url: str, t0: float, every: float = 0.25) -> None:
        """``t0``: the ``time.monotonic()`` the changes' times count from (the caller's clock, so its
        own lines and the verdicts can be printed in one order)."""
        import threading

        self.url, self.every = url, every
        self.changes: list[tuple[float, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="gate-watch")
        self._t0 = t0

    def __enter__(self) -> GateWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last: dict[str, Any] | None = None
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    gate = dict(json.loads(r.read()).get("gate") or {})
            except (OSError, ValueError):
                gate = last or {}  # unanswered: nothing changed as far as the demo can tell
            if gate != last:
                self.changes.append((time.monotonic() - self._t0, gate))
                last = gate
            self._stop.wait(self.every)


def _verdict_line(gate: dict[str, Any]) -> str:
    return f"verdict {gate.get('verdict', '-')}: {gate.get('message', '')}"[:280]


def _feed_rollout_pods(demo: Demo, fleet: SidecarFleet, shift: dict[str, float]) -> None:
    """Each running Pod of the Rollout gets its sidecar, fed with its revision's traffic."""
    for p in demo.items("pods"):
        labels = p["metadata"].get("labels") or {}
        name, pod_hash = p["metadata"]["name"], labels.get("rollouts-pod-template-hash", "")
        if labels.get("app") != ROLLOUT or p["status"].get("phase") != "Running" or name in fleet.sidecars:
            continue
        if pod_hash not in shift or p["metadata"].get("deletionTimestamp"):
            continue
        sigmas = shift[pod_hash]
        fleet.start(name).feed("spike" if sigmas else "normal", sigmas=sigmas, rate=150, seconds=300)
        what = f"shifted +{sigmas:g} sd (the canary)" if sigmas else "normal traffic"
        demo.say(f"    pod {name} ({pod_hash}): driftwatch sidecar, {what}")


def step_rollout(demo: Demo) -> None:
    """A canary Rollout gated by DriftWatch: the canary's Pods get shifted traffic, the stable Pods do
    not; the operator compares them (spec.gate.compare: stable-pods), the AnalysisRun fails and Argo
    Rollouts aborts the rollout."""
    if demo.notes.get("no_argo"):
        demo.say("    skipped (no Argo Rollouts)")
        return
    ns, op = demo.namespace, demo.notes["operator"]
    monitor = {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": ROLLOUT},
        "spec": {
            "selector": {"matchLabels": {"app": ROLLOUT}},
            "features": [{"name": "latency_ms", "type": "numeric"}],
            "baseline": {"minSamples": 100, "window": 1000, "adopt": {"after": "never"}},
            "gate": {"compare": "stable-pods", "minSamples": 300},
        },
    }
    demo.say("    " + demo.cluster.apply(monitor, namespace=ns).strip() + " (gate.compare: stable-pods)")
    demo.say("    " + demo.cluster.kubectl(
        "apply", "--server-side", "-n", ns, "-f", str(ROLLOUTS_DIR / "argo-analysistemplate-web.yaml")
    ).stdout.strip() + " (deploy/rollouts/argo-analysistemplate-web.yaml)")  # fmt: skip
    demo.wait(
        lambda: (
            demo.cluster.kubectl(
                "get", "configmap", f"driftwatch-{ROLLOUT}", "-n", ns, check=False
            ).returncode
            == 0
        ),
        timeout=30,
        what="the monitor's ConfigMap",
    )
    fleet = demo.cleanup.enter_context(
        SidecarFleet(rendered_config(demo.cluster, ns, ROLLOUT), demo.notes["work"] / "rollout")
    )

    def apply(version: str) -> None:
        text = json.dumps(_rollout(version)).replace("{gate-url}", op.gate_url)
        demo.say("    " + demo.cluster.apply(text, namespace=ns).strip() + f" ({version})")

    shift: dict[str, float] = {}
    apply("v1")
    demo.wait(lambda: _rollout_status(demo).get("phase") == "Healthy", timeout=120, what="Rollout v1 Healthy")
    shift[_rollout_status(demo)["stableRS"]] = 0.0
    _feed_rollout_pods(demo, fleet, shift)
    demo.show("rollout", ROLLOUT)
    apply("v2")
    t0 = time.monotonic()
    last, shown = "", 0
    deadline = t0 + 180
    gate_url = f"{op.gate_url}/v1/gate/{ns}/{ROLLOUT}?always200=true"
    with GateWatch(gate_url, t0) as watch:
        while True:
            st = _rollout_status(demo)
            read_at = time.monotonic() - t0
            canary = st.get("currentPodHash", "")
            if canary and canary != st.get("stableRS"):
                shift.setdefault(canary, CANARY_SHIFT)
            _feed_rollout_pods(demo, fleet, shift)
            runs = demo.items("analysisruns")
            run_phase = str((runs[-1].get("status") or {}).get("phase", "")) if runs else ""
            line = (
                f"rollout {st.get('phase', '')}, step {st.get('currentStepIndex', '?')}, "
                f"analysisrun {run_phase or '-'}"
            )
            # the rollout's line and every verdict the gate gave since the last round, in time order
            changes = watch.changes[shown:]
            shown += len(changes)
            timed = [(at, _verdict_line(g)) for at, g in changes]
            if line != last:
                timed.append((read_at, line))
                last = line
            for at, text in sorted(timed, key=lambda t: t[0]):
                demo.say(f"    t={at:5.1f}s  {text}")
            if st.get("abort"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the canary Rollout was not aborted within 180s")
            time.sleep(1)
    gates = [(at, str(gate.get("verdict") or "")) for at, gate in watch.changes]
    # the last verdict held until the abort (the plot marks the abort at the last point)
    demo.notes["gate_timeline"] = [*gates, (time.monotonic() - t0, gates[-1][1] if gates else "")]
    fleet.stop_feeding()
    demo.say("    the rollout was aborted; its status:")
    demo.show("rollout", ROLLOUT)
    demo.say(f"    message: {st.get('message', '')}")
    demo.show("analysisruns", "-o", "custom-columns=ANALYSISRUN:.metadata.name,PHASE:.status.phase,"
              "MESSAGE:.status.message")  # fmt: skip
    demo.show("replicasets", "-l", f"app={ROLLOUT}")


def step_plot(demo: Demo) -> None:
    """Plot the run: the monitor's drift score over time, coloured by phase, the spike marked."""
    timeline: list[tuple[float, str, float]] = demo.notes.get("timeline") or []
    if not timeline:
        demo.say("    nothing to plot")
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        demo.say("    matplotlib is not installed (pip install 'driftwatch[plot]'); skipped")
        return
    colours = {"Initializing": "#bbbbbb", "Stable": "#8fd18f", "Drifting": "#f08080"}
    ts = [t for t, _, _ in timeline]
    gate: list[tuple[float, str]] = demo.notes.get("gate_timeline") or []
    if gate:
        fig, (ax, gax) = plt.subplots(2, 1, figsize=(9, 6.4), gridspec_kw={"height_ratios": [3, 2]})
        _plot_gate(gax, gate)
    else:
        fig, ax = plt.subplots(figsize=(9, 3.6))
    for (t, phase, _), (t_next, _, _) in itertools.pairwise(timeline):
        ax.axvspan(t, t_next, color=colours.get(phase, "white"), alpha=0.5, lw=0)
    ax.plot(
        ts, [s for _, _, s in timeline], color="black", lw=1.5, drawstyle="steps-post", label="status.score"
    )
    ax.axvline(demo.notes["spike_at"], color="red", ls="--", lw=1, label="spike begins")
    for phase, colour in colours.items():
        ax.fill_between([], [], color=colour, alpha=0.5, label=phase)
    ax.set_xlabel("seconds since traffic started")
    ax.set_ylabel("drift score")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title(f"DriftMonitor {demo.namespace}/{MONITOR}: phase and score as the operator wrote them")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = Path.cwd() / "out"
    out.mkdir(exist_ok=True)
    path = out / f"driftwatch-demo-{time.strftime('%Y%m%d-%H%M%S')}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    demo.say(f"    plot: {path}")


def _plot_gate(ax: Any, gate: list[tuple[float, str]]) -> None:
    """The canary Rollout's verdict over time (canary Pods against stable Pods)."""
    levels = {"Pass": 0, "Inconclusive": 1, "Fail": 2}
    points = [(t, levels[v]) for t, v in gate if v in levels]
    if points:
        ax.plot([t for t, _ in points], [v for _, v in points], drawstyle="steps-post", color="black", lw=1.5)
    ax.set_yticks(list(levels.values()), list(levels))
    ax.set_ylim(-0.3, 2.3)
    ax.set_xlabel("seconds since the canary revision was applied")
    ax.set_title(f"Rollout {ROLLOUT}: the gate's verdict, canary Pods (+{CANARY_SHIFT:g} sd) vs stable Pods")
    ax.axvline(gate[-1][0], color="red", ls="--", lw=1, label="Argo Rollouts aborts")
    ax.legend(loc="upper left", fontsize=8)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Demo], None]


#: the demo, in order; later stages append or insert steps here
STEPS: list[Step] = [
    Step("Create the demo namespace", step_namespace),
    Step("Apply a Deployment and a CronJob", step_apply_workloads),
    Step("What the controller-manager made of the Deployment", step_show_deployment),
    Step("Wait for the CronJob to fire", step_wait_for_cronjob),
    Step("Install DriftWatch: CRD, RBAC, Redis, the operator", step_install_driftwatch),
    Step("Create a DriftMonitor for the Deployment", step_create_monitor),
    Step("Recreate the Pods: the webhook injects the sidecar", step_recreate_pods),
    Step("Send traffic: normal, then a spike", step_drift),
    Step("Start Argo Rollouts", step_argo_rollouts),
    Step("A canary Rollout gated by DriftWatch (canary vs stable Pods)", step_rollout),
    Step("Plot the run", step_plot),
]


# -- runner --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="driftwatch demo",
        description="Run DriftWatch on a local Kubernetes control plane (no Docker needed), start to finish.",
        epilog="exit codes:\n  0  finished\n  1  a step failed or binaries are missing (make k8s-bins)\n"
        "  2  bad option\n  130  interrupted (Ctrl-C); the control plane was stopped",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--kind",
        action="store_true",
        help="use the cluster KUBECONFIG points at (e.g. kind) instead of starting a local control plane",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the local cluster's directory (logs, certs)"
    )
    parser.add_argument("--skip-cronjob", action="store_true", help="do not wait for the CronJob to fire")
    parser.add_argument(
        "--cron-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the CronJob's Job (default 120)",
    )
    return parser.parse_args(argv)


@contextmanager
def open_cluster(args: argparse.Namespace) -> Iterator[Cluster]:
    """The demo's cluster: a fresh local control plane (stopped afterwards) or the existing one."""
    if args.kind:
        yield ExistingCluster()
        return
    with LocalCluster(keep=args.keep or None, progress=lambda line: print(line, flush=True)) as local:
        yield local
        print("[localcluster] tearing down", flush=True)


def run(demo: Demo, steps: list[Step]) -> None:
    for number, step in enumerate(steps, 1):
        demo.say(f"\n== {number}/{len(steps)} {step.title}")
        step.run(demo)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    try:
        with open_cluster(args) as cluster:
            demo = Demo(cluster=cluster, args=args)
            try:
                with demo.cleanup:  # operator, Redis, sidecars: stopped before the cluster
                    run(demo, STEPS)
            finally:
                if args.kind:  # a shared cluster: leave it as we found it
                    cluster.delete_namespace(demo.namespace)
    except BinariesMissing as e:
        print(f"driftwatch demo: {e}", file=sys.stderr)
        return 1
    except (ComponentError, TimeoutError) as e:
        print(f"driftwatch demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndriftwatch demo: interrupted; the control plane was stopped", file=sys.stderr)
        return 130
    left = "demo namespace deleted" if args.kind else "nothing left running"
    print(f"\ndemo finished in {time.monotonic() - start:.0f}s; {left}")
    return 0
