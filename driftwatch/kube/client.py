"""A small async Kubernetes REST client on aiohttp: the one client of the operator and the CLI.

Why not the official ``kubernetes`` client: it is synchronous (kopf would run every call in a thread)
and, as kopf's authors point out, it can be most of an operator's memory. DriftWatch needs a handful
of verbs -- get, list, server-side apply, merge patch, delete -- on a handful of kinds; this is that.
Credentials are anything shaped like :class:`Connection`: kopf's own ``ConnectionInfo`` in the operator
(kopf's login), :class:`driftwatch.kube.credentials.Credentials` in the CLI (kubeconfig or in-cluster).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar

import aiohttp

from driftwatch.vocab.names import GROUP, MANAGER, PLURAL, VERSION

#: kind -> (api prefix, plural) for the kinds the operator touches
KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("api/v1", "configmaps"),
    "Service": ("api/v1", "services"),
    "Secret": ("api/v1", "secrets"),
    "Pod": ("api/v1", "pods"),
    "Event": ("api/v1", "events"),
    "ServiceAccount": ("api/v1", "serviceaccounts"),
    "Role": ("apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "CronJob": ("apis/batch/v1", "cronjobs"),
    "Job": ("apis/batch/v1", "jobs"),
    "ServiceMonitor": ("apis/monitoring.coreos.com/v1", "servicemonitors"),
    "PrometheusRule": ("apis/monitoring.coreos.com/v1", "prometheusrules"),
    "DriftMonitor": (f"apis/{GROUP}/{VERSION}", PLURAL),
    "MutatingWebhookConfiguration": ("apis/admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations"),
    "Lease": ("apis/coordination.k8s.io/v1", "leases"),
}
CLUSTER_SCOPED = {"MutatingWebhookConfiguration"}
RETRY_STATUSES = {429, 502, 503, 504}
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)

T = TypeVar("T")


class Connection(Protocol):
    """Where the API server is and how to authenticate: kopf's ``ConnectionInfo`` has this shape, and so
    has :class:`driftwatch.kube.credentials.Credentials`."""

    @property
    def server(self) -> str: ...

    @property
    def insecure(self) -> bool | None: ...

    def as_ssl_context(self) -> ssl.SSLContext: ...

    def as_http_headers(self) -> dict[str, str]: ...


class KubeError(Exception):
    """A non-2xx answer from the API server, with its Status message."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(f"HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def path_for(kind: str, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
    prefix, plural = KINDS[kind]
    parts = [prefix]
    if namespace and kind not in CLUSTER_SCOPED:
        parts += ["namespaces", namespace]
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/" + "/".join(parts)


class Kube:
    """One aiohttp session to the API server; recreated if the credentials change (kopf re-login)."""

    def __init__(self, info: Connection | None = None, timeout: float = 30.0) -> None:
        self._info = info
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._lock = asyncio.Lock()

    def set_credentials(self, info: Connection) -> None:
        """Use these credentials from now on; called in the event loop (kopf's login handler)."""
        if self._info is not None and info == self._info:
            return
        self._info = info
        old, self._session = self._session, None
        if old is not None and not old.closed:
            # close later: requests in flight on the old session finish first
            loop = asyncio.get_running_loop()
            loop.call_later(30, lambda: loop.create_task(old.close()))

    async def _get_session(self) -> aiohttp.ClientSession:
        async with self._lock:
            if self._session is None or self._session.closed:
                if self._info is None:
                    raise RuntimeError("no Kubernetes credentials yet (login has not run)")
                ssl = False if self._info.insecure else self._info.as_ssl_context()
                self._session = aiohttp.ClientSession(
                    base_url=self._info.server.rstrip("/") + "/",
                    headers=self._info.as_http_headers(),
                    connector=aiohttp.TCPConnector(ssl=ssl, limit=20),
                    timeout=self._timeout,
                )
            return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retry: bool = True,
    ) -> Any:
        """One API call; retried on 429/5xx-unavailable and connection errors (a fresh CRD answers 429
        "storage is (re)initializing" for a moment; an API server restart drops connections), unless
        ``retry`` is false (a Service proxy's 503 "no endpoints" is an answer, not a hiccup)."""
        answer, _ = await self._call(
            method, path, params=params, body=body, content_type=content_type, retry=retry
        )
        return answer

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: Any,
        content_type: str,
        retry: bool,
    ) -> tuple[Any, str]:
        """``request``, with the answer's ``Date`` header."""
        for attempt, delay in enumerate((*RETRY_DELAYS, None) if retry else (None,)):
            try:
                return await self._request_once(
                    method, path, params=params, body=body, content_type=content_type
                )
            except KubeError as e:
                if delay is None or e.status not in RETRY_STATUSES:
                    raise
            except (TimeoutError, aiohttp.ClientConnectionError):
                if delay is None:
                    raise
            await asyncio.sleep(delay * (1 + attempt * 0.1))
        raise AssertionError("unreachable")

    async def _request_once(
        self, method: str, path: str, *, params: Mapping[str, str] | None, body: Any, content_type: str
    ) -> tuple[Any, str]:
        session = await self._get_session()
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        # aiohttp's base_url joins relative paths: strip the leading slash
        async with session.request(method, path.lstrip("/"), params=params, data=data, headers=headers) as r:
            text = await r.text()
            if r.status >= 400:
                try:
                    status = json.loads(text)
                except ValueError:
                    raise KubeError(r.status, text) from None
                raise KubeError(r.status, status.get("message", text), status.get("reason", ""))
            return (json.loads(text) if text else None), r.headers.get("Date", "")

    # --- verbs ---

    async def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        try:
            obj: dict[str, Any] = await self.request("GET", path_for(kind, namespace, name))
            return obj
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    async def get_dated(
        self, kind: str, namespace: str | None, name: str
    ) -> tuple[dict[str, Any] | None, dt.datetime | None]:
        """The object (None if it does not exist) and the API server's clock when it answered (its
        ``Date`` header: whole seconds, truncated; None without one). That clock is the one the server
        stamps the object with (``managedFields`` times), whatever this host's clock says."""
        try:
            obj, date = await self._call(
                "GET", path_for(kind, namespace, name), params=None, body=None, content_type="", retry=True
            )
        except KubeError as e:
            if e.status == 404:
                return None, None
            raise
        try:
            at = email.utils.parsedate_to_datetime(date) if date else None
        except ValueError:
            at = None
        return obj, at

    async def list(
        self, kind: str, namespace: str | None = None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        out = await self.request("GET", path_for(kind, namespace), params=params)
        items: list[dict[str, Any]] = out.get("items") or []
        return items

    async def list_page(
        self, kind: str, namespace: str | None = None, field_selector: str = ""
    ) -> dict[str, Any]:
        """The list object itself (``items`` and ``metadata.resourceVersion``, where a watch starts)."""
        params = {"fieldSelector": field_selector} if field_selector else None
        out: dict[str, Any] = await self.request("GET", path_for(kind, namespace), params=params)
        return out

    async def watch(
        self,
        kind: str,
        namespace: str | None,
        resource_version: str,
        *,
        field_selector: str = "",
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """The events (``{"type", "object"}``) of one watch request from ``resource_version``, bookmarks
        included, until the server ends it (after about ``timeout_seconds``). Not retried: resuming, and
        re-listing on 410 Gone, is the caller's (:mod:`driftwatch.kube.watch`). A non-2xx answer raises
        KubeError; a dropped connection raises aiohttp's error."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if field_selector:
            params["fieldSelector"] = field_selector
        session = await self._get_session()
        # no total timeout: a watch is long by design; a silent peer is caught by the read timeout
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=timeout_seconds + 30)
        async with session.get(path_for(kind, namespace).lstrip("/"), params=params, timeout=timeout) as r:
            if r.status >= 400:
                text = await r.text()
                try:
                    status = json.loads(text)
                except ValueError:
                    raise KubeError(r.status, text) from None
                raise KubeError(r.status, status.get("message", text), status.get("reason", ""))
            # one JSON event per line; split by hand, as aiohttp's line reader caps a line at 64 KiB
            # and a DriftMonitor with many features can be larger
            buffer = b""
            async for chunk in r.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        event: dict[str, Any] = json.loads(line)
                        yield event

    async def apply(
        self, obj: Mapping[str, Any], *, subresource: str = "", force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply: creates or updates, and owns exactly the fields we send."""
        meta = obj["metadata"]
        path = path_for(obj["kind"], meta.get("namespace"), meta["name"], subresource)
        params = {"fieldManager": MANAGER, "force": "true" if force else "false"}
        out: dict[str, Any] = await self.request(
            "PATCH", path, params=params, body=obj, content_type="application/apply-patch+yaml"
        )
        return out

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        out: dict[str, Any] = await self.request(
            "POST",
            path_for(obj["kind"], meta.get("namespace")),
            params={"fieldManager": MANAGER},
            body=obj,
        )
        return out

    async def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        out: dict[str, Any] = await self.request(
            "PUT",
            path_for(obj["kind"], meta.get("namespace"), meta["name"]),
            params={"fieldManager": MANAGER},
            body=obj,
        )
        return out

    async def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        try:
            await self.request("DELETE", path_for(kind, namespace, name))
            return True
        except KubeError as e:
            if e.status == 404:
                return False
            raise

    async def has_resource(self, group_version: str, plural: str) -> bool:
        """Whether the API serves ``plural`` in ``group_version`` (discovery; every user may read it)."""
        try:
            out = await self.request("GET", f"/apis/{group_version}")
        except KubeError as e:
            if e.status in (403, 404, 503):
                return False
            raise
        return any(r.get("name") == plural for r in out.get("resources") or [])


def run(info: Connection, call: Callable[[Kube], Awaitable[T]]) -> T:
    """``call(kube)`` in a fresh event loop, the session closed after: for synchronous callers (the CLI)."""

    async def main() -> T:
        async with Kube(info) as kube:
            return await call(kube)

    return asyncio.run(main())
