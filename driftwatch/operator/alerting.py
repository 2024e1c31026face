"""``spec.alerts`` wired into the operator: transitions and scans become alerts, delivered by
``driftwatch.alerts`` (webhook, Slack, e-mail), counted, recorded in status and in the history.

* **What alerts**: a feature's monitor-wide ``DRIFT_START`` / ``DRIFT_END`` (``history_feed``), a scan
  that found drift (``SCAN_DRIFT``) and a scan that failed (``SCAN_FAILED``; ``scan_watch``).
* **Secrets**: ``KubeSecrets`` reads the referenced Secret through ``driftwatch.kube`` at every delivery
  (no cache), so a rotated Secret takes effect on the next alert without a restart. The operator reads
  only Secrets a DriftMonitor names (RBAC: ``get``, no ``list``/``watch``).
* **Acknowledgements** (``acks``): an acknowledged feature's -- or with no feature, the monitor's --
  repeats are silenced until its next transition: a scan that finds the same drift again sends nothing
  (outcome ``acknowledged``); a transition (the drift ends, a new one starts, a scan's result changes)
  clears the acknowledgement first, and is sent.
* **Outcomes**: ``driftwatch_alerts_total{channel,status}``, ``status.alerts`` (the last alert's
  outcomes, at most ``MAX_STATUS_ALERTS`` kept) and an ``ALERT`` history entry. Outcomes carry redacted
  errors only: no value read from a Secret reaches status, Events, logs or metrics.

One ``Notifier`` per monitor keeps the dedup and rate-limit state; it is rebuilt when ``spec.alerts``
changes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from redis.exceptions import RedisError

from driftwatch.alerts import SCAN_DRIFT, Alert, AlertsSpec, Notifier, Outcome, SecretError, SecretRef
from driftwatch.history import stream_log
from driftwatch.history.entries import ALERT, Entry
from driftwatch.kube.client import Kube, KubeError, path_for
from driftwatch.operator import telemetry
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.history_feed import Transition
from driftwatch.operator.pod_reports import RedisPool
from driftwatch.vocab.names import KIND
from driftwatch.vocab.spec import ConfigError

log = logging.getLogger("driftwatch.operator")

ACKNOWLEDGED = "acknowledged"
MAX_STATUS_ALERTS = 10


class KubeSecrets:
    """``SecretResolver`` on the Kubernetes API: one GET per value, every time (rotation needs no restart)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def resolve(self, namespace: str, ref: SecretRef) -> str:
        try:
            secret = await self.kube.get("Secret", namespace, ref.name)
        except KubeError as e:
            raise SecretError(f"{namespace}/{ref.name}: cannot be read (HTTP {e.status})") from None
        data = (secret or {}).get("data") or {}
        if secret is None or ref.key not in data:
            raise SecretError(f"{namespace}/{ref.name}: no key {ref.key!r} (or no such Secret)")
        try:
            return base64.b64decode(data[ref.key], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise SecretError(f"{namespace}/{ref.name}: key {ref.key!r} is not UTF-8 text") from None


def _spec_key(raw: Any) -> str:
    return json.dumps(raw, sort_keys=True, default=str)


class Alerting:
    def __init__(self, kube: Kube, redis: RedisPool) -> None:
        self.kube = kube
        self.redis = redis
        self.secrets = KubeSecrets(kube)
        self._notifiers: dict[tuple[str, str], tuple[str, Notifier]] = {}
        #: (namespace, name) -> acknowledgements in force: feature ("" = the whole monitor) -> ack id
        self.acks: dict[tuple[str, str], dict[str, str]] = {}
        self._replaced: list[Notifier] = []  # closed at shutdown (deliveries may still be running)

    def notifier(self, monitor: Monitor) -> Notifier | None:
        raw = monitor.raw_spec.get("alerts")
        key = (monitor.namespace, monitor.name)
        held = self._notifiers.get(key)
        if held is not None and held[0] == _spec_key(raw):
            return held[1]
        try:
            spec = AlertsSpec.parse(raw)
        except (ConfigError, ValueError) as e:
            log.warning("%s/%s: spec.alerts not usable: %s", *key, e)
            return None
        notifier = Notifier(monitor.namespace, monitor.name, spec, self.secrets)
        if held is not None:
            self._replaced.append(held[1])
        self._notifiers[key] = (_spec_key(raw), notifier)
        return notifier

    # --- what alerts -----------------------------------------------------------------------------------

    async def on_transition(self, monitor: Monitor, t: Transition) -> None:
        await self._deactivate(monitor, self.clear_acks(monitor, t.feature))
        now = time.time()
        event = t.event(monitor.namespace, monitor.name, now)
        await self.send(monitor, Alert.from_event(monitor.namespace, monitor.name, event, now))

    async def on_scan(self, monitor: Monitor, last_scan: Mapping[str, Any], changed: bool) -> None:
        """A new ``lastScan``; ``changed``: its result differs from the scan before (a transition)."""
        result, now = last_scan.get("result"), _epoch(last_scan.get("time"))
        if changed:
            await self._deactivate(monitor, self.clear_acks(monitor, None))
        if result == "Drift":
            comparison = {"share": last_scan.get("share"), "features": last_scan.get("features") or []}
            await self.send(monitor, Alert.from_scan(monitor.namespace, monitor.name, comparison, now))
        elif result == "Failed":
            reason = str(last_scan.get("reason") or "unknown")
            await self.send(monitor, Alert.scan_failed(monitor.namespace, monitor.name, reason, now))

    # --- acknowledgements ------------------------------------------------------------------------------

    def acknowledge(self, monitor: Monitor, feature: str | None, ack_id: str) -> None:
        self.acks.setdefault(_id(monitor), {})[feature or ""] = ack_id

    def clear_acks(self, monitor: Monitor, feature: str | None) -> list[str]:
        """A transition of ``feature`` (None: of the scan): the acknowledgements it ends (their ids)."""
        held = self.acks.get(_id(monitor)) or {}
        gone = [k for k in held if feature is None or k in ("", feature)]
        return [held.pop(k) for k in gone]

    def silenced(self, monitor: Monitor, alert: Alert) -> bool:
        held = self.acks.get(_id(monitor)) or {}
        if not held or alert.type != SCAN_DRIFT:
            return False
        if "" in held:
            return True
        drifted = {str(f.get("feature")) for f in alert.details.get("features") or []}
        return bool(drifted) and drifted <= set(held)

    async def _deactivate(self, monitor: Monitor, ids: Sequence[str]) -> None:
        """Mark acknowledgements a transition ended as no longer active in ``status.acknowledged``."""
        if not ids:
            return
        try:
            body = await self.kube.get(KIND, monitor.namespace, monitor.name)
            acks = ((body or {}).get("status") or {}).get("acknowledged") or []
            updated = [{**a, "active": False} if a.get("id") in ids else a for a in acks]
            await self._patch_status(monitor, {"acknowledged": updated})
        except KubeError as e:
            log.warning("%s/%s: acknowledgements not updated: %s", *_id(monitor), e.message)

    async def _patch_status(self, monitor: Monitor, fields: Mapping[str, Any]) -> None:
        """A merge patch of these status fields only: no conflict with the status rounds' fields."""
        await self.kube.request(
            "PATCH",
            path_for(KIND, monitor.namespace, monitor.name, "status"),
            body={"status": dict(fields)},
            content_type="application/merge-patch+json",
        )

    # --- delivery ----------------------------------------------------------------------------------------

    async def send(self, monitor: Monitor, alert: Alert) -> list[Outcome]:
        notifier = self.notifier(monitor)
        if notifier is None:
            return []
        if self.silenced(monitor, alert):
            names = [c.name for c in notifier.channels()] or ["log"]
            outcomes = [Outcome(n, alert.id, ACKNOWLEDGED, time=time.time()) for n in names]
        else:
            outcomes = await notifier.notify(alert)
        for o in outcomes:
            telemetry.ALERTS.labels(o.channel, o.status).inc()
        await self._record(monitor, alert, outcomes)
        return outcomes

    async def _record(self, monitor: Monitor, alert: Alert, outcomes: Sequence[Outcome]) -> None:
        summary = f"{alert.type} {alert.severity}: " + ", ".join(f"{o.channel} {o.status}" for o in outcomes)
        entry = Entry(
            ALERT,
            alert.time,
            summary,
            alert.feature,
            alert.key,
            alert.severity,
            {"alertId": alert.id, "alertType": alert.type, "outcomes": [o.to_dict() for o in outcomes]},
        )
        try:
            await stream_log.append(self.redis.get(monitor.redis_url), monitor.keys.history, entry)
        except (RedisError, OSError, TimeoutError) as e:
            log.warning("%s/%s: alert not in the history (Redis: %s)", *_id(monitor), type(e).__name__)
        record = {
            "time": alert.time,
            "id": alert.id,
            "type": alert.type,
            "severity": alert.severity,
            "outcomes": [o.to_dict() for o in outcomes],
        }
        try:
            body = await self.kube.get(KIND, monitor.namespace, monitor.name)
            previous = ((body or {}).get("status") or {}).get("alerts") or []
            await self._patch_status(monitor, {"alerts": [record, *previous][:MAX_STATUS_ALERTS]})
        except KubeError as e:
            log.warning("%s/%s: alert outcome not in status: %s", *_id(monitor), e.message)

    def forget(self, namespace: str, name: str) -> None:
        """A deleted monitor: its acknowledgements go, its notifier is closed at shutdown."""
        self.acks.pop((namespace, name), None)
        held = self._notifiers.pop((namespace, name), None)
        if held is not None:
            self._replaced.append(held[1])

    async def close(self) -> None:
        for _, n in self._notifiers.values():
            await n.close()
        for n in self._replaced:
            await n.close()


def _epoch(text: Any) -> float:
    """A status time (RFC 3339) as epoch seconds: a scan's alert id is made from its time."""
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def _id(monitor: Monitor) -> tuple[str, str]:
    return monitor.namespace, monitor.name
