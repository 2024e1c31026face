"""The CLI's kubectl habits against the real API server, run by the real kubectl:

* a kubeconfig with two contexts on the session's cluster, each with its own namespace: the namespace
  comes from the current context, ``--context`` switches it, ``-n`` and ``NAMESPACE/NAME`` override it,
  ``-A`` adds the NAMESPACE column;
* every ``-o`` format parsed back, the JSON list compared with what ``kubectl get -o json`` prints;
* ``kubectl driftwatch status|version`` and ``kubectl __complete driftwatch ...`` with the plugin's
  entry points on PATH; ``version`` through the API server's Service proxy to a running operator;
* ``status --watch`` across a kube-apiserver restart (SIGKILL) and a 410 Gone, and Ctrl-C exiting 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from driftwatch import __version__
from driftwatch.devcluster import Cluster, LocalCluster
from driftwatch.devcluster.stack import OperatorProcess, install_crd, operator_stack
from driftwatch.kube import client, credentials
from driftwatch.kube.watch import Watcher
from driftwatch.vocab.names import KIND

#: generous: a busy two-core machine; a wait ends as soon as its line arrives
WAIT = 120.0


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


@pytest.fixture
def namespaces(cluster: Cluster, namespace: str) -> Iterator[tuple[str, str]]:
    """The test's namespace and a second one."""
    other = f"{namespace[:55]}-b"
    cluster.create_namespace(other, labels={"driftwatch.io/e2e": "true"})
    yield namespace, other
    cluster.delete_namespace(other, wait=False)


def two_contexts(cluster: Cluster, path: Path, first: str, second: str) -> Path:
    """The session's kubeconfig as two contexts: ``alpha`` (namespace ``first``, current), ``beta``."""
    view = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    c, u = dict(view["clusters"][0]["cluster"]), dict(view["users"][0]["user"])
    base = Path(cluster.kubeconfig).parent
    for entry, field in ((c, "certificate-authority"), (u, "client-certificate"), (u, "client-key")):
        if entry.get(field) and not Path(entry[field]).is_absolute():
            entry[field] = str((base / entry[field]).resolve())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": c}],
        "users": [{"name": "admin", "user": u}],
        "contexts": [
            {"name": "alpha", "context": {"cluster": "local", "user": "admin", "namespace": first}},
            {"name": "beta", "context": {"cluster": "local", "user": "admin", "namespace": second}},
        ],
        "current-context": "alpha",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_monitor(
    cluster: Cluster, namespace: str, name: str, phase: str = "Stable", verdict: str = "Pass"
) -> None:
    cluster.apply(
        {
            "apiVersion": "driftwatch.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": name}}, "features": [{"name": "latency_ms"}]},
        }
    )
    set_status(cluster, namespace, name, phase, verdict)


def set_status(cluster: Cluster, namespace: str, name: str, phase: str, verdict: str) -> None:
    obj = cluster.kubectl_json("get", "driftmonitor", name, "-n", namespace)
    feature = {"name": "latency_ms", "key": "", "state": phase, "score": 0.5, "severity": "none",
               "detector": "cusum-mean-up", "pods": 2}  # fmt: skip
    status = {"phase": phase, "verdict": verdict, "lastUpdate": now(), "features": [feature],
              "observedGeneration": obj["metadata"]["generation"]}  # fmt: skip
    cluster.kubectl(
        "patch", "driftmonitor", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def dw(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``driftwatch ARGS`` with ``$KUBECONFIG`` (as kubectl would be run), no --kubeconfig."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "driftwatch", *args], capture_output=True, text=True, timeout=60, env=env
    )


def table(text: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = text.splitlines()
    return header.split(), [r.split() for r in rows]


@pytest.mark.usefixtures("crd")
def test_namespace_comes_from_the_context_and_context_switches(
    cluster: Cluster, namespaces: tuple[str, str], tmp_path: Path
) -> None:
    a, b = namespaces
    make_monitor(cluster, a, "payments", "Drifting", "Fail")
    make_monitor(cluster, b, "search")
    config = two_contexts(cluster, tmp_path / "config", a, b)

    head, rows = table(dw(config, "status").stdout)
    assert head[0] == "NAME"  # no NAMESPACE column without -A
    assert [r[:3] for r in rows] == [["payments", "Drifting", "latency_ms"]]
    assert [r[0] for r in table(dw(config, "status", "--context", "beta").stdout)[1]] == ["search"]
    assert [r[0] for r in table(dw(config, "status", "-n", b).stdout)[1]] == ["search"]
    assert [r[0] for r in table(dw(config, "status", f"{b}/search").stdout)[1]] == ["search"]

    missing = dw(config, "status", "search")  # not in alpha's namespace
    assert missing.returncode == 3
    assert f"{a}/search not found" in missing.stderr

    head, rows = table(dw(config, "status", "-A").stdout)
    assert head[:2] == ["NAMESPACE", "NAME"]
    assert {(r[0], r[1]) for r in rows} >= {(a, "payments"), (b, "search")}

    gate = dw(config, "gate", "payments")  # Fail in alpha's namespace
    assert (gate.returncode, json.loads(gate.stdout)["monitor"]) == (1, f"{a}/payments")
    assert dw(config, "gate", "search", "--context", "beta").returncode == 0
    wrong = dw(config, "gate", f"{b}/search", "-n", a)
    assert wrong.returncode == 2
    assert "-n says" in wrong.stderr
    unknown = dw(config, "status", "--context", "gamma")
    assert unknown.returncode == 3
    assert "contexts: alpha, beta" in unknown.stderr


@pytest.mark.usefixtures("crd")
def test_each_output_format_parses_back(cluster: Cluster, namespace: str) -> None:
    make_monitor(cluster, namespace, "payments", "Drifting", "Fail")
    make_monitor(cluster, namespace, "search")
    kc = Path(cluster.kubeconfig)

    head, rows = table(dw(kc, "status", "-n", namespace).stdout)
    assert head == ["NAME", "PHASE", "FEATURE", "KEY", "STATE", "SCORE", "SEVERITY", "VERDICT", "AGE"]
    assert [(r[0], r[1], r[7]) for r in rows] == [
        ("payments", "Drifting", "Fail"),
        ("search", "Stable", "Pass"),
    ]
    head, rows = table(dw(kc, "status", "-n", namespace, "-o", "wide").stdout)
    assert head[-3:] == ["DETECTOR", "PODS", "UPDATED"]
    assert rows[0][-3:-1] == ["cusum-mean-up", "2"]

    as_json = json.loads(dw(kc, "status", "-n", namespace, "-o", "json").stdout)
    kubectl = cluster.kubectl_json("get", "driftmonitors", "-n", namespace)
    assert as_json == kubectl  # what kubectl prints: a v1 List, apiVersion/kind set, no managedFields
    as_yaml = yaml.safe_load(dw(kc, "status", "-n", namespace, "-o", "yaml").stdout)
    assert as_yaml == as_json

    one = json.loads(dw(kc, "status", "payments", "-n", namespace, "-o", "json").stdout)
    assert one == cluster.kubectl_json("get", "driftmonitor", "payments", "-n", namespace)
    one_yaml = yaml.safe_load(dw(kc, "status", "payments", "-n", namespace, "-o", "yaml").stdout)
    assert one_yaml == one


# --- the kubectl plugin --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PATH directory with the package's two kubectl entry points, written as pip writes console
    scripts (pyproject.toml's [project.scripts]: the same targets), for this checkout's interpreter."""
    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    bindir = tmp_path_factory.mktemp("plugin-bin")
    for name in ("kubectl-driftwatch", "kubectl_complete-driftwatch"):
        module, func = scripts[name].split(":")
        path = bindir / name
        path.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n")
        path.chmod(0o755)
    return bindir


def kubectl_with_plugin(
    cluster: Cluster, plugin_path: Path, kubeconfig: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": os.pathsep.join([str(plugin_path), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    return subprocess.run(
        [str(cluster.kubectl_path), *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.usefixtures("crd")
def test_kubectl_runs_the_plugin_and_its_completion(
    cluster: Cluster, namespaces: tuple[str, str], tmp_path: Path, plugin_path: Path
) -> None:
    a, b = namespaces
    make_monitor(cluster, a, "payments", "Drifting", "Fail")
    config = two_contexts(cluster, tmp_path / "config", a, b)

    listed = kubectl_with_plugin(cluster, plugin_path, config, "plugin", "list")
    assert "kubectl-driftwatch" in listed.stdout, listed.stderr
    status = kubectl_with_plugin(cluster, plugin_path, config, "driftwatch", "status")
    assert status.returncode == 0, status.stderr
    assert [r[:2] for r in table(status.stdout)[1]] == [["payments", "Drifting"]]
    version = kubectl_with_plugin(cluster, plugin_path, config, "driftwatch", "version", "--client")
    assert version.stdout.strip() == f"Client Version: {__version__}"

    def complete(*words: str) -> list[str]:
        out = kubectl_with_plugin(cluster, plugin_path, config, "__complete", "driftwatch", *words)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    assert complete("sta")[:2] == ["status", ":4"]
    assert complete("status", "-o", "ya")[:2] == ["yaml", ":4"]
    assert complete("gate", "pay")[:2] == ["payments", ":4"]  # asked of the API server, alpha's namespace
    assert complete("status", "--context", "")[:3] == ["alpha", "beta", ":4"]
    assert a in complete("status", "-n", "")  # namespaces, from the API server


def host_address() -> str | None:
    """A non-loopback IPv4 address of this host: the API server's Service proxy refuses loopback
    endpoints (and Endpoints validation rejects them)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the outgoing interface
        address: str = s.getsockname()[0]
        return None if address.startswith("127.") else address
    return None


@pytest.fixture
def operator(cluster: Cluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator, its HTTP port on every address (the Service proxy connects to the host's); for
    one test only, since it writes the status of every DriftMonitor it sees."""
    with operator_stack(cluster, tmp_path, extra_args=["--gate-host", "0.0.0.0"]) as (op, _):
        yield op


def test_version_through_the_api_server_proxy(
    cluster: Cluster, namespace: str, operator: OperatorProcess, plugin_path: Path
) -> None:
    address = host_address()
    if address is None:
        pytest.skip("no non-loopback address for the Service's endpoint")
    # The API server proxies only to an endpoint that is a Pod's IP (it checks the targetRef): a Pod
    # that is never scheduled stands in for the operator's, with this host's address as its IP.
    meta = {"name": "dw-operator", "namespace": namespace}
    container = {"name": "operator", "image": "driftwatch"}
    stand_in = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"schedulerName": "none", "containers": [container]}}  # fmt: skip
    cluster.apply(stand_in)
    pod_ip = {"status": {"podIP": address, "podIPs": [{"ip": address}]}}
    cluster.kubectl("patch", "pod", "dw-operator", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps(pod_ip))  # fmt: skip
    port = {"name": "http", "port": operator.gate_port}
    address_of_pod = {"ip": address, "targetRef": {"kind": "Pod", **meta}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta,
               "spec": {"ports": [{**port, "port": 8080, "targetPort": operator.gate_port}]}}  # fmt: skip
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
                 "subsets": [{"addresses": [address_of_pod], "ports": [port]}]}  # fmt: skip
    cluster.apply([service, endpoints])
    kc = Path(cluster.kubeconfig)
    args = ("driftwatch", "version", "--operator-namespace", namespace, "--operator-service", "dw-operator")
    through_kubectl = kubectl_with_plugin(cluster, plugin_path, kc, *args)
    assert through_kubectl.returncode == 0, through_kubectl.stderr
    assert through_kubectl.stdout.splitlines() == [
        f"Client Version: {__version__}",
        f"Operator Version: {__version__}",
    ]

    direct = json.loads(dw(kc, "version", "--operator-url", operator.gate_url, "-o", "json").stdout)
    assert direct["operatorVersion"]["version"] == direct["clientVersion"]["version"] == __version__
    as_yaml = yaml.safe_load(dw(kc, *args[1:], "-o", "yaml").stdout)
    assert as_yaml["operatorVersion"] == direct["operatorVersion"]

    absent = dw(kc, "version", "--operator-namespace", namespace, "--operator-service", "nope")
    assert absent.returncode == 1
    assert absent.stdout.strip() == f"Client Version: {__version__}"  # the client's is still shown
    assert "nope" in absent.stderr


# --- status --watch ------------------------------------------------------------------------------------


class Lines:
    """A subprocess's stdout, line by line, read on a thread so a wait can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))

    def wait_for(self, *words: str, timeout: float = WAIT) -> list[str]:
        """The next row with all ``words`` as columns (earlier lines are kept in ``seen``)."""
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout)
        while True:
            left = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
            try:
                line = self.q.get(timeout=max(0.1, left))
            except queue.Empty:
                raise AssertionError(f"no row with {words} within {timeout:.0f}s; saw {self.seen}") from None
            self.seen.append(line)
            if all(w in line.split() for w in words):
                return line.split()


@pytest.mark.usefixtures("crd")
def test_watch_follows_changes_across_an_apiserver_restart(cluster: Cluster, namespace: str) -> None:
    if not isinstance(cluster, LocalCluster):
        pytest.skip("restarts the local control plane's kube-apiserver")
    make_monitor(cluster, namespace, "payments")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftwatch", "status", "--watch", "-n", namespace],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        lines = Lines(proc)
        assert lines.wait_for("NAME", "PHASE")[0] == "NAME"
        lines.wait_for("payments", "Stable", "Pass")
        set_status(cluster, namespace, "payments", "Drifting", "Fail")
        lines.wait_for("payments", "Drifting", "Fail")

        took = cluster.restart_apiserver(down=3.0)  # SIGKILL: the watch's connection just drops
        set_status(cluster, namespace, "payments", "Stable", "Pass")
        lines.wait_for("payments", "Stable", "Pass")
        make_monitor(cluster, namespace, "late", "Drifting", "Fail")
        lines.wait_for("late", "Drifting", "Fail")
        print(f"\nwatch resumed across a kube-apiserver restart ({took:.1f}s down to ready)")

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.usefixtures("crd")
def test_watch_relists_on_410_gone_and_reports_only_what_changed(cluster: Cluster, namespace: str) -> None:
    """A resource version the API server no longer has (compacted; here the oldest there is) answers 410
    Gone: the watcher lists again and reports the monitor that changed, the one deleted, and nothing
    else."""
    for name in ("same", "changed", "deleted"):
        make_monitor(cluster, namespace, name)
    creds = credentials.load(str(cluster.kubeconfig))

    async def go() -> tuple[list[tuple[str, str]], int]:
        async with client.Kube(creds) as kube:
            watcher = Watcher(kube, KIND, namespace)
            assert sorted(m["metadata"]["name"] for m in await watcher.snapshot()) == [
                "changed",
                "deleted",
                "same",
            ]
            await asyncio.to_thread(set_status, cluster, namespace, "changed", "Drifting", "Fail")
            await asyncio.to_thread(cluster.kubectl, "delete", "driftmonitor", "deleted", "-n", namespace)
            watcher.resource_version = "1"  # long compacted
            events: list[tuple[str, str]] = []
            async for kind, obj in watcher.changes():
                events.append((kind, obj["metadata"]["name"]))
                if len(events) == 2:
                    return events, watcher.relists
            raise AssertionError("the watch ended")

    events, relists = asyncio.run(asyncio.wait_for(go(), WAIT))
    assert relists == 1
    assert sorted(events) == [("DELETED", "deleted"), ("MODIFIED", "changed")]
