"""Run the operator against a cluster from this machine, as it runs in one: its CRD, its RBAC, its
ServiceAccount's token, a Redis. Shared by the e2e tests, ``driftwatch demo`` and ``bench/operator.py``.

The operator runs as a subprocess with a kubeconfig holding the ``driftwatch-operator``
ServiceAccount's token, so every request it makes is checked against deploy/rbac/operator-rbac.yaml --
the tests prove the RBAC is enough, not just that an admin could do it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from driftwatch.devcluster.processes import http_ok

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "driftwatch.io_driftmonitors.yaml"
RBAC_FILE = REPO / "deploy" / "rbac" / "operator-rbac.yaml"
OPERATOR_NAMESPACE = "driftwatch"
SERVICE_ACCOUNT = "driftwatch-operator"


#: the operator's default ``webhook_config_name`` (``operator/options.py``)
WEBHOOK_CONFIGURATION = "driftwatch-sidecar-injector"


class ClusterLike(Protocol):
    """What we need of ``driftwatch.devcluster.Cluster``."""

    kubeconfig: Path
    server: str

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]: ...


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``check()`` until it returns something truthy; return that or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- Redis -----------------------------------------------------------------------------------------


class RedisServer:
    """A throwaway redis-server on a free loopback port, no persistence.

    The one Redis starter for the demo, the benchmarks and the integration and e2e tests. ``stop()``
    shuts it down and removes the data directory it made; ``kill()`` is an outage instead (SIGKILL,
    directory kept), after which ``start()`` brings it back on the same port.
    """

    def __init__(self, port: int | None = None, workdir: Path | None = None, acl: str | None = None) -> None:
        self.port = port or free_port()
        #: an ACL file's content (``user default off`` + logins), as the chart's Redis runs; None: open
        self.acl = acl
        self.proc: subprocess.Popen[bytes] | None = None
        self._own_dir = workdir is None
        self.dir = str(workdir) if workdir is not None else tempfile.mkdtemp(prefix="driftwatch-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: `make system-deps` installs it")
        Path(self.dir).mkdir(parents=True, exist_ok=True)
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", self.dir, "--protected-mode", "no", "--loglevel", "warning"]
        if self.acl is not None:
            acl_file = Path(self.dir) / "users.acl"
            acl_file.write_text(self.acl)
            acl_file.chmod(0o600)
            cmd += ["--aclfile", str(acl_file)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up, if it wants a login
            return False

        wait_for(up, 10, f"redis-server on port {self.port}", interval=0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: an outage, not a shutdown. The port and directory stay for ``start()``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- cluster setup -----------------------------------------------------------------------------------


def wait_established(cluster: ClusterLike, names: list[str], timeout: float = 60) -> None:
    """Poll until every named CRD reports ``Established=True``.

    Not ``kubectl wait --for=condition=Established``: right after an apply the CRD may have no
    conditions at all yet, and kubectl has been seen to give up on that instead of waiting.
    """

    def established() -> bool:
        for name in names:
            got = cluster.kubectl("get", "crd", name, "-o", "json", check=False)
            if got.returncode != 0:
                return False
            conditions = json.loads(got.stdout).get("status", {}).get("conditions") or []
            if not any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                return False
        return True

    wait_for(established, timeout, f"CRDs {', '.join(names)} to be Established", interval=0.3)


def install_crd(cluster: ClusterLike, timeout: float = 60) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    wait_established(cluster, ["driftmonitors.driftwatch.io"], timeout)


def _stub_crd(kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com", "labels": {"driftwatch.io/stub": "true"}},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def install_prometheus_crd_stubs(cluster: ClusterLike, timeout: float = 60) -> None:
    """Schema-less stand-ins for the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, so the
    operator's "create them when the CRDs exist" path runs on a cluster without kube-prometheus-stack.
    Skipped if the real ones are installed."""
    names = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")
    existing = cluster.kubectl("get", "crd", *names, "--ignore-not-found", "-o", "name", check=False).stdout
    stubs = [
        _stub_crd(k, p)
        for k, p in (("ServiceMonitor", "servicemonitors"), ("PrometheusRule", "prometheusrules"))
        if f"{p}.monitoring.coreos.com" not in existing
    ]
    if stubs:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(stubs))
        wait_established(cluster, [s["metadata"]["name"] for s in stubs], timeout)


def remove_prometheus_crd_stubs(cluster: ClusterLike) -> None:
    cluster.kubectl("delete", "crd", "-l", "driftwatch.io/stub=true", "--wait=false", check=False)


def install_rbac(cluster: ClusterLike) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(ns))
    cluster.kubectl("apply", "-f", str(RBAC_FILE))


def service_account_kubeconfig(
    cluster: ClusterLike,
    path: Path,
    duration: str = "4h",
    account: str = SERVICE_ACCOUNT,
    namespace: str = OPERATOR_NAMESPACE,
) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount (a TokenRequest token); by default the
    operator's."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, f"--duration={duration}"
    ).stdout.strip()
    view = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    c = dict(view["clusters"][0]["cluster"])
    ca = c.get("certificate-authority")
    if ca and not Path(ca).is_absolute():
        c["certificate-authority"] = str((Path(cluster.kubeconfig).parent / ca).resolve())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": c}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# --- the operator process -----------------------------------------------------------------------------


class OperatorProcess:
    """``driftwatch operator`` as a subprocess; restartable (tests stop it to check failurePolicy)."""

    def __init__(
        self,
        kubeconfig: Path,
        redis_url: str,
        *,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        aggregate_interval: float = 1.0,
        publish_interval: float = 1.0,
        sidecar_image: str = "driftwatch:local",
        env: Mapping[str, str] | None = None,
        operator_namespace: str = OPERATOR_NAMESPACE,
    ) -> None:
        self.kubeconfig = kubeconfig
        #: extra environment (DRIFTWATCH_REDIS_PASSWORD, ...): secrets reach the operator only this way
        self.env = dict(env or {})
        self.webhook_port = free_port()
        self.gate_port = free_port()
        self.log_path = log_path or Path(tempfile.mkdtemp(prefix="driftwatch-operator-")) / "operator.log"
        self.args = [
            sys.executable,
            "-m",
            "driftwatch",
            "operator",
            "--operator-namespace",
            operator_namespace,
            "--redis-url",
            redis_url,
            "--webhook-mode",
            "url",
            "--webhook-host",
            "127.0.0.1",
            "--webhook-port",
            str(self.webhook_port),
            "--gate-host",
            "127.0.0.1",
            "--gate-port",
            str(self.gate_port),
            "--aggregate-interval",
            str(aggregate_interval),
            "--sidecar-publish-interval",
            str(publish_interval),
            "--stale-after",
            str(max(5.0, 5 * publish_interval)),
            "--sidecar-image",
            sidecar_image,
            *extra_args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def gate_url(self) -> str:
        return f"http://127.0.0.1:{self.gate_port}"

    def start(self, timeout: float = 60) -> OperatorProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTWATCH_")}
        env["KUBECONFIG"] = str(self.kubeconfig)
        env.pop("POD_NAMESPACE", None)
        env.update(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"operator exited {self.proc.returncode}; log: {self.log_path}\n{self.tail()}"
                )
            return http_ok(f"{self.gate_url}/readyz", timeout=1)

        wait_for(ready, timeout, f"operator readiness (log {self.log_path})")
        return self

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def operator_stack(
    cluster: ClusterLike, workdir: Path, prometheus_stubs: bool = False, **kwargs: Any
) -> Iterator[tuple[OperatorProcess, RedisServer]]:
    """CRD + RBAC + Redis + the operator as its ServiceAccount (``prometheus_stubs``: with the
    ServiceMonitor/PrometheusRule stand-in CRDs); torn down in reverse, including the webhook
    configuration the operator registered -- left behind, it would send every later Pod of the shared
    cluster to a webhook nobody serves."""
    if prometheus_stubs:
        install_prometheus_crd_stubs(cluster)
    install_crd(cluster)
    install_rbac(cluster)
    kubeconfig = service_account_kubeconfig(cluster, workdir / "operator.kubeconfig")
    try:
        with RedisServer() as redis:
            op = OperatorProcess(kubeconfig, redis.url, log_path=workdir / "operator.log", **kwargs)
            try:
                yield op.start(), redis
            finally:
                op.stop()
    finally:
        cluster.kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "--ignore-not-found",
                        check=False)  # fmt: skip
        if prometheus_stubs:
            remove_prometheus_crd_stubs(cluster)


#: the image of test workloads: never pulled (kwok starts no container)
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def app_template(app: str, version: str) -> dict[str, Any]:
    """The Pod template of a test workload (Deployment, Rollout) labelled ``app``: one pause container
    whose ``VERSION`` makes each version a template of its own (a new ReplicaSet, a new pod-template-hash)."""
    container = {"name": "app", "image": PAUSE_IMAGE, "env": [{"name": "VERSION", "value": version}]}
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container]}}
