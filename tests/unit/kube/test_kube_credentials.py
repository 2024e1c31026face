"""The CLI's credentials, read from real kubeconfig files the way kubectl reads them: merged files, file
names relative to their kubeconfig, inline data, token files, and an exec plugin that really runs."""

from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from driftwatch.kube import credentials
from driftwatch.kube.credentials import CredentialsError, from_kubeconfig, load
from driftwatch.x509 import cert_pem, issue_leaf, key_pem, self_signed_ca


@pytest.fixture(scope="module")
def pki() -> tuple[bytes, bytes, bytes]:
    import datetime as dt

    ca, ca_key = self_signed_ca("test-ca", dt.timedelta(days=1))
    cert, key = issue_leaf(
        ca, ca_key, "admin", dt.timedelta(days=1), organizations=["system:masters"], client=True
    )
    return cert_pem(ca), cert_pem(cert), key_pem(key)


def write(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def config(
    cluster: dict[str, object], user: dict[str, object], namespace: str | None = None
) -> dict[str, object]:
    ctx: dict[str, object] = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": ctx}],
        "current-context": "x",
    }


def test_relative_files_and_client_certificate(tmp_path: Path, pki: tuple[bytes, bytes, bytes]) -> None:
    ca, cert, key = pki
    (tmp_path / "pki").mkdir()
    for name, data in (("ca.crt", ca), ("admin.crt", cert), ("admin.key", key)):
        (tmp_path / "pki" / name).write_bytes(data)
    cfg = config(
        {"server": "https://127.0.0.1:6443", "certificate-authority": "pki/ca.crt"},
        {"client-certificate": "pki/admin.crt", "client-key": "pki/admin.key"},
        namespace="shop",
    )
    creds = from_kubeconfig([write(tmp_path / "kubeconfig", cfg)])
    assert (creds.server, creds.ca_pem, creds.cert_pem, creds.key_pem) == (
        "https://127.0.0.1:6443",
        ca,
        cert,
        key,
    )
    assert creds.default_namespace == "shop"
    assert creds.as_http_headers() == {}
    ctx = creds.as_ssl_context()  # loads the CA and the client pair: a broken PEM would raise here
    assert ctx.verify_mode.name == "CERT_REQUIRED"


def test_inline_data_token_file_and_merged_files(tmp_path: Path, pki: tuple[bytes, bytes, bytes]) -> None:
    ca, _, _ = pki
    (tmp_path / "token").write_text("s3cret\n")
    first = {"apiVersion": "v1", "kind": "Config", "current-context": "x", "contexts": [], "clusters": []}
    second = config(
        {"server": "https://k8s.example:443", "certificate-authority-data": base64.b64encode(ca).decode()},
        {"tokenFile": "token"},
    )
    creds = from_kubeconfig([write(tmp_path / "a", first), write(tmp_path / "b", second)])
    assert creds.ca_pem == ca
    assert creds.as_http_headers() == {"Authorization": "Bearer s3cret"}


def test_exec_plugin_token(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, os\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',"
        " 'status': {'token': os.environ['DW_TEST_TOKEN']}}))\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    cfg = config(
        {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True},
        {
            "exec": {
                "command": sys.executable,
                "args": [str(plugin)],
                "env": [{"name": "DW_TEST_TOKEN", "value": "t0k"}],
            }
        },
    )
    creds = from_kubeconfig([write(tmp_path / "kubeconfig", cfg)])
    assert creds.as_http_headers() == {"Authorization": "Bearer t0k"}
    assert creds.insecure is True


def test_errors_say_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config({"server": "https://127.0.0.1:6443"}, {})
    cfg["current-context"] = "nope"
    with pytest.raises(CredentialsError, match="no current context"):
        from_kubeconfig([write(tmp_path / "kubeconfig", cfg)])
    broken = {**config({}, {}), "clusters": []}
    with pytest.raises(CredentialsError, match="does not define"):
        from_kubeconfig([write(tmp_path / "broken", broken)])
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing")]))
    with pytest.raises(CredentialsError, match="cannot read kubeconfig"):
        load()
    monkeypatch.setenv("KUBECONFIG", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(credentials, "SERVICE_ACCOUNT_DIR", tmp_path / "no-sa")
    with pytest.raises(CredentialsError, match="not in a pod"):
        load()
