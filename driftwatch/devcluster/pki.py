"""Certificates and keys for the local control plane.

A throwaway CA signs everything: the API server's serving certificate, the client certificates that
authenticate the admin (``O=system:masters``), the controller-manager
(``CN=system:kube-controller-manager``) and the scheduler (``CN=system:kube-scheduler``; the API
server's bootstrap RBAC already binds both), and any
webhook serving certificate a test needs. The service-account signing key is a separate key pair, as in
a real cluster, so a token is never confused with a certificate.

Keys and certificates are built by :mod:`driftwatch.x509` (ECDSA P-256; shared with the operator's
webhook TLS). Nothing here is meant to outlive one cluster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from driftwatch.x509 import cert_pem, issue_leaf, key_pem, new_key, self_signed_ca

__all__ = [
    "APISERVER_HOSTS",
    "CertificateAuthority",
    "ClusterPKI",
    "KeyPair",
    "cert_pem",
    "create_cluster_pki",
    "key_pem",
]

#: SANs of the API server certificate: loopback for us, 10.0.0.1 and the DNS names for in-cluster
#: clients (the first address of --service-cluster-ip-range is the ``kubernetes`` Service's ClusterIP).
APISERVER_HOSTS = (
    "127.0.0.1",
    "localhost",
    "10.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)

_VALIDITY = dt.timedelta(days=2)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, in PEM."""

    cert: bytes
    key: bytes

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``stem.crt`` and ``stem.key`` (mode 0600) and return their paths."""
        crt, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        crt.write_bytes(self.cert)
        key.touch(mode=0o600)
        key.write_bytes(self.key)
        return crt, key


class CertificateAuthority:
    """A self-signed CA that issues serving and client certificates."""

    def __init__(self, common_name: str = "driftwatch-local-ca") -> None:
        self._cert, self._key = self_signed_ca(common_name, _VALIDITY)

    @property
    def pair(self) -> KeyPair:
        return KeyPair(cert_pem(self._cert), key_pem(self._key))

    def issue(
        self,
        common_name: str,
        *,
        organizations: Iterable[str] = (),
        hosts: Iterable[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> KeyPair:
        """Issue a leaf certificate (see :func:`driftwatch.x509.issue_leaf`)."""
        cert, key = issue_leaf(
            self._cert,
            self._key,
            common_name,
            _VALIDITY,
            organizations=organizations,
            hosts=hosts,
            server=server,
            client=client,
        )
        return KeyPair(cert_pem(cert), key_pem(key))


@dataclass(frozen=True)
class ClusterPKI:
    """Paths of every PEM file the control plane uses (all inside one directory)."""

    ca_cert: Path
    ca_key: Path
    apiserver_cert: Path
    apiserver_key: Path
    admin_cert: Path
    admin_key: Path
    controller_manager_cert: Path
    controller_manager_key: Path
    scheduler_cert: Path
    scheduler_key: Path
    sa_public_key: Path
    sa_private_key: Path


def create_cluster_pki(directory: Path) -> tuple[CertificateAuthority, ClusterPKI]:
    """Create the CA, the component certificates and the service-account key pair in ``directory``.

    Returns the CA too, so callers can issue more certificates (e.g. a webhook's serving cert) that
    the API server and kubeconfig users already trust.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority()
    ca_cert, ca_key = ca.pair.write(directory, "ca")
    api_cert, api_key = ca.issue("kube-apiserver", hosts=APISERVER_HOSTS, server=True).write(
        directory, "apiserver"
    )
    admin_cert, admin_key = ca.issue("driftwatch-admin", organizations=["system:masters"], client=True).write(
        directory, "admin"
    )
    kcm_cert, kcm_key = ca.issue("system:kube-controller-manager", client=True).write(
        directory, "controller-manager"
    )
    sched_cert, sched_key = ca.issue("system:kube-scheduler", client=True).write(directory, "scheduler")
    sa_key = new_key()
    sa_priv = directory / "sa.key"
    sa_priv.touch(mode=0o600)
    sa_priv.write_bytes(key_pem(sa_key))
    sa_pub = directory / "sa.pub"
    sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ca, ClusterPKI(
        ca_cert=ca_cert,
        ca_key=ca_key,
        apiserver_cert=api_cert,
        apiserver_key=api_key,
        admin_cert=admin_cert,
        admin_key=admin_key,
        controller_manager_cert=kcm_cert,
        controller_manager_key=kcm_key,
        scheduler_cert=sched_cert,
        scheduler_key=sched_key,
        sa_public_key=sa_pub,
        sa_private_key=sa_priv,
    )
