"""History entries and the filters of a query. Pure: the operator's endpoint and ``driftwatch history``
parse the same parameters, with errors that name the parameter."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftwatch.vocab.spec import ConfigError, parse_duration, parse_time

DRIFT_START, DRIFT_END = "DRIFT_START", "DRIFT_END"
SCAN, SCAN_FAILED = "SCAN", "SCAN_FAILED"
ALERT, ACK = "ALERT", "ACK"
TYPES = (DRIFT_START, DRIFT_END, SCAN, SCAN_FAILED, ALERT, ACK)
SEVERITIES = ("none", "warning", "critical")
#: entries kept per monitor (``XADD MAXLEN ~``): about a year of a busy monitor's transitions
MAXLEN = 10_000
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
PARAMS = ("feature", "severity", "type", "since", "until", "limit", "cursor")
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True)
class Entry:
    """One thing that happened to a monitor. ``time`` is epoch seconds; ``details`` is type-specific
    (a scan's windows and drifted features, an alert's channel outcomes, an acknowledgement's user)."""

    type: str
    time: float
    summary: str
    feature: str | None = None
    key: str = ""
    severity: str = "none"
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": self.time,
            "feature": self.feature,
            "key": self.key,
            "severity": self.severity,
            "summary": self.summary,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Entry:
        return cls(
            type=str(d.get("type", "")),
            time=float(d.get("time") or 0.0),
            summary=str(d.get("summary", "")),
            feature=None if d.get("feature") is None else str(d["feature"]),
            key=str(d.get("key") or ""),
            severity=str(d.get("severity") or "none"),
            details=dict(d.get("details") or {}),
        )


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


@dataclass(frozen=True)
class Filters:
    """``?feature=&severity=&type=&since=&until=&limit=&cursor=``. ``severity`` is a minimum
    (``warning`` matches warning and critical); ``type`` a comma-separated list; ``since``/``until``
    ISO 8601, epoch seconds or a duration back from now (``7d``); ``cursor`` the ``next`` of the
    previous page."""

    feature: str | None = None
    severity: str | None = None
    types: frozenset[str] = frozenset()
    since: float | None = None
    until: float | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], now: float | None = None) -> Filters:
        """Raises ConfigError naming the parameter."""
        now = time.time() if now is None else now
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise ConfigError(unknown[0], f"unknown parameter (known: {', '.join(PARAMS)})")
        severity = params.get("severity") or None
        if severity is not None and severity not in SEVERITIES:
            raise ConfigError("severity", f"must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        types = frozenset(t.strip() for t in (params.get("type") or "").split(",") if t.strip())
        for t in sorted(types):
            if t not in TYPES:
                raise ConfigError("type", f"must be among {', '.join(TYPES)}, got {t!r}")
        limit_text = params.get("limit") or str(DEFAULT_LIMIT)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise ConfigError("limit", f"must be an integer from 1 to {MAX_LIMIT}, got {limit_text!r}")
        cursor = params.get("cursor") or None
        if cursor is not None and not _STREAM_ID.match(cursor):
            raise ConfigError("cursor", f"must be the 'next' of a previous page, got {cursor!r}")
        since, until = _when(params, "since", now), _when(params, "until", now)
        if since is not None and until is not None and since > until:
            raise ConfigError("until", "must not be before since")
        return cls(params.get("feature") or None, severity, types, since, until, int(limit_text), cursor)

    def matches(self, e: Entry) -> bool:
        if self.types and e.type not in self.types:
            return False
        if self.feature is not None and e.feature != self.feature:
            return False
        if self.severity is not None and severity_rank(e.severity) < severity_rank(self.severity):
            return False
        if self.since is not None and e.time < self.since:
            return False
        return self.until is None or e.time <= self.until

    def to_params(self) -> dict[str, str]:
        """The query string these filters came from (``driftwatch history`` sends it)."""
        out = {"limit": str(self.limit)}
        for k, v in (("feature", self.feature), ("severity", self.severity), ("cursor", self.cursor)):
            if v is not None:
                out[k] = v
        if self.types:
            out["type"] = ",".join(sorted(self.types))
        for k, t in (("since", self.since), ("until", self.until)):
            if t is not None:
                out[k] = repr(t)
        return out


def _when(params: Mapping[str, str], name: str, now: float) -> float | None:
    text = (params.get(name) or "").strip()
    if not text:
        return None
    if text[-1:] in "smhdw" and text[:-1].isdigit():
        return now - parse_duration(text, name)
    try:
        return parse_time(text)
    except ValueError:
        raise ConfigError(
            name, f"must be ISO 8601, epoch seconds or a duration such as 7d, got {text!r}"
        ) from None
