"""A scan Job wrote ``status.lastScan``: the operator's share of it -- the Event, the metrics, the alert.

The Job's Role can only patch the monitor's status, so what needs more rights happens here, on the
watch event that carries the new ``lastScan``: a Kubernetes Event (``ScanDrift``, ``ScanNoDrift``,
``ScanNotEnoughData``, ``ScanFailed``), ``driftwatch_scans_total{result}`` and
``driftwatch_scan_drifted_features{namespace,monitor}``, and a ``SCAN_DRIFT`` / ``SCAN_FAILED`` alert.
Each scan is handled once per operator process (by its time), by the leader replica; a scan older
than ``STARTUP_GRACE`` seen first after a start -- or by a replica that just took the lead -- is taken
as handled before it, a younger one is announced (a scan finishing during a failover is announced by
the new leader; at worst twice, never not at all).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from driftwatch.operator import telemetry
from driftwatch.operator.context import OperatorContext
from driftwatch.operator.status_rules import Event

#: seconds: a lastScan this old, first seen after a start, was handled by the previous process
STARTUP_GRACE = 120.0
REASONS = {"Drift": "ScanDrift", "NoDrift": "ScanNoDrift", "NotEnoughData": "ScanNotEnoughData"}


@dataclass(frozen=True)
class NewScan:
    namespace: str
    name: str
    last_scan: Mapping[str, Any]
    event: Event
    #: the result differs from the scan before it (``status.scans[1]``): a transition
    changed: bool = True

    @property
    def result(self) -> str:
        return str(self.last_scan.get("result"))


def new_scan(body: Mapping[str, Any], seen: dict[tuple[str, str], str], now: dt.datetime) -> NewScan | None:
    """The monitor's ``lastScan`` if this process has not handled it yet (and remember it)."""
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    last = (body.get("status") or {}).get("lastScan")
    if not isinstance(last, Mapping) or not last.get("time"):
        return None
    when = str(last["time"])
    previous = seen.get(key)
    seen[key] = when
    if previous == when:
        return None
    if previous is None:
        try:
            age = (now - dt.datetime.fromisoformat(when.replace("Z", "+00:00"))).total_seconds()
        except ValueError:
            return None
        if age > STARTUP_GRACE:
            return None
    scans = (body.get("status") or {}).get("scans") or []
    before = scans[1].get("result") if len(scans) > 1 and isinstance(scans[1], Mapping) else None
    return NewScan(key[0], key[1], last, event_of(last), before != last.get("result"))


def event_of(last: Mapping[str, Any]) -> Event:
    result = str(last.get("result"))
    drifted = [str(f.get("feature")) for f in last.get("features") or [] if f.get("drifted")]
    windows = _windows(last)
    if result == "Drift":
        text = f"drift in {len(drifted)} feature(s): {', '.join(drifted[:10])} ({windows})"
        return Event("Warning", REASONS[result], text)
    if result == "NoDrift":
        return Event("Normal", REASONS[result], f"no drift ({windows})")
    if result == "NotEnoughData":
        return Event("Normal", REASONS[result], f"not enough data: {last.get('reason', '')} ({windows})")
    return Event("Warning", "ScanFailed", f"scan failed: {last.get('reason', '')}")


def _windows(last: Mapping[str, Any]) -> str:
    cur, ref = last.get("current") or {}, last.get("reference") or {}
    ref_text = "the baseline" if ref.get("kind") == "baseline" else f"{ref.get('start')}..{ref.get('end')}"
    return f"{cur.get('start')}..{cur.get('end')} vs {ref_text}"


def count(scan: NewScan) -> None:
    telemetry.SCANS.labels(scan.result).inc()
    drifted = sum(1 for f in scan.last_scan.get("features") or [] if f.get("drifted"))
    telemetry.SCAN_DRIFTED.labels(scan.namespace, scan.name).set(drifted)


def alert(ctx: OperatorContext, scan: NewScan) -> None:
    """The scan's alert (``SCAN_DRIFT`` / ``SCAN_FAILED``), after whatever the monitor has queued."""
    monitor = ctx.cache.get(scan.namespace, scan.name)
    if monitor is not None:
        ctx.feed.later(monitor, partial(ctx.alerting.on_scan, monitor, scan.last_scan, scan.changed))
