"""The admission webhook answers while a large monitor aggregates.

The webhook and the aggregation share the operator's event loop. Before issue 12 a round decoded and
merged every pod's summary on that loop: 60 pods of a 400-stream monitor hold it for several seconds,
longer than the webhook's ``timeoutSeconds`` (5), so pods were created without their sidecar -- in
every tenant's namespace. Now the decoding and the merge run in a worker thread. This test runs one
such round for real (real Redis, the real webhook server over TLS, the real round) and measures the
webhook's latency meanwhile: its worst answer must stay far below both the round and the timeout.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from reliability_helpers import record

from driftwatch.detect import Engine
from driftwatch.devcluster.stack import RedisServer, free_port
from driftwatch.operator import certs, status_round
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.webhook import WebhookServer
from driftwatch.vocab.spec import MonitorSpec

pytestmark = pytest.mark.slow

PODS = 60
FEATURES, KEYS = 40, 10


def big_summary() -> dict[str, Any]:
    spec = MonitorSpec.parse({"features": [{"name": f"f{i}", "type": "numeric"} for i in range(FEATURES)]})
    engine = Engine(spec, name="big")
    rng = np.random.default_rng(1)
    for i in range(FEATURES):
        for k in range(KEYS):
            engine.update(f"f{i}", rng.normal(100, 10, 300), key=f"k{k}")
    summary: dict[str, Any] = engine.summary()
    return summary


def review(i: int) -> dict[str, Any]:
    pod = {
        "metadata": {"generateName": "web-", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app"}]},
    }
    request = {
        "uid": f"u{i}",
        "kind": {"kind": "Pod"},
        "operation": "CREATE",
        "namespace": "shop",
        "object": pod,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def test_webhook_answers_within_its_timeout_during_a_large_aggregation(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    bundle = certs.make_bundle(["127.0.0.1", "localhost"])
    for name, data in (("tls.crt", bundle.cert), ("tls.key", bundle.key), ("ca.crt", bundle.ca_cert)):
        (tls / name).write_bytes(data)
    with RedisServer(workdir=tmp_path / "redis") as redis_server:
        options = OperatorOptions(
            redis_url=redis_server.url,
            webhook_mode="none",
            webhook_host="127.0.0.1",
            webhook_port=free_port(),
            tls_mode="cert-manager",
            tls_dir=str(tls),
        )
        asyncio.run(measure(options, bundle.ca_cert))


async def measure(options: OperatorOptions, ca: bytes) -> None:
    ctx = OperatorContext(options)
    body = {
        "metadata": {"name": "big", "namespace": "shop", "uid": "u", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "features": [f"f{i}" for i in range(FEATURES)]},
        "status": {"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1}]},
    }
    monitor = ctx.cache.upsert(body, options)
    assert monitor is not None
    client = ctx.redis.get(options.redis_url)
    text = json.dumps(big_summary())
    now = time.time()
    async with client.pipeline(transaction=False) as p:
        for i in range(PODS):
            p.set(monitor.keys.summary(f"pod-{i}"), text, ex=600)
            p.zadd(monitor.keys.pods, {f"pod-{i}": now})
        await p.execute()

    webhook = WebhookServer(ctx.cache, options, ctx.kube)
    await webhook.start()
    latencies: list[float] = []
    answers: list[dict[str, Any]] = []
    done = threading.Event()
    url = f"https://127.0.0.1:{options.webhook_port}{options.webhook_path}"

    async def admissions() -> None:
        """The API server's side, on its own thread and loop: what it would wait for."""
        ssl_ctx = ssl.create_default_context(cadata=ca.decode())
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx)) as http:
            i = 0
            while not done.is_set():
                started = time.perf_counter()
                async with http.post(url, json=review(i)) as resp:
                    answers.append(await resp.json())
                latencies.append(time.perf_counter() - started)
                i += 1
                await asyncio.sleep(0.02)

    loop, finished = asyncio.get_running_loop(), asyncio.Event()

    def call() -> None:
        try:
            asyncio.run(admissions())
        finally:
            loop.call_soon_threadsafe(finished.set)

    threading.Thread(target=call, daemon=True).start()
    await asyncio.sleep(0.5)  # a few answers with an idle loop first
    started = time.perf_counter()
    features, _summaries, reporting, error = await status_round._read(ctx, monitor)
    round_s = time.perf_counter() - started
    done.set()
    await finished.wait()  # its last request needs this loop to answer
    assert all(a["response"]["patchType"] == "JSONPatch" for a in answers)  # injected: the cache answered
    await webhook.stop()
    await ctx.redis.close()

    assert error is None, error
    assert reporting == PODS
    assert features
    worst = max(latencies)
    p50 = sorted(latencies)[len(latencies) // 2]
    record(
        pods=PODS,
        streams=FEATURES * KEYS,
        round_seconds=round(round_s, 1),
        answers=len(latencies),
        p50_ms=round(p50 * 1000),
        worst_ms=round(worst * 1000),
    )
    # the round would have held the loop for round_s; the webhook was never held for a fraction of it
    assert worst < options.webhook_timeout_seconds
    assert worst < round_s / 4
