"""A TCP balancer on loopback: what a Service does for the webhook, on a control plane without kube-proxy.

In a cluster the API server calls the webhook through the ``driftwatch-webhook`` Service, which spreads
connections over every ready operator replica. The local control plane runs no kube-proxy, so the
webhook configuration names a URL instead (docs/decisions.md §5); pointing that URL here puts two
operator processes behind one address, as two replicas behind their Service. Each new connection goes
to the next backend, round robin, skipping one that refuses it -- a dead replica, as the endpoints
controller would drop it. TLS passes through untouched (the operators terminate it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence

from driftwatch.devcluster.stack import free_port


class Balancer:
    """Listens on 127.0.0.1:``port`` in a thread of its own; ``connections`` counts per backend port."""

    def __init__(self, backends: Sequence[int], port: int | None = None) -> None:
        self.backends = list(backends)
        self.port = port or free_port()
        self.connections: dict[int, int] = dict.fromkeys(self.backends, 0)
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            port = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
            except (OSError, TimeoutError):
                continue
            return port, reader, writer
        return None

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        backend = await self._connect()
        if backend is None:  # nobody ready: the caller's connection fails, as with no endpoints
            client_w.close()
            return
        port, r, w = backend
        self.connections[port] += 1
        await asyncio.gather(self._pipe(client_r, w), self._pipe(r, client_w))

    async def _main(self, started: threading.Event) -> None:
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        started.set()
        async with server:
            await self._stopped.wait()

    def start(self) -> Balancer:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()
        loop = self._loop
        self._thread = threading.Thread(
            target=lambda: loop.run_until_complete(self._main(started)), name="balancer", daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError(f"the balancer did not listen on 127.0.0.1:{self.port}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)
        if self._loop is not None:
            self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Balancer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
