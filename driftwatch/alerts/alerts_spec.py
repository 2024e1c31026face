"""``spec.alerts``: which channels a monitor notifies, parsed into frozen settings.

```yaml
alerts:
  minSeverity: warning                 # default for every channel: warning | critical
  repeatInterval: 1h                   # one alert per (monitor, type, feature, key, severity) per interval
  rateLimit: {burst: 5, perHour: 20}   # per channel: a flapping stream cannot storm a receiver
  webhook: {urlFrom: {secretKeyRef: {name: hooks, key: url}}, minSeverity: critical}
  slack:   {webhookUrlFrom: {secretKeyRef: {name: hooks, key: slack}}, channel: "#ml-alerts"}
  email:
    to: [oncall@example.com]
    from: driftwatch@example.com
    smtp:
      host: smtp.example.com
      port: 587
      tls: starttls                    # starttls (default) | implicit | none (none: no credentials)
      usernameFrom: {secretKeyRef: {name: smtp, key: username}}
      passwordFrom: {secretKeyRef: {name: smtp, key: password}}
```

Errors are ``ConfigError`` with the dotted path (``spec.alerts.email.smtp.port``), as for the rest of
the spec. ``MonitorSpec`` keeps ``alerts`` verbatim in ``extra``; the operator parses it with
``AlertsSpec.parse(spec.extra.get("alerts"))``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from driftwatch.vocab.spec import ConfigError, parse_duration

from .secrets import SecretRef

SEVERITY_LEVELS = ("warning", "critical")
TLS_MODES = ("starttls", "implicit", "none")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class RateLimit:
    """Token bucket per channel: ``burst`` alerts at once, refilled at ``per_hour``."""

    burst: int = 5
    per_hour: int = 20


@dataclass(frozen=True)
class WebhookSettings:
    url: SecretRef
    min_severity: str = "warning"


@dataclass(frozen=True)
class SlackSettings:
    webhook_url: SecretRef
    channel: str = ""
    min_severity: str = "warning"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    tls: str = "starttls"
    username: SecretRef | None = None
    password: SecretRef | None = None


@dataclass(frozen=True)
class EmailSettings:
    to: tuple[str, ...]
    sender: str
    smtp: SmtpSettings | None  # None: the operator's default relay
    min_severity: str = "warning"


@dataclass(frozen=True)
class AlertsSpec:
    min_severity: str = "warning"
    repeat_interval: int = 3600  # seconds
    rate_limit: RateLimit = field(default_factory=RateLimit)
    webhook: WebhookSettings | None = None
    slack: SlackSettings | None = None
    email: EmailSettings | None = None

    @property
    def channels(self) -> list[WebhookSettings | SlackSettings | EmailSettings]:
        return [c for c in (self.webhook, self.slack, self.email) if c is not None]

    @classmethod
    def parse(cls, d: Any, path: str = "spec.alerts") -> AlertsSpec:
        d = _obj(d, path)
        _only(d, {"minSeverity", "repeatInterval", "rateLimit", "webhook", "slack", "email"}, path)
        sev = _choice(d, "minSeverity", path, "warning", SEVERITY_LEVELS)
        repeat = parse_duration(_text(d, "repeatInterval", path, "1h"), f"{path}.repeatInterval")
        rl = _obj(d.get("rateLimit"), f"{path}.rateLimit")
        _only(rl, {"burst", "perHour"}, f"{path}.rateLimit")
        rate = RateLimit(
            _integer(rl, "burst", f"{path}.rateLimit", 5, 1, 1000),
            _integer(rl, "perHour", f"{path}.rateLimit", 20, 1, 100_000),
        )
        webhook = slack = email = None
        if d.get("webhook") is not None:
            p = f"{path}.webhook"
            w = _obj(d["webhook"], p)
            _only(w, {"urlFrom", "minSeverity"}, p)
            webhook = WebhookSettings(
                _ref(w, "urlFrom", p), _choice(w, "minSeverity", p, sev, SEVERITY_LEVELS)
            )
        if d.get("slack") is not None:
            p = f"{path}.slack"
            s = _obj(d["slack"], p)
            _only(s, {"webhookUrlFrom", "channel", "minSeverity"}, p)
            slack = SlackSettings(
                _ref(s, "webhookUrlFrom", p),
                _text(s, "channel", p, ""),
                _choice(s, "minSeverity", p, sev, SEVERITY_LEVELS),
            )
        if d.get("email") is not None:
            email = _email(d["email"], f"{path}.email", sev)
        return cls(sev, repeat, rate, webhook, slack, email)


def _email(d: Any, path: str, sev: str) -> EmailSettings:
    d = _obj(d, path)
    _only(d, {"to", "from", "smtp", "minSeverity"}, path)
    to = d.get("to")
    if not isinstance(to, list) or not to:
        raise ConfigError(f"{path}.to", "must be a non-empty list of addresses")
    for i, a in enumerate(to):
        if not isinstance(a, str) or not _EMAIL.match(a):
            raise ConfigError(f"{path}.to[{i}]", f"must be an e-mail address, got {a!r}")
    sender = _text(d, "from", path, "driftwatch@localhost")
    if not _EMAIL.match(sender):
        raise ConfigError(f"{path}.from", f"must be an e-mail address, got {sender!r}")
    smtp = None
    if d.get("smtp") is not None:
        p = f"{path}.smtp"
        s = _obj(d["smtp"], p)
        _only(s, {"host", "port", "tls", "usernameFrom", "passwordFrom"}, p)
        host = _text(s, "host", p, "")
        if not host:
            raise ConfigError(f"{p}.host", "is required")
        tls = _choice(s, "tls", p, "starttls", TLS_MODES)
        user = _ref(s, "usernameFrom", p) if s.get("usernameFrom") is not None else None
        password = _ref(s, "passwordFrom", p) if s.get("passwordFrom") is not None else None
        if (user is None) != (password is None):
            raise ConfigError(f"{p}.passwordFrom", "usernameFrom and passwordFrom go together")
        if tls == "none" and user is not None:
            raise ConfigError(f"{p}.tls", "credentials are never sent without TLS: use starttls or implicit")
        smtp = SmtpSettings(
            host, _integer(s, "port", p, 465 if tls == "implicit" else 587, 1, 65535), tls, user, password
        )
    return EmailSettings(tuple(to), sender, smtp, _choice(d, "minSeverity", path, sev, SEVERITY_LEVELS))


# --- small readers (each names the field it rejects) ------------------------------------------------


def _obj(d: Any, path: str) -> dict[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(path, f"must be an object, got {type(d).__name__}")
    return d


def _only(d: dict[str, Any], allowed: set[str], path: str) -> None:
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{path}.{k}", f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _text(d: dict[str, Any], k: str, path: str, default: str) -> str:
    v = d.get(k, default)
    if not isinstance(v, str):
        raise ConfigError(f"{path}.{k}", f"must be a string, got {type(v).__name__}")
    return v.strip()


def _choice(d: dict[str, Any], k: str, path: str, default: str, allowed: tuple[str, ...]) -> str:
    v = _text(d, k, path, default)
    if v not in allowed:
        raise ConfigError(f"{path}.{k}", f"must be one of {', '.join(allowed)}, got {v!r}")
    return v


def _integer(d: dict[str, Any], k: str, path: str, default: int, lo: int, hi: int) -> int:
    v = d.get(k, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(f"{path}.{k}", f"must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _ref(d: dict[str, Any], k: str, path: str) -> SecretRef:
    p = f"{path}.{k}"
    outer = _obj(d.get(k), p)
    if "secretKeyRef" not in outer:
        raise ConfigError(
            f"{p}.secretKeyRef", "is required (a Secret name and key; values never go in a spec)"
        )
    _only(outer, {"secretKeyRef"}, p)
    ref = _obj(outer["secretKeyRef"], f"{p}.secretKeyRef")
    _only(ref, {"name", "key"}, f"{p}.secretKeyRef")
    name, key = _text(ref, "name", f"{p}.secretKeyRef", ""), _text(ref, "key", f"{p}.secretKeyRef", "")
    if not name or not key:
        raise ConfigError(f"{p}.secretKeyRef", "needs both name and key")
    return SecretRef(name, key)
