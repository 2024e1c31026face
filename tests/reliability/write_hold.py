"""Hold one named API write of the operator in flight, so a test can SIGKILL the operator exactly there.

A tiny HTTPS server on loopback registered as a ValidatingWebhookConfiguration of its own, scoped as
narrowly as the API allows: one namespace (``namespaceSelector`` on its name), one resource, the
operations asked for, and -- by ``matchConditions`` -- one object name and two users: the operator's
ServiceAccount (whose write is held) and the test's own identity (whose dry-run probe proves the
configuration is live before the test lets the operator write). Nothing in the operator can switch it
on: it exists only while a test holds it, and it is removed on exit.

The first matching write of the operator (``dryRun`` never) that ``wanted`` accepts is not answered
until ``release()``: the API server waits on it (``timeoutSeconds`` 30, the most it allows), so the
operator's request is open when the test kills the operator. Every other request is answered at once
(allowed). ``failurePolicy: Ignore``: if this server goes away, nothing in the cluster is blocked.
"""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import OPERATOR_NAMESPACE, SERVICE_ACCOUNT, wait_for
from driftwatch.operator.certs import make_bundle

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}"
#: the longest the API server waits on a validating webhook (the API's maximum)
TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Target:
    """One write: ``operations`` on ``resource`` (``group``; a subresource as ``driftmonitors/status``)
    named ``name``."""

    group: str
    resource: str
    name: str
    operations: tuple[str, ...] = ("CREATE", "UPDATE")

    def __str__(self) -> str:
        return f"{'/'.join(self.operations)} {self.resource} {self.name}"


@dataclass
class _State:
    wanted: Callable[[dict[str, Any]], bool]
    armed: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    request: dict[str, Any] | None = None
    #: every request this webhook saw: (operation, user, dryRun)
    seen: list[tuple[str, str, bool]] = field(default_factory=list)


def _handler(state: _State) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            req = review.get("request") or {}
            user = (req.get("userInfo") or {}).get("username", "")
            dry = bool(req.get("dryRun"))
            state.seen.append((str(req.get("operation")), user, dry))
            if dry:
                state.armed.set()
            elif user == OPERATOR_USER and not state.held.is_set() and state.wanted(req):
                state.request = req
                state.held.set()
                state.released.wait(TIMEOUT_SECONDS + 5)
            answer = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": req.get("uid", ""), "allowed": True},
            }
            data = json.dumps(answer).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the API server gave up on us (its client, the operator, is gone)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class WriteHold:
    """``with WriteHold(cluster, ns, target, probe) as hold:`` -- live once ``__enter__`` returns."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        target: Target,
        probe: Callable[[], None],
        wanted: Callable[[dict[str, Any]], bool] = lambda _req: True,
    ) -> None:
        self.cluster, self.namespace, self.target, self.probe = cluster, namespace, target, probe
        self.state = _State(wanted)
        self.name = f"driftwatch-test-hold-{namespace}"[:63]
        self._server: http.server.ThreadingHTTPServer | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="write-hold-"))

    # --- the server ---

    def _serve(self) -> str:
        bundle = make_bundle(["127.0.0.1", "localhost"])
        (self._dir / "tls.crt").write_bytes(bundle.cert)
        (self._dir / "tls.key").write_bytes(bundle.key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self._dir / "tls.crt", self._dir / "tls.key")
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True, name="write-hold").start()
        self._server = server
        return base64.b64encode(bundle.ca_cert).decode()

    def configuration(self, ca_bundle: str, port: int, probe_user: str) -> dict[str, Any]:
        t = self.target
        resource, _, sub = t.resource.partition("/")
        users = [OPERATOR_USER, probe_user]
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": self.name, "labels": {"driftwatch.io/e2e": "true"}},
            "webhooks": [
                {
                    "name": "hold.test.driftwatch.io",
                    "clientConfig": {"url": f"https://127.0.0.1:{port}/hold", "caBundle": ca_bundle},
                    "rules": [
                        {
                            "apiGroups": [t.group],
                            "apiVersions": ["*"],
                            "operations": list(t.operations),
                            "resources": [f"{resource}/{sub}" if sub else resource],
                            "scope": "Namespaced",
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}},
                    "matchConditions": [
                        {"name": "one-object", "expression": f"request.name == {json.dumps(t.name)}"},
                        {
                            "name": "operator-or-probe",
                            "expression": f"request.userInfo.username in {json.dumps(users)}",
                        },
                    ],
                    "failurePolicy": "Ignore",
                    "sideEffects": "None",
                    "timeoutSeconds": TIMEOUT_SECONDS,
                    "admissionReviewVersions": ["v1"],
                }
            ],
        }

    def __enter__(self) -> WriteHold:
        ca = self._serve()
        assert self._server is not None
        whoami = self.cluster.kubectl_json("auth", "whoami")
        probe_user = whoami["status"]["userInfo"]["username"]
        config = self.configuration(ca, self._server.server_address[1], probe_user)
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))

        def armed() -> bool:
            self.probe()  # a dry run of the same write by the test: answered at once, proves it is live
            return self.state.armed.is_set()

        wait_for(armed, 30, f"the hold on {self.target} to be live", interval=0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.cluster.kubectl("delete", "validatingwebhookconfiguration", self.name, "--ignore-not-found")
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- the test's side ---

    def wait_held(self, timeout: float = 60) -> dict[str, Any]:
        """The AdmissionRequest being held (the operator's write, open)."""
        if not self.state.held.wait(timeout):
            raise TimeoutError(f"the operator's write {self.target} never came (seen: {self.state.seen})")
        assert self.state.request is not None
        return self.state.request

    def release(self) -> None:
        """Answer the held request (allowed); the API server may have given up on it already."""
        self.state.released.set()


def dry_run_apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> Callable[[], None]:
    """A probe: ``kubectl apply --dry-run=server`` of ``manifest`` (a CREATE or an UPDATE)."""

    def probe() -> None:
        cluster.kubectl(
            "apply",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(manifest),
            check=False,
        )

    return probe


def dry_run(cluster: Cluster, *args: str) -> Callable[[], None]:
    """A probe: any kubectl command with ``--dry-run=server`` (a status patch, a delete)."""

    def probe() -> None:
        cluster.kubectl(*args, "--dry-run=server", check=False)

    return probe
