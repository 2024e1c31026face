"""The webhook's TLS: a private CA and a serving certificate, made with ``cryptography``.

The API server only calls webhooks over TLS and verifies the server against ``caBundle``. Without
cert-manager the operator is its own CA: ECDSA P-256 keys (fast to make, small), a CA valid for ten
years, a serving certificate valid for one and renewed when it has less than 30 days left or when the
names it must cover change (e.g. ``--webhook-url`` moved from 127.0.0.1 to a Service).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from driftwatch.x509 import cert_pem, issue_leaf, key_pem, self_signed_ca

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


def make_ca(common_name: str = "driftwatch-webhook-ca") -> tuple[bytes, bytes]:
    cert, key = self_signed_ca(common_name, dt.timedelta(days=CA_DAYS), path_length=0)
    return cert_pem(cert), key_pem(key)


def make_serving(
    ca_cert_pem: bytes, ca_key_pem: bytes, names: list[str], days: int = SERVING_DAYS
) -> tuple[bytes, bytes]:
    """A serving certificate for ``names`` (DNS names and IP addresses) signed by the CA."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an EC key")
    cert, key = issue_leaf(ca_cert, ca_key, names[0], dt.timedelta(days=days), hosts=names, server=True)
    return cert_pem(cert), key_pem(key)


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
