"""Alerts through the operator, end to end: a real sidecar drifts, the operator (as its ServiceAccount,
reading the alert Secrets through the namespace's RoleBinding) delivers to a real HTTP receiver and a
real SMTP server on loopback.

In one monitor's life: the first delivery fails once (503) and the retry succeeds; the webhook Secret
is rotated while the operator runs and the next alert goes to the new URL; ``driftwatch ack`` silences
a repeated scan alert until the next transition; the rate limit holds back what is over its burst;
``driftwatch ack --adopt`` makes the sidecar adopt the drifted regime. No value read from a Secret
appears in status, Events, the operator's log or its metrics. (Scan results are written into
``status.lastScan`` here as the scan Job would: test_scan.py runs the Job itself.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from driftwatch.devcluster import Cluster
from driftwatch.devcluster.stack import (
    OperatorProcess,
    RedisServer,
    free_port,
    http_ok,
    operator_stack,
    wait_for,
)

OLD_TOKEN, NEW_TOKEN = "hook-token-OLD-7f3a9c", "hook-token-NEW-b41e22"


class Receiver:
    """An aiohttp server on its own thread: records POSTs, answers the scripted statuses first."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.script: list[int] = []
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, await request.json()))
        if self.script:
            return web.Response(status=self.script.pop(0), text="not now")
        return web.Response(text="ok")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> Receiver:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{token}"


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, RedisServer]]:
    with operator_stack(cluster, tmp_path_factory.mktemp("alerts-operator")) as (op, redis_server):
        yield op, redis_server


@pytest.fixture
def smtp() -> Iterator[Any]:
    from aiosmtpd.controller import Controller

    class Handler:
        messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages.append(envelope)
            return "250 OK"

    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def get(cluster: Cluster, kind: str, ns: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = cluster.kubectl_json("get", kind, name, "-n", ns)
    return doc


def fake_scan(cluster: Cluster, ns: str, name: str, result: str, previous: str) -> str:
    """``status.lastScan`` as a scan Job writes it (a fresh time each call)."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)  # a new second: a new scan (and past repeatInterval: 1s)
    features = [{"feature": "latency_ms", "drifted": result == "Drift", "severity": "warning"}]
    status = {
        "lastScan": {
            "time": when,
            "result": result,
            "drifted": result == "Drift",
            "share": 1.0,
            "features": features,
        },
        "scans": [{"time": when, "result": result}, {"time": "2000-01-01T00:00:00Z", "result": previous}],
    }
    cluster.kubectl(
        "patch",
        "driftmonitor",
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    return when


def test_alerts_retry_rotation_ack_rate_limit_adopt(
    cluster: Cluster, stack: tuple[OperatorProcess, RedisServer], namespace: str, tmp_path: Path, smtp: Any
) -> None:
    op, _ = stack
    ns, name = namespace, "fraud"
    controller, mailbox = smtp
    with Receiver() as hooks:
        # the namespace opts in: the operator may read its Secrets (get only)
        cluster.kubectl(
            "create", "rolebinding", "driftwatch-alert-secrets", "-n", ns,
            "--clusterrole=driftwatch-alert-secrets", "--serviceaccount=driftwatch:driftwatch-operator",
        )  # fmt: skip
        cluster.apply(secret("hooks", url=hooks.url(OLD_TOKEN)), namespace=ns)
        spec = {
            "selector": {"matchLabels": {"app": name}},
            "features": [{"name": "latency_ms", "type": "numeric"}],
            "baseline": {"minSamples": 200, "window": 1000, "adopt": {"after": "never"}},
            "alerts": {
                "repeatInterval": "1s",
                "rateLimit": {"burst": 3, "perHour": 1},
                "webhook": {"urlFrom": {"secretKeyRef": {"name": "hooks", "key": "url"}}},
                "email": {
                    "to": ["oncall@example.com"],
                    "from": "driftwatch@example.com",
                    "smtp": {"host": "127.0.0.1", "port": controller.port, "tls": "none"},
                },
            },
        }
        cluster.apply(
            {
                "apiVersion": "driftwatch.io/v1alpha1",
                "kind": "DriftMonitor",
                "metadata": {"name": name},
                "spec": spec,
            },
            namespace=ns,
        )
        wait_for(lambda: get(cluster, "configmap", ns, f"driftwatch-{name}"), 30, "the ConfigMap")
        config = yaml.safe_load(get(cluster, "configmap", ns, f"driftwatch-{name}")["data"]["sidecar.yaml"])
        port, metrics = free_port(), free_port()
        config["listen"].update({"port": port, "metricsPort": metrics})
        (tmp_path / "sc.yaml").write_text(yaml.safe_dump(config))
        sidecar = subprocess.Popen(
            [sys.executable, "-m", "driftwatch", "sidecar", "--config", str(tmp_path / "sc.yaml")],
            env={"POD_NAME": f"{name}-0", "PATH": "/usr/bin:/bin"},
            stdout=(tmp_path / "sc.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: http_ok(f"http://127.0.0.1:{metrics}/healthz"), 30, "sidecar")
            rng = random.Random(1)

            def post(mean: float, n: int) -> None:
                body = {
                    "samples": [{"feature": "latency_ms", "value": rng.gauss(mean, 5.0)} for _ in range(n)]
                }
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/samples",
                    json.dumps(body).encode(),
                    {"Content-Type": "application/json"},
                )
                urllib.request.urlopen(req, timeout=10).read()

            # 1. a drift starts; the receiver fails once, the retry delivers (same alert id twice)
            hooks.script = [503]
            post(100.0, 1500)
            post(160.0, 400)
            wait_for(lambda: len(hooks.received) >= 2, 60, "the DRIFT_START delivered after one retry")
            (p1, first), (p2, second) = hooks.received[:2]
            assert p1 == p2 == f"/hooks/{OLD_TOKEN}"
            assert first["id"] == second["id"]
            assert (first["type"], first["feature"]) == ("DRIFT_START", "latency_ms")
            st = wait_for(
                lambda: get(cluster, "driftmonitor", ns, name)["status"].get("alerts"), 30, "status.alerts"
            )
            webhook = next(o for o in st[0]["outcomes"] if o["channel"] == "webhook")
            assert (webhook["status"], webhook["attempts"]) == ("sent", 2)
            wait_for(lambda: mailbox.messages, 30, "the e-mail")

            # 2. the Secret rotated while the operator runs: the next alert goes to the new URL
            cluster.apply(secret("hooks", url=hooks.url(NEW_TOKEN)), namespace=ns)
            fake_scan(cluster, ns, name, "Drift", previous="NoDrift")
            wait_for(
                lambda: hooks.received[-1][0] == f"/hooks/{NEW_TOKEN}", 30, "delivery to the rotated URL"
            )
            assert hooks.received[-1][1]["type"] == "SCAN_DRIFT"

            # 3. acknowledged: the same drift found again is silenced
            ack = subprocess.run(
                [sys.executable, "-m", "driftwatch", "ack", f"{ns}/{name}", "--by", "alice", "--wait", "30"],
                env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert ack.returncode == 0, ack.stderr
            assert json.loads(ack.stdout)["recorded"] is True
            n = len(hooks.received)
            fake_scan(cluster, ns, name, "Drift", previous="Drift")

            def last_alert_status() -> str | None:
                alerts = get(cluster, "driftmonitor", ns, name)["status"].get("alerts") or []
                return (
                    alerts[0]["outcomes"][0]["status"]
                    if alerts and alerts[0]["type"] == "SCAN_DRIFT"
                    else None
                )

            wait_for(lambda: last_alert_status() == "acknowledged", 30, "the repeat silenced")
            assert len(hooks.received) == n

            # 4. the next transition ends the acknowledgement: a new drift is sent -- the burst's last
            fake_scan(cluster, ns, name, "NoDrift", previous="Drift")
            fake_scan(cluster, ns, name, "Drift", previous="NoDrift")
            wait_for(lambda: len(hooks.received) == n + 1, 30, "the new drift sent")
            acked = get(cluster, "driftmonitor", ns, name)["status"]["acknowledged"]
            assert acked[0]["by"] == "alice"
            assert acked[0]["active"] is False

            # 5. over the burst: held back, counted
            fake_scan(cluster, ns, name, "Drift", previous="NoDrift")
            wait_for(lambda: last_alert_status() == "rate-limited", 30, "the rate limit")
            assert len(hooks.received) == n + 1

            # 6. ack --adopt: the sidecar adopts the drifted regime, the drift ends as adopted
            cmd = [sys.executable, "-m", "driftwatch", "ack", f"{ns}/{name}", "--feature=latency_ms"]
            adopt = subprocess.run(
                [*cmd, "--adopt"],
                env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert adopt.returncode == 0, adopt.stderr

            def adopted() -> bool:
                with urllib.request.urlopen(
                    f"{op.gate_url}/v1/history/{ns}/{name}?type=DRIFT_END", timeout=10
                ) as r:
                    entries = json.loads(r.read())["entries"]
                return any(e["details"].get("reason") == "adopted" for e in entries)

            wait_for(adopted, 60, "DRIFT_END (adopted) in the history")
            with urllib.request.urlopen(
                f"{op.gate_url}/v1/history/{ns}/{name}?type=ACK,ALERT", timeout=10
            ) as r:
                kinds = {e["type"] for e in json.loads(r.read())["entries"]}
            assert kinds == {"ACK", "ALERT"}
        finally:
            sidecar.terminate()
            sidecar.wait(30)

        # no secret value anywhere the operator writes
        with urllib.request.urlopen(f"{op.gate_url}/metrics", timeout=5) as r:
            metrics_text = r.read().decode()
        assert 'driftwatch_alerts_total{channel="webhook",status="sent"}' in metrics_text
        assert 'status="rate-limited"' in metrics_text
        written = [
            json.dumps(get(cluster, "driftmonitor", ns, name)),
            cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout,
            op.log_path.read_text(errors="replace"),
            metrics_text,
        ]
        for text in written:
            for token in (OLD_TOKEN, NEW_TOKEN, hooks.url(OLD_TOKEN), hooks.url(NEW_TOKEN)):
                assert token not in text
