"""``Outcome``: what became of one alert on one channel -- for a metric label and the monitor's status."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SENT = "sent"
FAILED = "failed"
BELOW_SEVERITY = "below-severity"
DUPLICATE = "duplicate"
RATE_LIMITED = "rate-limited"
#: no channel configured: the alert was written to the log instead
LOGGED = "logged"
STATUSES = (SENT, FAILED, BELOW_SEVERITY, DUPLICATE, RATE_LIMITED, LOGGED)


@dataclass(frozen=True)
class Outcome:
    """``error`` is already redacted: it never contains a secret value."""

    channel: str  # webhook | slack | email | log
    alert_id: str
    status: str
    attempts: int = 0
    error: str = ""
    time: float = 0.0

    @property
    def delivered(self) -> bool:
        return self.status == SENT

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            "channel": d["channel"],
            "alertId": d["alert_id"],
            "status": d["status"],
            "attempts": d["attempts"],
            "error": d["error"],
            "time": d["time"],
        }
