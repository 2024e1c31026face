"""Push path of the aggregation: sidecars ``PUBLISH P:notify {pod}`` right after a drift event
(docs/redis-keys.md); one task here ``PSUBSCRIBE``s ``{keyPrefix}:*:notify`` and runs the same round the
aggregation timer runs for that monitor, debounced per monitor. The timer stays: it is the fallback for
a lost notification (Pub/Sub is fire-and-forget), a Redis outage, and monitors with their own Redis.

One connection for every monitor, rather than a kopf daemon per DriftMonitor (N connections, N tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from driftwatch.redisconn import AnyRedis, connect_url, redact_text
from driftwatch.vocab.rediskeys import notify_pattern, parse_notify_channel

log = logging.getLogger("driftwatch.operator")

#: notifications for one monitor within this window trigger one round (a rollout of N pods drifting
#: together publishes N notifications)
DEBOUNCE = 0.2
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)

Trigger = Callable[[str, str], Awaitable[object]]


class NotifyListener:
    """``run()`` until cancelled: subscribe, dispatch, reconnect with backoff when Redis goes away."""

    def __init__(
        self,
        url: str,
        key_prefix: str,
        trigger: Trigger,
        debounce: float = DEBOUNCE,
        client_factory: Callable[[], AnyRedis] | None = None,
    ) -> None:
        self.url = url
        self.key_prefix = key_prefix
        self.trigger = trigger
        self.debounce = debounce
        self.client_factory = client_factory or self._client
        self.connected = False
        self.received = 0
        self._pending: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._running: set[tuple[str, str]] = set()
        self._dirty: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def _client(self) -> AnyRedis:
        return connect_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_keepalive=True,
            health_check_interval=15,  # the pub/sub connection PINGs when idle: a dead link is noticed
        )

    async def run(self) -> None:
        attempt = 0
        try:
            while True:
                client = self.client_factory()
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.psubscribe(notify_pattern(self.key_prefix))
                    while True:
                        msg = await pubsub.get_message(timeout=5.0)
                        if not self.connected:
                            # subscribed only now: a refused PSUBSCRIBE (NOPERM) raises at the first
                            # read, and must not reset the backoff (it retried every 0.5 s, logging twice)
                            if attempt:
                                log.info("redis notifications resumed (%s)", notify_pattern(self.key_prefix))
                            attempt = 0
                            self.connected = True
                        if msg is not None and msg.get("type") == "pmessage":
                            self.on_message(str(msg.get("channel")))
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # Redis down or restarted: the timers carry on meanwhile
                    if self.connected or attempt == 0:
                        why = redact_text(str(e))
                        log.warning("redis notifications unavailable (%s); aggregation timers only", why)
                    self.connected = False
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                    with contextlib.suppress(Exception):
                        await client.aclose()
                await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
                attempt += 1
        finally:
            self.connected = False
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def on_message(self, channel: str) -> None:
        key = parse_notify_channel(channel, self.key_prefix)
        if key is None:
            return
        self.received += 1
        self._schedule(key)

    def _schedule(self, key: tuple[str, str]) -> None:
        if key in self._pending:  # a round is already due: it reads the newest summaries
            return
        if key in self._running:  # a round is reading now: one more after it
            self._dirty.add(key)
            return
        task = asyncio.create_task(self._fire(key), name=f"notify {key[0]}/{key[1]}")
        self._pending[key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire(self, key: tuple[str, str]) -> None:
        await asyncio.sleep(self.debounce)
        self._pending.pop(key, None)
        self._running.add(key)
        try:
            await self.trigger(*key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s/%s: notified aggregation failed (the timer retries)", *key)
        finally:
            self._running.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self._schedule(key)
