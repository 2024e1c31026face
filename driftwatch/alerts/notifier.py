"""``Notifier``: one monitor's alerts through its channels, with severity filters, dedup, rate limits,
retries with backoff and an ``Outcome`` per channel.

```python
notifier = Notifier("shop", "payments", AlertsSpec.parse(spec.extra.get("alerts")), resolver)
outcomes = await notifier.notify(Alert.from_event("shop", "payments", event, now=time.time()))
await notifier.close()
```

With no channel configured the alert is logged ("would have sent ...") with outcome ``logged``.
Nothing that leaves this class -- log lines, outcomes -- contains a secret value: every resolved value
is registered with the ``Redactor`` before it is used.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable

import aiohttp

from .alert import DRIFT_END, DRIFT_START, Alert, severity_rank
from .alerts_spec import AlertsSpec, EmailSettings, SlackSettings, SmtpSettings, WebhookSettings
from .channels import Channel, EmailChannel, SlackChannel, WebhookChannel
from .outcome import BELOW_SEVERITY, DUPLICATE, FAILED, LOGGED, RATE_LIMITED, SENT, Outcome
from .retry import DeliveryError, RetryPolicy
from .secrets import Redactor, SecretError, SecretResolver
from .throttle import Deduplicator, TokenBucket

log = logging.getLogger("driftwatch.alerts")

Sleep = Callable[[float], Awaitable[None]]


class Notifier:
    def __init__(
        self,
        namespace: str,
        monitor: str,
        spec: AlertsSpec,
        secrets: SecretResolver,
        *,
        retry: RetryPolicy | None = None,
        default_smtp: SmtpSettings | None = None,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        redactor: Redactor | None = None,
    ) -> None:
        """``default_smtp``: the operator's relay for ``email`` without its own ``smtp``;
        ``tls_context``: certificate trust for SMTP (default: the system's); ``clock``/``sleep``: for
        dedup, rate limits and backoff (tests pass their own)."""
        self.namespace, self.monitor = namespace, monitor
        self.spec = spec
        self.secrets = secrets
        self.retry = retry or RetryPolicy()
        self.default_smtp = default_smtp
        self.tls_context = tls_context
        self.clock, self.sleep = clock, sleep
        self.redact = redactor or Redactor()
        self.dedups: dict[str, Deduplicator] = {}  # per channel: a failed channel gets the next try
        self.buckets: dict[str, TokenBucket] = {}
        #: per channel, the (feature, key) streams whose DRIFT_START was below its minSeverity
        self._held_starts: dict[str, set[tuple[str, str]]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._channels: list[Channel] | None = None
        self._config_errors: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def channels(self) -> list[Channel]:
        if self._channels is None:
            out: list[Channel] = []
            for c in self.spec.channels:
                if isinstance(c, WebhookSettings):
                    out.append(WebhookChannel(c, self._http()))
                elif isinstance(c, SlackSettings):
                    out.append(SlackChannel(c, self._http()))
                elif isinstance(c, EmailSettings):
                    smtp = c.smtp or self.default_smtp
                    if smtp is None:
                        self._config_errors.append("email: no spec.alerts.email.smtp and no operator default")
                        continue
                    out.append(EmailChannel(c, smtp, self.tls_context))
            self._channels = out
        return self._channels

    # --- delivery -------------------------------------------------------------------------------------

    async def notify(self, alert: Alert) -> list[Outcome]:
        """Deliver ``alert`` on every channel (concurrently); one ``Outcome`` per channel."""
        channels = self.channels()
        now = self.clock()
        if not channels and not self._config_errors:
            log.info(
                "alerts: no channel configured for %s/%s; would have sent: [%s] %s %s",
                self.namespace,
                self.monitor,
                alert.severity,
                alert.type,
                self.redact(alert.summary),
            )
            return [Outcome("log", alert.id, LOGGED, time=time.time())]
        outcomes = [
            Outcome("email", alert.id, FAILED, error=e, time=time.time()) for e in self._config_errors
        ]
        outcomes += await asyncio.gather(*(self._one(ch, alert, now) for ch in channels))
        return outcomes

    def _below_severity(self, ch: Channel, alert: Alert) -> bool:
        """A drift's end carries the low score it ended with: it follows its start instead -- held back
        where the start was, sent where it went (or where the start is unknown, after a restart)."""
        stream = (alert.feature or "", alert.key)
        held = self._held_starts.setdefault(ch.name, set())
        if alert.type == DRIFT_END:
            if stream in held:
                held.discard(stream)
                return True
            return False
        below = severity_rank(alert.severity) < severity_rank(ch.min_severity)
        if alert.type == DRIFT_START and below:
            held.add(stream)
        elif alert.type == DRIFT_START:
            held.discard(stream)
        return below

    async def _one(self, ch: Channel, alert: Alert, now: float) -> Outcome:
        if self._below_severity(ch, alert):
            return Outcome(ch.name, alert.id, BELOW_SEVERITY, time=time.time())
        dedup = self.dedups.setdefault(ch.name, Deduplicator(self.spec.repeat_interval))
        if dedup.is_duplicate(alert.id, alert.dedup_key, now):
            return Outcome(ch.name, alert.id, DUPLICATE, time=time.time())
        bucket = self.buckets.setdefault(
            ch.name, TokenBucket(self.spec.rate_limit.burst, self.spec.rate_limit.per_hour)
        )
        if not bucket.take(now):
            log.warning(
                "alerts: %s/%s %s rate-limited on %s (%d held back)",
                self.namespace,
                self.monitor,
                alert.type,
                ch.name,
                bucket.suppressed,
            )
            return Outcome(ch.name, alert.id, RATE_LIMITED, time=time.time())
        suppressed, bucket.suppressed = bucket.suppressed, 0
        outcome = await self._deliver(ch, alert, suppressed)
        if outcome.status == SENT:
            dedup.record(alert.id, alert.dedup_key, now)
        else:
            bucket.suppressed += suppressed  # not delivered: the count goes with the next one
        return outcome

    async def _deliver(self, ch: Channel, alert: Alert, suppressed: int) -> Outcome:
        error = ""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                values = await self._resolve(ch)
                await ch.send(alert, suppressed, values, self.retry.timeout)
            except SecretError as e:
                error, retryable, after = self.redact(str(e)), True, None  # a Secret may appear or be fixed
            except DeliveryError as e:
                error, retryable, after = self.redact(str(e)), e.retryable, e.retry_after
            except Exception as e:  # a channel bug must not take the operator down
                error, retryable, after = self.redact(f"{type(e).__name__}: {e}"), False, None
            else:
                log.info(
                    "alerts: %s/%s %s sent on %s (attempt %d)",
                    self.namespace,
                    self.monitor,
                    alert.type,
                    ch.name,
                    attempt,
                )
                return Outcome(ch.name, alert.id, SENT, attempts=attempt, time=time.time())
            if not retryable or attempt == self.retry.attempts:
                log.warning(
                    "alerts: %s/%s %s failed on %s after %d attempt(s): %s",
                    self.namespace,
                    self.monitor,
                    alert.type,
                    ch.name,
                    attempt,
                    error,
                )
                return Outcome(ch.name, alert.id, FAILED, attempts=attempt, error=error, time=time.time())
            delay = self.retry.delay(attempt, after)
            log.info(
                "alerts: %s on %s failed (%s); retry %d in %.1f s", alert.type, ch.name, error, attempt, delay
            )
            await self.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns on its last attempt

    async def _resolve(self, ch: Channel) -> dict[str, str]:
        values = {}
        for role, ref in ch.secret_refs().items():
            v = await self.secrets.resolve(self.namespace, ref)
            self.redact.add(v)
            values[role] = v
        return values
