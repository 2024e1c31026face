"""``driftwatch status`` output: each format parsed back, the NAMESPACE column only with -A, kubectl's
ages, and a watch's rows aligned with the header printed before them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import yaml

from driftwatch import statusview
from driftwatch.status import Printer

NOW = dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC)


def monitor(
    name: str, namespace: str = "shop", features: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": "2026-12-07T11:48:00Z",
            "resourceVersion": "42",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"selector": {"matchLabels": {"app": name}}},
        "status": {
            "phase": "Drifting",
            "verdict": "Fail",
            "lastUpdate": "2026-12-07T11:59:50Z",
            "features": features
            if features is not None
            else [
                {
                    "name": "latency_ms",
                    "key": "",
                    "state": "Drifting",
                    "score": 0.834,
                    "severity": "critical",
                    "detector": "cusum-mean-up",
                    "pods": 3,
                },
                {
                    "name": "plan",
                    "key": "eu",
                    "state": "Stable",
                    "score": 0.1,
                    "severity": "none",
                    "detector": None,
                    "pods": 3,
                },
            ],
        },
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (250, "4m10s"), (600, "10m"),
        (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 20 * 60, "3h20m"), (8 * 3600, "8h"),
        (47 * 3600, "47h"), (50 * 3600, "2d2h"), (7 * 86400, "7d"), (30 * 86400, "30d"),
        (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
    ],
)  # fmt: skip
def test_human_duration_is_kubectls(seconds: int, text: str) -> None:
    """The values k8s.io/apimachinery's duration.HumanDuration prints."""
    assert statusview.human_duration(seconds) == text


def test_table_has_no_namespace_column_unless_all_namespaces() -> None:
    text = statusview.table(statusview.header(), statusview.rows([monitor("payments")], NOW))
    head, first, second = text.splitlines()
    assert head.split() == ["NAME", "PHASE", "FEATURE", "KEY", "STATE", "SCORE", "SEVERITY", "VERDICT", "AGE"]
    assert first.split() == [
        "payments",
        "Drifting",
        "latency_ms",
        "-",
        "Drifting",
        "0.83",
        "critical",
        "Fail",
        "12m",
    ]
    assert second.split() == ["payments", "Drifting", "plan", "eu", "Stable", "0.10", "none", "Fail", "12m"]
    across = statusview.rows([monitor("payments"), monitor("search", "ads")], NOW, namespaces=True)
    assert [r[:2] for r in across] == [["shop", "payments"]] * 2 + [["ads", "search"]] * 2
    assert statusview.header(namespaces=True)[0] == "NAMESPACE"


def test_wide_adds_detector_pods_and_update_age() -> None:
    (row, _) = statusview.rows([monitor("payments")], NOW, wide=True)
    assert dict(zip(statusview.WIDE_COLUMNS, row, strict=True)) == {
        "NAME": "payments", "PHASE": "Drifting", "FEATURE": "latency_ms", "KEY": "-", "STATE": "Drifting",
        "SCORE": "0.83", "SEVERITY": "critical", "VERDICT": "Fail", "AGE": "12m",
        "DETECTOR": "cusum-mean-up", "PODS": "3", "UPDATED": "10s",
    }  # fmt: skip


def test_monitor_without_status_is_one_row_of_dashes() -> None:
    bare = {"metadata": {"name": "fresh", "namespace": "shop"}}
    assert statusview.rows([bare], NOW) == [["fresh", "-", "-", "-", "-", "-", "-", "-", "<unknown>"]]


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_a_list_parses_back_as_a_v1_list(output: str) -> None:
    text = Printer(output, all_namespaces=False, now=lambda: NOW).listing(
        [monitor("payments"), monitor("search")], one=False
    )
    doc = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "List")
    assert [i["metadata"]["name"] for i in doc["items"]] == ["payments", "search"]
    for item in doc["items"]:
        assert (item["apiVersion"], item["kind"]) == ("driftwatch.io/v1alpha1", "DriftMonitor")
        assert "managedFields" not in item["metadata"]
        assert item["status"]["features"][0]["score"] == pytest.approx(0.834)


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_one_named_monitor_is_the_object_itself(output: str) -> None:
    text = Printer(output, all_namespaces=False).listing([monitor("payments")], one=True)
    doc = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert (doc["kind"], doc["metadata"]["name"]) == ("DriftMonitor", "payments")


def test_watch_rows_stay_aligned_with_the_header() -> None:
    printer = Printer("table", all_namespaces=False, now=lambda: NOW)
    first = printer.listing([monitor("a")], one=False).splitlines()
    later = printer.change(monitor("a-much-longer-name", features=[])).splitlines()
    assert first[0].startswith("NAME")
    assert not later[0].startswith("NAME")
    assert first[0].index("PHASE") == first[1].index("Drifting")
    assert later[0].split() == ["a-much-longer-name", "Drifting", "-", "-", "-", "-", "-", "Fail", "12m"]


def test_watch_yaml_documents_are_separated() -> None:
    printer = Printer("yaml", all_namespaces=True)
    stream = printer.listing([monitor("a")], one=False) + "\n" + printer.change(monitor("a"))
    docs = list(yaml.safe_load_all(stream))
    assert [d["kind"] for d in docs] == ["List", "DriftMonitor"]
