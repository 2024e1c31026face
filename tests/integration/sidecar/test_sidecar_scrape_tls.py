"""An ``https://`` scrape target is verified although the sidecar imports aiohttp without the system's
CA bundle (sidecar/tls.py): a certificate from a CA the system trusts is accepted, one from another CA
or for another host name is refused. Real sidecar processes, real TLS servers on loopback; the
"system" trust store is the test CA's file, given to the sidecar as ``SSL_CERT_FILE`` (what OpenSSL reads
as the system bundle)."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from driftwatch import x509

pytestmark = pytest.mark.integration

EXPOSITION = b"# TYPE inflight_requests gauge\ninflight_requests 7\n"
DAY = dt.timedelta(days=1)


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(EXPOSITION)))
        self.end_headers()
        self.wfile.write(EXPOSITION)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Callable[[bytes, bytes], int]]:
    """``serve(cert_pem, key_pem)`` starts an HTTPS metrics endpoint on 127.0.0.1; returns its port."""
    servers: list[ThreadingHTTPServer] = []

    def serve(cert: bytes, key: bytes) -> int:
        n = len(servers)
        (tmp_path / f"srv{n}.crt").write_bytes(cert)
        (tmp_path / f"srv{n}.key").write_bytes(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp_path / f"srv{n}.crt", tmp_path / f"srv{n}.key")
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return int(httpd.server_address[1])

    yield serve
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _leaf(ca: tuple[Any, Any], host: str) -> tuple[bytes, bytes]:
    cert, key = x509.issue_leaf(ca[0], ca[1], host, DAY, hosts=[host], server=True)
    return x509.cert_pem(cert), x509.key_pem(key)


def test_https_target_verified_against_the_system_cas(
    sidecar_factory, tls_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = x509.self_signed_ca("trusted test CA", DAY)
    other = x509.self_signed_ca("unknown CA", DAY)
    bundle = tmp_path / "system-cas.pem"
    bundle.write_bytes(x509.cert_pem(trusted[0]))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # the sidecars' "system" CAs: only the trusted one

    targets = {
        "good": tls_server(*_leaf(trusted, "127.0.0.1")),
        "unknown CA": tls_server(*_leaf(other, "127.0.0.1")),
        "wrong host": tls_server(*_leaf(trusted, "metrics.example.invalid")),
    }
    sidecars = {}
    for name, port in targets.items():
        scrape = {
            "url": f"https://127.0.0.1:{port}/metrics",
            "interval": 0.2,
            "metrics": ["inflight_requests"],
        }
        sidecars[name] = sidecar_factory(
            pod=name.replace(" ", "-"),
            spec={"features": [], "keys": {"maxKeys": 5}},
            ingest={"scrape": scrape},
        )

    good = sidecars["good"]
    good.wait_for(
        lambda: (good.stream("inflight_requests") or {}).get("samples", 0) >= 2,
        what="samples scraped over TLS",
    )
    assert good.metric("driftwatch_scrapes_total", result="error") == 0
    assert good.stream("inflight_requests")["type"] == "numeric"  # type: ignore[index]

    for name in ("unknown CA", "wrong host"):
        sc = sidecars[name]
        sc.wait_for(lambda sc=sc: sc.metric("driftwatch_scrapes_total", result="error") >= 2, what=name)
        assert sc.metric("driftwatch_scrapes_total", result="ok") == 0, name
        assert sc.stream("inflight_requests") is None, name
        assert "CERTIFICATE_VERIFY_FAILED" in sc.log.read_text(), name
