"""The pure pieces of a status round: the pods index entry, the notified merge patch, and the cache's
claim that keeps the timer and the notification path from posting the same Event twice."""

from __future__ import annotations

import datetime as dt
from typing import Any

from driftwatch.operator.cache import MonitorCache
from driftwatch.operator.driftmonitor import Monitor
from driftwatch.operator.options import OperatorOptions
from driftwatch.operator.status_round import Round, status_patch
from driftwatch.operator.status_rules import PodInfo, condition

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BODY: dict[str, Any] = {
    "metadata": {"name": "api", "namespace": "shop", "uid": "u", "generation": 2, "resourceVersion": "41"},
    "spec": {"selector": {"matchLabels": {"app": "api"}}},
    "status": {
        "phase": "Stable",
        "lastUpdate": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "Other", "status": "True"}],
    },
}


def test_pod_info_of_a_pod() -> None:
    pod = {
        "metadata": {"name": "web-1", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "driftwatch-sidecar"}]},
        "status": {"phase": "Running"},
    }
    assert PodInfo.of(pod) == PodInfo("web-1", {"app": "api"}, True, True)
    done = {**pod, "status": {"phase": "Succeeded"}}
    assert PodInfo.of(done).active is False
    deleting = {**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert PodInfo.of(deleting).active is False


def test_status_patch_is_guarded_and_keeps_other_conditions() -> None:
    monitor = Monitor.from_body(BODY, OperatorOptions())
    ours = [condition("Drifting", True, "FeaturesDrifting", "x", 2)]
    rnd = Round(monitor, {"phase": "Drifting", "verdict": "Fail"}, ours, [], {})
    doc = status_patch(BODY, rnd, T0)
    assert doc["metadata"] == {"resourceVersion": "41"}
    assert doc["status"]["phase"] == "Drifting"
    assert [c["type"] for c in doc["status"]["conditions"]] == ["Drifting", "Other"]


def test_a_claimed_status_is_compared_against_until_released() -> None:
    cache = MonitorCache()
    cache.upsert(BODY, OperatorOptions())
    claimed = {**BODY["status"], "phase": "Drifting", "lastUpdate": "2026-01-01T00:00:05Z"}
    cache.claim("shop", "api", claimed)
    # the watch event of that write has not arrived: the body is older, the claim wins
    assert cache.newest_status(BODY)["phase"] == "Drifting"
    assert cache.status("shop", "api") is claimed
    cache.release("shop", "api", claimed, BODY["status"])  # the write failed
    assert cache.newest_status(BODY)["phase"] == "Stable"
    other = {**claimed}
    cache.claim("shop", "api", other)
    cache.release("shop", "api", claimed, BODY["status"])  # a stale release leaves a newer claim alone
    assert cache.status("shop", "api") is other
