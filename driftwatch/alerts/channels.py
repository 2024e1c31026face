"""The delivery channels: a generic JSON webhook, a Slack incoming webhook, e-mail over SMTP.

Each ``send`` makes one attempt and raises ``DeliveryError`` (retryable or not); the ``Notifier``
owns retries, limits and outcomes. Secrets arrive resolved, per attempt, and are never put into an
error message.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from abc import ABC, abstractmethod
from email.message import EmailMessage
from typing import Any, ClassVar

import aiohttp

from driftwatch import __version__

from .alert import Alert
from .alerts_spec import EmailSettings, SlackSettings, SmtpSettings, WebhookSettings
from .retry import DeliveryError
from .secrets import SecretRef

USER_AGENT = f"driftwatch/{__version__}"
SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "none": ":white_circle:"}


class Channel(ABC):
    name: ClassVar[str]
    min_severity: str

    @abstractmethod
    def secret_refs(self) -> dict[str, SecretRef]:
        """The secrets one attempt needs, by role (``url``, ``username``, ...)."""

    @abstractmethod
    async def send(self, alert: Alert, suppressed: int, secrets: dict[str, str], time_limit: float) -> None:
        """One attempt; ``DeliveryError`` when it fails."""


class _HttpChannel(Channel):
    """POST a JSON body; 2xx delivered, 429/5xx/connection trouble retryable, other 4xx final."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    @abstractmethod
    def payload(self, alert: Alert, suppressed: int) -> dict[str, Any]: ...

    async def send(self, alert: Alert, suppressed: int, secrets: dict[str, str], time_limit: float) -> None:
        body = json.dumps(self.payload(alert, suppressed), allow_nan=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        try:
            async with self.session.post(
                secrets["url"], data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=time_limit)
            ) as resp:
                if 200 <= resp.status < 300:
                    return
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                retryable = resp.status == 429 or resp.status >= 500
                raise DeliveryError(f"HTTP {resp.status} from the receiver", retryable, retry_after)
        except TimeoutError:
            raise DeliveryError(f"no answer within {time_limit:g} s", True) from None
        except (aiohttp.InvalidURL, ValueError):
            raise DeliveryError("the URL in the Secret is not a valid URL", False) from None
        except aiohttp.ClientError as e:
            # the exception text may quote the URL: only its class goes out
            raise DeliveryError(f"connection failed ({type(e).__name__})", True) from None


class WebhookChannel(_HttpChannel):
    """The generic webhook: the alert's documented JSON body (``Alert.body``)."""

    name: ClassVar[str] = "webhook"

    def __init__(self, settings: WebhookSettings, session: aiohttp.ClientSession) -> None:
        super().__init__(session)
        self.settings = settings
        self.min_severity = settings.min_severity

    def secret_refs(self) -> dict[str, SecretRef]:
        return {"url": self.settings.url}

    def payload(self, alert: Alert, suppressed: int) -> dict[str, Any]:
        return alert.body(suppressed)


class SlackChannel(_HttpChannel):
    """A Slack incoming webhook: ``text`` (the fallback and notification line) plus blocks."""

    name: ClassVar[str] = "slack"

    def __init__(self, settings: SlackSettings, session: aiohttp.ClientSession) -> None:
        super().__init__(session)
        self.settings = settings
        self.min_severity = settings.min_severity

    def secret_refs(self) -> dict[str, SecretRef]:
        return {"url": self.settings.webhook_url}

    def payload(self, alert: Alert, suppressed: int) -> dict[str, Any]:
        text = f"{SEVERITY_EMOJI.get(alert.severity, '')} *{alert.severity}* {alert.summary}"
        fields = [f"*type* {alert.type}", f"*monitor* {alert.namespace}/{alert.monitor}"]
        if alert.feature:
            fields.append(f"*feature* {alert.feature}" + (f" [{alert.key}]" if alert.key else ""))
        if alert.score is not None:
            fields.append(f"*score* {alert.score:.2f}")
        if suppressed:
            fields.append(f"*held back by the rate limit since the last alert* {suppressed}")
        body: dict[str, Any] = {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(fields)}]},
            ],
        }
        if self.settings.channel:
            body["channel"] = self.settings.channel
        return body


class EmailChannel(Channel):
    """E-mail over SMTP: STARTTLS (default) or implicit TLS with certificate verification, AUTH when
    credentials are configured. ``smtplib`` runs in a thread: one short session per alert."""

    name: ClassVar[str] = "email"

    def __init__(
        self, settings: EmailSettings, smtp: SmtpSettings, tls_context: ssl.SSLContext | None = None
    ):
        self.settings = settings
        self.smtp = smtp
        self.min_severity = settings.min_severity
        self.tls_context = tls_context or ssl.create_default_context()

    def secret_refs(self) -> dict[str, SecretRef]:
        refs = {}
        if self.smtp.username is not None and self.smtp.password is not None:
            refs = {"username": self.smtp.username, "password": self.smtp.password}
        return refs

    def message(self, alert: Alert, suppressed: int) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[DriftWatch] {alert.severity}: {alert.summary}"
        msg["From"] = self.settings.sender
        msg["To"] = ", ".join(self.settings.to)
        msg["X-DriftWatch-Alert-Id"] = alert.id
        lines = [alert.summary, ""]
        lines += [f"{k}: {v}" for k, v in alert.body(suppressed).items() if k not in ("summary", "details")]
        lines += ["", "details:", json.dumps(alert.details, indent=2, default=str)]
        msg.set_content("\n".join(lines))
        return msg

    async def send(self, alert: Alert, suppressed: int, secrets: dict[str, str], time_limit: float) -> None:
        msg = self.message(alert, suppressed)
        await asyncio.to_thread(self._deliver, msg, secrets, time_limit)

    def _deliver(self, msg: EmailMessage, secrets: dict[str, str], time_limit: float) -> None:
        s = self.smtp
        try:
            client: smtplib.SMTP
            if s.tls == "implicit":
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=time_limit, context=self.tls_context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=time_limit)
            with client:
                client.ehlo()
                if s.tls == "starttls":
                    if not client.has_extn("starttls"):
                        raise DeliveryError("the SMTP server does not offer STARTTLS", False)
                    client.starttls(context=self.tls_context)
                    client.ehlo()
                if "username" in secrets:
                    client.login(secrets["username"], secrets["password"])
                client.send_message(msg)
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(f"SMTP authentication refused ({e.smtp_code})", False) from None
        except smtplib.SMTPResponseException as e:
            raise DeliveryError(f"SMTP {e.smtp_code} from the server", 400 <= e.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("SMTP server refused every recipient", False) from None
        except ssl.SSLError as e:
            raise DeliveryError(f"TLS failed ({e.reason or type(e).__name__})", False) from None
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(f"SMTP connection failed ({type(e).__name__})", True) from None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
