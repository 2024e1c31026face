"""Fixtures for the alert tests: an SMTP server on loopback (aiosmtpd) requiring STARTTLS and AUTH,
with a certificate from a throwaway CA the client is told to trust."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alert_receivers import SmtpHandler, SmtpServer, smtp_authenticator

from driftwatch import x509 as pki


@pytest.fixture
def smtp_server(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 with a certificate from a throwaway CA; STARTTLS and AUTH required."""
    from aiosmtpd.controller import Controller

    ca, ca_key = pki.self_signed_ca("driftwatch-test-ca", dt.timedelta(hours=1))
    cert, key = pki.issue_leaf(
        ca, ca_key, "127.0.0.1", dt.timedelta(hours=1), hosts=["127.0.0.1"], server=True
    )
    (tmp_path / "ca.pem").write_bytes(pki.cert_pem(ca))
    (tmp_path / "tls.crt").write_bytes(pki.cert_pem(cert))
    (tmp_path / "tls.key").write_bytes(pki.key_pem(key))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    handler = SmtpHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=smtp_authenticator,
    )
    controller.start()
    try:
        client_tls = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        yield SmtpServer("127.0.0.1", port, client_tls, handler.messages, handler)
    finally:
        controller.stop()
