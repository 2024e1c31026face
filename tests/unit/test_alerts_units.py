"""driftwatch.alerts, pure parts: spec.alerts parsing (errors name the field), the alert record and
webhook body, dedup, the token bucket, backoff, redaction."""

from __future__ import annotations

import pytest

from driftwatch.alerts import Alert, AlertsSpec, Redactor, RetryPolicy, SecretRef
from driftwatch.alerts.throttle import Deduplicator, TokenBucket
from driftwatch.vocab.spec import ConfigError

HOOK = {"secretKeyRef": {"name": "hooks", "key": "url"}}


def test_spec_defaults_and_channels() -> None:
    s = AlertsSpec.parse(None)
    assert (s.min_severity, s.repeat_interval, s.rate_limit.burst, s.rate_limit.per_hour, s.channels) == (
        "warning",
        3600,
        5,
        20,
        [],
    )
    s = AlertsSpec.parse(
        {
            "minSeverity": "critical",
            "repeatInterval": "15m",
            "rateLimit": {"burst": 3, "perHour": 10},
            "webhook": {"urlFrom": HOOK, "minSeverity": "warning"},
            "slack": {"webhookUrlFrom": HOOK, "channel": "#x"},
            "email": {
                "to": ["a@example.com"],
                "smtp": {
                    "host": "smtp.example.com",
                    "tls": "implicit",
                    "usernameFrom": {"secretKeyRef": {"name": "smtp", "key": "user"}},
                    "passwordFrom": {"secretKeyRef": {"name": "smtp", "key": "password"}},
                },
            },
        }
    )
    assert s.repeat_interval == 900
    assert s.webhook is not None
    assert s.webhook.min_severity == "warning"
    assert s.slack is not None
    assert (s.slack.min_severity, s.slack.channel) == ("critical", "#x")
    assert s.email is not None
    assert s.email.smtp is not None
    assert (s.email.smtp.port, s.email.smtp.password) == (465, SecretRef("smtp", "password"))
    assert s.email.sender == "driftwatch@localhost"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"minSeverity": "info"}, "spec.alerts.minSeverity"),
        ({"webhook": {"url": "http://x"}}, "spec.alerts.webhook.url"),
        ({"webhook": {}}, "spec.alerts.webhook.urlFrom.secretKeyRef"),
        (
            {"webhook": {"urlFrom": {"secretKeyRef": {"name": "a"}}}},
            "spec.alerts.webhook.urlFrom.secretKeyRef",
        ),
        ({"slack": {"webhookUrlFrom": HOOK, "channel": 5}}, "spec.alerts.slack.channel"),
        ({"email": {"to": []}}, "spec.alerts.email.to"),
        ({"email": {"to": ["nobody"]}}, "spec.alerts.email.to[0]"),
        ({"email": {"to": ["a@b.c"], "smtp": {"port": 25}}}, "spec.alerts.email.smtp.host"),
        ({"email": {"to": ["a@b.c"], "smtp": {"host": "h", "port": 0}}}, "spec.alerts.email.smtp.port"),
        (
            {
                "email": {
                    "to": ["a@b.c"],
                    "smtp": {"host": "h", "tls": "none", "usernameFrom": HOOK, "passwordFrom": HOOK},
                }
            },
            "spec.alerts.email.smtp.tls",
        ),
        (
            {"email": {"to": ["a@b.c"], "smtp": {"host": "h", "usernameFrom": HOOK}}},
            "spec.alerts.email.smtp.passwordFrom",
        ),
        ({"rateLimit": {"burst": 0}}, "spec.alerts.rateLimit.burst"),
        ({"repeatInterval": "soon"}, "spec.alerts.repeatInterval"),
        ({"pagerduty": {}}, "spec.alerts.pagerduty"),
        ([], "spec.alerts"),
    ],
)
def test_spec_errors_name_the_field(spec: object, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        AlertsSpec.parse(spec)
    assert e.value.field == field


def test_alert_from_event_and_body() -> None:
    ev = {
        "id": "abc",
        "type": "DRIFT_END",
        "feature": "f",
        "key": "k",
        "index": 5,
        "timestamp": 0.0,
        "detector": "g-test",
        "score": 0.1,
        "severity": "warning",
        "evidence": {"reason": "adopted"},
    }
    a = Alert.from_event("ns", "m", ev, now=99.0)
    assert a.summary == "ns/m f [k]: drift ended (adopted)"
    body = a.body(suppressed=2)
    assert list(body) == [
        "version",
        "id",
        "type",
        "monitor",
        "feature",
        "key",
        "severity",
        "score",
        "time",
        "summary",
        "details",
        "suppressed",
    ]
    assert (body["id"], body["time"], body["suppressed"]) == ("abc", "1970-01-01T00:00:00Z", 2)


def test_alert_from_scan_and_failed_scan() -> None:
    cmp = {
        "drifted": True,
        "share": 0.5,
        "features": [
            {"feature": "a", "drifted": True, "severity": "warning"},
            {"feature": "b", "drifted": True, "severity": "critical"},
            {"feature": "c", "drifted": False, "severity": "none"},
        ],
    }
    a = Alert.from_scan("ns", "m", cmp, now=100.0)
    assert (a.type, a.severity, a.summary) == (
        "SCAN_DRIFT",
        "critical",
        "ns/m: scan found drift in 2 feature(s): a, b",
    )
    assert (
        a.id == Alert.from_scan("ns", "m", cmp, now=100.0).id != Alert.from_scan("ns", "m", cmp, now=200.0).id
    )
    f = Alert.scan_failed("ns", "m", "no data", now=1.0)
    assert (f.type, f.severity) == ("SCAN_FAILED", "warning")


def test_dedup() -> None:
    d = Deduplicator(repeat_interval=60)
    assert not d.is_duplicate("1", "k", 0)
    d.record("1", "k", 0)
    assert d.is_duplicate("1", "k", 1000)  # an id is never sent twice
    assert d.is_duplicate("2", "k", 59)
    assert not d.is_duplicate("2", "k", 60)
    assert not d.is_duplicate("3", "other", 1)


def test_token_bucket() -> None:
    b = TokenBucket(burst=2, per_hour=3600)  # one per second
    assert [b.take(0.0), b.take(0.0), b.take(0.0), b.take(0.5)] == [True, True, False, False]
    assert b.suppressed == 2
    assert b.take(1.0)


def test_backoff() -> None:
    r = RetryPolicy(base=1, factor=2, cap=5)
    assert [r.delay(k) for k in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert r.delay(1, retry_after=3) == 3
    assert r.delay(1, retry_after=60) == 1  # an unreasonable hint is ignored


def test_redactor_masks_values_and_url_parts() -> None:
    r = Redactor()
    r.add("https://hooks.slack.com/services/T0001/B0002/abcdefghijkl")
    r.add("p@ss word")
    text = (
        "POST https://hooks.slack.com/services/T0001/B0002/abcdefghijkl failed; "
        "path /services/T0001/B0002/abcdefghijkl; token abcdefghijkl; p%40ss%20word"
    )
    out = r(text)
    assert "abcdefghijkl" not in out
    assert "p%40ss" not in out
    assert r("nothing secret here") == "nothing secret here"
    r.add("ab")  # too short to mask on its own
    assert r("about") == "about"
