"""The webhook's TLS: a private CA and a serving certificate, made with ``cryptography``.

The API server only calls webhooks over TLS and verifies the server against ``caBundle``. Without
cert-manager the operator is its own CA: ECDSA P-256 keys (fast to make, small), a CA valid for ten
years, a serving certificate valid for one and renewed when it has less than 30 days left or when the
names it must cover change (e.g. ``--webhook-url`` moved from 127.0.0.1 to a Service).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVING_DAYS = 365
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class Bundle:
    """PEM bytes of the CA and the serving pair; the shape of the Secret's data."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes

    def to_secret_data(self) -> dict[str, bytes]:
        return {"ca.crt": self.ca_cert, "ca.key": self.ca_key, "tls.crt": self.cert, "tls.key": self.key}

    @classmethod
    def from_secret_data(cls, data: dict[str, bytes]) -> Bundle | None:
        try:
            return cls(data["ca.crt"], data["ca.key"], data["tls.crt"], data["tls.key"])
        except KeyError:
            return None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(common_name: str = "driftwatch-webhook-ca") -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def make_serving(
    ca_cert_pem: bytes, ca_key_pem: bytes, names: list[str], days: int = SERVING_DAYS
) -> tuple[bytes, bytes]:
    """A serving certificate for ``names`` (DNS names and IP addresses) signed by the CA."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def make_bundle(names: list[str]) -> Bundle:
    ca_cert, ca_key = make_ca()
    cert, key = make_serving(ca_cert, ca_key, names)
    return Bundle(ca_cert, ca_key, cert, key)


def covered_names(cert_pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def needs_renewal(bundle: Bundle, names: list[str], now: dt.datetime | None = None) -> str | None:
    """Why the serving certificate must be reissued, or None if it is fine."""
    now = now or _now()
    try:
        cert = x509.load_pem_x509_certificate(bundle.cert)
        ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    except ValueError:
        return "unreadable certificate"
    if cert.issuer != ca.subject:
        return "not issued by the stored CA"
    if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return f"expires {cert.not_valid_after_utc:%Y-%m-%d}"
    missing = set(names) - covered_names(bundle.cert)
    if missing:
        return f"does not cover {', '.join(sorted(missing))}"
    return None


def renew(bundle: Bundle, names: list[str]) -> Bundle:
    """A new serving pair from the existing CA (so ``caBundle`` stays valid) unless the CA itself is due."""
    ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    if ca.not_valid_after_utc - _now() < dt.timedelta(days=SERVING_DAYS + RENEW_BEFORE_DAYS):
        return make_bundle(names)
    cert, key = make_serving(bundle.ca_cert, bundle.ca_key, names)
    return Bundle(bundle.ca_cert, bundle.ca_key, cert, key)
