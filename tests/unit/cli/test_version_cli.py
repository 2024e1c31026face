"""``driftwatch version`` without a cluster: the client's version alone, its formats, and an operator
that does not answer (exit 1, the client's version still printed, as ``kubectl version``)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import yaml

from driftwatch import __version__
from driftwatch.versions import proxy_path


def dw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftwatch", *args], capture_output=True, text=True, timeout=60
    )


def test_client_version_in_each_format() -> None:
    """In a fresh process: the command module is named ``versions`` so that it cannot shadow
    ``driftwatch.version()``, which ``driftwatch.__version__`` calls."""
    assert dw("version", "--client").stdout == f"Client Version: {__version__}\n"
    doc = json.loads(dw("version", "--client", "-o", "json").stdout)
    assert doc["clientVersion"]["version"] == __version__
    assert set(doc) == {"clientVersion"}
    assert yaml.safe_load(dw("version", "--client", "-o", "yaml").stdout) == doc


def test_an_operator_that_does_not_answer() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    out = dw("version", "--operator-url", url)
    assert out.returncode == 1
    assert out.stdout == f"Client Version: {__version__}\n"
    assert url in out.stderr


def test_the_proxy_path_is_the_services_http_port() -> None:
    assert proxy_path("driftwatch", "driftwatch-operator") == (
        "/api/v1/namespaces/driftwatch/services/driftwatch-operator:http/proxy/version"
    )
