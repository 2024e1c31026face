"""``Alert``: what a channel delivers, built from a drift event or a scan; ``body()`` is the documented
JSON the generic webhook posts (docs/scan-and-alerts.md)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DRIFT_START, DRIFT_END = "DRIFT_START", "DRIFT_END"
SCAN_DRIFT, SCAN_FAILED = "SCAN_DRIFT", "SCAN_FAILED"
TYPES = (DRIFT_START, DRIFT_END, SCAN_DRIFT, SCAN_FAILED)
SEVERITIES = ("none", "warning", "critical")
BODY_VERSION = 1


def severity_rank(severity: str) -> int:
    """none < warning < critical (an unknown severity ranks as critical: never silently dropped)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    """One notification. ``id`` is deterministic (the same event or scan gives the same id, so a retry
    or a replay is recognised as a repeat, here and by receivers); ``dedup_key`` groups alerts that
    say the same thing (a flapping feature) for the repeat interval."""

    id: str
    type: str
    namespace: str
    monitor: str
    severity: str
    time: float  # epoch seconds
    summary: str
    feature: str | None = None
    key: str = ""
    score: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        return "\x1f".join(
            (self.namespace, self.monitor, self.type, self.feature or "", self.key, self.severity)
        )

    def body(self, suppressed: int = 0) -> dict[str, Any]:
        """The generic webhook's JSON body (version 1). ``suppressed``: alerts the rate limit held back
        on this channel since the last delivered one."""
        return {
            "version": BODY_VERSION,
            "id": self.id,
            "type": self.type,
            "monitor": {"namespace": self.namespace, "name": self.monitor},
            "feature": self.feature,
            "key": self.key,
            "severity": self.severity,
            "score": self.score,
            "time": _iso(self.time),
            "summary": self.summary,
            "details": self.details,
            "suppressed": suppressed,
        }

    # --- constructors -----------------------------------------------------------------------------------

    @classmethod
    def from_event(cls, namespace: str, monitor: str, event: dict[str, Any], now: float) -> Alert:
        """From a ``DriftEvent.to_dict()`` (the engine's event id is kept: deterministic already)."""
        etype = str(event.get("type", DRIFT_START))
        feature = str(event.get("feature", ""))
        key = str(event.get("key", "") or "")
        severity = str(event.get("severity", "warning"))
        score = event.get("score")
        where = f"{namespace}/{monitor} {feature}" + (f" [{key}]" if key else "")
        if etype == DRIFT_END:
            reason = (event.get("evidence") or {}).get("reason", "recovered")
            summary = f"{where}: drift ended ({reason})"
        else:
            summary = (
                f"{where}: drift started ({severity}, score {float(score or 0):.2f}, {event.get('detector')})"
            )
        ts = event.get("timestamp")
        return cls(
            id=str(
                event.get("id") or _digest(namespace, monitor, etype, feature, key, str(event.get("index")))
            ),
            type=etype,
            namespace=namespace,
            monitor=monitor,
            severity=severity,
            time=float(ts) if isinstance(ts, int | float) else now,
            summary=summary,
            feature=feature,
            key=key,
            score=float(score) if isinstance(score, int | float) else None,
            details={k: event[k] for k in ("detector", "index", "onset", "evidence") if k in event},
        )

    @classmethod
    def from_scan(cls, namespace: str, monitor: str, comparison: dict[str, Any], now: float) -> Alert:
        """From a drifted scan: ``Comparison.to_dict()`` (the ``compare --json`` record)."""
        drifted = [f for f in comparison.get("features", []) if f.get("drifted")]
        severity = "critical" if any(f.get("severity") == "critical" for f in drifted) else "warning"
        names = ", ".join(str(f.get("feature")) for f in drifted[:5]) + (" ..." if len(drifted) > 5 else "")
        return cls(
            id=_digest(namespace, monitor, SCAN_DRIFT, str(int(now))),
            type=SCAN_DRIFT,
            namespace=namespace,
            monitor=monitor,
            severity=severity,
            time=now,
            summary=f"{namespace}/{monitor}: scan found drift in {len(drifted)} feature(s): {names}",
            details={"share": comparison.get("share"), "features": drifted},
        )

    @classmethod
    def scan_failed(cls, namespace: str, monitor: str, reason: str, now: float) -> Alert:
        return cls(
            id=_digest(namespace, monitor, SCAN_FAILED, str(int(now))),
            type=SCAN_FAILED,
            namespace=namespace,
            monitor=monitor,
            severity="warning",
            time=now,
            summary=f"{namespace}/{monitor}: scan failed: {reason}",
            details={"reason": reason},
        )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]
