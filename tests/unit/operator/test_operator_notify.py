"""The notification listener's pure parts: channel names, per-monitor debounce, one more round when
notified mid-round, failures left to the timer, and reconnecting after Redis errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from driftwatch.operator import notify
from driftwatch.vocab.rediskeys import notify_pattern, parse_notify_channel


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("driftwatch:{shop:payments}:notify", ("shop", "payments")),
        ("other:{shop:payments}:notify", None),
        ("driftwatch:{shop}:notify", None),
        ("driftwatch:{shop:payments}:x:notify", None),
        ("driftwatch:{shop:payments}:summary", None),
        ("driftwatch:{:payments}:notify", None),
        ("driftwatch:shop:payments:notify", None),  # the layout before hash tags
    ],
)
def test_parse_channel(channel: str, expected: tuple[str, str] | None) -> None:
    assert parse_notify_channel(channel, "driftwatch") == expected
    assert notify_pattern("driftwatch") == "driftwatch:*:notify"


def test_debounce_coalesces_per_monitor_and_reruns_when_notified_mid_round() -> None:
    calls: list[tuple[str, str]] = []

    async def main() -> None:
        gate = asyncio.Event()

        async def trigger(ns: str, name: str) -> None:
            calls.append((ns, name))
            if len(calls) == 3:
                await gate.wait()  # a slow round of shop/a

        lst = notify.NotifyListener("redis://unused", "driftwatch", trigger, debounce=0.05)
        for _ in range(5):  # a rollout's pods all notify at once: one round
            lst.on_message("driftwatch:{shop:a}:notify")
        lst.on_message("driftwatch:{shop:b}:notify")
        lst.on_message("nonsense")
        await asyncio.sleep(0.15)
        assert sorted(calls) == [("shop", "a"), ("shop", "b")]
        blocked = calls[-1]
        lst.on_message(f"driftwatch:{{{blocked[0]}:{blocked[1]}}}:notify")
        await asyncio.sleep(0.15)  # the second round of that monitor is blocked now
        lst.on_message(f"driftwatch:{{{blocked[0]}:{blocked[1]}}}:notify")  # mid-round: one more after it
        lst.on_message(f"driftwatch:{{{blocked[0]}:{blocked[1]}}}:notify")
        gate.set()
        await asyncio.sleep(0.15)
        assert calls.count(blocked) == 3
        assert lst.received == 9

    asyncio.run(main())


def test_trigger_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async def trigger(ns: str, name: str) -> None:
            raise RuntimeError("api server away")

        lst = notify.NotifyListener("redis://unused", "driftwatch", trigger, debounce=0.01)
        lst.on_message("driftwatch:{shop:a}:notify")
        await asyncio.sleep(0.1)
        lst.on_message("driftwatch:{shop:a}:notify")  # and the next notification still runs
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert sum("notified aggregation failed" in r.message for r in caplog.records) == 2


class FakePubSub:
    def __init__(self, script: list[Any]) -> None:
        self.script = script

    async def psubscribe(self, pattern: str) -> None:
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step

    async def get_message(self, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109
        await asyncio.sleep(0)
        if not self.script:
            await asyncio.sleep(3600)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return {"type": "pmessage", "channel": step, "data": "pod-0"}

    async def aclose(self) -> None:
        pass


class FakeRedis:
    def __init__(self, script: list[Any]) -> None:
        self.script = script

    def pubsub(self, **_: Any) -> FakePubSub:
        return FakePubSub(self.script)

    async def aclose(self) -> None:
        pass


def test_reconnects_after_redis_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "RECONNECT_DELAYS", (0.01,))
    seen: list[tuple[str, str]] = []
    # refused, then subscribed and a message, then the connection drops, then back with a message
    script: list[Any] = [
        ConnectionError("refused"),
        None,
        "driftwatch:{shop:a}:notify",
        ConnectionError("reset"),
        None,
        "driftwatch:{shop:b}:notify",
    ]

    async def main() -> None:
        async def trigger(ns: str, name: str) -> None:
            seen.append((ns, name))

        lst = notify.NotifyListener(
            "redis://unused", "driftwatch", trigger, debounce=0.01, client_factory=lambda: FakeRedis(script)
        )
        task = asyncio.create_task(lst.run())
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(seen) == 2:
                break
        assert lst.connected
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not lst.connected

    asyncio.run(main())
    assert seen == [("shop", "a"), ("shop", "b")]
