"""The parts of the local control plane that need no running cluster: PKI, binary lookup, processes.

The certificates are checked for exactly what the API server relies on (SANs it is reached by, the
O= group that makes the admin a cluster-admin, the CN the bootstrap RBAC binds for the
controller-manager, the key usages Go's TLS stack insists on), because a mistake there shows up later
as an opaque x509 or 403 error from a component's log.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from driftwatch.devcluster import binaries, fakenodes
from driftwatch.devcluster.binaries import Binaries, BinariesMissing
from driftwatch.devcluster.pki import create_cluster_pki
from driftwatch.devcluster.processes import ComponentError, ManagedProcess, PortAllocator, pid_alive


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_cluster_pki(tmp_path: Path) -> None:
    _, pki = create_cluster_pki(tmp_path)
    ca = load(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    api = load(pki.apiserver_cert)
    sans = api.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "kubernetes.default.svc"} <= set(sans.get_values_for_type(x509.DNSName))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.0.0.1")} <= set(
        sans.get_values_for_type(x509.IPAddress)
    )
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH in api.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )

    admin = load(pki.admin_cert)
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    kcm = load(pki.controller_manager_cert)
    assert (
        kcm.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:kube-controller-manager"
    )
    scheduler = load(pki.scheduler_cert)  # the name the bootstrap RBAC binds system:kube-scheduler to
    assert scheduler.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:kube-scheduler"
    for client in (admin, kcm, scheduler):
        usages = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        client.verify_directly_issued_by(ca)

    assert b"PRIVATE KEY" in pki.sa_private_key.read_bytes()
    assert b"PUBLIC KEY" in pki.sa_public_key.read_bytes()
    assert pki.sa_private_key.stat().st_mode & 0o077 == 0  # keys are not world-readable


def test_missing_binaries_say_how_to_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_CACHE", str(tmp_path))
    with pytest.raises(BinariesMissing, match=r"make k8s-bins"):
        Binaries.locate()


def test_versions_come_from_versions_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "versions.env"
    env.write_text("# pins\nK8S_VERSION=v1.2.3\nETCD_VERSION='v3.4.5'\nHELM_VERSION=v3.0.0\n")
    monkeypatch.setenv("DW_VERSIONS_ENV", str(env))
    monkeypatch.setenv("DW_CACHE", str(tmp_path))
    for name in ("etcd-v3.4.5", "kubernetes-v1.2.3"):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".complete").touch()
    found = Binaries.locate()
    assert found.etcd == tmp_path / "etcd-v3.4.5" / "etcd"
    assert found.kube_apiserver == tmp_path / "kubernetes-v1.2.3" / "kube-apiserver"
    assert found.helm is None
    assert found.kwok is None  # not asked for, not built: None rather than a path that is not there
    assert binaries.read_versions()["ETCD_VERSION"] == "v3.4.5"


def fake_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: list[str]) -> None:
    env = tmp_path / "versions.env"
    env.write_text(
        "K8S_VERSION=v1.2.3\nETCD_VERSION=v3.4.5\nHELM_VERSION=v3.0.0\n"
        "KWOK_VERSION=v0.8.0\nARGO_ROLLOUTS_VERSION=v1.10.2\n"
    )
    monkeypatch.setenv("DW_VERSIONS_ENV", str(env))
    monkeypatch.setenv("DW_CACHE", str(tmp_path))
    files = {
        "etcd-v3.4.5": ["etcd"],
        "kubernetes-v1.2.3": ["kube-apiserver"],
        "kube-scheduler-v1.2.3": ["kube-scheduler"],
        "kwok-v0.8.0": ["kwok", "stages.yaml"],
        "argo-rollouts-v1.10.2": ["rollouts-controller", "crds/rollout-crd.yaml"],
    }
    for name in built:
        for file in [*files[name], ".complete"]:
            (tmp_path / name / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / file).touch()


def test_running_pods_needs_scheduler_and_kwok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cache(tmp_path, monkeypatch, ["etcd-v3.4.5", "kubernetes-v1.2.3", "kwok-v0.8.0"])
    # the kubernetes cache predates kube-scheduler: its own directory is missing, nothing else
    with pytest.raises(BinariesMissing, match=r"kube-scheduler-v1\.2\.3 missing.*make k8s-bins") as missing:
        Binaries.locate(require_pods=True)
    assert "kwok" not in str(missing.value)

    fake_cache(tmp_path, monkeypatch, ["kube-scheduler-v1.2.3"])
    found = Binaries.locate(require_pods=True)
    assert found.need("kube_scheduler") == tmp_path / "kube-scheduler-v1.2.3" / "kube-scheduler"
    assert found.need("kwok_stages") == tmp_path / "kwok-v0.8.0" / "stages.yaml"
    assert found.argo_rollouts is None
    with pytest.raises(BinariesMissing, match=r"argo-rollouts is not built"):
        found.need("argo_rollouts")


def test_argo_rollouts_controller_and_crds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cache(tmp_path, monkeypatch, ["etcd-v3.4.5", "kubernetes-v1.2.3"])
    with pytest.raises(BinariesMissing, match=r"argo-rollouts-v1\.10\.2 missing"):
        Binaries.locate(require_argo_rollouts=True)
    fake_cache(tmp_path, monkeypatch, ["argo-rollouts-v1.10.2"])
    found = Binaries.locate(require_argo_rollouts=True)
    assert found.need("argo_rollouts").name == "rollouts-controller"
    assert found.need("argo_rollouts_crds").is_dir()


def test_kwok_manages_exactly_the_fake_node() -> None:
    node = fakenodes.node_manifest()
    argv = fakenodes.kwok_argv(Path("kwok"), kubeconfig=Path("k"), stages=Path("s.yaml"), port=1)
    selector = next(
        a.split("=", 1)[1] for a in argv if a.startswith("--manage-nodes-with-annotation-selector")
    )
    key, value = selector.split("=")
    assert node["metadata"]["annotations"][key] == value
    assert "--manage-all-nodes=false" in argv  # never someone else's nodes (e.g. on a real cluster)
    assert not node.get("spec", {}).get("taints")  # every Pod may land on it
    assert "--config=s.yaml" in argv  # the stages: without them kwok does nothing


def test_pod_and_node_addresses_are_loopback() -> None:
    # nothing that connects to a Pod or a Node can send a packet off this machine
    assert ipaddress.ip_network(fakenodes.POD_CIDR).subnet_of(ipaddress.ip_network("127.0.0.0/8"))
    assert ipaddress.ip_address(fakenodes.NODE_IP).is_loopback


def test_node_ready_reads_the_ready_condition() -> None:
    assert not fakenodes.node_ready({"metadata": {}})
    assert not fakenodes.node_ready({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    assert fakenodes.node_ready(
        {
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"},
                ]
            }
        }
    )


def test_ports_are_never_handed_out_twice() -> None:
    allocate = PortAllocator()
    ports = [allocate() for _ in range(20)]
    assert len(set(ports)) == 20


def test_process_that_dies_reports_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "broken",
        [sys.executable, "-c", "print('bind: address already in use'); raise SystemExit(3)"],
        tmp_path / "p.log",
    )
    proc.start()
    with pytest.raises(ComponentError, match=r"(?s)exited with status 3.*address already in use"):
        proc.wait_ready(lambda: False, timeout=30)
    assert proc.port_conflict()
    proc.stop()


def test_stop_kills_the_process_group_even_if_sigterm_is_ignored(tmp_path: Path) -> None:
    # a child that ignores SIGTERM and has a grandchild: both must be gone after stop()
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = ManagedProcess("stubborn", [sys.executable, "-c", script], tmp_path / "s.log")
    proc.start()
    assert proc.pid is not None
    leader = proc.pid

    def grandchild() -> int:
        lines = [line for line in proc.log_tail().splitlines() if line.strip().isdigit()]
        return int(lines[0]) if lines else 0

    proc.wait_ready(lambda: grandchild() > 0, timeout=30, what="forked")
    grand = grandchild()
    proc.stop(grace=0.5)
    assert not pid_alive(leader)  # the leader is reaped by stop() itself
    # SIGKILL to the rest of the group is asynchronous: give the kernel a moment
    deadline = time.monotonic() + 10
    while pid_alive(grand) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(grand)


def test_listens_on_tells_our_listener_from_a_strangers(tmp_path: Path) -> None:
    # the stranger: this test process listens on one port; the child listens on another
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        theirs = int(stranger.getsockname()[1])
        script = (
            "import socket, time\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
            "print(s.getsockname()[1], flush=True); time.sleep(600)\n"
        )
        proc = ManagedProcess("listener", [sys.executable, "-c", script], tmp_path / "l.log")
        proc.start()
        try:
            proc.wait_ready(lambda: proc.log_tail(1).strip().isdigit(), timeout=30, what="listening")
            ours = int(proc.log_tail(1).strip())
            assert proc.listens_on(ours)
            assert not proc.listens_on(theirs)
        finally:
            proc.stop()


def test_build_script_names_its_components(tmp_path: Path) -> None:
    # a typo must not silently build nothing (or everything): it names what exists
    script = Path(__file__).resolve().parents[2] / "scripts" / "build-k8s.sh"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DW_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        ["bash", str(script), "argo"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "unknown component 'argo'" in result.stdout
    assert "kube-scheduler|kwok|helm|argo-rollouts" in result.stdout


def test_build_script_rebuilds_a_cache_that_lacks_an_output(tmp_path: Path) -> None:
    """A flagger-<version>/ cached before the controller was built (CRDs only) is rebuilt; one holding
    both is reused. A stand-in `go` that fails stops the rebuild right after the decision."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "build-k8s.sh"
    version = binaries.read_versions()["FLAGGER_VERSION"]
    cached = tmp_path / "cache" / f"flagger-{version}"
    cached.mkdir(parents=True)
    (cached / "crd.yaml").write_text("kind: CustomResourceDefinition\n")
    (cached / ".complete").touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "go").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "DW_CACHE": str(tmp_path / "cache"),
    }

    def build() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(script), "flagger"], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    stale = build()
    assert stale.returncode != 0
    assert f"flagger {version}: cache in {cached} has no flagger, rebuilding" in stale.stdout
    (cached / "flagger").write_text("")
    (cached / ".complete").touch()
    fresh = build()
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert f"flagger {version}: cached in {cached}" in fresh.stdout
