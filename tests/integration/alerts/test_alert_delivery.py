"""Alert delivery against real receivers on loopback: the generic webhook and Slack to an aiohttp
server, e-mail to aiosmtpd with STARTTLS and AUTH. Retries, the rate limit, dedup, severity filters,
Secret rotation, and no secret value in any log line or outcome."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from email import message_from_bytes
from typing import Any

import pytest
from alert_receivers import SMTP_PASSWORD, SMTP_USER, HttpReceiver, SmtpServer

from driftwatch.alerts import (
    BELOW_SEVERITY,
    DUPLICATE,
    FAILED,
    LOGGED,
    RATE_LIMITED,
    SENT,
    Alert,
    AlertsSpec,
    Notifier,
    RetryPolicy,
    StaticSecrets,
)

pytestmark = pytest.mark.integration

NS, MON = "shop", "payments"
HOOK_TOKEN = "hook-token-7f3a9c2e51"  # the secret part of the webhook URL
SLACK_PATH = "/services/T0001/B0002/slackSecretXyZ123"


def event(
    feature: str = "latency_ms", idx: int = 100, etype: str = "DRIFT_START", severity: str = "critical"
) -> Alert:
    ev = {
        "id": f"ev-{feature}-{idx}-{etype}",
        "type": etype,
        "feature": feature,
        "key": "",
        "index": idx,
        "timestamp": 1_700_000_000.0 + idx,
        "detector": "cusum-up",
        "score": 0.8,
        "severity": severity,
        "onset": idx - 10,
        "evidence": {"baseline": {"mean": 10.0}, "current": {"mean": 14.0}},
    }
    return Alert.from_event(NS, MON, ev, now=1_700_000_000.0)


class FakeTime:
    """The notifier's clock and sleep: backoff delays are recorded, not waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def spec(**channels: Any) -> AlertsSpec:
    return AlertsSpec.parse(channels)


def ref(name: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


async def with_receiver(body: Callable[[HttpReceiver], Awaitable[None]]) -> None:
    rx = await HttpReceiver().start()
    try:
        await body(rx)
    finally:
        await rx.stop()


def notifier(s: AlertsSpec, secrets: dict[tuple[str, str, str], str], t: FakeTime, **kw: Any) -> Notifier:
    return Notifier(
        NS,
        MON,
        s,
        StaticSecrets(secrets),
        retry=RetryPolicy(attempts=3, base=0.5, timeout=5),
        clock=t.clock,
        sleep=t.sleep,
        **kw,
    )


def test_webhook_body_and_retry_after_one_failure() -> None:
    async def scenario(rx: HttpReceiver) -> None:
        t = FakeTime()
        rx.script = [(503, {})]  # the receiver fails once
        n = notifier(
            spec(webhook={"urlFrom": ref("hooks", "url")}),
            {(NS, "hooks", "url"): rx.url(f"/in/{HOOK_TOKEN}")},
            t,
        )
        try:
            [out] = await n.notify(event())
        finally:
            await n.close()
        assert (out.channel, out.status, out.attempts, out.error) == ("webhook", SENT, 2, "")
        assert t.slept == [0.5]
        assert len(rx.received) == 2
        body = rx.received[-1]["json"]
        assert body["version"] == 1
        assert body["type"] == "DRIFT_START"
        assert body["monitor"] == {"namespace": NS, "name": MON}
        assert (body["feature"], body["severity"], body["score"], body["suppressed"]) == (
            "latency_ms",
            "critical",
            0.8,
            0,
        )
        assert body["time"] == "2023-11-14T22:15:00Z"
        assert body["details"]["evidence"]["current"]["mean"] == 14.0
        assert rx.received[-1]["headers"]["Content-Type"] == "application/json"

    asyncio.run(with_receiver(scenario))


def test_retry_after_header_is_honoured_and_4xx_is_final() -> None:
    async def scenario(rx: HttpReceiver) -> None:
        t = FakeTime()
        rx.script = [(429, {"Retry-After": "3"}), (400, {})]
        n = notifier(spec(webhook={"urlFrom": ref("hooks", "url")}), {(NS, "hooks", "url"): rx.url("/in")}, t)
        try:
            [out] = await n.notify(event())
        finally:
            await n.close()
        assert t.slept == [3.0]
        assert (out.status, out.attempts, out.error) == (FAILED, 2, "HTTP 400 from the receiver")

    asyncio.run(with_receiver(scenario))


def test_slack_payload() -> None:
    async def scenario(rx: HttpReceiver) -> None:
        s = spec(slack={"webhookUrlFrom": ref("hooks", "slack"), "channel": "#ml-alerts"})
        n = notifier(s, {(NS, "hooks", "slack"): rx.url(SLACK_PATH)}, FakeTime())
        try:
            [out] = await n.notify(event())
        finally:
            await n.close()
        assert out.status == SENT
        got = rx.received[0]
        assert got["path"] == SLACK_PATH
        assert got["json"]["channel"] == "#ml-alerts"
        assert "shop/payments latency_ms: drift started (critical" in got["json"]["text"]
        assert got["json"]["blocks"][0]["type"] == "section"

    asyncio.run(with_receiver(scenario))


def test_rate_limit_holds_back_a_storm_and_reports_it() -> None:
    async def scenario(rx: HttpReceiver) -> None:
        t = FakeTime()
        s = spec(webhook={"urlFrom": ref("hooks", "url")}, rateLimit={"burst": 2, "perHour": 60})
        n = notifier(s, {(NS, "hooks", "url"): rx.url("/in")}, t)
        try:
            statuses = [(await n.notify(event(f"f{i}")))[0].status for i in range(6)]
            assert statuses == [SENT, SENT] + [RATE_LIMITED] * 4
            t.now += 60  # one token back (60 per hour)
            [out] = await n.notify(event("later"))
        finally:
            await n.close()
        assert out.status == SENT
        assert [r["json"]["feature"] for r in rx.received] == ["f0", "f1", "later"]
        assert rx.received[-1]["json"]["suppressed"] == 4

    asyncio.run(with_receiver(scenario))


def test_dedup_by_id_and_by_repeat_interval() -> None:
    async def scenario(rx: HttpReceiver) -> None:
        t = FakeTime()
        s = spec(webhook={"urlFrom": ref("hooks", "url")}, repeatInterval="10m")
        n = notifier(s, {(NS, "hooks", "url"): rx.url("/in")}, t)
        try:
            assert (await n.notify(event(idx=1)))[0].status == SENT
            assert (await n.notify(event(idx=1)))[0].status == DUPLICATE  # the same event again
            t.now += 60
            assert (await n.notify(event(idx=2)))[0].status == DUPLICATE  # flapping: same thing, new id
            assert (await n.notify(event(idx=3, etype="DRIFT_END")))[0].status == SENT  # the end is news
            t.now += 600
            assert (await n.notify(event(idx=4)))[0].status == SENT  # the interval has passed
        finally:
            await n.close()
        assert len(rx.received) == 3

    asyncio.run(with_receiver(scenario))


def test_severity_filters_per_channel() -> None:
    async def scenario(rx: HttpReceiver) -> None:
        s = spec(
            minSeverity="warning",
            webhook={"urlFrom": ref("hooks", "url"), "minSeverity": "critical"},
            slack={"webhookUrlFrom": ref("hooks", "slack")},
        )
        secrets = {(NS, "hooks", "url"): rx.url("/hook"), (NS, "hooks", "slack"): rx.url("/slack")}
        n = notifier(s, secrets, FakeTime())
        try:
            outs = await n.notify(event(severity="warning"))
        finally:
            await n.close()
        assert {o.channel: o.status for o in outs} == {"webhook": BELOW_SEVERITY, "slack": SENT}
        assert [r["path"] for r in rx.received] == ["/slack"]

    asyncio.run(with_receiver(scenario))


def test_secret_rotation_takes_effect_on_the_next_alert() -> None:
    async def scenario(rx: HttpReceiver) -> None:
        secrets = StaticSecrets({(NS, "hooks", "url"): rx.url("/old")})
        n = Notifier(NS, MON, spec(webhook={"urlFrom": ref("hooks", "url")}), secrets)
        try:
            await n.notify(event("a"))
            secrets.values[(NS, "hooks", "url")] = rx.url("/new")
            await n.notify(event("b"))
        finally:
            await n.close()
        assert [r["path"] for r in rx.received] == ["/old", "/new"]

    asyncio.run(with_receiver(scenario))


def test_nothing_configured_logs_what_would_have_been_sent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="driftwatch.alerts")
    n = Notifier(NS, MON, AlertsSpec.parse(None), StaticSecrets({}))
    [out] = asyncio.run(n.notify(event()))
    assert (out.channel, out.status) == ("log", LOGGED)
    assert "would have sent: [critical] DRIFT_START shop/payments latency_ms: drift started" in caplog.text


def test_email_over_starttls_with_auth_and_a_retry(smtp_server: SmtpServer) -> None:
    s = spec(
        email={
            "to": ["oncall@example.com", "ml@example.com"],
            "from": "driftwatch@example.com",
            "smtp": {
                "host": smtp_server.host,
                "port": smtp_server.port,
                "usernameFrom": ref("smtp", "user"),
                "passwordFrom": ref("smtp", "password"),
            },
        }
    )
    smtp_server.handler.fail_next = ["421 4.3.2 try again later"]  # the server fails once
    t = FakeTime()
    secrets = {(NS, "smtp", "user"): SMTP_USER, (NS, "smtp", "password"): SMTP_PASSWORD}
    n = notifier(s, secrets, t, tls_context=smtp_server.client_tls)
    [out] = asyncio.run(n.notify(event()))
    assert (out.channel, out.status, out.attempts) == ("email", SENT, 2)
    [env] = smtp_server.messages
    assert env.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    msg = message_from_bytes(env.content)
    assert msg["Subject"].startswith("[DriftWatch] critical: shop/payments latency_ms: drift started")
    assert msg["X-DriftWatch-Alert-Id"] == event().id
    assert "cusum-up" in msg.get_payload()


def test_email_refuses_an_untrusted_certificate(smtp_server: SmtpServer) -> None:
    s = spec(email={"to": ["a@example.com"], "smtp": {"host": smtp_server.host, "port": smtp_server.port}})
    n = notifier(s, {}, FakeTime())  # the system trust store does not know the test CA
    [out] = asyncio.run(n.notify(event()))
    assert (out.status, out.attempts) == (FAILED, 1)
    assert out.error.startswith("TLS failed")
    assert smtp_server.messages == []


def test_no_secret_value_in_logs_or_outcomes(
    smtp_server: SmtpServer, free_port: Callable[[], int], caplog: pytest.LogCaptureFixture
) -> None:
    """Every failure path that could quote a URL or credential: refused connections, bad URLs,
    wrong passwords, HTTP errors -- logs at DEBUG and outcomes stay clean."""
    caplog.set_level(logging.DEBUG)
    dead = free_port()
    wrong_password = "wr0ng-Pa55word-42"
    secrets = {
        (NS, "hooks", "url"): f"http://127.0.0.1:{dead}/in/{HOOK_TOKEN}?token={HOOK_TOKEN}",
        (NS, "hooks", "slack"): f"http://user:{HOOK_TOKEN}@[not-a-url{SLACK_PATH}",
        (NS, "smtp", "user"): SMTP_USER,
        (NS, "smtp", "password"): wrong_password,
    }
    s = spec(
        webhook={"urlFrom": ref("hooks", "url")},
        slack={"webhookUrlFrom": ref("hooks", "slack")},
        email={
            "to": ["a@example.com"],
            "smtp": {
                "host": smtp_server.host,
                "port": smtp_server.port,
                "usernameFrom": ref("smtp", "user"),
                "passwordFrom": ref("smtp", "password"),
            },
        },
    )
    n = notifier(s, secrets, FakeTime(), tls_context=smtp_server.client_tls)

    async def go() -> list[Any]:
        try:
            return await n.notify(event())
        finally:
            await n.close()

    outs = asyncio.run(go())
    assert {o.channel: o.status for o in outs} == {"webhook": FAILED, "slack": FAILED, "email": FAILED}
    assert {o.channel: o.attempts for o in outs} == {"webhook": 3, "slack": 1, "email": 1}
    text = caplog.text + json.dumps([o.to_dict() for o in outs])
    for secret in (HOOK_TOKEN, "slackSecretXyZ123", wrong_password, str(dead) + "/in"):
        assert secret not in text
    assert "SMTP authentication refused (535)" in text


def test_a_failed_channel_gets_the_next_try_and_the_others_do_not_repeat() -> None:
    async def scenario(rx: HttpReceiver) -> None:
        rx.script = [(400, {})]  # the first request (webhook or slack, whichever lands first) fails
        s = spec(webhook={"urlFrom": ref("hooks", "url")}, slack={"webhookUrlFrom": ref("hooks", "slack")})
        secrets = {(NS, "hooks", "url"): rx.url("/hook"), (NS, "hooks", "slack"): rx.url("/slack")}
        n = notifier(s, secrets, FakeTime())
        try:
            first = {o.channel: o.status for o in await n.notify(event())}
            second = {o.channel: o.status for o in await n.notify(event())}
        finally:
            await n.close()
        failed = next(c for c, st in first.items() if st == FAILED)
        assert sorted(first.values()) == [FAILED, SENT]
        assert second == {failed: SENT, ({"webhook", "slack"} - {failed}).pop(): DUPLICATE}

    asyncio.run(with_receiver(scenario))


def test_a_drift_end_follows_its_start_through_the_severity_filter() -> None:
    """DRIFT_END carries the low score a drift ended with; it goes where its start went."""

    async def scenario(rx: HttpReceiver) -> None:
        s = spec(webhook={"urlFrom": ref("hooks", "url")}, minSeverity="critical")
        n = notifier(s, {(NS, "hooks", "url"): rx.url("/in")}, FakeTime())
        try:
            got = [
                (await n.notify(event("a", 1, "DRIFT_START", "warning")))[0].status,
                (await n.notify(event("a", 2, "DRIFT_END", "none")))[0].status,
                (await n.notify(event("b", 3, "DRIFT_START", "critical")))[0].status,
                (await n.notify(event("b", 4, "DRIFT_END", "none")))[0].status,
                (await n.notify(event("c", 5, "DRIFT_END", "none")))[0].status,  # start unknown: sent
            ]
        finally:
            await n.close()
        assert got == [BELOW_SEVERITY, BELOW_SEVERITY, SENT, SENT, SENT]
        assert [(r["json"]["feature"], r["json"]["type"]) for r in rx.received] == [
            ("b", "DRIFT_START"),
            ("b", "DRIFT_END"),
            ("c", "DRIFT_END"),
        ]

    asyncio.run(with_receiver(scenario))
