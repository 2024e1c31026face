"""Credentials for the command-line tools: a kubeconfig (as kubectl reads it) or the pod's service account.

The operator logs in through kopf (its ``ConnectionInfo`` serves the client as is); ``driftwatch status``
and ``driftwatch gate`` run where kopf does not -- on a laptop, or in an Argo Rollouts ``job`` pod -- so
they read credentials here, without the ``kubernetes`` package. What a kubeconfig can say and is read:
server and CA (file, relative to the kubeconfig, or data), ``insecure-skip-tls-verify``, bearer token
(inline or ``tokenFile``), client certificate and key (file or data), basic auth, and ``exec``
credential plugins (EKS, GKE, AKS, OIDC helpers: the command prints an ``ExecCredential``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class CredentialsError(Exception):
    """No usable credentials: the message says what was looked for."""


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to prove who we are (PEM bytes, not file names, for certs)."""

    server: str
    ca_pem: bytes | None = None
    insecure: bool | None = None
    token: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    username: str | None = None
    password: str | None = None
    #: the namespace of the kubeconfig context (or the pod's): what ``-n`` defaults to, as in kubectl
    default_namespace: str | None = None
    #: the kubeconfig context these came from (None in a pod)
    context: str | None = None

    def as_http_headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username and self.password:
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def as_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_pem and self.key_pem:
            with _pem_files(self.cert_pem, self.key_pem) as (cert, key):  # ssl loads chains from files only
                ctx.load_cert_chain(cert, key)
        return ctx


@contextlib.contextmanager
def _pem_files(cert: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="driftwatch-kube-") as d:
        paths = (Path(d) / "tls.crt", Path(d) / "tls.key")
        for path, data in zip(paths, (cert, key), strict=True):
            path.touch(mode=0o600)
            path.write_bytes(data)
        yield str(paths[0]), str(paths[1])


def load(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """``--kubeconfig``, else ``$KUBECONFIG`` / ``~/.kube/config``, else the pod's service account.

    ``context`` (``--context``) picks a context of the kubeconfig instead of its ``current-context``;
    naming one where there is no kubeconfig is an error, as with kubectl."""
    paths = _kubeconfig_paths(kubeconfig)
    if paths:
        return from_kubeconfig(paths, context)
    if context:
        raise CredentialsError(
            f"--context {context}: no kubeconfig to read it from ($KUBECONFIG, ~/.kube/config)"
        )
    if (SERVICE_ACCOUNT_DIR / "token").exists():
        return in_cluster()
    raise CredentialsError("no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not in a pod")


def _kubeconfig_paths(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    env = [Path(p).expanduser() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if env:
        return [p for p in env if p.exists()] or env[:1]  # kubectl skips missing files, unless all are
    default = Path("~/.kube/config").expanduser()
    return [default] if default.exists() else []


def in_cluster() -> Credentials:
    """The pod's service account: token, CA and namespace files, the API server from the environment."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise CredentialsError("KUBERNETES_SERVICE_HOST/PORT are not set: not running in a pod")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    # client-go's in-cluster namespace: $POD_NAMESPACE, else the service account's namespace file
    namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
    namespace = os.environ.get("POD_NAMESPACE") or (
        namespace_file.read_text().strip() if namespace_file.exists() else None
    )
    return Credentials(
        server=server,
        ca_pem=(SERVICE_ACCOUNT_DIR / "ca.crt").read_bytes(),
        token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
        default_namespace=namespace,
    )


#: section -> name -> (the file that defined it, the entry)
Entries = dict[str, dict[str, tuple[Path, dict[str, Any]]]]


def _merged(paths: list[Path], context_name: str | None) -> tuple[str, Entries]:
    """(the context to use, the merged entries) of kubeconfig files, as kubectl merges them: the first
    file to define a name wins, and the first ``current-context``."""
    import yaml

    current: str | None = None
    entries: Entries = {"contexts": {}, "clusters": {}, "users": {}}
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise CredentialsError(f"cannot read kubeconfig {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise CredentialsError(f"kubeconfig {path} is not YAML: {e}") from None
        current = current or doc.get("current-context")
        for section, kind in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
            for item in doc.get(section) or []:
                entries[section].setdefault(str(item.get("name")), (path, item.get(kind) or {}))
    files = ", ".join(map(str, paths))
    if context_name:
        if context_name not in entries["contexts"]:
            known = ", ".join(sorted(entries["contexts"])) or "none"
            raise CredentialsError(
                f"--context {context_name}: no such context in kubeconfig {files} (contexts: {known})"
            )
        current = context_name
    if not current or current not in entries["contexts"]:
        raise CredentialsError(f"kubeconfig {files}: no current context")
    return current, entries


def context_namespace(kubeconfig: str | None = None, context: str | None = None) -> str | None:
    """The namespace of the kubeconfig's context (``context``, else the current one), without the
    credentials -- no exec plugin runs; None without a kubeconfig (in a pod: the pod's namespace)."""
    paths = _kubeconfig_paths(kubeconfig)
    if not paths:
        if context:
            raise CredentialsError(f"--context {context}: no kubeconfig to read it from")
        namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
        if os.environ.get("POD_NAMESPACE"):
            return os.environ["POD_NAMESPACE"]
        return namespace_file.read_text().strip() if namespace_file.exists() else None
    current, entries = _merged(paths, context)
    return entries["contexts"][current][1].get("namespace") or None


def from_kubeconfig(paths: list[Path], context_name: str | None = None) -> Credentials:
    """The current context of the merged kubeconfig files (the first file to define a name wins), or
    the context named ``context_name``. Its ``namespace`` becomes ``default_namespace``."""
    current, entries = _merged(paths, context_name)
    _, context = entries["contexts"][current]
    try:
        cluster_file, cluster = entries["clusters"][str(context.get("cluster"))]
        user_file, user = entries["users"].get(str(context.get("user")), (cluster_file, {}))
    except KeyError:
        raise CredentialsError(f"kubeconfig context {current!r} names a cluster it does not define") from None
    if not cluster.get("server"):
        raise CredentialsError(f"kubeconfig context {current!r}: the cluster has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _relative(user_file, user["tokenFile"]).read_text().strip()
    cert = _pem(user_file, user, "client-certificate")
    key = _pem(user_file, user, "client-key")
    if user.get("exec"):
        token, cert, key = _exec_plugin(user["exec"], token, cert, key)
    return Credentials(
        server=str(cluster["server"]),
        ca_pem=_pem(cluster_file, cluster, "certificate-authority"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")) or None,
        token=token,
        cert_pem=cert,
        key_pem=key,
        username=user.get("username"),
        password=user.get("password"),
        default_namespace=context.get("namespace") or None,
        context=current,
    )


def _relative(kubeconfig: Path, name: str) -> Path:
    """File names in a kubeconfig are relative to the kubeconfig's directory."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else kubeconfig.parent / path


def _pem(kubeconfig: Path, entry: Mapping[str, Any], field: str) -> bytes | None:
    """``field-data`` (base64) or ``field`` (a file), as PEM bytes."""
    if entry.get(f"{field}-data"):
        return base64.b64decode(entry[f"{field}-data"])
    if entry.get(field):
        return _relative(kubeconfig, str(entry[field])).read_bytes()
    return None


def _exec_plugin(
    spec: Mapping[str, Any], token: str | None, cert: bytes | None, key: bytes | None
) -> tuple[str | None, bytes | None, bytes | None]:
    """Run a client-go credential plugin and take the token or client certificate it prints."""
    env = {**os.environ, **{str(e["name"]): str(e["value"]) for e in spec.get("env") or []}}
    cmd = [str(spec["command"]), *map(str, spec.get("args") or [])]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
        status = json.loads(out).get("status") or {}
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        raise CredentialsError(f"kubeconfig exec plugin {cmd[0]}: {e}") from None
    if status.get("token"):
        token = str(status["token"])
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        cert, key = str(status["clientCertificateData"]).encode(), str(status["clientKeyData"]).encode()
    return token, cert, key
