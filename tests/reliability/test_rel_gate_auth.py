"""The gate and the operator's /metrics behind a bearer token when one is configured (before issue 12
anyone who could reach port 8080 read every monitor's verdict and the operator's metrics); the
probes stay open, so the kubelet needs no token."""

from __future__ import annotations

import asyncio

import aiohttp

from driftwatch.devcluster.stack import free_port
from driftwatch.operator.cache import MonitorCache
from driftwatch.operator.endpoints import EndpointServer


def test_token_guards_gate_and_metrics_not_probes() -> None:
    async def main() -> None:
        port = free_port()
        server = EndpointServer(MonitorCache(), "127.0.0.1", port, 60.0, ready=lambda: True, token="s3cret")
        await server.start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for path in ("/v1/gate/shop/payments", "/metrics"):
                    async with http.get(base + path) as r:
                        assert r.status == 401, path
                    async with http.get(base + path, headers={"Authorization": "Bearer wrong"}) as r:
                        assert r.status == 401, path
                    async with http.get(base + path, headers={"Authorization": "Bearer s3cret"}) as r:
                        assert r.status in (200, 404), path  # 404: no such monitor, but let in
                for path in ("/healthz", "/readyz"):
                    async with http.get(base + path) as r:
                        assert r.status == 200, path
        finally:
            await server.stop()

    asyncio.run(main())
