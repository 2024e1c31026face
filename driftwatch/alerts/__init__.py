"""``driftwatch.alerts``: notifications on drift transitions and scans -- a generic JSON webhook, Slack
incoming webhooks and e-mail over SMTP -- with severity filters, dedup, rate limits, retries and an
outcome per delivery. Secrets come through a ``SecretResolver`` the host implements (the operator: the
Kubernetes API) and never appear in logs or outcomes. docs/scan-and-alerts.md has the webhook body."""

from .alert import DRIFT_END, DRIFT_START, SCAN_DRIFT, SCAN_FAILED, Alert
from .alerts_spec import AlertsSpec, EmailSettings, RateLimit, SlackSettings, SmtpSettings, WebhookSettings
from .channels import EmailChannel, SlackChannel, WebhookChannel
from .notifier import Notifier
from .outcome import BELOW_SEVERITY, DUPLICATE, FAILED, LOGGED, RATE_LIMITED, SENT, STATUSES, Outcome
from .retry import DeliveryError, RetryPolicy
from .secrets import Redactor, SecretError, SecretRef, SecretResolver, StaticSecrets

__all__ = [
    "BELOW_SEVERITY",
    "DRIFT_END",
    "DRIFT_START",
    "DUPLICATE",
    "FAILED",
    "LOGGED",
    "RATE_LIMITED",
    "SCAN_DRIFT",
    "SCAN_FAILED",
    "SENT",
    "STATUSES",
    "Alert",
    "AlertsSpec",
    "DeliveryError",
    "EmailChannel",
    "EmailSettings",
    "Notifier",
    "Outcome",
    "RateLimit",
    "Redactor",
    "RetryPolicy",
    "SecretError",
    "SecretRef",
    "SecretResolver",
    "SlackChannel",
    "SlackSettings",
    "SmtpSettings",
    "StaticSecrets",
    "WebhookChannel",
    "WebhookSettings",
]
