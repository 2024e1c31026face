"""``LocalCluster``: etcd + kube-apiserver + kube-controller-manager (+ kube-scheduler and kwok, and
optionally the Argo Rollouts or the Flagger controller) as local processes.

Why: the e2e tests and ``driftwatch demo`` need a real API server (admission, RBAC, Pod Security,
garbage collection, CronJobs) but this environment has no Docker, so no kind. The three binaries are
built once from Go modules (``make k8s-bins``) and started here on free 127.0.0.1 ports; a cold start
takes 10-15 s on two busy cores.

What you get and what you do not:

* Controllers run (``--controllers=*``): Deployments get ReplicaSets and Pods, CronJobs create Jobs,
  the garbage collector, namespace deletion, service accounts and their tokens all work.
* Pods run, as far as the API can tell: kube-scheduler binds them to a fake Node whose kubelet is kwok
  (:mod:`driftwatch.devcluster.fakenodes`), which reports them Running and Ready (Job Pods
  Succeeded). No container starts; a test runs whatever stands in for one on the host.
  ``run_pods=False`` leaves both out (Pods then stay ``Pending``).
* ``argo_rollouts=True`` (or :meth:`LocalCluster.enable_argo_rollouts` later) adds the Argo Rollouts
  controller and its CRDs (:mod:`driftwatch.devcluster.argo`); ``flagger=True`` (or
  :meth:`LocalCluster.enable_flagger`) the Flagger controller and its CRDs
  (:mod:`driftwatch.devcluster.flagger`).
* There is no kube-proxy: a Service's ClusterIP routes nowhere. **Admission webhooks must therefore
  use ``clientConfig.url``** (``https://127.0.0.1:<port>/...``, with a ``caBundle`` for the serving
  cert): a ``service:`` reference cannot be reached from this API server.

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
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import yaml

from driftwatch.devcluster import argo, fakenodes, flagger
from driftwatch.devcluster.binaries import Binaries, BinariesMissing
from driftwatch.devcluster.pki import CertificateAuthority, ClusterPKI, create_cluster_pki
from driftwatch.devcluster.processes import (
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
CRD_API = "apiextensions.k8s.io/v1"


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

    def dry_run(self, obj: Mapping[str, Any], namespace: str) -> tuple[int, str, str]:
        """``kubectl apply --dry-run=server -o json`` of one object: (exit code, stdout, stderr), so a
        test can read both an acceptance (the defaulted object) and a rejection (the API's message)."""
        r = self.kubectl(
            "apply", "-n", namespace, "--dry-run=server", "-o", "json", "-f", "-",
            input=yaml.safe_dump(dict(obj)), check=False,
        )  # fmt: skip
        return r.returncode, r.stdout, r.stderr

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


def _self_signed_probe_context() -> ssl.SSLContext:
    """TLS for probing a component's ``/healthz`` on its own self-signed serving certificate.

    Not verified: who answers is checked by ``listens_on`` (the port is our process's), and
    ``/healthz`` carries nothing secret.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


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
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on free loopback ports.

    ``directory`` holds certificates, etcd data, kubeconfigs and ``logs/<component>.log``; by default
    a fresh temporary directory that ``stop()`` removes, unless startup failed or ``keep=True`` (or
    ``DW_KEEP_CLUSTER_DIR=1``), so the logs survive for a post-mortem.

    ``wait_for_controllers=False`` returns once the controller-manager is healthy, ~5 s earlier, before
    its controllers have created the ServiceAccounts (fine for tests that only talk to the API).
    ``port_allocator`` replaces the free-port finder (tests use it to provoke a port race).
    ``run_pods=False`` starts no kube-scheduler and no kwok (Pods stay ``Pending``);
    ``argo_rollouts=True`` also installs the Argo Rollouts CRDs and starts its controller,
    ``flagger=True`` Flagger's.
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
        run_pods: bool = True,
        argo_rollouts: bool = False,
        flagger: bool = False,
        addon_timeout: float = 120.0,
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
        self.run_pods = run_pods
        self.argo_rollouts = argo_rollouts
        self.flagger = flagger
        self.addon_timeout = addon_timeout  # each of kube-scheduler, kwok (+ its Node), Argo, Flagger
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
        """Process ids of the running components (etcd, kube-apiserver, kube-controller-manager, ...)."""
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
            binaries = Binaries.locate(
                require_pods=self.run_pods,
                require_argo_rollouts=self.argo_rollouts,
                require_flagger=self.flagger,
            )
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
            if self.run_pods:
                self._start_scheduler(binaries)
                self._start_kwok(binaries)
            if self.wait_for_controllers:
                self._wait_for_controllers()
            if self.run_pods:
                self._add_fake_node()
            if self.argo_rollouts:
                self._start_argo_rollouts(binaries)
            if self.flagger:
                self._start_flagger(binaries)
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

    def restart_apiserver(self, down: float = 0.0, kill: bool = True) -> float:
        """Stop kube-apiserver (SIGKILL, a crash; ``kill=False``: SIGTERM, an orderly restart), keep it
        down for ``down`` seconds, start it again with the same arguments -- same port, certificates
        and etcd, so every client's kubeconfig stays valid -- and wait until it is ready. Returns the
        seconds from the stop to ready. Clients (controllers, kwok, an operator) must reconnect and
        resume their watches on their own: that is what a caller tests."""
        old = next(p for p in self._procs if p.name == "kube-apiserver")
        t0 = time.monotonic()
        if kill and old.pid is not None and old.exit_code() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(old.pid, signal.SIGKILL)
        old.stop(grace=10.0)
        time.sleep(down)
        new = ManagedProcess(old.name, old.argv, old.log_path, env=old.env)
        self._procs[self._procs.index(old)] = new
        new.start()
        ssl_ctx = self._admin_ssl_context()
        new.wait_ready(
            lambda: http_ok(f"{self.server}/readyz", context=ssl_ctx), timeout=self.apiserver_timeout
        )
        took = time.monotonic() - t0
        self._say(f"kube-apiserver restarted: ready {took:.1f}s after the stop (pid {new.pid})")
        return took

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
        env: dict[str, str] | None = None,
    ) -> ManagedProcess:
        """Start ``name`` and wait for ``ready``; retry with fresh ports if one was taken meanwhile."""
        for attempt in range(1, self.START_ATTEMPTS + 1):
            proc = ManagedProcess(name, argv(), self.directory / "logs" / f"{name}.log", env=env)
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

        insecure = _self_signed_probe_context()
        self._launch(
            "kube-controller-manager",
            argv,
            lambda p: p.wait_ready(
                lambda: p.listens_on(port) and http_ok(f"https://127.0.0.1:{port}/healthz", context=insecure),
                timeout=self.controller_manager_timeout,
            ),
        )

    def _wait_for_controllers(self) -> None:
        """Healthy is not yet useful: wait until the service-account controllers have done their job.

        Called after kube-scheduler and kwok started, so their start-up overlaps this ~5 s wait.
        """
        proc = next(p for p in self._procs if p.name == "kube-controller-manager")
        ssl_ctx = self._admin_ssl_context()
        elapsed = proc.wait_ready(
            lambda: http_ok(
                f"{self.server}/api/v1/namespaces/default/serviceaccounts/default", context=ssl_ctx
            ),
            timeout=self.controller_manager_timeout,
            what="creating ServiceAccounts",
        )
        self._say(f"controllers running in {elapsed:.1f}s (default ServiceAccount exists)")

    def _start_scheduler(self, binaries: Binaries) -> None:
        scheduler = binaries.need("kube_scheduler")
        kubeconfig = self.directory / "scheduler.kubeconfig"
        pki = self.pki
        self._write_kubeconfig(kubeconfig, pki.scheduler_cert, pki.scheduler_key, "system:kube-scheduler")
        port = 0

        def argv() -> list[str]:
            nonlocal port
            port = self._ports()
            return fakenodes.scheduler_argv(
                scheduler, kubeconfig=kubeconfig, port=port, cert_dir=self.directory / "kube-scheduler"
            )

        insecure = _self_signed_probe_context()
        self._launch(
            "kube-scheduler",
            argv,
            lambda p: p.wait_ready(
                lambda: p.listens_on(port) and http_ok(f"https://127.0.0.1:{port}/healthz", context=insecure),
                timeout=self.addon_timeout,
            ),
        )

    def _start_kwok(self, binaries: Binaries) -> None:
        kwok, stages = binaries.need("kwok"), binaries.need("kwok_stages")
        kubeconfig = self._client_kubeconfig("kwok", "kwok-controller")
        home = self.directory / "kwok"  # kwok also reads ~/.kwok/kwok.yaml: never the user's
        home.mkdir(exist_ok=True)
        port = 0

        def argv() -> list[str]:
            nonlocal port
            port = self._ports()
            return fakenodes.kwok_argv(kwok, kubeconfig=kubeconfig, stages=stages, port=port)

        self._launch(
            "kwok",
            argv,
            lambda p: p.wait_ready(
                lambda: p.listens_on(port) and http_ok(f"http://127.0.0.1:{port}/healthz"),
                timeout=self.addon_timeout,
            ),
            env={**os.environ, "HOME": str(home)},
        )

    def _add_fake_node(self) -> None:
        """Create kwok's Node and wait until kwok reports it Ready (then Pods can be scheduled)."""
        kwok = next(p for p in self._procs if p.name == "kwok")
        self.apply(fakenodes.node_manifest())
        ssl_ctx = self._admin_ssl_context()
        elapsed = kwok.wait_ready(
            lambda: fakenodes.node_ready(self._api_get(f"/api/v1/nodes/{fakenodes.NODE_NAME}", ssl_ctx)),
            timeout=self.addon_timeout,
            what=f"reporting Node {fakenodes.NODE_NAME} Ready",
        )
        self._say(f"Node {fakenodes.NODE_NAME} Ready in {elapsed:.1f}s: Pods will run")

    def enable_argo_rollouts(self) -> None:
        """Install the Argo Rollouts CRDs and start its controller on this running cluster.

        What ``argo_rollouts=True`` does at start; here for a test session that starts one cluster and
        lets only the tests that need the controller pay for it (``argo_rollouts`` fixture). Idempotent.
        On failure the controller is stopped, the rest of the cluster keeps running, and its log is kept.
        """
        self._enable_addon(
            "argo-rollouts", lambda: self._start_argo_rollouts(Binaries.locate(require_argo_rollouts=True))
        )

    def enable_flagger(self) -> None:
        """Install Flagger's CRDs and start its controller on this running cluster: what ``flagger=True``
        does at start, as :meth:`enable_argo_rollouts` for Argo (``flagger`` fixture). Idempotent."""
        self._enable_addon("flagger", lambda: self._start_flagger(Binaries.locate(require_flagger=True)))

    def _enable_addon(self, name: str, start: Callable[[], None]) -> None:
        """Start the add-on controller ``name`` unless it runs; on failure stop it, keep its log."""
        if not self.server or self._stopped:
            raise RuntimeError(f"enabling {name} needs a running cluster: call start() first")
        if any(p.name == name for p in self._procs):
            return
        try:
            start()
        except BaseException:
            self._failed = True  # keep the logs
            for proc in [p for p in self._procs if p.name == name]:
                proc.stop(grace=5)
                self._procs.remove(proc)
            raise

    def _install_crds(self, path: Path, names: Sequence[str], what: str) -> None:
        """Apply CRDs (a file or a directory) and wait until ``names`` are Established; timed as ``what``."""
        t = time.monotonic()
        # server-side: Argo's CRDs are ~600 kB each, beyond the last-applied annotation's 256 kB limit
        self.kubectl("apply", "--server-side", "--field-manager=driftwatch-localcluster", "-f", str(path))
        ssl_ctx = self._admin_ssl_context()

        def established() -> bool:
            # polled rather than `kubectl wait`, which fails on a CRD whose conditions are still null
            for name in names:
                crd = self._api_get(f"/apis/{CRD_API}/customresourcedefinitions/{name}", ssl_ctx)
                conditions = crd.get("status", {}).get("conditions") or []
                if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    return False
            return True

        self.wait_until(established, timeout=self.addon_timeout, what=f"the {what} Established")
        self.timings[what] = time.monotonic() - t
        self._say(f"{what} established in {self.timings[what]:.1f}s")

    def _start_argo_rollouts(self, binaries: Binaries) -> None:
        controller, crds = binaries.need("argo_rollouts"), binaries.need("argo_rollouts_crds")
        self._install_crds(crds, argo.CRDS, "argo-rollouts CRDs")
        kubeconfig = self._client_kubeconfig("argo-rollouts", "argo-rollouts-controller")
        healthz = 0

        def argv() -> list[str]:
            nonlocal healthz
            healthz = self._ports()
            return argo.controller_argv(
                controller, kubeconfig=kubeconfig, healthz_port=healthz, metrics_port=self._ports()
            )

        def ready(p: ManagedProcess) -> bool:
            # a taken port does not stop Argo (it logs and carries on without that server): stop it
            # here, so that _launch sees the exit and retries with fresh ports
            if p.port_conflict():
                p.stop(grace=2)
                return False
            return p.listens_on(healthz) and http_ok(f"http://127.0.0.1:{healthz}/healthz")

        self._launch(
            "argo-rollouts",
            argv,
            lambda p: p.wait_ready(lambda: ready(p), timeout=self.addon_timeout),
            env={**os.environ, "POD_NAMESPACE": argo.CONTROLLER_NAMESPACE},
        )

    def _start_flagger(self, binaries: Binaries) -> None:
        controller, crds = binaries.need("flagger"), binaries.need("flagger_crds")
        self._install_crds(crds, flagger.CRDS, "flagger CRDs")
        kubeconfig = self._client_kubeconfig("flagger", flagger.USER)
        port = 0

        def argv() -> list[str]:
            nonlocal port
            port = self._ports()
            return flagger.controller_argv(
                controller, kubeconfig=kubeconfig, port=port, metrics_server_port=self._ports()
            )

        # /healthz answers once the CRDs are verified and its informers synced; a taken port makes it
        # exit ("address already in use"), which _launch retries
        self._launch(
            "flagger",
            argv,
            lambda p: p.wait_ready(
                lambda: p.listens_on(port) and http_ok(f"http://127.0.0.1:{port}/healthz"),
                timeout=self.addon_timeout,
            ),
        )

    # -- helpers --------------------------------------------------------------------------------------

    def _admin_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _write_kubeconfig(self, path: Path, cert: Path, key: Path, user: str) -> None:
        path.write_text(yaml.safe_dump(_kubeconfig(self.server, self.pki.ca_cert, cert, key, user)))
        path.chmod(0o600)

    def _client_kubeconfig(self, stem: str, user: str) -> Path:
        """A kubeconfig for an add-on controller: its own name, cluster-admin rights (O=system:masters).

        The name shows in the API server's audit and managedFields; the rights are not under test.
        """
        cert, key = self.ca.issue(user, organizations=["system:masters"], client=True).write(
            self.directory / "pki", stem
        )
        path = self.directory / f"{stem}.kubeconfig"
        self._write_kubeconfig(path, cert, key, user)
        return path

    def _api_get(self, path: str, context: ssl.SSLContext) -> Any:
        """GET an API path as the admin and parse the JSON (errors propagate: callers poll)."""
        with urllib.request.urlopen(f"{self.server}{path}", context=context, timeout=5) as resp:
            return json.load(resp)

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
