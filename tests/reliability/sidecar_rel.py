"""What the sidecar's reliability tests share: real sidecar processes (``tests/integration/sidecar``'s
``SidecarProc``) and private Redis servers, as fixtures a test module imports.

Each ``test_sidecar_*.py`` loads this module as a plugin (``pytest_plugins = ["sidecar_rel"]``)
rather than defined in this directory's conftest.py, which the operator's half of the suite owns.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from driftwatch.devcluster import stack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "sidecar"))

from sidecar_helpers import SidecarProc, http, make_config, sidecar_processes

__all__ = ["SidecarProc", "http", "make_config", "redis_server", "sidecar_factory"]


class Redis(stack.RedisServer):
    """A private redis-server; ``kill()`` is an outage, ``start()`` brings it back on the same port."""

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (bash scripts/install-system-deps.sh)")
    server = Redis(None, tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def sidecar_factory(tmp_path: Path) -> Iterator[Callable[..., SidecarProc]]:
    """``sidecar_factory(pod=..., redis_url=..., limits={...})``: a started sidecar; all stopped at the end
    of the test."""
    yield from sidecar_processes(tmp_path, stack.free_port)


class AofRedis(Redis):
    """A private redis-server with every write fsynced (AOF ``always``): killed and started again it
    comes back with its data, as a persistent Redis does (the chart's bundled one runs AOF everysec)."""

    def start(self) -> AofRedis:
        import socket
        import subprocess

        binary = shutil.which("redis-server")
        assert binary is not None
        Path(self.dir).mkdir(parents=True, exist_ok=True)
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", self.dir]
        cmd += [
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        stack.wait_for(up, 10, f"redis-server on port {self.port}", interval=0.05)
        return self


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[AofRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (bash scripts/install-system-deps.sh)")
    server = AofRedis(None, tmp_path / "redis-aof")
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Loader:
    """Threads posting batches of ``batch`` samples of ``feature`` over keep-alive connections as fast
    as the sidecar answers, recording every answer: how many samples were answered 202 and when
    (client clock, just after the answer), how many 429/503/errors. What a test then compares with
    what the sidecar applied."""

    def __init__(self, port: int, feature: str = "latency_ms", threads: int = 4, batch: int = 500) -> None:
        import threading

        self.port = port
        self.feature = feature
        self.batch = batch
        self.lock = threading.Lock()
        self.accepted: list[tuple[float, int]] = []  # (answered at, samples accepted)
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def start(self) -> Loader:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> Loader:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        return self

    @property
    def total(self) -> int:
        with self.lock:
            return sum(n for _, n in self.accepted)

    def total_before(self, t: float) -> int:
        with self.lock:
            return sum(n for at, n in self.accepted if at < t)

    def wait_total(self, n: int, timeout: float = 60.0) -> None:
        stack.wait_for(lambda: self.total >= n, timeout, f"{n} samples answered 202")

    def _run(self, k: int) -> None:
        import http.client
        import json
        import random
        import time

        rng = random.Random(k)
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            body = json.dumps(
                {
                    "samples": [
                        {"feature": self.feature, "value": rng.gauss(100, 10)} for _ in range(self.batch)
                    ]
                }
            ).encode()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/v1/samples", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                now = time.time()
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.errors += 1
                conn = None
                time.sleep(0.05)
                continue
            with self.lock:
                self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
                if resp.status == 202:
                    self.accepted.append((now, json.loads(data)["accepted"]))
            if resp.status in (429, 503):
                time.sleep(0.05)


@pytest.fixture
def loader() -> Iterator[Callable[..., Loader]]:
    """``loader(port, feature=..., threads=..., batch=...)``: a started Loader; all stopped at the end."""
    started: list[Loader] = []

    def make(port: int, **kw: Any) -> Loader:
        lo = Loader(port, **kw)
        started.append(lo)
        return lo.start()

    yield make
    for lo in started:
        lo.stop()
