"""Shared fixtures for integration tests: free ports and private, real redis-server instances.

Each Redis runs on its own free port in a temp dir with persistence off, so tests never touch a
system Redis and can kill and restart theirs (``RedisServer.stop()`` / ``start()``) to test outages.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from driftwatch.devcluster import stack

#: a TCP port nobody listens on right now (bind to 0, read it back, release it)
get_free_port = stack.free_port


@pytest.fixture
def free_port() -> Callable[[], int]:
    """Call it for each port you need: ``port = free_port()``."""
    return get_free_port


class RedisServer(stack.RedisServer):
    """The product's throwaway Redis, with ``stop()`` meaning an outage (SIGKILL; ``start()`` again
    restarts it on the same port) and a skip, not an error, where redis-server is not installed."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(port, workdir)

    def start(self) -> RedisServer:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed (bash scripts/install-system-deps.sh)")
        super().start()
        return self

    def stop(self) -> None:
        self.kill()

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running private Redis, killed at the end of the test."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
