"""``LocalCluster``: etcd + kube-apiserver + kube-controller-manager as local processes.

Why: the e2e tests and ``driftwatch demo`` need a real API server (admission, RBAC, Pod Security,
garbage collection, CronJobs) but this environment has no Docker, so no kind. The three binaries are
built once from Go modules (``make k8s-bins``) and started here on free 127.0.0.1 ports; a cold start
takes 10-15 s on two busy cores.

What you get and what you do not:

* Controllers run (``--controllers=*``): Deployments get ReplicaSets and Pods, CronJobs create Jobs,
  the garbage collector, namespace deletion, service accounts and their tokens all work.
* There is no kubelet, scheduler or kube-proxy: Pods stay ``Pending`` forever, and a Service's
  ClusterIP routes nowhere. **Admission webhooks must therefore use ``clientConfig.url``**
  (``https://127.0.0.1:<port>/...``, with a ``caBundle`` for the serving cert): a ``service:``
  reference cannot be reached from this API server.

Usage::

    with LocalCluster() as cluster:
        cluster.create_namespace("shop", labels={"pod-security.kubernetes.io/enforce": "restricted"})
        cluster.kubectl("apply", "-n", "shop", "-f", "deploy.yaml")
        subprocess.run([...], env=cluster.env())      # KUBECONFIG and kubectl on PATH

:class:`ExistingCluster` offers the same interface for a cluster you already have (``KUBECONFIG``),
which is how the e2e suite runs against kind (``DW_USE_KUBECONFIG=1``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import yaml

from driftwatch.localcluster.binaries import Binaries, BinariesMissing
from driftwatch.localcluster.pki import CertificateAuthority, ClusterPKI, create_cluster_pki
from driftwatch.localcluster.processes import (
    ComponentError,
    ManagedProcess,
    PortAllocator,
    http_ok,
    pid_alive,
)

#: the admission plugins the API server enables on top of its defaults; the webhook ones are what
#: DriftWatch's injector needs, PodSecurity what its namespaces are tested against.
ADMISSION_PLUGINS = (
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "NodeRestriction",
    "DefaultTolerationSeconds",
    "PodSecurity",
    "Priority",
    "RuntimeClass",
    "ResourceQuota",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
)
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; ``str()`` includes its stderr, which is what you need to read."""

    def __str__(self) -> str:
        cmd = " ".join(str(a) for a in self.cmd)
        return f"`{cmd}` exited {self.returncode}: {(self.stderr or '').strip()}"


class Cluster:
    """What tests and the demo use, whoever runs the cluster: kubeconfig, server URL and kubectl."""

    kubeconfig: Path
    server: str
    kubectl_path: Path

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raise :class:`KubectlError` on failure if ``check``."""
        cmd = [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def kubectl_json(self, *args: str, timeout: float = 60.0) -> Any:
        """``kubectl ... -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json", timeout=timeout).stdout)

    def apply(
        self, manifest: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str, namespace: str = ""
    ) -> str:
        """``kubectl apply`` a manifest given as YAML text, a dict or a list of dicts; returns stdout."""
        if isinstance(manifest, str):
            text = manifest
        elif isinstance(manifest, Mapping):
            text = yaml.safe_dump(dict(manifest))
        else:
            text = yaml.safe_dump_all([dict(m) for m in manifest])
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=text).stdout

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for subprocesses: ``KUBECONFIG`` set and this kubectl first on ``PATH``."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.kubectl_path.parent), env.get("PATH", "")])
        return env

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this cluster (the client is imported only here)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def wait_until(
        self, check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.5
    ) -> float:
        """Poll ``check`` until true; return the seconds it took or raise ``TimeoutError`` naming ``what``."""
        start = time.monotonic()
        while True:
            if check():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(interval)

    def create_namespace(
        self, name: str, labels: Mapping[str, str] | None = None, *, timeout: float = 90.0
    ) -> None:
        """Create (or update) a namespace and wait for its ``default`` ServiceAccount.

        The ServiceAccount admission plugin rejects Pods until the controller-manager has created the
        account, so returning earlier would make the first Pod create of a test flaky.
        """
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": dict(labels or {})},
            }
        )

        def has_sa() -> bool:
            return self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0

        self.wait_until(has_sa, timeout=timeout, what=f"ServiceAccount {name}/default")

    def delete_namespace(self, name: str, *, wait: bool = False, timeout: float = 120.0) -> None:
        """Delete a namespace; by default return at once (the namespace controller finishes the job)."""
        self.kubectl(
            "delete",
            "namespace",
            name,
            "--ignore-not-found",
            f"--wait={str(wait).lower()}",
            f"--timeout={int(timeout)}s",
            timeout=timeout + 10,
        )


class ExistingCluster(Cluster):
    """A cluster someone else runs (kind, a dev cluster), addressed by ``KUBECONFIG``.

    ``start``/``stop`` do nothing, so code written against :class:`LocalCluster` works unchanged.
    """

    def __init__(self, kubeconfig: str | os.PathLike[str] | None = None) -> None:
        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        path = path or Path.home() / ".kube" / "config"
        self.kubeconfig = Path(path)
        if not self.kubeconfig.is_file():
            raise FileNotFoundError(f"kubeconfig {self.kubeconfig} not found (set KUBECONFIG)")
        try:
            self.kubectl_path = Binaries.locate().kubectl
        except BinariesMissing:
            found = shutil.which("kubectl")
            if not found:
                raise BinariesMissing("no kubectl: run `make k8s-bins` or put kubectl on PATH") from None
            self.kubectl_path = Path(found)
        self.server = self.kubectl(
            "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
        ).stdout.strip()

    def start(self) -> ExistingCluster:
        return self

    def stop(self) -> None:
        pass

    def __enter__(self) -> ExistingCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "driftwatch-local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "driftwatch-local", "context": {"cluster": "driftwatch-local", "user": user}}],
        "current-context": "driftwatch-local",
    }


class LocalCluster(Cluster):
    """etcd, kube-apiserver and kube-controller-manager on free loopback ports.

    ``directory`` holds certificates, etcd data, kubeconfigs and ``logs/<component>.log``; by default
    a fresh temporary directory that ``stop()`` removes, unless startup failed or ``keep=True`` (or
    ``DW_KEEP_CLUSTER_DIR=1``), so the logs survive for a post-mortem.

    ``wait_for_controllers=False`` returns once the controller-manager is healthy, ~5 s earlier, before
    its controllers have created the ServiceAccounts (fine for tests that only talk to the API).
    ``port_allocator`` replaces the free-port finder (tests use it to provoke a port race).
    """

    START_ATTEMPTS = 3  # per component, only when a port was taken under our feet

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        keep: bool | None = None,
        progress: Callable[[str], None] | None = None,
        etcd_timeout: float = 60.0,
        apiserver_timeout: float = 180.0,
        controller_manager_timeout: float = 180.0,
        extra_apiserver_args: Sequence[str] = (),
        port_allocator: Callable[[], int] | None = None,
        wait_for_controllers: bool = True,
    ) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory) if directory else Path()
        self.keep = keep if keep is not None else os.environ.get("DW_KEEP_CLUSTER_DIR") == "1"
        self._progress = progress if progress is not None else self._print
        self.etcd_timeout = etcd_timeout
        self.apiserver_timeout = apiserver_timeout
        self.controller_manager_timeout = controller_manager_timeout
        self.extra_apiserver_args = list(extra_apiserver_args)
        self._ports = port_allocator or PortAllocator()
        self.wait_for_controllers = wait_for_controllers
        self._procs: list[ManagedProcess] = []
        self._failed = False
        self._started = False
        self._stopped = False
        self._old_sigterm: Any = None
        self.server = ""
        self.etcd_url = ""
        self.timings: dict[str, float] = {}

    # -- public surface -------------------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        """Process ids of the running components (etcd, kube-apiserver, kube-controller-manager)."""
        return [p.pid for p in self._procs if p.pid is not None]

    @property
    def logs(self) -> dict[str, Path]:
        return {p.name: p.log_path for p in self._procs}

    @property
    def ca_file(self) -> Path:
        """The CA that signed the API server's certificate (what a client verifies it against)."""
        return self.pki.ca_cert

    def start(self) -> LocalCluster:
        """Start all components and wait until controllers run; on any failure stop what started."""
        if self._started:
            return self
        self._started = True
        t0 = time.monotonic()
        try:
            binaries = Binaries.locate()
            self.kubectl_path = binaries.kubectl
            if self._own_dir:
                self.directory = Path(tempfile.mkdtemp(prefix="driftwatch-cluster-"))
            self.directory.mkdir(parents=True, exist_ok=True)
            self._say(f"starting control plane in {self.directory}")
            atexit.register(self.stop)  # for callers that never call stop(); undone by stop()
            self._install_sigterm_handler()
            self.ca, self.pki = self._make_pki()
            self._start_etcd(binaries)
            self._start_apiserver(binaries)
            self._start_controller_manager(binaries)
        except BaseException as e:  # KeyboardInterrupt included: never leave half a cluster running
            interrupted = isinstance(e, KeyboardInterrupt | SystemExit)
            self._failed = not interrupted  # keep the logs of a real failure
            self._say("startup interrupted" if interrupted else "startup failed")
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        self._say(f"control plane ready in {self.timings['total']:.1f}s: {self.server}")
        return self

    def stop(self) -> None:
        """Stop every component (SIGTERM, SIGKILL after a grace period) and clean up. Idempotent."""
        atexit.unregister(self.stop)
        t = time.monotonic()
        running = [p for p in self._procs if p.exit_code() is None and p.pid is not None]
        errors = []
        for proc in reversed(self._procs):
            try:
                proc.stop(grace=10.0)
            except Exception as e:  # keep stopping the others; report at the end
                errors.append(f"{proc.name}: {e}")
        if running:
            self._say(f"stopped in {time.monotonic() - t:.1f}s")
        left = [pid for pid in self.pids if pid_alive(pid)]
        self._restore_sigterm_handler()
        if left or errors:  # pragma: no cover - would be a bug worth shouting about
            raise RuntimeError(f"control plane did not stop cleanly: alive {left}, errors {errors}")
        if self.directory == Path():
            return  # never started
        stopped, self._stopped = self._stopped, True
        if self._own_dir and not (self.keep or self._failed):
            shutil.rmtree(self.directory, ignore_errors=True)
        elif self._failed and not stopped:
            self._say(f"logs kept for a post-mortem in {self.directory / 'logs'}")

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and not isinstance(exc, KeyboardInterrupt | SystemExit):
            self._failed = True  # keep the logs of a failed run
        self.stop()

    def issue_serving_cert(self, hosts: Sequence[str], directory: Path | None = None) -> tuple[Path, Path]:
        """A serving cert/key for e.g. a webhook on 127.0.0.1, signed by this cluster's CA.

        Put :attr:`ca_file`'s content (base64) in the webhook configuration's ``caBundle``.
        """
        pair = self.ca.issue(hosts[0], hosts=hosts, server=True)
        return pair.write(directory or self.directory / "pki", f"serving-{hosts[0]}")

    # -- components -----------------------------------------------------------------------------------

    def _make_pki(self) -> tuple[CertificateAuthority, ClusterPKI]:
        t = time.monotonic()
        ca, pki = create_cluster_pki(self.directory / "pki")
        self._say(f"certificates ready in {time.monotonic() - t:.1f}s")
        return ca, pki

    def _launch(
        self,
        name: str,
        argv: Callable[[], list[str]],
        ready: Callable[[ManagedProcess], float],
    ) -> ManagedProcess:
        """Start ``name`` and wait for ``ready``; retry with fresh ports if one was taken meanwhile."""
        for attempt in range(1, self.START_ATTEMPTS + 1):
            proc = ManagedProcess(name, argv(), self.directory / "logs" / f"{name}.log")
            self._procs.append(proc)
            proc.start()
            try:
                elapsed = ready(proc)
            except ComponentError:
                if attempt < self.START_ATTEMPTS and proc.port_conflict():
                    self._say(f"{name}: port taken by someone else, retrying with new ports")
                    proc.stop(grace=2)
                    self._procs.remove(proc)
                    continue
                raise
            self.timings[name] = elapsed
            self._say(f"{name} ready in {elapsed:.1f}s (pid {proc.pid})")
            return proc
        raise AssertionError("unreachable")

    def _start_etcd(self, binaries: Binaries) -> None:
        client = 0

        def argv() -> list[str]:
            nonlocal client
            client, peer = self._ports(), self._ports()
            self.etcd_url = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            return [
                str(binaries.etcd),
                "--name=driftwatch",
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=driftwatch={peer_url}",
                "--unsafe-no-fsync",  # test data: durability is worthless, fsync latency is not
                "--log-level=warn",
            ]

        self._launch(
            "etcd",
            argv,
            lambda p: p.wait_ready(
                lambda: p.listens_on(client) and http_ok(f"{self.etcd_url}/health"), timeout=self.etcd_timeout
            ),
        )

    def _start_apiserver(self, binaries: Binaries) -> None:
        pki = self.pki

        def argv() -> list[str]:
            port = self._ports()
            self.server = f"https://127.0.0.1:{port}"
            return [
                str(binaries.kube_apiserver),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.directory / 'pki'}",
                f"--tls-cert-file={pki.apiserver_cert}",
                f"--tls-private-key-file={pki.apiserver_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.sa_public_key}",
                f"--service-account-signing-key-file={pki.sa_private_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--authorization-mode=Node,RBAC",
                f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
                # the endpoint reconciler would publish 127.0.0.1 as the `kubernetes` Service's
                # endpoint, which Endpoints validation rejects (loopback) and nothing could use anyway
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                *self.extra_apiserver_args,
            ]

        # no listens_on() check needed: a stranger on the port fails verification against our own CA
        ssl_ctx = self._admin_ssl_context()
        self._launch(
            "kube-apiserver",
            argv,
            lambda p: p.wait_ready(
                lambda: http_ok(f"{self.server}/readyz", context=ssl_ctx), timeout=self.apiserver_timeout
            ),
        )
        self.kubeconfig = self.directory / "admin.kubeconfig"
        self._write_kubeconfig(self.kubeconfig, pki.admin_cert, pki.admin_key, "driftwatch-admin")

    def _start_controller_manager(self, binaries: Binaries) -> None:
        pki = self.pki
        kubeconfig = self.directory / "controller-manager.kubeconfig"
        self._write_kubeconfig(
            kubeconfig,
            pki.controller_manager_cert,
            pki.controller_manager_key,
            "system:kube-controller-manager",
        )
        port = 0

        def argv() -> list[str]:
            nonlocal port
            port = self._ports()
            return [
                str(binaries.kube_controller_manager),
                # no --authentication/authorization-kubeconfig: only /healthz (always allowed) is
                # probed, and delegated authn would log errors for the absent front-proxy CA
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.directory / 'controller-manager'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_private_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--cluster-name=driftwatch-local",
                "--controllers=*",
            ]

        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its own self-signed serving cert; we only probe /healthz
        proc = self._launch(
            "kube-controller-manager",
            argv,
            lambda p: p.wait_ready(
                lambda: p.listens_on(port) and http_ok(f"https://127.0.0.1:{port}/healthz", context=insecure),
                timeout=self.controller_manager_timeout,
            ),
        )
        if not self.wait_for_controllers:
            return
        # healthy is not yet useful: wait until the service-account controllers have done their job
        ssl_ctx = self._admin_ssl_context()
        elapsed = proc.wait_ready(
            lambda: http_ok(
                f"{self.server}/api/v1/namespaces/default/serviceaccounts/default", context=ssl_ctx
            ),
            timeout=self.controller_manager_timeout,
            what="creating ServiceAccounts",
        )
        self._say(f"controllers running in {elapsed:.1f}s (default ServiceAccount exists)")

    # -- helpers --------------------------------------------------------------------------------------

    def _admin_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _write_kubeconfig(self, path: Path, cert: Path, key: Path, user: str) -> None:
        path.write_text(yaml.safe_dump(_kubeconfig(self.server, self.pki.ca_cert, cert, key, user)))
        path.chmod(0o600)

    def _say(self, message: str) -> None:
        self._progress(f"[localcluster] {message}")

    @staticmethod
    def _print(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def _install_sigterm_handler(self) -> None:
        """Treat the first SIGTERM like Ctrl-C, so ``with``/``finally`` blocks (and our stop) run.

        KeyboardInterrupt rather than SystemExit because pytest records a SystemExit as one failed
        test and carries on, while KeyboardInterrupt ends the session and runs fixture teardown.
        A second SIGTERM gets the default action (die at once; PR_SET_PDEATHSIG then takes the
        components down). Only when nobody else handles SIGTERM, and only on the main thread.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")

        self._old_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    def _restore_sigterm_handler(self) -> None:
        if self._old_sigterm is not None and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None
