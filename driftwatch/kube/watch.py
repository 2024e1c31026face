"""List, then watch, for as long as the caller wants: what ``driftwatch status --watch`` reads.

A single watch request does not last: the API server ends it after ``timeoutSeconds`` (or when it
restarts), and the resource version it resumes from may have been compacted meanwhile (410 Gone). This
does what client-go's reflector does, small:

* the server ended the stream: watch again from the last resource version seen (bookmarks advance it
  even when nothing changes, so a quiet namespace does not fall behind the compaction window);
* the connection dropped or was refused (an API server restart): retry with a capped backoff, then
  resume from the last resource version;
* 410 Gone (as the answer, or as an ``ERROR`` event): list again, and report what changed meanwhile
  as ``ADDED``/``MODIFIED``/``DELETED`` against what the caller was shown, so no change is lost and
  none is repeated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from driftwatch.kube.client import Kube, KubeError

#: seconds between reconnection attempts while the API server is away (doubling up to the last)
BACKOFF = (0.5, 1.0, 2.0, 4.0)
#: error statuses that are worth waiting out (the API server starting, overloaded or restarting)
TRANSIENT = {429, 500, 502, 503, 504}
#: attempts during which a 401/403 after a dropped connection counts as the API server still starting
AUTH_RETRIES = 15


class Gone(Exception):
    """The resource version is too old to resume from (HTTP 410): list again."""


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _uid(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


class Watcher:
    """``kind`` objects in ``namespace`` (None: all), or only the one named ``name``.

    :meth:`snapshot` lists; :meth:`changes` then yields ``(type, object)`` for ever, resuming as the
    module says. ``relists`` and ``resumes`` count what happened, for tests and a ``-v`` reader.
    """

    def __init__(
        self,
        kube: Kube,
        kind: str,
        namespace: str | None,
        name: str | None = None,
        timeout_seconds: int = 300,
    ) -> None:
        self.kube, self.kind, self.namespace = kube, kind, namespace
        self.field_selector = f"metadata.name={name}" if name else ""
        self.timeout_seconds = timeout_seconds
        #: where the next watch starts
        self.resource_version = ""
        #: uid -> the last version of every object the caller has been shown
        self.known: dict[str, dict[str, Any]] = {}
        self.relists = 0
        self.resumes = 0

    async def _list(self) -> list[dict[str, Any]]:
        page = await self.kube.list_page(self.kind, self.namespace, self.field_selector)
        self.resource_version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        items: list[dict[str, Any]] = page.get("items") or []
        return items

    async def snapshot(self) -> list[dict[str, Any]]:
        """The current objects; the watch starts after them."""
        items = await self._list()
        self.known = {_uid(o): o for o in items}
        return items

    def _remember(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.known.pop(_uid(obj), None)
        else:
            self.known[_uid(obj)] = obj

    async def _relist(self) -> list[tuple[str, dict[str, Any]]]:
        """List again after 410 Gone: the differences from what was shown, as events."""
        self.relists += 1
        items = await self._list()
        seen = {_uid(o): o for o in items}
        events: list[tuple[str, dict[str, Any]]] = []
        for uid, obj in seen.items():
            if uid not in self.known:
                events.append(("ADDED", obj))
            elif _rv(self.known[uid]) != _rv(obj):
                events.append(("MODIFIED", obj))
        events += [("DELETED", obj) for uid, obj in self.known.items() if uid not in seen]
        return events

    async def _one_watch(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        async for event in self.kube.watch(
            self.kind,
            self.namespace,
            self.resource_version,
            field_selector=self.field_selector,
            timeout_seconds=self.timeout_seconds,
        ):
            kind, obj = str(event.get("type")), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone(obj.get("message", "resource version too old"))
                raise KubeError(int(obj.get("code") or 500), str(obj.get("message")), str(obj.get("reason")))
            if _rv(obj):
                self.resource_version = _rv(obj)
            if kind == "BOOKMARK":
                continue
            self._remember(kind, obj)
            yield kind, obj

    async def changes(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every change after the snapshot, for ever (cancel the task to stop)."""
        failures = 0
        while True:
            try:
                async for event in self._one_watch():
                    failures = 0
                    yield event
                failures = 0  # the server ended the watch: resume where it stopped
            except (Gone, KubeError) as e:
                if isinstance(e, Gone) or e.status == 410:
                    for event in await self._relist_when_up():
                        yield event
                    failures = 0
                    continue
                if not transient(e, failures):
                    raise
                failures += 1
            except (aiohttp.ClientError, TimeoutError, ConnectionError):
                failures += 1
            if failures:
                await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF)) - 1])
            self.resumes += 1

    async def _relist_when_up(self) -> list[tuple[str, dict[str, Any]]]:
        """:meth:`_relist`, retried while the API server is unavailable (it may just have restarted);
        :attr:`known` updated to what the list showed."""
        failures = 0
        while True:
            try:
                events = await self._relist()
            except KubeError as e:
                if not transient(e, failures + 1):
                    raise
            except (aiohttp.ClientError, TimeoutError, ConnectionError):
                pass
            else:
                for kind, obj in events:
                    self._remember(kind, obj)
                return events
            failures += 1
            await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF)) - 1])


def transient(error: KubeError, failures: int) -> bool:
    """Worth waiting out: the API server starting or overloaded (429, 5xx), and -- only right after the
    connection failed, for a bounded number of attempts -- 401/403, which a restarting API server
    answers until its authenticator and authorizer caches are filled."""
    if error.status in TRANSIENT:
        return True
    return error.status in (401, 403) and 0 < failures < AUTH_RETRIES
