"""The operator's scan and history parts that are pure: the rendered CronJob and its identity, which
lastScan is new, and which status changes are transitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from driftwatch.operator import scan_children, scan_watch
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.history_feed import transitions
from driftwatch.operator.options import OperatorOptions

OPTS = OperatorOptions(sidecar_image="driftwatch:test", redis_url="redis://r:6379/0")


def monitor(**spec: Any) -> Monitor:
    body = {
        "metadata": {"name": "pay", "namespace": "shop", "uid": "u-1", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "pay"}}, **spec},
    }
    return Monitor.from_body(body, OPTS)


def test_no_scan_no_children() -> None:
    assert scan_children.children(monitor(), OPTS) == []


def test_the_scan_children_least_privilege_and_deadlines() -> None:
    sa, role, binding, cron = scan_children.children(
        monitor(scan={"schedule": "*/5 * * * *", "timeout": "3m"}), OPTS
    )
    name = "driftwatch-pay-scan"
    for obj in (sa, role, binding, cron):
        assert obj["metadata"]["name"] == name
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert role["rules"] == [
        {
            "apiGroups": ["driftwatch.io"],
            "resources": ["driftmonitors"],
            "resourceNames": ["pay"],
            "verbs": ["get"],
        },
        {
            "apiGroups": ["driftwatch.io"],
            "resources": ["driftmonitors/status"],
            "resourceNames": ["pay"],
            "verbs": ["patch"],
        },
    ]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "shop"}]
    spec = cron["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"]) == ("*/5 * * * *", "Forbid")
    assert spec["startingDeadlineSeconds"] == scan_children.STARTING_DEADLINE
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == 180
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    assert c["image"] == "driftwatch:test"
    assert c["command"] == ["driftwatch", "scan", "shop/pay", "--job"]
    assert {e["name"]: e["value"] for e in c["env"]} == {
        "DRIFTWATCH_REDIS_URL": "redis://r:6379/0",
        "DRIFTWATCH_KEY_PREFIX": "driftwatch",
    }


def body(last: dict[str, Any] | None) -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": "pay"}, "status": {"lastScan": last} if last else {}}


def test_a_scan_is_handled_once_and_old_ones_after_a_restart_not_at_all() -> None:
    now = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)
    seen: dict[tuple[str, str], str] = {}
    old = {"time": "2024-01-01T11:00:00Z", "result": "Drift", "features": []}
    assert scan_watch.new_scan(body(old), seen, now) is None  # before this process started
    fresh = {
        "time": "2024-01-01T11:59:30Z",
        "result": "Drift",
        "features": [{"feature": "x", "drifted": True}],
    }
    got = scan_watch.new_scan(body(fresh), seen, now)
    assert got is not None
    assert (got.event.type, got.event.reason) == ("Warning", "ScanDrift")
    assert "x" in got.event.message
    assert scan_watch.new_scan(body(fresh), seen, now) is None
    assert scan_watch.new_scan(body(None), seen, now) is None
    failed = {"time": "2024-01-01T12:00:00Z", "result": "Failed", "reason": "Redis unavailable"}
    got = scan_watch.new_scan(body(failed), seen, now)
    assert got is not None
    assert got.event.reason == "ScanFailed"


def feature(state: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": "x",
        "key": "",
        "state": state,
        "score": 0.7,
        "severity": "critical",
        "detector": "cusum",
        **kw,
    }


def test_transitions_are_entries_into_and_out_of_drifting() -> None:
    prev = {"features": [feature("Stable")]}
    now = {"features": [feature("Drifting", since=120)]}
    (start,) = transitions(prev, now)
    assert (start.type, start.feature, start.since, start.severity) == ("DRIFT_START", "x", 120, "critical")
    (end,) = transitions(now, {"features": [feature("Stable", baselineAdoptedAt=900)]})
    assert (end.type, end.reason, end.since) == ("DRIFT_END", "adopted", 120)
    (end,) = transitions(now, {"features": [feature("Stable")]})
    assert end.reason == "recovered"
    assert transitions(prev, {"features": [feature("Initializing")]}) == []
    assert transitions(prev, prev) == []
    event = start.event("shop", "pay", 1.0)
    assert event["id"] == start.event("shop", "pay", 2.0)["id"]  # deterministic: dedup survives repeats
