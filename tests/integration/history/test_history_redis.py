"""The history stream on a real Redis: append, filter, page with cursors (newest first), trimmed to
its bound; ``driftwatch history --redis-url`` prints the same pages."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import redis.asyncio as aioredis

from driftwatch.history import stream_log
from driftwatch.history.entries import Entry, Filters
from driftwatch.vocab.rediskeys import MonitorKeys

KEY = MonitorKeys.of("driftwatch", "shop", "pay").history  # the hash-tagged layout


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_pages_filters_and_bound(redis_server: Any) -> None:
    async def go() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            t0 = 1_700_000_000.0
            for i in range(30):
                kind = "SCAN" if i % 3 else "DRIFT_START"
                severity = "critical" if i % 5 == 0 else "warning"
                entry = Entry(kind, t0 + i, f"#{i}", "x" if i % 2 else "y", severity=severity)
                await stream_log.append(client, KEY, entry)
            page = await stream_log.query(client, KEY, Filters.parse({"limit": "4"}))
            assert [e.summary for _, e in page.entries] == ["#29", "#28", "#27", "#26"]
            assert page.next is not None
            nxt = await stream_log.query(client, KEY, Filters.parse({"limit": "4", "cursor": page.next}))
            assert [e.summary for _, e in nxt.entries] == ["#25", "#24", "#23", "#22"]
            starts = await stream_log.query(
                client, KEY, Filters.parse({"type": "DRIFT_START", "feature": "y"})
            )
            assert [e.summary for _, e in starts.entries] == ["#24", "#18", "#12", "#6", "#0"]
            assert starts.next is None
            critical = await stream_log.query(
                client, KEY, Filters.parse({"severity": "critical", "limit": "100"})
            )
            assert len(critical.entries) == 6
            for i in range(50):  # a small bound, trimmed approximately as XADD MAXLEN ~ does
                await stream_log.append(client, KEY + ":small", Entry("SCAN", t0 + i, str(i)), maxlen=10)
            assert await client.xlen(KEY + ":small") < 50
        finally:
            await client.aclose()

    run(go())


def test_the_cli_reads_redis(redis_server: Any) -> None:
    async def fill() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        await stream_log.append(client, KEY, Entry("ALERT", 1_700_000_000.0, "sent", "x", severity="warning"))
        await client.aclose()

    run(fill())
    cmd = [sys.executable, "-m", "driftwatch", "history", "shop/pay", "--redis-url", redis_server.url]
    out = subprocess.run([*cmd, "--type", "ALERT", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [e["summary"] for e in json.loads(out.stdout)["entries"]] == ["sent"]
    bad = subprocess.run([*cmd, "--severity", "loud"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "--severity" in bad.stderr
