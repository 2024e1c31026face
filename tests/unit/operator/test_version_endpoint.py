"""The operator's ``GET /version`` on a real port: the build's version, open even when the gate wants a
token (the API server's Service proxy, which ``driftwatch version`` goes through, passes none on)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp

from driftwatch import __version__
from driftwatch.operator.cache import MonitorCache
from driftwatch.operator.endpoints import EndpointServer


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _get(path: str, token: str) -> tuple[int, Any]:
    port = _port()
    server = EndpointServer(MonitorCache(), "127.0.0.1", port, max_age=60, ready=lambda: True, token=token)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as r:
            return r.status, await r.json()
    finally:
        await server.stop()


def test_version_is_open_and_names_the_build() -> None:
    status, body = asyncio.run(_get("/version", token="s3cret"))
    assert status == 200
    assert body["version"] == __version__
    assert set(body) == {"version", "python", "platform"}
    gate, _ = asyncio.run(_get("/v1/gate/shop/web", token="s3cret"))
    assert gate == 401  # the token still guards the gate
