"""Certificates and keys for the local control plane.

A throwaway CA signs everything: the API server's serving certificate, the client certificates that
authenticate the admin (``O=system:masters``) and the controller-manager
(``CN=system:kube-controller-manager``, which the API server's bootstrap RBAC already binds), and any
webhook serving certificate a test needs. The service-account signing key is a separate key pair, as in
a real cluster, so a token is never confused with a certificate.

Keys are ECDSA P-256: generating them takes milliseconds (RSA-2048 takes ~100 ms each under load) and
both Go's TLS stack and Python's ``ssl`` accept them. Nothing here is meant to outlive one cluster.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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
# backdate a little so a client whose clock is slightly behind still accepts the certificate
_BACKDATE = dt.timedelta(minutes=5)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the format kube-apiserver, etcd and Python's ssl all read."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _sans(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


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
        self._key = _new_key()
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )

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
        """Issue a leaf certificate.

        ``organizations`` become O= entries, which Kubernetes reads as groups; ``hosts`` become SANs
        (IP addresses or DNS names). ``server``/``client`` choose the extended key usages: Go refuses a
        client certificate without clientAuth and a serving one without serverAuth.
        """
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        host_list = list(hosts)
        if host_list:
            builder = builder.add_extension(_sans(host_list), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
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
    sa_key = _new_key()
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
        sa_public_key=sa_pub,
        sa_private_key=sa_priv,
    )
