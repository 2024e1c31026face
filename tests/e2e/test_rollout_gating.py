"""Rollout gating end to end: the real Argo Rollouts controller consults DriftWatch's verdict.

On the local control plane (kube-scheduler + kwok run the Pods), with the operator running as its
ServiceAccount, a real Redis, and the AnalysisTemplates of ``deploy/rollouts/`` applied as shipped
(server-side). kwok starts no container, so what a Pod's containers would do runs here:

* each Pod's sidecar is a ``driftwatch sidecar`` process with the Pod's name
  (``driftwatch.devcluster.sidecars``), fed by ``driftwatch simulate``: the stable Pods get normal
  traffic, a canary Pod the same (``same``) or shifted by +1 sd (``shifted``);
* the ``job`` provider's Pod is marked ``kwok.x-k8s.io/status: custom`` by the template's test copy, so
  kwok leaves it alone; this test plays its kubelet: it runs the container's own command line
  (``driftwatch gate NAMESPACE/NAME --canary HASH --wait ...``) as the template's ServiceAccount and
  writes the Pod's status (Succeeded on exit 0, Failed otherwise) -- the exit code decides the Job,
  hence the measurement.

Every analysis passes ``canary-hash`` as ``valueFrom: podTemplateHashValue: Latest`` (as the shipped
Rollout does): the web gate's ``?canary=``, the Job's ``--canary``, so a verdict still about the previous
revision's canary is Inconclusive for the new one.

Each DriftMonitor compares canary Pods with stable Pods (``spec.gate.compare: stable-pods``): the
canary Pod learns its own baseline from its own traffic, so only this comparison can see the shift.

* ``web``: a canary like the stable Pods completes its steps (AnalysisRun ``Successful``); a shifted
  one is aborted (``Failed``);
* ``job``: the same, decided by the exit code of ``driftwatch gate``;
* ``prometheus``: the same, read from a real Prometheus scraping the operator's verdict metric (and
  the sidecars);
* shadow mode: a shifted canary completes, and the status and an Event say it would have failed.

The web and Prometheus steps pause after ``setWeight`` (``pause: {}``) and the test promotes once the
monitor's verdict is decisive: in production that pause is ``{duration: 10m}``, time for the canary to
gather samples; here the time it takes depends on the machine's load, so the test waits for the fact
instead. The job provider needs no pause: the Job itself waits (``--wait``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.sidecars import SidecarFleet, rendered_config
from driftwatch.devcluster.stack import (
    OperatorProcess,
    app_template,
    free_port,
    http_ok,
    operator_stack,
    service_account_kubeconfig,
    wait_for,
)

ROLLOUTS = Path(__file__).resolve().parents[2] / "deploy" / "rollouts"
TIMEOUT = 240.0
APP = "web"
HASH = "rollouts-pod-template-hash"
SHIFT_SD = 1.0
RATE = 100  # samples a second per Pod


@pytest.fixture(scope="module")
def op(argo_rollouts: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    work = tmp_path_factory.mktemp("gating")
    with operator_stack(argo_rollouts, work, prometheus_stubs=True) as (operator, _redis):
        yield operator


def apply_file(cluster: Cluster, namespace: str, name: str) -> None:
    """A deploy/rollouts file as shipped, server-side."""
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(ROLLOUTS / name))


def monitor(gate: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": APP},
        "spec": {
            "selector": {"matchLabels": {"app": APP}},
            "features": [{"name": "latency_ms", "type": "numeric"}],
            "baseline": {"minSamples": 100, "window": 1000, "adopt": {"after": "never"}},
            # a rarer false alarm than the default: every status round re-tests (overlapping) samples
            "sensitivity": {"falseAlarmsPer": 1_000_000},
            "gate": {"compare": "stable-pods", "minSamples": 200, **gate},
        },
    }


def rollout(version: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {"app": APP}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": APP},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": labels},
            "template": app_template(APP, version),
            "strategy": {"canary": {"steps": steps}},
        },
    }


def analysis_step(template: str, *args: tuple[str, str]) -> dict[str, Any]:
    return {
        "analysis": {
            "templates": [{"templateName": template}],
            "args": [
                {"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "monitor", "value": APP},
                # as deploy/rollouts/argo-rollout-canary.yaml: the verdict must be about this revision
                {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                *({"name": k, "value": v} for k, v in args),
            ],
        }
    }


@dataclass
class Gated:
    """One namespace's Rollout, its DriftMonitor and the processes standing in for its Pods."""

    cluster: Cluster
    namespace: str
    fleet: SidecarFleet
    #: template hash -> the shift (sd) its Pods' traffic carries
    shift: dict[str, float] = field(default_factory=dict)
    #: things to do on every poll while waiting (feed new Pods, play a Job's kubelet, promote)
    hooks: list[Callable[[], None]] = field(default_factory=list)
    seed: int = 0
    #: the last decisive status.gate seen while polling, per canary hash (after an abort the canary
    #: is gone and the verdict Inconclusive again)
    decided: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the analysis template takes ``canary-hash`` (web, job; the prometheus template has no such
    #: argument, and Argo keeps only the arguments a template declares)
    names_canary: bool = True

    def status(self) -> dict[str, Any]:
        got = self.cluster.kubectl("get", "rollout", APP, "-n", self.namespace, "-o", "json", check=False)
        return dict(json.loads(got.stdout).get("status") or {}) if got.returncode == 0 else {}

    def monitor_status(self) -> dict[str, Any]:
        got = self.cluster.kubectl_json("get", "driftmonitor", APP, "-n", self.namespace)
        return dict(got.get("status") or {})

    def pods(self) -> dict[str, str]:
        """Running Pods of the Rollout (not being deleted) -> their template hash."""
        listed = self.cluster.kubectl_json("get", "pods", "-n", self.namespace, "-l", f"app={APP}")["items"]
        return {
            p["metadata"]["name"]: p["metadata"]["labels"].get(HASH, "")
            for p in listed
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        }

    def feed_pods(self) -> None:
        """Every running Pod has its sidecar, fed with its revision's traffic."""
        for name, pod_hash in self.pods().items():
            if name in self.fleet.sidecars or pod_hash not in self.shift:
                continue
            sigmas = self.shift[pod_hash]
            self.seed += 1
            self.fleet.start(name).feed(
                "spike" if sigmas else "normal", sigmas=sigmas, rate=RATE, seed=self.seed, seconds=900
            )

    def wait(self, check: Callable[[], bool], what: str) -> None:
        seen: dict[str, Any] = {}

        def polled() -> bool:
            for hook in self.hooks:
                hook()
            gate = self.monitor_status().get("gate") or {}
            if gate.get("verdict") in ("Pass", "Fail"):
                self.decided[str((gate.get("canary") or {}).get("hash"))] = gate
            seen.update(rollout=self.status())
            return check()

        try:
            self.cluster.wait_until(polled, timeout=TIMEOUT, what=what, interval=1.0)
        except TimeoutError as e:
            seen["monitor"] = self.monitor_status()
            raise AssertionError(
                f"{e}; last seen: {json.dumps(seen, indent=1, default=str)[:6000]}"
            ) from None

    def release(self, version: str, steps: list[dict[str, Any]], shift_sd: float) -> str:
        """Apply ``version``; its Pods get traffic shifted by ``shift_sd``. Returns the new Pod hash."""
        before = self.status().get("currentPodHash", "")
        self.cluster.apply(rollout(version, steps), namespace=self.namespace)
        new: list[str] = []

        def started() -> bool:
            current = self.status().get("currentPodHash", "")
            if current and current != before:
                new[:] = [current]
                self.shift.setdefault(current, shift_sd)
            return bool(new)

        self.wait(started, f"Rollout {version} to start")
        return new[0]

    def healthy_at(self, pod_hash: str) -> None:
        def healthy() -> bool:
            st = self.status()
            return (
                st.get("phase") == "Healthy"
                and st.get("stableRS") == pod_hash
                and st.get("availableReplicas") == st.get("replicas")
            )

        self.wait(healthy, f"the Rollout Healthy on {pod_hash}")

    def aborted(self) -> None:
        self.wait(lambda: bool(self.status().get("abort")), "the Rollout aborted")

    def analysis_phase(self, pod_hash: str) -> str:
        runs = self.cluster.kubectl_json(
            "get", "analysisruns", "-n", self.namespace, "-l", f"{HASH}={pod_hash}"
        )["items"]
        if runs:  # Argo resolved podTemplateHashValue: Latest to this revision's hash
            args = {a["name"]: a.get("value") for a in runs[0]["spec"].get("args") or []}
            assert args.get("canary-hash") == (pod_hash if self.names_canary else None), args
        return str(runs[0].get("status", {}).get("phase", "")) if runs else ""

    def promote_when_decisive(self) -> None:
        """Play the operator of a paused canary: promote once the monitor's verdict on *this* canary is
        Pass or Fail (right after a release the status still holds the previous canary's)."""
        st = self.status()
        paused = any(c.get("reason") == "CanaryPauseStep" for c in st.get("pauseConditions") or [])
        gate = self.monitor_status().get("gate") or {}
        current = gate.get("canaryHash") == st.get("currentPodHash")
        if paused and current and gate.get("verdict") in ("Pass", "Fail"):
            self.cluster.kubectl(
                "patch", "rollout", APP, "-n", self.namespace, "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": {"pauseConditions": None}}),
            )  # fmt: skip


@pytest.fixture
def gated(argo_rollouts: Cluster, op: OperatorProcess, namespace: str, tmp_path: Path) -> Iterator[Gated]:
    """The test's namespace (opted in to injection) with the DriftMonitor; v1 of the Rollout running and
    its Pods' sidecars fed normal traffic. The test adds its templates and releases."""
    cluster = argo_rollouts
    cluster.create_namespace(
        namespace, labels={"driftwatch.io/e2e": "true", "driftwatch.io/inject": "enabled"}
    )
    cluster.apply(monitor({}), namespace=namespace)
    wait_for(
        lambda: (
            cluster.kubectl("get", "configmap", f"driftwatch-{APP}", "-n", namespace, check=False).returncode
            == 0
        ),
        30,
        "the monitor's ConfigMap",
    )
    with SidecarFleet(rendered_config(cluster, namespace, APP), tmp_path / "sidecars") as fleet:
        g = Gated(cluster, namespace, fleet)
        g.hooks.append(g.feed_pods)
        yield g


def start(g: Gated, steps: list[dict[str, Any]], gate: dict[str, Any] | None = None) -> str:
    """Set the monitor's gate, run v1 to Healthy (a first revision skips the steps); its hash."""
    if gate:
        g.cluster.apply(monitor(gate), namespace=g.namespace)
    v1 = g.release("v1", steps, 0.0)
    g.healthy_at(v1)
    g.feed_pods()
    return v1


def same_then_shifted(g: Gated, steps: list[dict[str, Any]]) -> None:
    """v2 like v1 completes its steps; v3, shifted, is aborted and v2 stays stable."""
    start(g, steps)
    v2 = g.release("v2", steps, 0.0)
    g.healthy_at(v2)
    assert g.analysis_phase(v2) == "Successful"

    v3 = g.release("v3", steps, SHIFT_SD)
    g.aborted()
    assert g.analysis_phase(v3) == "Failed"
    st = g.status()
    assert st["stableRS"] == v2
    assert g.decided[v2]["verdict"] == "Pass"
    gate = g.decided[v3]
    assert gate["verdict"] == "Fail"
    assert gate["canary"]["hash"] == v3
    assert gate["stable"]["hash"] == v2
    assert gate["message"].startswith("canary differs from stable: latency_ms mean"), gate["message"]


def test_web_provider(gated: Gated, op: OperatorProcess) -> None:
    apply_file(gated.cluster, gated.namespace, "argo-analysistemplate-web.yaml")
    gated.hooks.append(gated.promote_when_decisive)
    steps = [
        {"setWeight": 50},
        {"pause": {}},
        analysis_step("driftwatch-web", ("gate-url", op.gate_url), ("interval", "2s"), ("count", "15")),
    ]
    same_then_shifted(gated, steps)


class JobKubelet:
    """Plays the kubelet for the ``job`` provider's Pods: runs each Pod's container command here, as the
    Pod's ServiceAccount, and reports its exit code in the Pod's status."""

    def __init__(self, g: Gated, kubeconfig: Path) -> None:
        self.g = g
        self.kubeconfig = kubeconfig
        self.running: dict[str, subprocess.Popen[str]] = {}
        self.exit_codes: dict[str, int] = {}
        #: the canary each Job's command named (``--canary``), per Pod
        self.canaries: dict[str, str] = {}

    def __call__(self) -> None:
        pods = self.g.cluster.kubectl_json(
            "get", "pods", "-n", self.g.namespace, "-l", "analysisrun.argoproj.io/uid"
        )["items"]
        for p in pods:
            name = p["metadata"]["name"]
            if name in self.running or name in self.exit_codes:
                continue
            assert p["metadata"]["annotations"]["kwok.x-k8s.io/status"] == "custom"
            command = p["spec"]["containers"][0]["command"]
            assert command[:2] == ["driftwatch", "gate"], command
            self.canaries[name] = command[command.index("--canary") + 1]
            argv = [sys.executable, "-m", "driftwatch", *command[1:], "--kubeconfig", str(self.kubeconfig)]
            self.running[name] = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        for name, proc in list(self.running.items()):
            if proc.poll() is None:
                continue
            del self.running[name]
            self.exit_codes[name] = proc.returncode
            self.report(name, proc.returncode, (proc.stdout.read() if proc.stdout else "")[-500:])

    def report(self, pod: str, code: int, output: str) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "message": output,
            "startedAt": now,
            "finishedAt": now,
        }
        status = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "startTime": now,
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [
                {
                    "name": "gate",
                    "image": "driftwatch",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        }
        self.g.cluster.kubectl(
            "patch", "pod", pod, "-n", self.g.namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )  # fmt: skip

    def stop(self) -> None:
        for proc in self.running.values():
            proc.kill()
            proc.wait()


def test_job_provider(gated: Gated, tmp_path: Path) -> None:
    cluster, ns = gated.cluster, gated.namespace
    # the shipped template, with the one change kwok needs: its Pods' status is this test's to write
    template = list(yaml.safe_load_all((ROLLOUTS / "argo-analysistemplate-job.yaml").read_text()))
    pod_meta = template[0]["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"].setdefault(
        "metadata", {}
    )
    pod_meta["annotations"] = {"kwok.x-k8s.io/status": "custom"}
    cluster.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=yaml.safe_dump_all(template))
    kubelet = JobKubelet(
        gated, service_account_kubeconfig(cluster, tmp_path / "gate.kubeconfig", "1h", "driftwatch-gate", ns)
    )
    gated.hooks.append(kubelet)
    try:
        same_then_shifted(gated, [{"setWeight": 50}, analysis_step("driftwatch-job", ("wait", "3m"))])
    finally:
        kubelet.stop()
    assert sorted(kubelet.exit_codes.values()) == [0, 1]  # v2's Job passed, v3's failed
    # each Job asked about its own revision's canary: v3's could not exit 0 on v2's Pass
    st = gated.status()
    assert set(kubelet.canaries.values()) == {st["stableRS"], st["currentPodHash"]}, kubelet.canaries


@contextlib.contextmanager
def prometheus(tmp_path: Path, targets: Callable[[], list[str]]) -> Iterator[str]:
    """A real Prometheus (Debian's) scraping ``targets()`` every second, re-read from a file_sd file."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (bash scripts/install-system-deps.sh)")
    sd = tmp_path / "targets.json"
    sd.write_text(json.dumps([{"targets": targets()}]))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: driftwatch\n    file_sd_configs: [{{files: ['{sd}'], refresh_interval: 1s}}]\n"
    )
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{url}/-/ready", timeout=1), 30, "Prometheus ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def test_prometheus_provider(gated: Gated, op: OperatorProcess, tmp_path: Path) -> None:
    def targets() -> list[str]:
        return [op.gate_url.removeprefix("http://")] + [
            s.metrics_url.removeprefix("http://").removesuffix("/metrics")
            for s in gated.fleet.sidecars.values()
        ]

    with prometheus(tmp_path, targets) as url:
        sd = tmp_path / "targets.json"
        gated.hooks.append(lambda: sd.write_text(json.dumps([{"targets": targets()}])))
        apply_file(gated.cluster, gated.namespace, "argo-analysistemplate-prometheus.yaml")
        gated.names_canary = False  # the metric has no canary label: not scoped (docs/rollout-gating.md)
        gated.hooks.append(gated.promote_when_decisive)
        steps = [
            {"setWeight": 50},
            {"pause": {}},
            analysis_step(
                "driftwatch-prometheus", ("prometheus-address", url), ("interval", "2s"), ("count", "15")
            ),
        ]
        same_then_shifted(gated, steps)
        # Prometheus scraped the sidecars too: their per-pod series are there
        with urlopen_json(f"{url}/api/v1/query?query=count(driftwatch_drift_score)") as doc:
            assert doc["data"]["result"], doc


@contextlib.contextmanager
def urlopen_json(url: str) -> Iterator[Any]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as r:
        yield json.loads(r.read())


def test_shadow_mode_completes_and_says_it_would_have_failed(gated: Gated, op: OperatorProcess) -> None:
    apply_file(gated.cluster, gated.namespace, "argo-analysistemplate-web.yaml")
    gated.hooks.append(gated.promote_when_decisive)
    steps = [
        {"setWeight": 50},
        {"pause": {}},
        analysis_step("driftwatch-web", ("gate-url", op.gate_url), ("interval", "2s"), ("count", "15")),
    ]
    start(gated, steps, gate={"mode": "shadow"})
    v2 = gated.release("v2", steps, SHIFT_SD)
    gated.healthy_at(v2)
    assert gated.analysis_phase(v2) == "Successful"
    decided = gated.decided[v2]  # what the monitor said when the canary was promoted
    assert decided["mode"] == "shadow"
    assert decided["verdict"] == "Fail"
    assert decided["message"].startswith("shadow mode (the gate passes): would have failed"), decided
    events = gated.cluster.kubectl_json(
        "get",
        "events",
        "-n",
        gated.namespace,
        "--field-selector",
        f"involvedObject.name={APP},reason=ShadowVerdict",
    )["items"]
    messages = [e["message"] for e in events]
    assert any(
        m.startswith("shadow mode (the gate passes): would have failed: canary differs from stable")
        for m in messages
    ), messages


def test_every_rollouts_file_applies_and_the_gate_answers_flaggers_webhook(
    argo_rollouts: Cluster, op: OperatorProcess, namespace: str
) -> None:
    """Every file of deploy/rollouts/ applies server-side against the real CRDs (Argo Rollouts' and
    Flagger's, from their modules); the operator's gate answers the POST Flagger's confirm-promotion
    webhook sends for the Canary there (503 Inconclusive: no Pods yet, so Flagger would wait)."""
    from driftwatch.devcluster.binaries import Binaries
    from driftwatch.devcluster.stack import wait_established

    cluster = argo_rollouts
    crds = Binaries.locate().flagger_crds
    if crds is None:
        pytest.skip("Flagger's CRDs are not in the cache: bash scripts/build-k8s.sh flagger")
    cluster.kubectl("apply", "--server-side", "-f", str(crds))
    wait_established(cluster, ["canaries.flagger.app", "metrictemplates.flagger.app"])
    files = sorted(ROLLOUTS.glob("*.yaml"))
    assert {f.name for f in files} >= {
        "argo-analysistemplate-web.yaml",
        "argo-analysistemplate-prometheus.yaml",
        "argo-analysistemplate-job.yaml",
        "argo-clusteranalysistemplate-web.yaml",
        "argo-rollout-canary.yaml",
        "flagger-metrictemplate.yaml",
        "flagger-canary.yaml",
    }
    try:
        for f in files:
            out = cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(f)).stdout
            assert "serverside-applied" in out, (f.name, out)
        for kind, name in (
            ("analysistemplate", "driftwatch-web"),
            ("analysistemplate", "driftwatch-prometheus"),
            ("analysistemplate", "driftwatch-job"),
            ("rollout", "payments"),
            ("driftmonitor", "payments"),
            ("metrictemplates.flagger.app", "driftwatch-verdict"),
            ("canaries.flagger.app", "payments"),
        ):
            cluster.kubectl("get", kind, name, "-n", namespace)
        cluster.kubectl("get", "clusteranalysistemplate", "driftwatch-web")

        body = json.dumps(
            {"name": "payments", "namespace": namespace, "phase": "Progressing", "checksum": "x",
             "metadata": {"monitor": "payments"}}
        ).encode()  # fmt: skip

        def answered() -> tuple[int, dict[str, Any]] | None:
            import urllib.error
            import urllib.request

            req = urllib.request.Request(
                f"{op.gate_url}/v1/gate", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                doc = json.loads(e.read())
                return None if e.code == 404 else (e.code, doc)  # 404: the operator has not seen it yet

        code, doc = wait_for(answered, 30, "the gate to know the Flagger Canary's DriftMonitor")
        assert code == 503
        assert doc["verdict"] == "Inconclusive"
        assert doc["monitor"] == f"{namespace}/payments"
    finally:
        cluster.kubectl(
            "delete", "clusteranalysistemplate", "driftwatch-web", "--ignore-not-found", check=False
        )
