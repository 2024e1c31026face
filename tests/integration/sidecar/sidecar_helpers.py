"""Driving a real sidecar process (``.venv/bin/driftwatch sidecar --config ...``) over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

DRIFTWATCH = str(Path(sys.executable).parent / "driftwatch")

FEATURES = [
    {"name": "latency_ms", "type": "numeric"},
    {"name": "payload_kb", "type": "numeric"},
    {"name": "plan", "type": "categorical"},
]


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


class SidecarProc:
    def __init__(self, config: dict[str, Any], workdir: Path, pod: str = "pod-0") -> None:
        self.config = config
        self.dir = workdir
        self.pod = pod
        self.port = config["listen"]["port"]
        self.metrics_port = config["listen"].get("metricsPort")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"sidecar-{pod}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> SidecarProc:
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "sidecar.json"
        cfg.write_text(json.dumps(self.config))
        env = {**os.environ, "POD_NAME": self.pod}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [DRIFTWATCH, "sidecar", "--config", str(cfg), "--log-level", "INFO"],
                stdout=log,
                stderr=log,
                env=env,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if http("GET", f"{self.url}/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"sidecar did not start:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.proc = None
        return rc

    # --- helpers ----------------------------------------------------------------------------------------

    def post(self, doc: Any, path: str = "/v1/samples", raw: bytes | None = None, **headers: str) -> Response:
        body = raw if raw is not None else json.dumps(doc).encode()
        hdrs = {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
        return http("POST", self.url + path, body, hdrs)

    def get(self, path: str, port: int | None = None) -> Response:
        return http("GET", f"http://127.0.0.1:{port or self.port}{path}")

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.get("/v1/status").json()
        return doc

    def stream(self, feature: str, key: str = "") -> dict[str, Any] | None:
        for s in self.status()["streams"]:
            if s["feature"] == feature and s["key"] == key:
                return s  # type: ignore[no-any-return]
        return None

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """{(sample name, labels): value} from the metrics port (or the main port without one)."""
        text = self.get("/metrics", self.metrics_port).body.decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.metrics().items() if n == name and want <= ls)

    def wait_for(self, cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log.read_text()[-3000:]}")


def make_config(
    port: int, metrics_port: int | None = None, redis_url: str | None = None, **extra: Any
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "monitor": {"name": "payments", "namespace": "shop"},
        "spec": {"features": FEATURES, "keys": {"maxKeys": 20}, "baseline": {"minSamples": 100}},
        "listen": {"host": "127.0.0.1", "port": port, "metricsPort": metrics_port or 0},
        "state": {"checkpointInterval": "1s", "publishInterval": "1s"},
        "limits": {"batchInterval": 0.02},
    }
    if redis_url:
        cfg["redis"] = {"url": redis_url}
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


def baseline_samples(n: int, mean: float = 100.0, std: float = 10.0, seed: int = 0) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    return [{"feature": "latency_ms", "value": rng.gauss(mean, std)} for _ in range(n)]


def sidecar_processes(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., SidecarProc]]:
    """The body of the ``sidecar_factory`` fixtures (integration and reliability): ``make(pod=...,
    start=..., config=..., **make_config kwargs)`` starts a sidecar; all are stopped at the end."""
    started: list[SidecarProc] = []

    def make(
        pod: str = "pod-0", start: bool = True, config: dict[str, Any] | None = None, **kw: Any
    ) -> SidecarProc:
        cfg = config or make_config(free_port(), free_port(), **kw)
        sc = SidecarProc(cfg, tmp_path / f"sc-{len(started)}", pod)
        started.append(sc)
        return sc.start() if start else sc

    yield make
    for sc in started:
        if sc.proc is not None:
            try:
                sc.stop(timeout=10)
            except Exception:
                sc.proc.kill()
